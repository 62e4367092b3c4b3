#include "tests/fakes/kubelet/fake_kubelet.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace rdmashare::testing {
namespace {

// Kubelet's constants (k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1 and the device manager).
constexpr char kSupportedVersion[] = "v1beta1";
constexpr char kKubeletSocket[] = "kubelet.sock";
constexpr char kCheckpointFile[] = "kubelet_internal_checkpoint";
constexpr char kDevicePluginType[] = "DevicePlugin";
constexpr char kHealthy[] = "Healthy";
constexpr char kUnhealthy[] = "Unhealthy";

absl::Status FromGrpc(const grpc::Status& st, const std::string& context) {
  if (st.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                      fmt::format("{}: {}", context, st.error_message()));
}

grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

// The channel kubelet opens to a plugin socket. A local subchannel pool keeps the channels of
// successive plugin instances on the same path apart; short reconnect backoffs let a dial that
// started before the plugin listened succeed soon after it does (kubelet's Go dialer retries too).
std::shared_ptr<grpc::Channel> MakeUnixChannel(const std::string& socket_path) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel("unix://" + socket_path, grpc::InsecureChannelCredentials(),
                                   args);
}

std::chrono::system_clock::time_point DeadlineAfter(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// k8s.io/apimachinery validation.IsDNS1123Subdomain.
bool IsDns1123Subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string label = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty()) return false;
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

// The name part of validation.IsQualifiedName: at most 63 characters of [-A-Za-z0-9_.],
// starting and ending alphanumeric.
bool IsQualifiedNamePart(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return IsAlnum(s.front()) && IsAlnum(s.back());
}

// Go's %v of a []string: "[a b c]".
std::string GoStringSlice(const std::vector<std::string>& v) {
  return "[" + absl::StrJoin(v, " ") + "]";
}

// Go's %q of a []string: ["a" "b"].
std::string GoQuotedSlice(const std::vector<std::string>& v) {
  std::vector<std::string> q;
  for (const auto& s : v) q.push_back("\"" + s + "\"");
  return "[" + absl::StrJoin(q, " ") + "]";
}

int CountHealthy(const std::vector<v1beta1::Device>& devices) {
  return static_cast<int>(std::count_if(devices.begin(), devices.end(),
                                        [](const auto& d) { return d.health() == kHealthy; }));
}

}  // namespace

bool IsExtendedResourceName(const std::string& name) {
  // IsNativeResource: unprefixed names and anything in *kubernetes.io/.
  if (name.find('/') == std::string::npos) return false;
  if (name.find("kubernetes.io/") != std::string::npos) return false;
  if (absl::StartsWith(name, "requests.")) return false;
  // IsQualifiedName("requests." + name).
  const std::string quota = "requests." + name;
  size_t slash = quota.find('/');
  if (quota.find('/', slash + 1) != std::string::npos) return false;
  return IsDns1123Subdomain(quota.substr(0, slash)) && IsQualifiedNamePart(quota.substr(slash + 1));
}

std::string ListUpdate::Summary() const {
  if (healthy == 0 && unhealthy == 0) return "0 devices";
  if (unhealthy == 0) return fmt::format("{} healthy", healthy);
  if (healthy == 0) return fmt::format("{} unhealthy", unhealthy);
  return fmt::format("{} healthy {} unhealthy", healthy, unhealthy);
}

int ResourceState::allocatable() const { return CountHealthy(devices); }
int ResourceState::capacity() const { return static_cast<int>(devices.size()); }

// One connection of kubelet to a plugin's DevicePlugin service.
struct FakeKubelet::Endpoint {
  std::string resource;
  std::string socket_path;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub;
  // Context of the ListAndWatch call; TryCancel is thread-safe and also works before the call.
  grpc::ClientContext stream_ctx;
  // Set when the stream ended or kubelet dropped the endpoint (kubelet's stopTime).
  std::atomic<bool> stopped{false};

  void Cancel() {
    stopped = true;
    stream_ctx.TryCancel();
  }
};

class FakeKubelet::RegistrationService final : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(FakeKubelet* owner) : owner_(owner) {}
  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* request,
                        v1beta1::Empty*) override {
    return ToGrpc(owner_->HandleRegister(*request));
  }

 private:
  FakeKubelet* owner_;
};

FakeKubelet::FakeKubelet(FakeKubeletOptions options) : options_(std::move(options)) {}

FakeKubelet::~FakeKubelet() { Stop(); }

