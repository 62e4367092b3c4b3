#include "cni/protocol/delegate.h"

#include <sys/stat.h>
#include <unistd.h>

#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/subprocess.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {
namespace {

// A plugin's answer is one JSON document; more than this is not one.
constexpr size_t kMaxPluginOutput = 16 << 20;

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

absl::StatusOr<std::string> FindPlugin(const std::string& type, const std::string& cni_path) {
  if (type.empty() || type == "." || type == ".." || type.find('/') != std::string::npos) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("plugin type '{}' is not a plain file name", type));
  }
  CniRequest dirs_holder;
  dirs_holder.path = cni_path;
  for (const std::string& dir : dirs_holder.PathDirs()) {
    std::string candidate = JoinPath(dir, type);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return CniError(kInvalidNetworkConfig,
                  fmt::format("plugin '{}' not found in CNI_PATH '{}'", type, cni_path));
}

absl::StatusOr<ExecOutput> ExecPlugin(const std::string& binary,
                                      const std::map<std::string, std::string>& env,
                                      const std::string& stdin_data,
                                      std::chrono::milliseconds timeout) {
  SubprocessOptions options;
  options.argv = {binary};
  options.env = env;
  options.stdin_data = stdin_data;
  options.capture_stderr = false;
  options.max_output_bytes = kMaxPluginOutput;
  options.timeout = timeout;
  absl::StatusOr<SubprocessResult> run = RunSubprocess(options);
  if (!run.ok()) {
    return CniError(kIoFailure, std::string(run.status().message()));
  }
  if (run->timed_out) {
    return CniError(kTryAgainLater,
                    fmt::format("plugin {} did not finish within {} ms", binary, timeout.count()));
  }
  if (run->stdout_truncated) {
    return CniError(kIoFailure, fmt::format("plugin {} wrote more than {} bytes on stdout", binary,
                                            kMaxPluginOutput));
  }
  ExecOutput out;
  out.exit_code = run->exit_code;
  out.stdout_data = std::move(run->stdout_data);
  return out;
}

std::map<std::string, std::string> DelegateEnv(const CniRequest& request,
                                               const std::string& command) {
  std::map<std::string, std::string> env;
  auto put = [&env](const char* key, const std::string& value) {
    if (!value.empty()) env[key] = value;
  };
  put("CNI_COMMAND", command);
  put("CNI_CONTAINERID", request.container_id);
  put("CNI_NETNS", request.netns);
  put("CNI_IFNAME", request.ifname);
  put("CNI_ARGS", request.args);
  put("CNI_PATH", request.path);
  return env;
}

absl::StatusOr<std::string> DelegateCommand(const std::string& type, const std::string& command,
                                            const CniRequest& request,
                                            const std::string& netconf_json) {
  ASSIGN_OR_RETURN(std::string binary, FindPlugin(type, request.path));
  ASSIGN_OR_RETURN(ExecOutput out, ExecPlugin(binary, DelegateEnv(request, command), netconf_json));
  if (out.exit_code == 0) return out.stdout_data;
  absl::StatusOr<nlohmann::json> parsed = ParseCniJson(out.stdout_data, type + " output");
  nlohmann::json err = parsed.ok() ? *std::move(parsed) : nlohmann::json();
  if (err.is_object() && err.contains("msg") && err["msg"].is_string()) {
    int code = kIoFailure;
    if (err.contains("code") && err["code"].is_number_integer() && err["code"].get<int>() > 0) {
      code = err["code"].get<int>();
    }
    std::string details;
    if (err.contains("details") && err["details"].is_string()) details = err["details"];
    return CniError(code, fmt::format("{} {}: {}", type, command, err["msg"].get<std::string>()),
                    details);
  }
  return CniError(kIoFailure,
                  fmt::format("{} {} exited with status {} without an error object on stdout", type,
                              command, out.exit_code),
                  out.stdout_data.substr(0, 512));
}

absl::StatusOr<Result> DelegateAdd(const std::string& type, const CniRequest& request,
                                   const std::string& netconf_json) {
  ASSIGN_OR_RETURN(std::string out, DelegateCommand(type, kCmdAdd, request, netconf_json));
  absl::StatusOr<nlohmann::json> parsed = ParseCniJson(out, type + " ADD output");
  if (!parsed.ok()) return CniError(kDecodeFailure, std::string(parsed.status().message()));
  nlohmann::json doc = *std::move(parsed);
  if (!doc.is_object()) {
    return CniError(kDecodeFailure, fmt::format("{} ADD: output is not a JSON result object", type),
                    out.substr(0, 512));
  }
  auto result = ParseResult(doc);
  if (!result.ok()) {
    return CniError(kDecodeFailure, fmt::format("{} ADD: output is not a valid result: {}", type,
                                                result.status().message()));
  }
  return result;
}

absl::Status DelegateDel(const std::string& type, const CniRequest& request,
                         const std::string& netconf_json) {
  return DelegateCommand(type, kCmdDel, request, netconf_json).status();
}

absl::Status DelegateCheck(const std::string& type, const CniRequest& request,
                           const std::string& netconf_json) {
  return DelegateCommand(type, kCmdCheck, request, netconf_json).status();
}

}  // namespace rdmashare::cni
