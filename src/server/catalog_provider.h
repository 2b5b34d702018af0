// The production ModelProvider: the store's cached catalog.
#pragma once

#include "server/server.h"
#include "store/store.h"

namespace shimmy::server {

class CatalogProvider : public ModelProvider {
 public:
  explicit CatalogProvider(store::Catalog& catalog) : catalog_(catalog) {}
  std::vector<store::ModelEntry> list_models() override { return catalog_.models(); }

 private:
  store::Catalog& catalog_;
};

}  // namespace shimmy::server