std::string FakeKubelet::device_plugin_dir() const {
  return JoinPath(options_.kubelet_dir, "device-plugins");
}
std::string FakeKubelet::plugins_registry_dir() const {
  return JoinPath(options_.kubelet_dir, "plugins_registry");
}
std::string FakeKubelet::kubelet_socket() const {
  return JoinPath(device_plugin_dir(), kKubeletSocket);
}

absl::Status FakeKubelet::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (running_) return absl::FailedPreconditionError("fake kubelet: Start: already running");
  if (options_.kubelet_dir.empty()) {
    return absl::InvalidArgumentError("fake kubelet: Start: kubelet_dir is empty");
  }
  stopping_ = false;
  const std::string dir = device_plugin_dir();
  RETURN_IF_ERROR(MakeDirs(dir, 0750));

  // CleanupPluginDirectory: every socket goes, except the checkpoint; directories and other
  // files stay. Plugins watch for their socket's removal to re-register.
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  for (const auto& name : names) {
    if (name == kCheckpointFile) continue;
    const std::string path = JoinPath(dir, name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (!S_ISSOCK(st.st_mode)) continue;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(fmt::format("fake kubelet: Start: removing stale socket {}: {}",
                                             path, std::strerror(errno)));
    }
  }

  {
    // A (re)started kubelet knows only the resources of its checkpoint, with no devices and a
    // stopped endpoint: capacity 0 until their plugins register again.
    std::vector<std::string> restored = ReadCheckpoint();
    absl::MutexLock lock(&mu_);
    resources_.clear();
    for (const auto& name : restored) resources_[name];
    all_endpoints_.clear();
    watched_.clear();
  }
  NotifyChange();

  service_ = std::make_unique<RegistrationService>(this);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + kubelet_socket(), grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) {
    service_.reset();
    return absl::InternalError(
        fmt::format("fake kubelet: Start: cannot serve Registration on {}", kubelet_socket()));
  }

  if (options_.plugin_watcher) {
    absl::Status st = [&]() -> absl::Status {
      lifecycle_mu_.AssertHeld();  // Start holds it; the analysis does not see into lambdas
      RETURN_IF_ERROR(MakeDirs(plugins_registry_dir(), 0755));
      // Kubelet's device-plugin watcher handler leaves this marker in device-plugins/.
      RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "DEPRECATION"), ""));
      UniqueFd ino(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      if (!ino.valid()) {
        return absl::InternalError(
            fmt::format("fake kubelet: Start: inotify_init1: {}", std::strerror(errno)));
      }
      UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (!wake.valid()) {
        return absl::InternalError(
            fmt::format("fake kubelet: Start: eventfd: {}", std::strerror(errno)));
      }
      wake_fd_ = wake.get();
      int ino_fd = ino.Release();
      int wake_fd = wake.Release();
      watcher_thread_ = std::thread([this, ino_fd, wake_fd] {
        WatchLoop(ino_fd, wake_fd);
        ::close(ino_fd);
        ::close(wake_fd);
      });
      return absl::OkStatus();
    }();
    if (!st.ok()) {
      server_->Shutdown(std::chrono::system_clock::now());
      server_.reset();
      service_.reset();
      ::unlink(kubelet_socket().c_str());
      return st;
    }
  }
  running_ = true;
  return absl::OkStatus();
}

void FakeKubelet::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  if (!running_) return;
  stopping_ = true;

  std::vector<std::shared_ptr<Endpoint>> endpoints;
  {
    absl::MutexLock lock(&mu_);
    endpoints = all_endpoints_;
  }
  for (auto& ep : endpoints) ep->Cancel();

  if (watcher_thread_.joinable()) {
    uint64_t one = 1;
    // The eventfd stays open until the watcher thread exits, so this write cannot hit a reused
    // descriptor.
    if (::write(wake_fd_, &one, sizeof(one)) != sizeof(one)) {
      // A full counter still leaves the eventfd readable; nothing else can fail here.
    }
    watcher_thread_.join();
    wake_fd_ = -1;
  }
  // Pending Register handlers see stopping_ in their dial loop and return.
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  service_.reset();

  for (;;) {
    std::vector<Worker> workers;
    {
      absl::MutexLock lock(&threads_mu_);
      workers.swap(threads_);
    }
    if (workers.empty()) break;
    for (auto& w : workers) w.thread.join();
  }
  ::unlink(kubelet_socket().c_str());

  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, entry] : resources_) entry.state.stream_connected = false;
    all_endpoints_.clear();
    watched_.clear();
  }
  running_ = false;
  NotifyChange();
}

