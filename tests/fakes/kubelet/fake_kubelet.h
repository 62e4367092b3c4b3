// FakeKubelet: the device-plugin side of a kubelet, for tests and the demo.
//
// It models what kubelet's device manager (pkg/kubelet/cm/devicemanager) and plugin manager
// (pkg/kubelet/pluginmanager) do towards a device plugin, over real gRPC on unix sockets:
//
//  * Start() creates <kubelet_dir>/device-plugins/, removes the stale plugin sockets in it (only
//    sockets: the checkpoint "kubelet_internal_checkpoint" and other files stay, as in kubelet's
//    CleanupPluginDirectory) and serves v1beta1.Registration on device-plugins/kubelet.sock.
//  * Register(): rejects an unsupported version (only "v1beta1") or a name that is not an
//    extended resource name, with kubelet's messages as a gRPC UNKNOWN error (kubelet returns
//    plain Go errors). Then it dials device-plugins/<endpoint> (blocking, 10 s), calls
//    GetDevicePluginOptions and only then answers the plugin (kubelet >= 1.26; the legacy
//    asynchronous dial-back of older kubelets is `synchronous_register = false`). A ListAndWatch
//    stream is kept open; every response replaces the resource's device list.
//  * Re-registration of a resource replaces its endpoint, options and stream (the old stream is
//    cancelled); the device list is kept until the new stream's first response.
//  * A stream that ends (plugin gone) marks every device of the resource Unhealthy (allocatable
//    drops to 0, capacity is kept: kubelet's markResourceUnhealthy before its 5-minute grace
//    period, which is not modelled) and sets stream_connected = false.
//  * Plugin-watcher mode additionally watches <kubelet_dir>/plugins_registry/ (and its
//    subdirectories) with inotify, for sockets present at start and created later (names
//    starting with '.' are ignored). For each: dial (10 s), pluginregistration.GetInfo (1 s),
//    accept type "DevicePlugin" with "v1beta1" among supported_versions and a valid resource
//    name, connect to PluginInfo.endpoint (absolute path; the registration socket itself when
//    empty) with the same flow as above, then NotifyRegistrationStatus(true) — or (false, error)
//    with kubelet's "RegisterPlugin error -- ..." messages. Removing the socket deregisters the
//    plugin (like a stream end). RejectNext() forces the next registration of a resource to
//    fail, so plugins can be tested on NotifyRegistrationStatus(false) / a failed Register.
//  * Every device update rewrites device-plugins/kubelet_internal_checkpoint (registered
//    resources with their healthy device IDs; same layout as kubelet's, checksum not computed).
//  * Stop() is kubelet dying: every stream cancelled, servers down, kubelet.sock removed.
//    Start() again is a kubelet restart: the resources named in the checkpoint reappear with no
//    devices and no endpoint (capacity 0) until their plugins register again; a FakeKubelet
//    started on a directory with a checkpoint does the same.
//  * Allocate / GetPreferredAllocation / PreStartContainer go to the resource's current endpoint
//    with a deadline, after the checks kubelet makes before calling (resource registered,
//    healthy devices present, plugin options allowing the call).
//
// Not modelled: the 5-minute grace period after which kubelet drops a dead resource, pod
// bookkeeping beyond AdmitContainer's device sets (kept in memory, not in the checkpoint), the
// checkpoint checksum, the watcher's exponential-backoff retry of failed validations, and the
// other plugin types of the plugin manager (CSI, DRA).
//
// Threading: every public method is thread-safe. Internally one gRPC server, one inotify thread
// (watcher mode) and one thread per plugin stream; no lock is held during any RPC. The destructor
// calls Stop() and joins every thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"

