#include "server/backend_probe.h"

#include "engine/backend_choice.h"
#include "util/log.h"

namespace shimmy::server {

BackendProbe::~BackendProbe() {
  if (thread_.joinable()) thread_.join();
}

void BackendProbe::start() {
  if (requested_ == "cpu") {
    done_ = true;
    return;
  }
  thread_ = std::thread([this] {
    auto c = engine::choose_backend(requested_, backend::plugins());
    if (c && c->plugin) {
      log::info("GPU backend " + c->plugin->name + ": " +
                std::to_string(c->plugin->devices.size()) + " device(s)");
    } else if (c && c->warn) {
      log::warn(c->why_cpu + "; models will run on the CPU");
    } else if (c) {
      log::info(c->why_cpu + "; models will run on the CPU");
    }
    done_ = true;
  });
}

BackendStatus BackendProbe::backend_status() {
  BackendStatus st;
  st.requested = requested_;
  if (requested_ == "cpu") return st;
  if (!done_) {
    st.state = "probing";
    st.selected = "";
    return st;
  }
  const backend::PluginScan& scan = backend::plugins();
  st.plugins = scan.plugins;
  auto c = engine::choose_backend(requested_, scan);
  if (!c) {
    st.reason = c.error().message;
  } else if (c->plugin) {
    st.selected = c->plugin->name;
  } else {
    st.reason = c->why_cpu;
  }
  return st;
}

}  // namespace shimmy::server