absl::Status FakeKubelet::Restart() {
  Stop();
  return Start();
}

bool FakeKubelet::Spawn(std::function<void()> fn) {
  absl::MutexLock lock(&threads_mu_);
  if (stopping_) return false;
  // Reap finished workers so a long demo does not pile up exited threads.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (*it->done) {
      it->thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back(Worker{std::thread([fn = std::move(fn), done] {
                              fn();
                              *done = true;
                            }),
                            done});
  return true;
}

void FakeKubelet::SpawnStream(std::shared_ptr<Endpoint> ep) {
  if (!Spawn([this, ep] { RunStream(ep); })) ep->Cancel();
}

std::string FakeKubelet::ValidateRegisterRequest(const std::string& version,
                                                 const std::string& resource) {
  if (version != kSupportedVersion) {
    return fmt::format(
        "requested API version \"{}\" is not supported by kubelet. Supported version is {}",
        version, GoQuotedSlice({kSupportedVersion}));
  }
  if (!IsExtendedResourceName(resource)) {
    return fmt::format("the ResourceName \"{}\" is invalid", resource);
  }
  return "";
}

absl::StatusOr<std::shared_ptr<FakeKubelet::Endpoint>> FakeKubelet::Connect(
    const std::string& resource, const std::string& socket_path) {
  auto ep = std::make_shared<Endpoint>();
  ep->resource = resource;
  ep->socket_path = socket_path;
  ep->channel = MakeUnixChannel(socket_path);
  // grpc.WithBlock with a 10 s context: wait until the plugin answers on its socket.
  const auto deadline = DeadlineAfter(options_.dial_timeout);
  for (;;) {
    if (stopping_) return absl::CancelledError("failed to dial device plugin: kubelet stopping");
    auto slice = std::min(deadline, DeadlineAfter(std::chrono::milliseconds(50)));
    if (ep->channel->WaitForConnected(slice)) break;
    if (std::chrono::system_clock::now() >= deadline) {
      return absl::UnavailableError(
          fmt::format("failed to dial device plugin: {}: not connected after {} ms", socket_path,
                      options_.dial_timeout.count()));
    }
  }
  ep->stub = v1beta1::DevicePlugin::NewStub(ep->channel);

  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
  v1beta1::DevicePluginOptions plugin_options;
  grpc::Status st = ep->stub->GetDevicePluginOptions(&ctx, v1beta1::Empty(), &plugin_options);
  if (!st.ok()) return FromGrpc(st, "failed to get device plugin options");

  std::shared_ptr<Endpoint> old;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("device plugin connected while kubelet stopping");
    Entry& entry = resources_[resource];
    old = std::exchange(entry.endpoint, ep);
    entry.state.endpoint = socket_path;
    entry.state.options = plugin_options;
    entry.state.stream_connected = false;
    all_endpoints_.push_back(ep);
  }
  // The newest registration wins; the previous plugin instance's stream is closed.
  if (old) old->Cancel();
  NotifyChange();
  return ep;
}

void FakeKubelet::RunStream(std::shared_ptr<Endpoint> ep) {
  if (ep->stopped) {
    Disconnect(ep);
    return;
  }
  auto reader = ep->stub->ListAndWatch(&ep->stream_ctx, v1beta1::Empty());
  {
    absl::MutexLock lock(&mu_);
    auto it = resources_.find(ep->resource);
    if (it != resources_.end() && it->second.endpoint == ep)
      it->second.state.stream_connected = true;
  }
  NotifyChange();
  v1beta1::ListAndWatchResponse response;
  while (reader->Read(&response)) {
    // Every response is the full device list (genericDeviceUpdateCallback), checkpointed
    // before anyone can observe it.
    std::vector<v1beta1::Device> devices(response.devices().begin(), response.devices().end());
    if (!WriteCheckpoint(ep, &devices)) continue;
    {
      absl::MutexLock lock(&mu_);
      auto it = resources_.find(ep->resource);
      if (it == resources_.end() || it->second.endpoint != ep) continue;
      ListUpdate u;
      u.received = std::chrono::steady_clock::now();
      for (const auto& d : devices) (d.health() == "Healthy" ? u.healthy : u.unhealthy)++;
      if (!devices.empty()) {
        for (const auto& n : devices[0].topology().nodes()) u.numa.push_back(n.id());
      }
      it->second.state.history.push_back(std::move(u));
      it->second.state.devices = std::move(devices);
      ++it->second.state.list_updates;
    }
    NotifyChange();
  }
  grpc::Status st = reader->Finish();
  if (!ep->stopped && !st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
    RecordError(ep->resource,
                fmt::format("ListAndWatch ended unexpectedly for device plugin {}: {}",
                            ep->socket_path, st.error_message()));
  }
  Disconnect(ep);
}

