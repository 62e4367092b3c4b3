// Daemon: the rdmashare-dp process minus flag parsing; the orchestrator of the event loop.
//
// Owns the resource pools and their gRPC servers, scans devices, registers with kubelet and
// keeps the registration alive across kubelet restarts. The parts live in their own units:
// kubelet_watch.h (kubelet's directories and kubelet.sock restarts), config_watch.h (the config
// file's directory, reading and diffing a new config), registration.h (plugin-watcher mode vs
// Register on kubelet.sock), daemon_metrics.h (the metrics observer) and gid_room_check.h (GID
// table room warnings). Device events (an EventSource) and the
// periodic resync trigger a reconcile: Scan -> every pool recomputes its snapshot (diffing by
// the devices' stable identity and state) -> changed pools publish a new snapshot, which wakes
// their ListAndWatch streams (each on its own gRPC thread, so a slow or absent reader never
// delays discovery) and rewrites their CDI spec. The config file's directory is watched: a valid
// new config is applied as a diff (new resources register, removed ones stop, unchanged ones
// keep their servers and streams); an invalid one is logged and the running config stays.
//
// Threading: Start() and Run() are called from one thread (the event loop); Stop() and Ready()
// may be called from any thread. gRPC runs its own threads.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/host_paths.h"
#include "common/unique_fd.h"
#include "deviceplugin/cdi.h"
#include "deviceplugin/config.h"
#include "deviceplugin/config_watch.h"
#include "deviceplugin/daemon_metrics.h"
#include "deviceplugin/gid_room_check.h"
#include "deviceplugin/kubelet_watch.h"
#include "deviceplugin/metrics_http.h"
#include "deviceplugin/plugin_server.h"
#include "deviceplugin/port_metrics.h"
#include "deviceplugin/resource_pool.h"
#include "rdma/device_events.h"
#include "rdma/device_scanner.h"

namespace rdmashare::deviceplugin {

struct DaemonOptions {
  HostPaths paths;
  PluginConfig config;
  // The config file; its directory is watched for changes (ConfigMap `..data` swaps included).
  // Empty = no reload.
  std::string config_path;
  // Host path of the rdmashare CLI for resources with mountCli.
  std::string cli_host_path = "/opt/cni/bin/rdmashare";
  // Write one CDI spec per resource into cdi_dir and answer Allocate with CDI device names.
  bool cdi = false;
  std::string cdi_dir = kCdiDefaultDir;
  // Where to export metrics; null = none. Must outlive the daemon.
  MetricsRegistry* metrics = nullptr;
  // Beaten on every event-loop iteration (for /healthz); null = none. The loop then wakes at
  // least every heartbeat_interval even when idle. Must outlive the daemon.
  Heartbeat* heartbeat = nullptr;
  std::chrono::milliseconds heartbeat_interval{10000};
  // Registration retry backoff while kubelet is absent or not answering.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{5000};
  // Deadline of one Register call.
  std::chrono::milliseconds register_timeout{3000};
  // Plugin-watcher mode (plugins_registry/ exists) but kubelet called GetInfo on none of our
  // sockets for this long while device-plugins/kubelet.sock exists: nobody watches the
  // directory (e.g. a DaemonSet created it with DirectoryOrCreate), so switch to Register on
  // kubelet.sock.
  std::chrono::milliseconds watcher_fallback_after{30000};
};

class Daemon {
 public:
  // `events` may be null (periodic resync only).
  Daemon(DaemonOptions options, std::unique_ptr<rdma::DeviceScanner> scanner,
         std::unique_ptr<rdma::EventSource> events = nullptr);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Scans, creates pools and starts their servers, writes CDI specs, sets up the kubelet and
  // config watches and attempts the first registration. Errors only for what cannot heal by
  // waiting (bad directories including the CDI spec directory, failed scan, sockets that cannot
  // be created). A resource whose CDI spec cannot be written (e.g. a directory or FIFO at its
  // path) is logged and not served; the others are, and Rescan() retries it.
  absl::Status Start();
  // Event loop: kubelet socket events, registration retries, device events, config changes,
  // periodic rescans. Returns after Stop(); then every server is stopped and our sockets are
  // removed.
  void Run();
  // Thread-safe; wakes Run().
  void Stop();

