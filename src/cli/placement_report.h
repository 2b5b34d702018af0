// How `show --placement` and `doctor -m` print a placement: text lines and a JSON object.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/offload.h"

namespace shimmy::cli {

// Indented lines: the summary, then per device and for the CPU the layers and bytes, then
// the fallback reason and the planner's notes.
std::string placement_text(const engine::Offload& off, const std::string& indent);

// {"backend", "summary", "fallback", "notes", "cpu":{...}, "devices":[{...}]}
nlohmann::json placement_json(const engine::Offload& off);

}  // namespace shimmy::cli
