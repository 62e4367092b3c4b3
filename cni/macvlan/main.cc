// rdmashare-macvlan: CNI plugin binary. Reads the CNI_* environment and stdin, prints the result
// or error JSON on stdout (nothing else), logs to stderr or the config's "logFile".
#include <fcntl.h>
#include <unistd.h>

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
#include "nlohmann/json.hpp"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace {

// Logging goes to stderr (warnings and up) or to "logFile" at "logLevel" (default info).
void SetupPluginLogging(const std::string& stdin_data) {
  std::string file, level = "info";
  absl::StatusOr<nlohmann::json> parsed = rdmashare::cni::ParseCniJson(stdin_data, "stdin");
  nlohmann::json j = parsed.ok() ? *std::move(parsed) : nlohmann::json();
  if (j.is_object()) {
    if (auto it = j.find("logFile"); it != j.end() && it->is_string()) file = *it;
    if (auto it = j.find("logLevel"); it != j.end() && it->is_string()) level = *it;
  }
  std::shared_ptr<spdlog::logger> logger;
  if (!file.empty()) {
    try {
      logger = spdlog::basic_logger_mt("rdmashare-macvlan", file);
      logger->set_level(spdlog::level::from_str(level));
    } catch (const std::exception& e) {
      std::cerr << "rdmashare-macvlan: cannot open log file " << file << ": " << e.what() << "\n";
    }
  }
  if (!logger) {
    logger = spdlog::stderr_logger_mt("rdmashare-macvlan");
    logger->set_level(spdlog::level::warn);
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Runs `work` (DEL's deferred link deletion) in a detached child whose stdio is /dev/null, so
// the runtime, which waits for our exit and for EOF on our stdout, is answered now. Without a
// child (fork failed) the work runs here, before exit: slower, never lost.
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
  std::string usage = rdmashare::cni::PluginUsage(
      std::vector<std::string>(argv + 1, argv + argc), "rdmashare-macvlan",
      "a macvlan of the rail NIC in the pod, with per-interface policy routing and gateway and "
      "IP-conflict probes");
  if (!usage.empty()) {
    std::cout << usage;
    return 0;
  }
  try {
    absl::StatusOr<std::string> input = rdmashare::cni::ReadStdin(std::cin);
    if (!input.ok()) {
      std::cout << rdmashare::cni::EncodeError(input.status(), rdmashare::cni::kLatestVersion)
                << std::endl;
      return 1;
    }
    std::string stdin_data = *std::move(input);
    SetupPluginLogging(stdin_data);
    rdmashare::HostPaths paths;
    auto out = rdmashare::cni::macvlan::RunMacvlan(rdmashare::cni::EnvironToMap(environ),
                                                   std::move(stdin_data), paths);
    std::cout << out.stdout_data;
    std::cout.flush();
    if (out.after_reply) RunAfterReply(out.after_reply);
    return out.exit_code;
  } catch (const std::exception& e) {
    nlohmann::json err = {{"cniVersion", "1.1.0"},
                          {"code", 5},
                          {"msg", "rdmashare-macvlan: internal error"},
                          {"details", e.what()}};
    std::cout << err.dump();
    return 1;
  }
}