  // OK once every resource is served and registered with kubelet; Unavailable naming the first
  // resource that is not, and why when it is not served (for /readyz). Thread-safe.
  absl::Status Ready() const;

  // True in plugin-watcher mode (<kubelet-dir>/plugins_registry existed at Start).
  bool watcher_mode() const { return watcher_mode_; }

  // Rescans and updates every pool, and retries the resources not served (their CDI spec could
  // not be written); returns how many pools published a new snapshot or started. Event loop
  // thread only (or before Run).
  absl::StatusOr<int> Rescan();

  // Re-reads the config file and applies it as a diff. OK with nothing to do when its content
  // did not change; InvalidArgument (running config kept) when the new one is invalid. Event
  // loop thread only.
  absl::Status ReloadConfig();

 private:
  struct Entry {
    std::unique_ptr<ResourcePool> pool;
    std::unique_ptr<PluginServer> server;
    // Identity (inode, ctime) of kubelet.sock we last registered against (device-plugins
    // mode); {0, 0} = not registered.
    SocketIdentity registered_kubelet_ino{0, 0};
    // Registered now (device-plugins mode); read by Ready() from other threads.
    std::atomic<bool> registered{false};
  };
  // Every port of every HCA each resource selects (thread-safe: takes entries_mu_).
  std::vector<PortRef> PortRefs() const ABSL_LOCKS_EXCLUDED(entries_mu_);
  void HandleDeviceEvents();
  // Creates the pool and server of `rc` (pool updated from the last inventory), not started.
  // The plugin server of `e` in the directory of the current registration mode.
  std::unique_ptr<PluginServer> MakeServer(const Entry& e);
  // Plugin-watcher mode without a watcher: restart every server in device-plugins/ and register
  // on kubelet.sock from now on.
  void FallBackToDevicePluginsMode();
  std::unique_ptr<Entry> MakeEntry(const ResourceConfig& rc);
  // Stops and forgets one resource: server, socket, CDI spec, metric series.
  void RemoveEntry(Entry& e);
  void WriteCdi(const Entry& e);
  // Logs that `resource` is not served and why, and records it for Ready() and RetryUnserved().
  void MarkUnserved(const std::string& resource, const absl::Status& cause);
  // Tries again to write the CDI spec of and start each resource not served; true when one
  // started (it then needs registration).
  bool RetryUnserved();
  void PublishMetrics(const Entry& e);
  // Runs the GID room check over every resource's pool.
  void CheckGidRoom();
  // Registered now, in the current mode (plugin-watcher: kubelet called GetInfo).
  bool IsRegistered(const Entry& e) const;
  // Restarts servers whose socket vanished (or was rejected) and registers what needs it.
  // Returns false when some registration must be retried later.
  bool Reconcile();
  void Wake();

  DaemonOptions options_;
  std::unique_ptr<rdma::DeviceScanner> scanner_;
  std::unique_ptr<rdma::EventSource> events_;
  std::unique_ptr<CdiSpecWriter> cdi_;
  DaemonMetrics metrics_;
  KubeletWatch kubelet_;
  ConfigWatch config_watch_;
  GidRoomCheck gid_room_;
  // Read by Ready() on the HTTP thread; written by the loop (Start, the fallback switch).
  std::atomic<bool> watcher_mode_{false};
  std::chrono::steady_clock::time_point watcher_since_;
  rdma::NodeInventory inventory_;
  // The event loop adds/removes entries and stops/starts their servers under entries_mu_, so
  // Ready() on another thread sees whole entries and live servers; the loop itself reads
  // without it.
  mutable absl::Mutex entries_mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
  // Configured resources without a server (CDI spec not writable) -> the cause.
  std::map<std::string, std::string> unserved_ ABSL_GUARDED_BY(entries_mu_);
  UniqueFd wake_fd_;
  std::atomic<bool> stop_{false};
  // Set by ReloadConfig and Rescan: Run() must reconcile (new servers to register).
  bool reconcile_needed_ = false;
};

}  // namespace rdmashare::deviceplugin