void FakeKubelet::Disconnect(const std::shared_ptr<Endpoint>& ep) {
  ep->stopped = true;
  {
    absl::MutexLock lock(&mu_);
    auto it = resources_.find(ep->resource);
    if (it == resources_.end() || it->second.endpoint != ep) return;
    // markResourceUnhealthy: capacity stays, allocatable drops to zero.
    it->second.state.stream_connected = false;
    for (auto& d : it->second.state.devices) d.set_health(kUnhealthy);
  }
  NotifyChange();
}

absl::Status FakeKubelet::HandleRegister(const v1beta1::RegisterRequest& request) {
  const std::string& resource = request.resource_name();
  CountRegistration(resource);
  std::string error = ValidateRegisterRequest(request.version(), resource);
  if (!error.empty()) {
    RecordError(resource, error);
    return absl::UnknownError(error);
  }
  if (auto reject = TakeReject(resource)) {
    RecordError(resource, *reject);
    return absl::UnknownError(*reject);
  }
  // filepath.Join(socketDir, r.Endpoint): the endpoint is meant to be a bare file name; anything
  // else ends up dialing a path nobody listens on.
  const std::string socket_path = JoinPath(device_plugin_dir(), request.endpoint());
  if (!options_.synchronous_register) {
    Spawn([this, resource, socket_path] {
      auto ep = Connect(resource, socket_path);
      if (!ep.ok()) {
        RecordError(resource, std::string(ep.status().message()));
        return;
      }
      RunStream(*ep);
    });
    return absl::OkStatus();
  }
  auto ep = Connect(resource, socket_path);
  if (!ep.ok()) {
    RecordError(resource, std::string(ep.status().message()));
    return absl::UnknownError(ep.status().message());
  }
  SpawnStream(*ep);
  return absl::OkStatus();
}

std::optional<std::string> FakeKubelet::TakeReject(const std::string& resource) {
  absl::MutexLock lock(&mu_);
  auto it = rejects_.find(resource);
  if (it == rejects_.end()) return std::nullopt;
  std::string error = std::move(it->second);
  rejects_.erase(it);
  return error;
}

void FakeKubelet::RejectNext(const std::string& resource, const std::string& error) {
  absl::MutexLock lock(&mu_);
  rejects_[resource] = error;
}

void FakeKubelet::RecordError(const std::string& who, const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    errors_.push_back(fmt::format("{}: {}", who, why));
  }
  NotifyChange();
}

void FakeKubelet::CountRegistration(const std::string& resource) {
  {
    absl::MutexLock lock(&mu_);
    ++registration_counts_[resource];
  }
  NotifyChange();
}

void FakeKubelet::NotifyChange() {
  absl::MutexLock lock(&change_mu_);
  ++change_version_;
}

// ---- Checkpoint ----

bool FakeKubelet::WriteCheckpoint(const std::shared_ptr<Endpoint>& ep,
                                  const std::vector<v1beta1::Device>* devices) {
  absl::MutexLock checkpoint(&checkpoint_mu_);
  nlohmann::json registered = nlohmann::json::object();
  {
    absl::MutexLock lock(&mu_);
    auto current = resources_.find(ep->resource);
    if (current == resources_.end() || current->second.endpoint != ep) return false;
    for (const auto& [name, entry] : resources_) {
      nlohmann::json ids = nlohmann::json::array();
      for (const auto& d : name == ep->resource ? *devices : entry.state.devices) {
        if (d.health() == kHealthy) ids.push_back(d.id());
      }
      registered[name] = std::move(ids);
    }
  }
  nlohmann::json doc = {
      {"Data", {{"PodDeviceEntries", nullptr}, {"RegisteredDevices", std::move(registered)}}},
      {"Checksum", 0}};
  const std::string path = JoinPath(device_plugin_dir(), kCheckpointFile);
  absl::Status st = WriteFileAtomic(path, doc.dump());
  if (!st.ok()) RecordError("checkpoint", std::string(st.message()));
  return true;
}

