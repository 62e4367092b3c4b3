// Flag parsing of the `rdmashare` commands: a command declares its flags (FlagSpec) and
// positional arguments (CommandSpec); ParseArgs checks an argument list against that
// declaration plus the flags every command shares, and CommandUsage prints it.
//
// Accepted syntax: `--name value`, `--name=value` (the value may be empty), `--flag` for flags
// without a value, `-h`/`--help`; anything not starting with "--" is positional. The last
// occurrence of a repeated flag wins. Values are not interpreted here, except by ParseIntFlag.
//
// Why not CLI11 (Debian's libcli11-dev 2.1.2): it rejects `--namespace=` (an empty value, which
// `rails` documents), reads integers "010" as 8 and "0x10" as 16, refuses a repeated option,
// reports an unknown flag and an extra argument with the same error, and drives --help and every
// error through exceptions; matching the messages and exit codes of this CLI would need a
// translation layer as large as this parser.
//
// Stateless functions and plain data; thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdmashare::cli {

// One `--name` flag of a command.
struct FlagSpec {
  // Without the leading "--".
  std::string name;
  // `--name V` / `--name=V` (true) or a bare switch (false).
  bool takes_value = false;
  std::string help;
};

// A command's name, help and arguments.
struct CommandSpec {
  std::string name;
  // Positional arguments for the usage line ("DIR", "[list|release]").
  std::string args;
  // One line for the command list and the command's --help.
  std::string summary;
  std::vector<FlagSpec> flags;
  // Exact number of positional arguments...
  size_t positional = 0;
  // ...or none at all when this is set.
  bool positional_optional = false;
};

// An argument list parsed against a CommandSpec.
struct ParsedArgs {
  // Flags with a value, by name (without "--").
  std::map<std::string, std::string> values;
  // Switches given.
  std::set<std::string> bools;
  std::vector<std::string> positional;
  // -h or --help was given (positional arguments are then not checked).
  bool help = false;

  // The value of `name`, or `fallback` when the flag was not given.
  std::string Get(const std::string& name, const std::string& fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  // True when flag `name` was given (with a value or as a switch).
  bool Has(const std::string& name) const {
    return values.count(name) > 0 || bools.count(name) > 0;
  }
};

// Parses `args` (the words after the command name) against `command`'s flags and
// `shared_flags`. InvalidArgument, prefixed with the command name, for an unknown flag, a
// missing or unexpected value, or the wrong number of positional arguments.
absl::StatusOr<ParsedArgs> ParseArgs(const CommandSpec& command,
                                     const std::vector<FlagSpec>& shared_flags,
                                     const std::vector<std::string>& args);

// `text` as an integer in [min, max]: decimal digits only (no sign, no spaces, at most 9
// digits). InvalidArgument "--<flag> "<text>": want an integer <min>-<max>" otherwise.
absl::StatusOr<int> ParseIntValue(const std::string& flag, const std::string& text, int min,
                                  int max);

// The value of flag `name` in `parsed` by ParseIntValue, or `fallback` when it was not given.
absl::StatusOr<int> ParseIntFlag(const ParsedArgs& parsed, const std::string& name, int fallback,
                                 int min, int max);

// `rdmashare <command> --help`: usage line, summary, the command's flags then `shared_flags`.
std::string CommandUsage(const CommandSpec& command, const std::vector<FlagSpec>& shared_flags);

}  // namespace rdmashare::cli
