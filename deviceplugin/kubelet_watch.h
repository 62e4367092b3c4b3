// KubeletWatch: what the daemon knows of kubelet's side of the node. It watches
// <kubelet-dir>/device-plugins/ (and plugins_registry/ in plugin-watcher mode) with inotify, so
// sockets appearing or vanishing wake the event loop, recreates device-plugins/ when it was
// removed, and tells a kubelet restart apart by the identity of device-plugins/kubelet.sock
// (inode plus change time: a re-created socket often gets the freed inode number back). While
// kubelet.sock is missing it says so (once, then every kKubeletWaitLogInterval), so an operator
// sees what the daemon waits for.
//
// Ownership: owns its inotify descriptor (O_CLOEXEC). Threading: the daemon's event loop only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/unique_fd.h"

namespace rdmashare::deviceplugin {

// Identity of a socket file (inode, change time in ns); {0, 0} when absent.
using SocketIdentity = std::pair<ino_t, int64_t>;

// The identity of the file at `path`.
SocketIdentity IdentityOf(const std::string& path);

// How often "waiting for kubelet" is repeated while kubelet.sock stays missing.
inline constexpr std::chrono::minutes kKubeletWaitLogInterval{5};

class KubeletWatch {
 public:
  explicit KubeletWatch(const std::string& kubelet_dir);

  // <kubelet-dir>/device-plugins, <kubelet-dir>/plugins_registry and device-plugins/kubelet.sock.
  const std::string& device_plugins_dir() const { return device_plugins_dir_; }
  const std::string& registry_dir() const { return registry_dir_; }
  const std::string& kubelet_socket() const { return kubelet_socket_; }

  // (Re)creates the inotify watch of device-plugins/ and, with `watch_registry`,
  // plugins_registry/ (sockets created, deleted, moved; the directory removed).
  absl::Status SetUp(bool watch_registry);
  // The inotify descriptor to poll for POLLIN (-1 before SetUp).
  int fd() const { return inotify_fd_.get(); }
  // Reads and logs (debug) the pending events.
  void Drain();

  // Recreates device-plugins/ and re-watches when kubelet (or an operator) removed it.
  void RecreateDirIfGone(bool watch_registry);

  // The identity of kubelet.sock now. Sets *restarted when it replaced one seen before (logged).
  SocketIdentity Observe(bool* restarted);

  // Logs that the daemon waits for kubelet.sock (when `waiting`: device-plugins mode and no
  // socket; once, then every kKubeletWaitLogInterval) or that it appeared.
  void LogWaiting(bool waiting, SocketIdentity kubelet, size_t resources);

 private:
  std::string device_plugins_dir_;
  std::string registry_dir_;
  std::string kubelet_socket_;
  UniqueFd inotify_fd_;
  // Identity of the kubelet.sock seen last ({0, 0}: none yet), to count kubelet restarts.
  SocketIdentity last_kubelet_{0, 0};
  // While kubelet.sock is missing (device-plugins mode): when we last said so.
  std::optional<std::chrono::steady_clock::time_point> wait_logged_;
};

}  // namespace rdmashare::deviceplugin