namespace rdmashare::testing {

struct FakeKubeletOptions {
  // Kubelet state directory: holds device-plugins/ and plugins_registry/.
  std::string kubelet_dir;
  // Also run kubelet's plugin watcher on plugins_registry/ (Registration on kubelet.sock is
  // served in both modes, as kubelet does).
  bool plugin_watcher = false;
  // true: Register answers only after the dial-back and GetDevicePluginOptions succeeded, and
  // fails when they fail (kubelet >= 1.26). false: Register answers at once and the dial-back
  // runs in the background (kubelet <= 1.25).
  bool synchronous_register = true;
  // How long a dial to a plugin socket may take (kubelet: 10 s).
  std::chrono::milliseconds dial_timeout = std::chrono::seconds(10);
  // Deadline of GetDevicePluginOptions, Allocate, GetPreferredAllocation, PreStartContainer and
  // of the watcher's GetInfo / NotifyRegistrationStatus calls.
  std::chrono::milliseconds rpc_timeout = std::chrono::seconds(10);
};

// One ListAndWatch response as kubelet received it (for exact-sequence assertions and latency
// measurements).
struct ListUpdate {
  std::chrono::steady_clock::time_point received;
  // Devices by health.
  int healthy = 0;
  int unhealthy = 0;
  // NUMA node ids of the first device's topology (empty when none).
  std::vector<int64_t> numa;

  // "100 healthy" / "100 unhealthy" / "0 devices" / "3 healthy 2 unhealthy".
  std::string Summary() const;
};

// What kubelet knows about one extended resource. Plain value.
struct ResourceState {
  // Absolute path of the socket of the plugin currently serving the resource ("" after a kubelet
  // restart until the plugin registers again).
  std::string endpoint;
  // Options returned by GetDevicePluginOptions on the current endpoint.
  v1beta1::DevicePluginOptions options;
  // The last device list (the full list of the last ListAndWatch response).
  std::vector<v1beta1::Device> devices;
  // ListAndWatch responses received for this resource, over all its endpoints.
  int list_updates = 0;
  // Every one of those responses, in order.
  std::vector<ListUpdate> history;
  // True while the current endpoint's ListAndWatch stream is open.
  bool stream_connected = false;

  // Healthy devices: the node's allocatable for the resource.
  int allocatable() const;
  // All devices, healthy or not: the node's capacity for the resource.
  int capacity() const;
};

// One container admitted by FakeKubelet::AdmitContainer.
struct ContainerAllocation {
  // The device IDs kubelet chose and allocated.
  std::vector<std::string> device_ids;
  // The plugin's answer for the container.
  v1beta1::ContainerAllocateResponse response;
};

class FakeKubelet {
 public:
  explicit FakeKubelet(FakeKubeletOptions options);
  ~FakeKubelet();
  FakeKubelet(const FakeKubelet&) = delete;
  FakeKubelet& operator=(const FakeKubelet&) = delete;

  // Starts like kubelet's device manager (see the file comment). FailedPrecondition when already
  // started; Internal when a directory, the inotify watch or the server cannot be set up.
  absl::Status Start();
  // Kubelet dies: streams cancelled, servers down, kubelet.sock removed. Idempotent.
  void Stop();
  // Stop() then Start(): plugins see their sockets deleted and kubelet.sock recreated.
  absl::Status Restart();

  // Path of device-plugins/kubelet.sock.
  std::string kubelet_socket() const;
  // Path of device-plugins/.
  std::string device_plugin_dir() const;
  // Path of plugins_registry/.
  std::string plugins_registry_dir() const;

