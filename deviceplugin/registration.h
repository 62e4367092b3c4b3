// Registration of the daemon's resources with kubelet, in one of two modes:
//  - plugin-watcher mode (<kubelet-dir>/plugins_registry exists): our sockets live there and
//    kubelet's plugin watcher finds them and calls GetInfo itself (PluginServer tracks that);
//    when it never does although device-plugins/kubelet.sock exists, nobody watches the
//    directory and the daemon falls back (WatcherFallbackDue);
//  - device-plugins mode: our sockets live in device-plugins/ and each resource calls
//    v1beta1.Registration/Register on kubelet.sock (RegisterAll), again after a kubelet restart.
//
// Plain functions; RegisterAll blocks (one thread per request, joined before it returns) and is
// thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace rdmashare::deviceplugin {

// One Register call: our socket's bare file name and the resource's full name.
struct RegistrationRequest {
  std::string endpoint;
  std::string resource;
};

// Registers every request concurrently over one channel to `kubelet_socket` (kubelet >= 1.26
// dials each plugin back before answering, so sequential calls would add up on a busy node),
// each within `timeout`. The status of each request, in order.
std::vector<absl::Status> RegisterAll(const std::string& kubelet_socket,
                                      const std::vector<RegistrationRequest>& requests,
                                      std::chrono::milliseconds timeout);

// True when plugin-watcher mode should give way to device-plugins mode: kubelet.sock exists
// (`kubelet_present`), the mode has lasted `fallback_after` since `watcher_since`, and kubelet
// called GetInfo on none of our sockets (`any_watcher_registered` false).
bool WatcherFallbackDue(bool kubelet_present, bool any_watcher_registered,
                        std::chrono::steady_clock::time_point watcher_since,
                        std::chrono::milliseconds fallback_after,
                        std::chrono::steady_clock::time_point now);

}  // namespace rdmashare::deviceplugin