std::vector<std::string> FakeKubelet::ReadCheckpoint() {
  const std::string path = JoinPath(device_plugin_dir(), kCheckpointFile);
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (!absl::IsNotFound(text.status()))
      RecordError("checkpoint", std::string(text.status().message()));
    return {};
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
  std::vector<std::string> names;
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("Data") || !doc["Data"].is_object()) {
    RecordError("checkpoint", fmt::format("{}: not a device manager checkpoint; ignored", path));
    return names;
  }
  const auto& data = doc["Data"];
  if (!data.contains("RegisteredDevices")) return names;
  if (!data["RegisteredDevices"].is_object()) {
    RecordError("checkpoint",
                fmt::format("{}: Data.RegisteredDevices is not an object; ignored", path));
    return names;
  }
  for (const auto& [name, ids] : data["RegisteredDevices"].items()) names.push_back(name);
  return names;
}

// ---- Plugin watcher (pkg/kubelet/pluginmanager) ----

void FakeKubelet::AddWatchTree(WatchState* ws, const std::string& dir) {
  // fsnotify's Create covers IN_CREATE and IN_MOVED_TO; only Remove (IN_DELETE) deregisters.
  int wd = inotify_add_watch(ws->inotify_fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE);
  if (wd < 0) {
    RecordError(dir, fmt::format("failed to watch {}: {}", dir, std::strerror(errno)));
    return;
  }
  ws->wd_paths[wd] = dir;
  // Like traversePluginDir: the watch is in place before the walk, so nothing created meanwhile
  // is missed.
  auto names = ListDir(dir);
  if (!names.ok()) return;
  for (const auto& name : *names) {
    if (stopping_) return;
    const std::string path = JoinPath(dir, name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      AddWatchTree(ws, path);
    } else if (S_ISSOCK(st.st_mode) && name[0] != '.') {
      OnSocketCreated(ws, path);
    }
  }
}

void FakeKubelet::OnSocketCreated(WatchState* ws, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  std::pair<uint64_t, int64_t> identity{
      static_cast<uint64_t>(st.st_ino),
      static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
  auto it = ws->seen.find(path);
  if (it != ws->seen.end() && it->second == identity) return;
  ws->seen[path] = identity;
  RegisterWatchedSocket(path);
}

void FakeKubelet::WatchLoop(int inotify_fd, int wake_fd) {
  WatchState ws;
  ws.inotify_fd = inotify_fd;
  AddWatchTree(&ws, plugins_registry_dir());

  alignas(struct inotify_event) char buf[16 * 1024];
  while (!stopping_) {
    struct pollfd fds[2] = {{inotify_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      RecordError(plugins_registry_dir(), fmt::format("poll: {}", std::strerror(errno)));
      return;
    }
    if (fds[1].revents != 0 || stopping_) return;
    ssize_t len = ::read(inotify_fd, buf, sizeof(buf));
    if (len <= 0) continue;
    for (char* p = buf; p < buf + len;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + ev->len;
      if (ev->mask & IN_IGNORED) {
        ws.wd_paths.erase(ev->wd);
        continue;
      }
      auto dir = ws.wd_paths.find(ev->wd);
      if (dir == ws.wd_paths.end() || ev->len == 0) continue;
      const std::string name = ev->name;
      const std::string path = JoinPath(dir->second, name);
      if (ev->mask & IN_DELETE) {
        ws.seen.erase(path);
        DeregisterWatchedSocket(path);
        continue;
      }
      if (name[0] == '.') continue;
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        AddWatchTree(&ws, path);
      } else if (S_ISSOCK(st.st_mode)) {
        OnSocketCreated(&ws, path);
      }
      if (stopping_) return;
    }
  }
}

void FakeKubelet::RegisterWatchedSocket(const std::string& socket_path) {
  // A socket replaced under the same name is a new plugin instance: unregister the old one first
  // (the reconciler's timestamp check).
  DeregisterWatchedSocket(socket_path);

  auto channel = MakeUnixChannel(socket_path);
  const auto deadline = DeadlineAfter(options_.dial_timeout);
  for (;;) {
    if (stopping_) return;
    if (channel->WaitForConnected(std::min(deadline, DeadlineAfter(std::chrono::milliseconds(50)))))
      break;
    if (std::chrono::system_clock::now() >= deadline) {
      RecordError(socket_path,
                  fmt::format("RegisterPlugin error -- dial failed at socket {}, err: not "
                              "connected after {} ms",
                              socket_path, options_.dial_timeout.count()));
      return;
    }
  }
  auto client = pluginregistration::Registration::NewStub(channel);

  pluginregistration::PluginInfo info;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
    grpc::Status st = client->GetInfo(&ctx, pluginregistration::InfoRequest(), &info);
    if (!st.ok()) {
      RecordError(socket_path, fmt::format("RegisterPlugin error -- failed to get plugin info "
                                           "using RPC GetInfo at socket {}, err: {}",
                                           socket_path, st.error_message()));
      return;
    }
  }
  auto notify = [&](bool registered, const std::string& error) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
    pluginregistration::RegistrationStatus status;
    status.set_plugin_registered(registered);
    status.set_error(error);
    pluginregistration::RegistrationStatusResponse response;
    grpc::Status st = client->NotifyRegistrationStatus(&ctx, status, &response);
    if (!st.ok()) {
      RecordError(socket_path, fmt::format("RegisterPlugin error -- failed to send registration "
                                           "status at socket {}, err: {}",
                                           socket_path, st.error_message()));
    }
  };
  auto fail = [&](const std::string& who, const std::string& error) {
    RecordError(who, error);
    notify(false, error);
  };

  if (info.type() != kDevicePluginType) {
    fail(socket_path,
         fmt::format("RegisterPlugin error -- no handler registered for plugin type: {} at "
                     "socket {}",
                     info.type(), socket_path));
    return;
  }
  const std::string& resource = info.name();
  CountRegistration(resource);
  const std::vector<std::string> versions(info.supported_versions().begin(),
                                          info.supported_versions().end());
  if (std::find(versions.begin(), versions.end(), kSupportedVersion) == versions.end()) {
    fail(resource, fmt::format("RegisterPlugin error -- plugin validation failed with err: "
                               "manager version, {}, is not among plugin supported versions {}",
                               kSupportedVersion, GoStringSlice(versions)));
    return;
  }
  if (!IsExtendedResourceName(resource)) {
    fail(resource, fmt::format("RegisterPlugin error -- plugin validation failed with err: "
                               "invalid name of device plugin socket: the ResourceName \"{}\" is "
                               "invalid",
                               resource));
    return;
  }
  const std::string endpoint = info.endpoint().empty() ? socket_path : info.endpoint();
  if (auto reject = TakeReject(resource)) {
    fail(resource,
         fmt::format("RegisterPlugin error -- plugin registration failed with err: {}", *reject));
    return;
  }
  auto ep = Connect(resource, endpoint);
  if (!ep.ok()) {
    fail(resource, fmt::format("RegisterPlugin error -- plugin registration failed with err: {}",
                               ep.status().message()));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    watched_[socket_path] = *ep;
  }
  SpawnStream(*ep);
  notify(true, "");
}