  // Names of the resources kubelet knows (registered now or before a restart), sorted.
  std::vector<std::string> Resources() const;
  // State of one resource; nullopt when unknown.
  std::optional<ResourceState> Resource(const std::string& resource) const;
  // Waits until `cond(*this)` holds, re-evaluating it whenever the observed state changes.
  // Returns false after `timeout`. `cond` may call any const method of this object.
  bool WaitFor(const std::function<bool(const FakeKubelet&)>& cond,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // Allocate for a pod with one container per element of `ids_per_container` (kubelet sends one
  // container per call; several are allowed by the API). Before calling, checks like kubelet:
  // NotFound when the resource is not registered, FailedPrecondition when it has no healthy
  // device (e.g. its plugin is gone), InvalidArgument when an ID is not a healthy device of the
  // resource or repeats (kubelet never sends those). RPC errors come back with their gRPC code
  // and the plugin's message; a response whose container count differs from the request is
  // Internal.
  absl::StatusOr<v1beta1::AllocateResponse> Allocate(
      const std::string& resource, const std::vector<std::vector<std::string>>& ids_per_container);
  // GetPreferredAllocation for one container. FailedPrecondition when the plugin did not set
  // get_preferred_allocation_available (kubelet would not call it).
  absl::StatusOr<v1beta1::PreferredAllocationResponse> GetPreferredAllocation(
      const std::string& resource, const std::vector<std::string>& available,
      const std::vector<std::string>& must_include, int allocation_size);
  // PreStartContainer for one container. FailedPrecondition when the plugin did not set
  // pre_start_required (kubelet would not call it).
  absl::StatusOr<v1beta1::PreStartContainerResponse> PreStartContainer(
      const std::string& resource, const std::vector<std::string>& device_ids);

  // Admits a container that requests `count` units of `resource`, the way kubelet does at pod
  // admission and container start: it picks `count` healthy devices not allocated to another
  // container (the plugin's GetPreferredAllocation answer first when it offers one, then the
  // advertised order — kubelet's own order is Go map order), calls Allocate with them, then
  // PreStartContainer when the plugin requires it. The devices stay allocated until Release()
  // (also across Restart, as kubelet's checkpoint keeps them). InvalidArgument when count < 1,
  // NotFound / FailedPrecondition as Allocate, ResourceExhausted when fewer devices are free,
  // RPC errors with their gRPC code.
  absl::StatusOr<ContainerAllocation> AdmitContainer(const std::string& resource, int count);
  // Frees devices allocated by AdmitContainer (their pod is gone).
  void Release(const std::string& resource, const std::vector<std::string>& device_ids);
  // Devices of `resource` currently allocated by AdmitContainer, sorted.
  std::vector<std::string> allocated(const std::string& resource) const;

  // Makes the next registration of `resource` fail with `error`: a Register call returns it as
  // a gRPC error; in watcher mode the plugin gets NotifyRegistrationStatus(false, "RegisterPlugin
  // error -- plugin registration failed with err: <error>"). One-shot.
  void RejectNext(const std::string& resource, const std::string& error);

  // Registration attempts for `resource` (Register calls and watcher GetInfo answers naming it),
  // accepted or not: kubelet's device_plugin_registration_total.
  int registration_count(const std::string& resource) const;
  // Every registration kubelet refused or could not complete, "<resource or socket>: <why>", in
  // order.
  std::vector<std::string> registration_errors() const;

 private:
  class RegistrationService;
  struct Endpoint;

  // Validates a registration (version list + name); returns kubelet's error text or "".
  static std::string ValidateRegisterRequest(const std::string& version,
                                             const std::string& resource);
  // Dials `socket_path`, calls GetDevicePluginOptions, installs the endpoint as the resource's
  // current one and returns it; its stream is not started yet.
  absl::StatusOr<std::shared_ptr<Endpoint>> Connect(const std::string& resource,
                                                    const std::string& socket_path);
  // Runs the ListAndWatch stream of `ep` until it ends or is cancelled.
  void RunStream(std::shared_ptr<Endpoint> ep);
  // Starts RunStream on a tracked thread, unless stopping.
  void SpawnStream(std::shared_ptr<Endpoint> ep);
  // Starts `fn` on a tracked thread unless stopping; false when stopping.
  bool Spawn(std::function<void()> fn);
  // Marks the resource's devices unhealthy if `ep` is still its current endpoint.
  void Disconnect(const std::shared_ptr<Endpoint>& ep);
  // Handles a Register RPC (called from the gRPC server).
  absl::Status HandleRegister(const v1beta1::RegisterRequest& request);
  // Consumes a pending RejectNext error for `resource`.
  std::optional<std::string> TakeReject(const std::string& resource);
  void RecordError(const std::string& who, const std::string& why);
  void CountRegistration(const std::string& resource);
  // Bumps the change counter WaitFor watches.
  void NotifyChange();

  // Writes device-plugins/kubelet_internal_checkpoint (registered resources and their healthy
  // device IDs, with `devices` as the new list of ep's resource) the way kubelet rewrites it
  // after every device update: temp file + rename in device-plugins/, so plugins watching that
  // directory see the same churn as on a real node. False (nothing written) when `ep` is no
  // longer its resource's endpoint.
  bool WriteCheckpoint(const std::shared_ptr<Endpoint>& ep,
                       const std::vector<v1beta1::Device>* devices);
  // Resource names recorded in the checkpoint; empty when absent, corrupt entries recorded as
  // errors (kubelet then starts without them).
  std::vector<std::string> ReadCheckpoint();

  // Plugin watcher.
  void WatchLoop(int inotify_fd, int wake_fd);
  // State of the watcher thread (owned by it, no locking).
  struct WatchState {
    int inotify_fd = -1;
    // Directory of each inotify watch descriptor.
    std::map<int, std::string> wd_paths;
    // Identity (inode, change time) of the socket last handled at each path: the initial walk
    // and the inotify event can both report a socket created meanwhile, and that is one plugin
    // instance (kubelet's desired-state cache is keyed by path as well).
    std::map<std::string, std::pair<uint64_t, int64_t>> seen;
  };
  // Watches `dir` and its subdirectories and registers the sockets already there.
  void AddWatchTree(WatchState* ws, const std::string& dir);
  // Registers the socket at `path` unless this very socket was handled already.
  void OnSocketCreated(WatchState* ws, const std::string& path);
  void RegisterWatchedSocket(const std::string& socket_path);
  void DeregisterWatchedSocket(const std::string& socket_path);

  absl::StatusOr<std::shared_ptr<Endpoint>> CurrentEndpoint(const std::string& resource) const;

  const FakeKubeletOptions options_;

  // Lifecycle (Start/Stop/Restart) is serialized by lifecycle_mu_.
  absl::Mutex lifecycle_mu_;
  bool running_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  std::unique_ptr<RegistrationService> service_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(lifecycle_mu_);
  int wake_fd_ ABSL_GUARDED_BY(lifecycle_mu_) = -1;
  std::thread watcher_thread_ ABSL_GUARDED_BY(lifecycle_mu_);

  std::atomic<bool> stopping_{false};

  // Worker threads (streams, async dial-backs): finished ones are joined by the next Spawn, the
  // rest by Stop().
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  absl::Mutex threads_mu_;
  std::vector<Worker> threads_ ABSL_GUARDED_BY(threads_mu_);

  mutable absl::Mutex mu_;
  struct Entry {
    ResourceState state;
    std::shared_ptr<Endpoint> endpoint;
  };
  std::map<std::string, Entry> resources_ ABSL_GUARDED_BY(mu_);
  // Every endpoint created since Start, to cancel them on Stop.
  std::vector<std::shared_ptr<Endpoint>> all_endpoints_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> registration_counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> rejects_ ABSL_GUARDED_BY(mu_);
  // Devices handed out by AdmitContainer, per resource.
  std::map<std::string, std::set<std::string>> allocated_ ABSL_GUARDED_BY(mu_);
  // Watcher: registration socket path -> (resource, endpoint) it registered.
  std::map<std::string, std::shared_ptr<Endpoint>> watched_ ABSL_GUARDED_BY(mu_);

  // Serializes checkpoint writes so a newer snapshot is never overwritten by an older one.
  absl::Mutex checkpoint_mu_;

  mutable absl::Mutex change_mu_;
  uint64_t change_version_ ABSL_GUARDED_BY(change_mu_) = 0;
};

// True when `name` is a valid extended resource name by kubelet's rules
// (v1helper.IsExtendedResourceName): "<domain>/<name>", domain not in kubernetes.io, not
// starting with "requests.", and "requests.<name>" a qualified name (DNS-1123 subdomain prefix,
// name part of at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric).
bool IsExtendedResourceName(const std::string& name);

// The node's extended resources as `kubectl get node -o yaml` shows them under status, one line
// per resource, sorted:
//   allocatable:
//     spidernet.io/shared_cx5_gpu1: "100"
//   capacity:
//     spidernet.io/shared_cx5_gpu1: "100"
std::string FormatNodeView(const FakeKubelet& kubelet);

}  // namespace rdmashare::testing
