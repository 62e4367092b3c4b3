// Process-wide logging setup (spdlog): SetupLogging for the daemon and the CLI, SetupPluginLogging
// for the CNI plugins. Called from each `main`; the default logger is the one global the house
// style allows. Everything else just calls spdlog::info/warn/... with key=value fields.
//
// Not thread-safe against concurrent logging: call before other threads log.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace rdmashare {

// Installs a stderr logger with the given level ("trace", "debug", "info", "warn", "error",
// "off"). Unknown levels are InvalidArgument.
absl::Status SetupLogging(const std::string& level);

// Where and how much a CNI plugin logs (its network config's "logFile" and "logLevel").
struct PluginLogOptions {
  // "rdmashare-ipam": the logger's name, in every line ("rdmashare-ipam[<pid>]") and in the
  // fallback message.
  std::string program;
  // Log file, appended to; empty = stderr.
  std::string file;
  // spdlog level names ("trace" ... "off"; an unknown name is "off") of the file log and of the
  // stderr log.
  std::string file_level = "info";
  std::string stderr_level = "warn";
};

// Installs a CNI plugin's default logger: `file` at `file_level`, else stderr at
// `stderr_level`; never stdout, which carries the plugin's answer. A file that cannot be opened
// gives one line on stderr ("<program>: cannot open logFile <file>: <why>; logging to stderr")
// and the stderr logger. Lines: "<time> <level> <program>[<pid>] <message>", flushed from info
// up. May be called again (a plugin first logs to stderr, then where its config says).
void SetupPluginLogging(const PluginLogOptions& options);

}  // namespace rdmashare
