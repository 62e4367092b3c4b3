// Daemon: the rdmashare-dp process minus flag parsing.
//
// Owns the resource pools and their gRPC servers, scans devices, registers with kubelet and
// keeps the registration alive across kubelet restarts. Threading: Start() and Run() are called
// from one thread (the event loop); Stop() may be called from any thread (e.g. a signal
// handler thread) and makes Run() return. gRPC runs its own threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/host_paths.h"
#include "common/unique_fd.h"
#include "deviceplugin/config.h"
#include "deviceplugin/plugin_server.h"
#include "deviceplugin/resource_pool.h"
#include "rdma/device_scanner.h"

namespace rdmashare::deviceplugin {

struct DaemonOptions {
  HostPaths paths;
  PluginConfig config;
  // Host path of the rdmashare CLI for resources with mountCli.
  std::string cli_host_path = "/opt/cni/bin/rdmashare";
  // Registration retry backoff while kubelet is absent or not answering.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  // Deadline of one Register call.
  std::chrono::milliseconds register_timeout{3000};
};

class Daemon {
 public:
  Daemon(DaemonOptions options, std::unique_ptr<rdma::DeviceScanner> scanner);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Scans, creates pools and starts their servers, sets up the kubelet watches and attempts the
  // first registration. Errors only for what cannot heal by waiting (bad directories, failed
  // scan, sockets that cannot be created).
  absl::Status Start();
  // Event loop: kubelet socket events, registration retries, periodic rescans. Returns after
  // Stop(); then every server is stopped and our sockets are removed.
  void Run();
  // Thread-safe; wakes Run().
  void Stop();

  // True in plugin-watcher mode (<kubelet-dir>/plugins_registry existed at Start).
  bool watcher_mode() const { return watcher_mode_; }
  const std::vector<std::unique_ptr<ResourcePool>>& pools() const { return pools_; }

  // Rescans and updates every pool; returns how many pools published a new snapshot.
  absl::StatusOr<int> Rescan();

 private:
  struct Entry {
    ResourcePool* pool;
    std::unique_ptr<PluginServer> server;
    // Inode of kubelet.sock we last registered against (device-plugins mode); 0 = not
    // registered.
    ino_t registered_kubelet_ino = 0;
  };

  absl::Status SetUpWatches();
  void DrainInotify();
  // Restarts servers whose socket vanished (or was rejected) and registers what needs it.
  // Returns false when some registration must be retried later.
  bool Reconcile();
  void Wake();

  DaemonOptions options_;
  std::unique_ptr<rdma::DeviceScanner> scanner_;
  std::string device_plugins_dir_;
  std::string registry_dir_;
  std::string kubelet_socket_;
  bool watcher_mode_ = false;
  std::vector<std::unique_ptr<ResourcePool>> pools_;
  std::vector<Entry> entries_;
  UniqueFd inotify_fd_;
  UniqueFd wake_fd_;
  std::atomic<bool> stop_{false};
};

}  // namespace rdmashare::deviceplugin
