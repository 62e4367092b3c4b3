// rdmashare-macvlan: the plugin logic behind the binary (main.cc is only env/stdin/stdout).
//
// MacvlanPlugin runs one CNI request: ADD puts a macvlan of the rail NIC into the pod netns
// (created there under a temporary name, renamed to CNI_IFNAME), addresses it from IPAM
// (in-process rdmashare-ipam, else exec delegation through CNI_PATH), probes for conflicts and the
// gateway, and installs policy routing; every step pushes an undo that a failure unwinds. DEL,
// CHECK, STATUS, GC and VERSION follow the CNI spec (see issue 3 and ARCHITECTURE.md).
//
// The plugin switches the CALLING thread into the pod's namespace for the pod-side steps and
// always restores it; distinct threads may run distinct requests concurrently (tests do). It holds
// no state between calls besides the injected HostPaths.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "cni/protocol/request.h"
#include "common/host_paths.h"

namespace rdmashare::cni::macvlan {

// Work a request leaves for after its reply (see MacvlanConfig::defer_link_delete); empty when
// there is none.
using DeferredWork = std::function<void()>;

class MacvlanPlugin {
 public:
  // Uses paths.sys_root (unless the config sets sysfsRoot) and paths.proc_root (sysctls).
  explicit MacvlanPlugin(HostPaths paths) : paths_(std::move(paths)) {}

  // Runs `request`. Success: what to print on stdout (a result for ADD, the version info for
  // VERSION, empty otherwise). Failure: a status whose CniCode/CniDetails make the error JSON.
  absl::StatusOr<std::string> Run(const CniRequest& request);

  // What Run left to do after the reply has been written (DEL's deferred link deletion); the
  // caller runs it, e.g. in a child process once stdout is closed. Empty when nothing is left.
  std::function<void()> TakeDeferred() { return std::exchange(deferred_, nullptr); }

 private:
  HostPaths paths_;
  DeferredWork deferred_;
};

// What `main` prints and returns.
struct PluginOutput {
  std::string stdout_data;
  int exit_code = 0;
  // Not null when work remains after the reply (MacvlanPlugin::TakeDeferred); main runs it in a
  // detached child with stdio closed, so the runtime sees the plugin exit first.
  std::function<void()> after_reply;
};

// The whole invocation: parses the environment (only CNI_* variables are read) and stdin, runs
// the plugin, and encodes a failure as the spec's error JSON in the caller's cniVersion.
PluginOutput RunMacvlan(const std::map<std::string, std::string>& env, std::string stdin_data,
                        const HostPaths& paths);

}  // namespace rdmashare::cni::macvlan
