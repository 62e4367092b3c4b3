// rdmashare-macvlan: CNI plugin binary. Reads the CNI_* environment and stdin, prints the result
// or error JSON on stdout (nothing else), logs to stderr or the config's "logFile".
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cni/macvlan/plugin.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/request.h"
#include "common/failpoint.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace {

// Logging goes to stderr (warnings and up) or to "logFile" at "logLevel" (default info).
void SetupMacvlanLogging(const std::string& stdin_data) {
  rdmashare::PluginLogOptions options;
  options.program = "rdmashare-macvlan";
  absl::StatusOr<nlohmann::json> parsed = rdmashare::cni::ParseCniJson(stdin_data, "stdin");
  nlohmann::json j = parsed.ok() ? *std::move(parsed) : nlohmann::json();
  if (j.is_object()) {
    if (auto it = j.find("logFile"); it != j.end() && it->is_string()) options.file = *it;
    if (auto it = j.find("logLevel"); it != j.end() && it->is_string()) options.file_level = *it;
  }
  rdmashare::SetupPluginLogging(options);
}

// Runs `work` (DEL's deferred link deletion) in a detached child whose stdio is /dev/null, so
// the runtime, which waits for our exit and for EOF on our stdout, is answered now. Without a
// child (fork failed) the work runs here, before exit: slower, never lost.
// Not common/subprocess.h: nothing is exec'd. The child goes on running this program's own
// closure after fork (netlink, logging), which is safe only because the plugin is
// single-threaded; the exec helper's child makes async-signal-safe calls only.
void RunAfterReply(const std::function<void()>& work) {
  pid_t pid = ::fork();
  if (pid < 0) {
    work();
    return;
  }
  if (pid > 0) return;
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
  }
  ::setsid();
  // Tests kill the child here to prove the deletion really happens after the answer.
  RDMASHARE_FAILPOINT("macvlan.del.deferred");
  work();
  spdlog::shutdown();
  ::_exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string usage = rdmashare::cni::PluginUsage(
        std::vector<std::string>(argv + 1, argv + argc), "rdmashare-macvlan",
        "a macvlan of the rail NIC in the pod, with per-interface policy routing and gateway and "
        "IP-conflict probes");
    if (!usage.empty()) {
      std::cout << usage;
      return 0;
    }
    absl::StatusOr<std::string> input = rdmashare::cni::ReadStdin(std::cin);
    if (!input.ok()) {
      std::cout << rdmashare::cni::EncodeError(input.status(), rdmashare::cni::kLatestVersion)
                << std::endl;
      return 1;
    }
    std::string stdin_data = *std::move(input);
    SetupMacvlanLogging(stdin_data);
    rdmashare::HostPaths paths;
    auto out = rdmashare::cni::macvlan::RunMacvlan(rdmashare::cni::EnvironToMap(environ),
                                                   std::move(stdin_data), paths);
    std::cout << out.stdout_data;
    std::cout.flush();
    if (out.after_reply) RunAfterReply(out.after_reply);
    return out.exit_code;
  } catch (const std::exception& e) {
    try {
      nlohmann::json err = {{"cniVersion", "1.1.0"},
                            {"code", 5},
                            {"msg", "rdmashare-macvlan: internal error"},
                            {"details", e.what()}};
      std::cout << err.dump();
    } catch (...) {
      std::fputs("rdmashare-macvlan: internal error (out of memory)\n", stderr);
    }
    return 1;
  } catch (...) {
    std::fputs("rdmashare-macvlan: internal error\n", stderr);
    return 1;
  }
}
