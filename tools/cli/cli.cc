// RunCli: the dispatcher of the `rdmashare` commands (declared in cli.h): the command table,
// --version, the top-level usage and each command's --help. Every command's flags and glue live
// in that command's file.
#include "tools/cli/cli.h"

#include <algorithm>

#include "fmt/format.h"
#include "tools/cli/command.h"
#include "tools/cli/flags.h"
#include "tools/cli/pool.h"

namespace rdmashare::cli {
namespace {

// In the order of the top-level usage.
const std::vector<const Command*>& Commands() {
  static const std::vector<const Command*> kCommands = {
      &DoctorCommand(), &DevicesCommand(), &RailsCommand(),
      &GidCommand(),    &CaptureCommand(), &PoolCommand(),
  };
  return kCommands;
}

std::string TopUsage() {
  std::string s =
      "usage: rdmashare <command> [flags]\n"
      "       rdmashare --version | --help | <command> --help\n\ncommands:\n";
  for (const Command* c : Commands()) {
    s += fmt::format("  {:<8} {}\n", c->spec.name, c->spec.summary);
  }
  s += "\nflags of every command:\n";
  for (const FlagSpec& f : RootFlags()) s += fmt::format("  --{:<13} {}\n", f.name, f.help);
  return s;
}

}  // namespace

std::string Version() { return RDMASHARE_VERSION; }

int RunCli(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
           std::ostream& err) {
  if (args.empty()) {
    err << TopUsage();
    return kExitUsage;
  }
  const std::string& first = args.front();
  if (first == "--help" || first == "-h" || first == "help") {
    out << TopUsage();
    return kExitOk;
  }
  if (first == "--version" || first == "version") {
    out << "rdmashare " << Version() << "\n";
    return kExitOk;
  }
  auto cmd = std::find_if(Commands().begin(), Commands().end(),
                          [&](const Command* c) { return c->spec.name == first; });
  if (cmd == Commands().end()) {
    err << fmt::format("rdmashare: unknown command \"{}\"\n\n", first) << TopUsage();
    return kExitUsage;
  }
  const Command& command = **cmd;
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(command.spec, RootFlags(), std::vector<std::string>(args.begin() + 1, args.end()));
  if (!parsed.ok()) return Fail(err, command.spec.name, parsed.status(), kExitUsage);
  if (parsed->help) {
    out << CommandUsage(command.spec, RootFlags());
    return kExitOk;
  }
  return command.run(*parsed, env, out, err);
}

}  // namespace rdmashare::cli
