// The plugin loader: search order, file-name pattern, and a recorded reason for every way a
// plugin can fail (not loadable, no entry point, ABI mismatch, no device). Uses the test
// plugins built into build/test-plugins/{fake,broken}.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backend/plugin/loader.h"
#include "support/paths.h"

using namespace shimmy;
namespace fs = std::filesystem;

namespace {

std::string fake_dir() {
  return std::string(SHIMMY_TEST_PLUGIN_DIR) + "/fake";
}
std::string fake_so() {
  return fake_dir() + "/libshimmy-backend-fake.so";
}

// Sets an environment variable for the scope of a test (the fake plugin reads it on each
// call, and the plugin stays loaded across tests).
class ScopedEnv {
 public:
  ScopedEnv(const char* k, const char* v) : k_(k) {
    if (const char* old = std::getenv(k)) old_ = old, had_ = true;
    if (v)
      setenv(k, v, 1);
    else
      unsetenv(k);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(k_, old_.c_str(), 1);
    else
      unsetenv(k_);
  }

 private:
  const char* k_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST(PluginLoader, NameFromFile) {
  EXPECT_EQ(backend::plugin_name_from_file("libshimmy-backend-cuda.so"), "cuda");
  EXPECT_EQ(backend::plugin_name_from_file("libshimmy-backend-fake.so"), "fake");
  EXPECT_EQ(backend::plugin_name_from_file("libshimmy-backend-.so"), "");
  EXPECT_EQ(backend::plugin_name_from_file("libshimmy-backend-cuda.so.1"), "");
  EXPECT_EQ(backend::plugin_name_from_file("libcuda.so"), "");
}

TEST(PluginLoader, DefaultSearchOrder) {
  ScopedEnv e("SHIMMY_BACKEND_PATH", "/opt/a::/opt/b/:/opt/a");
  auto dirs = backend::default_search_dirs();
  ASSERT_EQ(dirs.size(), 4u);
  const fs::path exe = fs::canonical("/proc/self/exe").parent_path();
  EXPECT_EQ(dirs[0], exe.string());
  EXPECT_EQ(dirs[1], (exe / ".." / "lib" / "shimmy").lexically_normal().string());
  EXPECT_EQ(dirs[2], "/opt/a");
  EXPECT_EQ(dirs[3], "/opt/b/");
}

TEST(PluginLoader, LoadsFakeDevices) {
  ScopedEnv e("SHIMMY_FAKE_DEVICES", "Fake GPU A:1024:2048:900,Fake GPU B:512.5:1024");
  auto p = backend::load_plugin(fake_so());
  ASSERT_TRUE(p.loaded) << p.reason;
  EXPECT_TRUE(p.usable());
  EXPECT_EQ(p.name, "fake");
  EXPECT_EQ(p.runtime, "fake runtime 1.0");
  ASSERT_EQ(p.devices.size(), 2u);
  EXPECT_EQ(p.devices[0].name, "Fake GPU A");
  EXPECT_EQ(p.devices[0].free_bytes, 1024ull << 20);
  EXPECT_EQ(p.devices[0].total_bytes, 2048ull << 20);
  EXPECT_EQ(p.devices[0].mem_bandwidth_gbs, 900.0);
  EXPECT_EQ(p.devices[1].free_bytes, static_cast<uint64_t>(512.5 * 1048576));
  EXPECT_TRUE(p.reason.empty());
}

TEST(PluginLoader, NoDeviceKeepsTheProbeReason) {
  ScopedEnv e("SHIMMY_FAKE_DEVICES", "");
  auto p = backend::load_plugin(fake_so());
  EXPECT_TRUE(p.loaded);
  EXPECT_FALSE(p.usable());
  EXPECT_NE(p.reason.find("SHIMMY_FAKE_DEVICES is empty"), std::string::npos) << p.reason;
}

TEST(PluginLoader, RefusesAnotherAbiVersionWithBothNumbers) {
  ScopedEnv e("SHIMMY_FAKE_ABI", "999");
  auto p = backend::load_plugin(fake_so());
  EXPECT_FALSE(p.loaded);
  EXPECT_EQ(p.api, nullptr);
  EXPECT_NE(p.reason.find("ABI version 999"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("needs " + std::to_string(SHIMMY_BACKEND_ABI_VERSION)), std::string::npos)
      << p.reason;
}

TEST(PluginLoader, RefusesFilesThatAreNotPlugins) {
  auto p = backend::load_plugin(std::string(SHIMMY_TEST_PLUGIN_DIR) +
                                "/broken/libshimmy-backend-nosym.so");
  EXPECT_FALSE(p.loaded);
  EXPECT_NE(p.reason.find("shimmy_backend_api"), std::string::npos) << p.reason;

  const std::string dir = test::make_temp_dir("plugin-junk");
  const std::string junk = dir + "/libshimmy-backend-junk.so";
  std::ofstream(junk) << "not an ELF file";
  auto q = backend::load_plugin(junk);
  EXPECT_FALSE(q.loaded);
  EXPECT_EQ(q.name, "junk");
  EXPECT_EQ(q.reason.rfind("cannot load: ", 0), 0u) << q.reason;
  EXPECT_NE(q.reason.find(junk), std::string::npos) << q.reason;  // dlerror names the file
  fs::remove_all(dir);
}

TEST(PluginLoader, ScanFindsPatternFilesOnceAndFirstNameWins) {
  ScopedEnv e("SHIMMY_FAKE_DEVICES", "Fake GPU A:100:200");
  const std::string dir = test::make_temp_dir("plugin-scan");
  fs::copy_file(fake_so(), dir + "/libshimmy-backend-fake.so");
  std::ofstream(dir + "/libshimmy-backend-zzz.so.bak") << "ignored: wrong suffix";
  std::ofstream(dir + "/libother.so") << "ignored: wrong prefix";
  auto scan = backend::scan_plugins({fake_dir(), fake_dir(), dir, "/nonexistent/dir"});
  EXPECT_EQ(scan.searched.size(), 4u);
  ASSERT_EQ(scan.plugins.size(), 2u);
  EXPECT_TRUE(scan.plugins[0].usable());
  EXPECT_EQ(scan.plugins[0].path, fake_so());
  EXPECT_FALSE(scan.plugins[1].loaded);
  EXPECT_NE(scan.plugins[1].reason.find("found first at " + fake_so()), std::string::npos)
      << scan.plugins[1].reason;
  ASSERT_NE(scan.find("fake"), nullptr);
  EXPECT_EQ(scan.find("fake")->path, fake_so());
  EXPECT_EQ(scan.find("cuda"), nullptr);
  fs::remove_all(dir);
}