void FakeKubelet::DeregisterWatchedSocket(const std::string& socket_path) {
  std::shared_ptr<Endpoint> ep;
  {
    absl::MutexLock lock(&mu_);
    auto it = watched_.find(socket_path);
    if (it == watched_.end()) return;
    ep = std::move(it->second);
    watched_.erase(it);
  }
  // DeRegisterPlugin -> disconnectClient: the stream is closed and the resource goes unhealthy.
  ep->Cancel();
  Disconnect(ep);
}

// ---- Observation ----

std::vector<std::string> FakeKubelet::Resources() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : resources_) names.push_back(name);
  return names;
}

std::optional<ResourceState> FakeKubelet::Resource(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = resources_.find(resource);
  if (it == resources_.end()) return std::nullopt;
  return it->second.state;
}

int FakeKubelet::registration_count(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = registration_counts_.find(resource);
  return it == registration_counts_.end() ? 0 : it->second;
}

std::vector<std::string> FakeKubelet::registration_errors() const {
  absl::MutexLock lock(&mu_);
  return errors_;
}

bool FakeKubelet::WaitFor(const std::function<bool(const FakeKubelet&)>& cond,
                          std::chrono::milliseconds timeout) const {
  const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
  for (;;) {
    uint64_t seen;
    {
      absl::MutexLock lock(&change_mu_);
      seen = change_version_;
    }
    if (cond(*this)) return true;
    bool changed;
    {
      absl::MutexLock lock(&change_mu_);
      auto version_moved = [this, seen]() {
        change_mu_.AssertReaderHeld();  // absl::Condition runs it under the lock
        return change_version_ != seen;
      };
      changed = change_mu_.AwaitWithDeadline(absl::Condition(&version_moved), deadline);
    }
    if (!changed) return cond(*this);
  }
}

// ---- Calls into the plugin ----

