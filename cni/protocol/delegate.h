// Exec delegation of another CNI plugin (an IPAM plugin other than rdmashare-ipam), as the spec
// describes: the plugin binary is looked up by `type` in the CNI_PATH directories, executed with
// fork/exec (no shell) with the same CNI_* variables as our own invocation (CNI_COMMAND may be
// overridden) and the network configuration on stdin; its stdout is the result, and an error
// JSON on its stdout becomes a CniError with the plugin's code, msg and details.
//
// Stateless functions; thread-safe (each call forks its own child and reaps it).
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/protocol/request.h"
#include "cni/protocol/result.h"

namespace rdmashare::cni {

// Finds executable `type` in the ':'-separated `cni_path`. `type` must be a plain file name (no
// '/', not "." or ".."): code 7. Not found in any directory: code 7 naming type and path.
absl::StatusOr<std::string> FindPlugin(const std::string& type, const std::string& cni_path);

// Output of one plugin execution.
struct ExecOutput {
  int exit_code = 0;
  std::string stdout_data;
};

// Runs `binary` (common/subprocess.h) with exactly `env` as its environment and `stdin_data` on
// stdin; its stderr is inherited (goes to our log). Kills it and returns code 11 after
// `timeout`. fork/exec failures (a message naming the binary) and more than 16 MiB on stdout are
// code 5.
absl::StatusOr<ExecOutput> ExecPlugin(const std::string& binary,
                                      const std::map<std::string, std::string>& env,
                                      const std::string& stdin_data,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The CNI_* environment of `request` with CNI_COMMAND replaced by `command` (empty variables
// are left out).
std::map<std::string, std::string> DelegateEnv(const CniRequest& request,
                                               const std::string& command);

// Runs the plugin `type` for `command` with `netconf_json` on stdin. Success: the plugin's
// stdout (may be empty for DEL/CHECK/GC/STATUS). Failure: the plugin's error JSON as a CniError
// (code/msg/details kept; a missing code becomes 5), or code 5 when it failed without a
// decodable error.
absl::StatusOr<std::string> DelegateCommand(const std::string& type, const std::string& command,
                                            const CniRequest& request,
                                            const std::string& netconf_json);

// ADD through delegation, parsing the plugin's result (code 6 if it is not a result object).
absl::StatusOr<Result> DelegateAdd(const std::string& type, const CniRequest& request,
                                   const std::string& netconf_json);

// DEL through delegation.
absl::Status DelegateDel(const std::string& type, const CniRequest& request,
                         const std::string& netconf_json);

// CHECK through delegation.
absl::Status DelegateCheck(const std::string& type, const CniRequest& request,
                           const std::string& netconf_json);

}  // namespace rdmashare::cni
