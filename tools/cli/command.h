// What every `rdmashare` command shares: the Command record the dispatcher (cli.cc) lists, the
// flags that point a command at another host tree (--sysfs-root, --dev-root, --proc-root,
// --kubelet-dir), and how a command reports a failure.
//
// Each command's file (doctor.cc, devices.cc, ...) defines its Command: flags, help and the
// glue that turns parsed flags into a call of the command's logic and its output.
//
// Stateless functions and immutable records; thread-safe.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/host_paths.h"
#include "tools/cli/flags.h"

namespace rdmashare::cli {

struct Environment;  // tools/cli/cli.h

// Runs a command whose arguments parsed cleanly (help already handled); returns the exit code.
using CommandMain = int (*)(const ParsedArgs& args, const Environment& env, std::ostream& out,
                            std::ostream& err);

// One command of the CLI.
struct Command {
  CommandSpec spec;
  CommandMain run = nullptr;
};

// The host-root flags every command accepts.
const std::vector<FlagSpec>& RootFlags();

// `paths` with the host-root flags of `args` applied (--dev-root sets dev_root and host_dev_root).
HostPaths PathsFor(const ParsedArgs& args, HostPaths paths);

// Writes "rdmashare <command>: <message>" to `err` and returns `code`.
int Fail(std::ostream& err, const std::string& command, const absl::Status& status, int code);

}  // namespace rdmashare::cli
