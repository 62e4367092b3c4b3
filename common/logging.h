// Process-wide logging setup (spdlog). Called once from each `main`; this is the one global the
// house style allows. Everything else just calls spdlog::info/warn/... with key=value fields.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace rdmashare {

// Installs a stderr logger with the given level ("trace", "debug", "info", "warn", "error",
// "off"). Unknown levels are InvalidArgument.
absl::Status SetupLogging(const std::string& level);

}  // namespace rdmashare
