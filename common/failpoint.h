// Failpoints: named steps where a test can make the process die, to prove that what a crash
// leaves behind converges (CNI DEL/GC after a plugin killed mid-ADD, a store killed mid-write).
//
//   RDMASHARE_FAILPOINT=<name>[,<name>...]   each entry optionally "<name>=<action>":
//     kill  (default) the process sends itself SIGKILL: no destructor, no undo, no flush,
//                     exactly like the OOM killer or a node-level kill;
//     exit            _exit(kFailpointExitCode): no destructors either, but a clean exit status;
//     abort           std::abort() (SIGABRT).
//
// Failpoints are honoured only in binaries compiled with the definition RDMASHARE_FAILPOINTS
// (CMake option of the same name, ON for the test builds, OFF for release images). Without it
// RDMASHARE_FAILPOINT() compiles to nothing and the environment variable is never read.
// Stateless (reads the environment at each hit); thread-safe as long as nobody calls setenv
// concurrently.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace rdmashare {

// Name of the environment variable listing the armed failpoints.
inline constexpr char kFailpointEnv[] = "RDMASHARE_FAILPOINT";
// Exit status of the "exit" action.
inline constexpr int kFailpointExitCode = 86;

// What an armed failpoint does.
enum class FailpointAction { kNone, kKill, kExit, kAbort };

// Looks `name` up in a RDMASHARE_FAILPOINT value (`spec`, may be null). kNone when not listed
// (or when its action is unknown: a typo must not silently turn into a different fault).
inline FailpointAction FailpointActionFor(const char* spec, std::string_view name) {
  if (spec == nullptr || name.empty()) return FailpointAction::kNone;
  std::string_view rest(spec);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    size_t eq = entry.find('=');
    std::string_view entry_name = entry.substr(0, eq);
    if (entry_name != name) continue;
    std::string_view action = eq == std::string_view::npos ? "kill" : entry.substr(eq + 1);
    if (action == "kill") return FailpointAction::kKill;
    if (action == "exit") return FailpointAction::kExit;
    if (action == "abort") return FailpointAction::kAbort;
    return FailpointAction::kNone;
  }
  return FailpointAction::kNone;
}

// Performs `action` (returns only for kNone).
inline void RunFailpointAction(FailpointAction action) {
  switch (action) {
    case FailpointAction::kNone:
      return;
    case FailpointAction::kKill:
      ::kill(::getpid(), SIGKILL);
      ::_exit(kFailpointExitCode);  // not reached: SIGKILL cannot be blocked
    case FailpointAction::kExit:
      ::_exit(kFailpointExitCode);
    case FailpointAction::kAbort:
      std::abort();
  }
}

// True when this binary acts on RDMASHARE_FAILPOINT.
inline constexpr bool FailpointsCompiledIn() {
#ifdef RDMASHARE_FAILPOINTS
  return true;
#else
  return false;
#endif
}

// The failpoint `name`: dies as configured when armed, otherwise returns at once.
inline void Failpoint(std::string_view name) {
  if constexpr (FailpointsCompiledIn()) {
    RunFailpointAction(FailpointActionFor(std::getenv(kFailpointEnv), name));
  }
}

}  // namespace rdmashare

// RDMASHARE_FAILPOINT("macvlan.add.after_ipam"): a failpoint at this step.
#define RDMASHARE_FAILPOINT(name) ::rdmashare::Failpoint(name)
