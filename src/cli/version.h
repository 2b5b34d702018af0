#pragma once
#include <string>
namespace shimmy::cli {
// "shimmy 0.1.0 (commit abc123, Release build, plugins: cuda)"
std::string version_text();
}  // namespace shimmy::cli