absl::StatusOr<std::shared_ptr<FakeKubelet::Endpoint>> FakeKubelet::CurrentEndpoint(
    const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = resources_.find(resource);
  if (it == resources_.end()) {
    return absl::NotFoundError(fmt::format("cannot allocate unregistered device {}", resource));
  }
  if (!it->second.endpoint) {
    return absl::FailedPreconditionError(
        fmt::format("endpoint not found in cache for a registered resource: {}", resource));
  }
  if (it->second.endpoint->stopped) {
    return absl::FailedPreconditionError(fmt::format("endpoint {} of resource {} has been stopped",
                                                     it->second.endpoint->socket_path, resource));
  }
  return it->second.endpoint;
}

absl::StatusOr<v1beta1::AllocateResponse> FakeKubelet::Allocate(
    const std::string& resource, const std::vector<std::vector<std::string>>& ids_per_container) {
  std::shared_ptr<Endpoint> ep;
  {
    absl::MutexLock lock(&mu_);
    auto it = resources_.find(resource);
    if (it == resources_.end()) {
      return absl::NotFoundError(fmt::format("cannot allocate unregistered device {}", resource));
    }
    const auto& devices = it->second.state.devices;
    if (CountHealthy(devices) == 0) {
      return absl::FailedPreconditionError(fmt::format(
          "no healthy devices present; cannot allocate unhealthy devices {}", resource));
    }
    std::set<std::string> healthy;
    for (const auto& d : devices) {
      if (d.health() == kHealthy) healthy.insert(d.id());
    }
    std::set<std::string> seen;
    for (const auto& ids : ids_per_container) {
      for (const auto& id : ids) {
        if (!healthy.count(id)) {
          return absl::InvalidArgumentError(fmt::format(
              "resource {}: device ID \"{}\" is not a healthy device of the resource (kubelet "
              "allocates only advertised healthy devices)",
              resource, id));
        }
        if (!seen.insert(id).second) {
          return absl::InvalidArgumentError(fmt::format(
              "resource {}: device ID \"{}\" requested twice (kubelet never allocates a device "
              "twice)",
              resource, id));
        }
      }
    }
  }
  ASSIGN_OR_RETURN(ep, CurrentEndpoint(resource));

  v1beta1::AllocateRequest request;
  for (const auto& ids : ids_per_container) {
    auto* c = request.add_container_requests();
    for (const auto& id : ids) c->add_devices_ids(id);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
  v1beta1::AllocateResponse response;
  RETURN_IF_ERROR(FromGrpc(ep->stub->Allocate(&ctx, request, &response),
                           fmt::format("resource {}: Allocate rpc failed", resource)));
  if (response.container_responses_size() != request.container_requests_size()) {
    return absl::InternalError(fmt::format(
        "resource {}: plugin returned {} container responses for {} container requests", resource,
        response.container_responses_size(), request.container_requests_size()));
  }
  return response;
}

absl::StatusOr<v1beta1::PreferredAllocationResponse> FakeKubelet::GetPreferredAllocation(
    const std::string& resource, const std::vector<std::string>& available,
    const std::vector<std::string>& must_include, int allocation_size) {
  ASSIGN_OR_RETURN(std::shared_ptr<Endpoint> ep, CurrentEndpoint(resource));
  {
    absl::MutexLock lock(&mu_);
    if (!resources_[resource].state.options.get_preferred_allocation_available()) {
      return absl::FailedPreconditionError(fmt::format(
          "resource {}: plugin options do not set get_preferred_allocation_available; kubelet "
          "does not call GetPreferredAllocation",
          resource));
    }
  }
  v1beta1::PreferredAllocationRequest request;
  auto* c = request.add_container_requests();
  for (const auto& id : available) c->add_available_deviceids(id);
  for (const auto& id : must_include) c->add_must_include_deviceids(id);
  c->set_allocation_size(allocation_size);
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
  v1beta1::PreferredAllocationResponse response;
  RETURN_IF_ERROR(FromGrpc(
      ep->stub->GetPreferredAllocation(&ctx, request, &response),
      fmt::format("resource {}: device plugin GetPreferredAllocation rpc failed", resource)));
  return response;
}

absl::StatusOr<v1beta1::PreStartContainerResponse> FakeKubelet::PreStartContainer(
    const std::string& resource, const std::vector<std::string>& device_ids) {
  ASSIGN_OR_RETURN(std::shared_ptr<Endpoint> ep, CurrentEndpoint(resource));
  {
    absl::MutexLock lock(&mu_);
    if (!resources_[resource].state.options.pre_start_required()) {
      return absl::FailedPreconditionError(
          fmt::format("resource {}: plugin options do not set pre_start_required; kubelet does "
                      "not call PreStartContainer",
                      resource));
    }
  }
  v1beta1::PreStartContainerRequest request;
  for (const auto& id : device_ids) request.add_devices_ids(id);
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(options_.rpc_timeout));
  v1beta1::PreStartContainerResponse response;
  RETURN_IF_ERROR(
      FromGrpc(ep->stub->PreStartContainer(&ctx, request, &response),
               fmt::format("resource {}: device plugin PreStartContainer rpc failed", resource)));
  return response;
}

