// Temp-dir helpers for the store tests: build fake model trees (plain dirs, HF cache,
// Ollama store, LM Studio) under one directory that is removed afterwards.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "store/model_entry.h"

namespace shimmy::testing {

class TempTree {
 public:
  TempTree() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "shimmy-store-XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path operator/(const std::string& rel) const { return root_ / rel; }

  // A file with the GGUF magic followed by `size - 4` zero bytes.
  std::filesystem::path gguf(const std::string& rel, size_t size = 64) const {
    std::string bytes(size < 4 ? 4 : size, '\0');
    bytes.replace(0, 4, "GGUF");
    return file(rel, bytes);
  }
  std::filesystem::path file(const std::string& rel, const std::string& bytes) const {
    auto p = root_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::filesystem::path symlink(const std::string& target, const std::string& rel) const {
    auto p = root_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::create_symlink(target, p);
    return p;
  }

  // A config whose every source lives under this tree: HOME=<root>/home, cwd=<root>/cwd.
  store::StoreConfig config() const {
    store::StoreConfig c;
    c.home = (root_ / "home").string();
    c.cwd = (root_ / "cwd").string();
    return c;
  }

 private:
  std::filesystem::path root_;
};

}  // namespace shimmy::testing
