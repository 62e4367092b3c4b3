// ParseArgs, ParseIntFlag and CommandUsage (declared in flags.h).
#include "tools/cli/flags.h"

#include <algorithm>
#include <optional>

#include "fmt/format.h"

namespace rdmashare::cli {

absl::StatusOr<ParsedArgs> ParseArgs(const CommandSpec& command,
                                     const std::vector<FlagSpec>& shared_flags,
                                     const std::vector<std::string>& args) {
  ParsedArgs out;
  std::vector<FlagSpec> flags = command.flags;
  flags.insert(flags.end(), shared_flags.begin(), shared_flags.end());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      out.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec =
        std::find_if(flags.begin(), flags.end(), [&](const FlagSpec& f) { return f.name == name; });
    if (spec == flags.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: unknown flag --{} (see rdmashare {} --help)", command.name, name, command.name));
    }
    if (!spec->takes_value) {
      if (value) {
        return absl::InvalidArgumentError(
            fmt::format("{}: flag --{} takes no value", command.name, name));
      }
      out.bools.insert(name);
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: flag --{} needs a value", command.name, name));
      }
      value = args[++i];
    }
    out.values[name] = *value;
  }
  if (!out.help && out.positional.size() != command.positional &&
      !(command.positional_optional && out.positional.empty())) {
    return absl::InvalidArgumentError(
        command.positional == 0
            ? fmt::format("{}: unexpected argument \"{}\"", command.name, out.positional.front())
            : fmt::format("{}: expected {} argument(s) ({}), got {}", command.name,
                          command.positional, command.args, out.positional.size()));
  }
  return out;
}

absl::StatusOr<int> ParseIntValue(const std::string& flag, const std::string& text, int min,
                                  int max) {
  bool digits = !text.empty() && text.size() <= 9 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int v = digits ? std::stoi(text) : -1;
  if (!digits || v < min || v > max) {
    return absl::InvalidArgumentError(
        fmt::format("--{} \"{}\": want an integer {}-{}", flag, text, min, max));
  }
  return v;
}

absl::StatusOr<int> ParseIntFlag(const ParsedArgs& parsed, const std::string& name, int fallback,
                                 int min, int max) {
  auto it = parsed.values.find(name);
  if (it == parsed.values.end()) return fallback;
  return ParseIntValue(name, it->second, min, max);
}

std::string CommandUsage(const CommandSpec& command, const std::vector<FlagSpec>& shared_flags) {
  std::string s = fmt::format("usage: rdmashare {} [flags]{}\n\n{}\n\nflags:\n", command.name,
                              command.args.empty() ? "" : " " + command.args, command.summary);
  for (const std::vector<FlagSpec>* list : {&command.flags, &shared_flags}) {
    for (const FlagSpec& f : *list) {
      s += fmt::format("  --{:<26} {}\n", f.name + (f.takes_value ? " V" : ""), f.help);
    }
  }
  return s;
}

}  // namespace rdmashare::cli