absl::StatusOr<ContainerAllocation> FakeKubelet::AdmitContainer(const std::string& resource,
                                                                int count) {
  if (count < 1) {
    return absl::InvalidArgumentError(fmt::format(
        "resource {}: a container must request at least 1 device, not {}", resource, count));
  }
  std::vector<std::string> available;
  v1beta1::DevicePluginOptions plugin_options;
  {
    absl::MutexLock lock(&mu_);
    auto it = resources_.find(resource);
    if (it == resources_.end()) {
      return absl::NotFoundError(fmt::format("cannot allocate unregistered device {}", resource));
    }
    const auto& devices = it->second.state.devices;
    if (CountHealthy(devices) == 0) {
      return absl::FailedPreconditionError(fmt::format(
          "no healthy devices present; cannot allocate unhealthy devices {}", resource));
    }
    const auto& in_use = allocated_[resource];
    for (const auto& d : devices) {
      if (d.health() == kHealthy && !in_use.count(d.id())) available.push_back(d.id());
    }
    if (static_cast<int>(available.size()) < count) {
      return absl::ResourceExhaustedError(fmt::format(
          "requested number of devices unavailable for {}. Requested: {}, Available: {}", resource,
          count, available.size()));
    }
    plugin_options = it->second.state.options;
  }

  std::vector<std::string> chosen;
  auto take = [&](const std::string& id) {
    if (static_cast<int>(chosen.size()) < count &&
        std::find(available.begin(), available.end(), id) != available.end() &&
        std::find(chosen.begin(), chosen.end(), id) == chosen.end()) {
      chosen.push_back(id);
    }
  };
  if (plugin_options.get_preferred_allocation_available()) {
    ASSIGN_OR_RETURN(auto preferred, GetPreferredAllocation(resource, available, {}, count));
    if (preferred.container_responses_size() > 0) {
      for (const auto& id : preferred.container_responses(0).deviceids()) take(id);
    }
  }
  for (const auto& id : available) take(id);

  {
    absl::MutexLock lock(&mu_);
    auto& in_use = allocated_[resource];
    for (const auto& id : chosen) {
      if (in_use.count(id)) {
        return absl::AbortedError(fmt::format(
            "resource {}: device {} was allocated by a concurrent admission", resource, id));
      }
    }
    in_use.insert(chosen.begin(), chosen.end());
  }
  auto fail = [&](absl::Status st) {
    Release(resource, chosen);
    return st;
  };
  auto response = Allocate(resource, {chosen});
  if (!response.ok()) return fail(response.status());
  if (plugin_options.pre_start_required()) {
    auto started = PreStartContainer(resource, chosen);
    if (!started.ok()) return fail(started.status());
  }
  return ContainerAllocation{chosen, response->container_responses(0)};
}

void FakeKubelet::Release(const std::string& resource, const std::vector<std::string>& device_ids) {
  absl::MutexLock lock(&mu_);
  auto& in_use = allocated_[resource];
  for (const auto& id : device_ids) in_use.erase(id);
}

std::vector<std::string> FakeKubelet::allocated(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = allocated_.find(resource);
  if (it == allocated_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::string FormatNodeView(const FakeKubelet& kubelet) {
  std::vector<std::pair<std::string, ResourceState>> rows;
  for (const auto& name : kubelet.Resources()) {
    if (auto state = kubelet.Resource(name)) rows.emplace_back(name, std::move(*state));
  }
  if (rows.empty()) return "allocatable: {}\ncapacity: {}\n";
  std::string out = "allocatable:\n";
  for (const auto& [name, state] : rows)
    out += fmt::format("  {}: \"{}\"\n", name, state.allocatable());
  out += "capacity:\n";
  for (const auto& [name, state] : rows)
    out += fmt::format("  {}: \"{}\"\n", name, state.capacity());
  return out;
}

}  // namespace rdmashare::testing
