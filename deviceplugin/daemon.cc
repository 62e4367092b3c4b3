#include "deviceplugin/daemon.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/absl_format.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/gid_table.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr char kKubeletSocketName[] = "kubelet.sock";
// ConfigMap volumes: kubelet swaps this symlink to publish a new version.
constexpr char kConfigMapDataLink[] = "..data";
// How often "waiting for kubelet" is repeated while kubelet.sock stays missing.
constexpr std::chrono::minutes kKubeletWaitLogInterval{5};

// Identity of a socket file: inode plus change time, since a re-created socket often gets the
// freed inode number back. {0, 0} when absent.
std::pair<ino_t, int64_t> IdentityOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {0, 0};
  return {st.st_ino, static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Daemon::Daemon(DaemonOptions options, std::unique_ptr<rdma::DeviceScanner> scanner,
               std::unique_ptr<rdma::EventSource> events)
    : options_(std::move(options)), scanner_(std::move(scanner)), events_(std::move(events)) {
  device_plugins_dir_ = JoinPath(options_.paths.kubelet_dir, "device-plugins");
  registry_dir_ = JoinPath(options_.paths.kubelet_dir, "plugins_registry");
  kubelet_socket_ = JoinPath(device_plugins_dir_, kKubeletSocketName);
}

Daemon::~Daemon() {
  for (auto& e : entries_) e->server->Stop();
}

void Daemon::InitMetrics() {
  MetricsRegistry* r = options_.metrics;
  if (r == nullptr) return;
  auto gauge = [&](const char* name, const char* help, std::vector<std::string> labels) {
    auto g = r->AddGauge(name, help, std::move(labels));
    if (!g.ok()) spdlog::error("metrics: {}", g.status().message());
    return g.ok() ? *g : nullptr;
  };
  auto counter = [&](const char* name, const char* help, std::vector<std::string> labels) {
    auto c = r->AddCounter(name, help, std::move(labels));
    if (!c.ok()) spdlog::error("metrics: {}", c.status().message());
    return c.ok() ? *c : nullptr;
  };
  metrics_.units =
      gauge("rdmashare_dp_devices", "Units advertised to kubelet per resource.", {"resource"});
  metrics_.hcas =
      gauge("rdmashare_dp_hcas", "RDMA devices (HCAs) selected per resource.", {"resource"});
  metrics_.hcas_healthy =
      gauge("rdmashare_dp_hcas_healthy", "Selected HCAs that are usable now.", {"resource"});
  metrics_.healthy = gauge("rdmashare_dp_resource_healthy",
                           "1 when the resource's units are Healthy.", {"resource"});
  metrics_.registered = gauge("rdmashare_dp_resource_registered",
                              "1 while the resource is registered with kubelet.", {"resource"});
  metrics_.registrations = counter("rdmashare_dp_registrations_total",
                                   "Successful registrations with kubelet.", {"resource"});
  metrics_.kubelet_restarts = counter("rdmashare_dp_kubelet_restarts_total",
                                      "Kubelet restarts seen (new kubelet.sock).", {});
  metrics_.allocations =
      counter("rdmashare_dp_allocate_total", "Allocate calls by outcome.", {"resource", "result"});
  metrics_.reloads = counter("rdmashare_dp_config_reloads_total", "Config changes applied.", {});
  metrics_.reload_failures = counter("rdmashare_dp_config_reload_failures_total",
                                     "Config changes rejected (running config kept).", {});
  metrics_.scans = counter("rdmashare_dp_scans_total", "Device scans.", {});
  metrics_.scan_seconds =
      gauge("rdmashare_dp_scan_duration_seconds", "Duration of the latest device scan.", {});
  metrics_.events = counter("rdmashare_dp_device_events_total",
                            "Kernel device/link events that triggered a rescan.", {});
  PortMetricsOptions port_options;
  port_options.sys_root = options_.paths.sys_root;
  port_counters_ = PortCounterCollector::Register(
      r, [this] { return PortRefs(); }, std::move(port_options));
}

std::vector<PortRef> Daemon::PortRefs() const {
  std::vector<PortRef> out;
  absl::MutexLock lock(&entries_mu_);
  for (const auto& e : entries_) {
    auto snap = e->pool->Current();
    for (const rdma::RdmaDevice& d : snap->devices) {
      std::string netdevs;
      for (const std::string& n : d.netdevs) netdevs += (netdevs.empty() ? "" : ",") + n;
      for (const rdma::RdmaPort& p : d.ports) {
        out.push_back(PortRef{e->pool->full_name(), d.ibdev, p.number, netdevs});
      }
    }
  }
  return out;
}

std::unique_ptr<Daemon::Entry> Daemon::MakeEntry(const ResourceConfig& rc) {
  auto e = std::make_unique<Entry>();
  e->pool = std::make_unique<ResourcePool>(rc, options_.paths.dev_root,
                                           options_.paths.host_dev_root, options_.cli_host_path);
  e->pool->Update(inventory_);
  e->server = MakeServer(*e);
  return e;
}

std::unique_ptr<PluginServer> Daemon::MakeServer(const Entry& e) {
  const bool watcher = watcher_mode_.load();
  const std::string& dir = watcher ? registry_dir_ : device_plugins_dir_;
  ServiceOptions so;
  so.cdi = options_.cdi;
  if (metrics_.allocations != nullptr) {
    Counter* c = metrics_.allocations;
    std::string name = e.pool->full_name();
    so.on_allocate = [c, name](bool ok) { c->Increment({name, ok ? "ok" : "error"}); };
  }
  return std::make_unique<PluginServer>(
      e.pool.get(), JoinPath(dir, SocketNameFor(e.pool->config())), watcher, [this] { Wake(); },
      std::move(so));
}

void Daemon::FallBackToDevicePluginsMode() {
  spdlog::warn(
      "plugin-watcher mode: kubelet called GetInfo on none of our {} sockets in {} within {} ms, "
      "but {} exists; registering there instead",
      entries_.size(), registry_dir_, options_.watcher_fallback_after.count(), kubelet_socket_);
  absl::MutexLock lock(&entries_mu_);
  watcher_mode_.store(false);
  for (auto& e : entries_) {
    e->server->Stop();
    e->server = MakeServer(*e);
    e->registered_kubelet_ino = {0, 0};
    e->registered.store(false);
    absl::Status st = e->server->Start();
    if (!st.ok()) spdlog::error("{}", st.message());  // the next reconcile retries
  }
}

absl::Status Daemon::Start() {
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid())
    return absl::InternalError(fmt::format("eventfd: {}", std::strerror(errno)));
  watcher_mode_.store(PathExists(registry_dir_));
  watcher_since_ = std::chrono::steady_clock::now();
  // Kubelet creates device-plugins/ itself; creating it early lets us watch it while kubelet is
  // still absent.
  RETURN_IF_ERROR(MakeDirs(device_plugins_dir_, 0750));
  spdlog::info("registration mode={} kubelet_dir={}",
               watcher_mode_.load() ? "plugin-watcher" : "device-plugins",
               options_.paths.kubelet_dir);
  InitMetrics();
  if (options_.cdi) {
    // An unusable spec directory fails every resource alike: refuse to start. A bad entry in it
    // only costs its own resource (below).
    absl::Status dir_ok = MakeDirs(options_.cdi_dir);
    if (!dir_ok.ok()) {
      return absl::Status(dir_ok.code(), fmt::format("CDI spec directory {}: {}", options_.cdi_dir,
                                                     dir_ok.message()));
    }
    cdi_ = std::make_unique<CdiSpecWriter>(options_.cdi_dir);
  }
  if (!options_.config_path.empty()) {
    auto text = ReadFile(options_.config_path);
    if (text.ok()) config_text_ = *text;
  }

  auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(inventory_, scanner_->Scan());
  if (metrics_.scans) {
    metrics_.scans->Increment();
    metrics_.scan_seconds->Set(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<std::string> kinds;
  for (const ResourceConfig& rc : options_.config.resources) {
    std::unique_ptr<Entry> e = MakeEntry(rc);
    auto snap = e->pool->Current();
    if (snap->devices.empty()) {
      spdlog::warn("resource {}: selectors matched no RDMA device; advertising 0 units",
                   e->pool->full_name());
    } else {
      std::string ibdevs;
      for (const auto& d : snap->devices) ibdevs += (ibdevs.empty() ? "" : ",") + d.ibdev;
      spdlog::info("resource={} units={} ibdevs={} healthy={}{}", e->pool->full_name(),
                   snap->ids.size(), ibdevs, snap->healthy,
                   snap->healthy ? "" : " (" + snap->health_cause + ")");
    }
    if (cdi_) {
      kinds.push_back(e->pool->full_name());
      auto wrote = cdi_->Write(e->pool->full_name(),
                               CdiEditsForSnapshot(*e->pool->Current(), inventory_.rdma_cm));
      if (!wrote.ok()) {
        MarkUnserved(e->pool->full_name(), wrote.status());
        continue;
      }
    }
    RETURN_IF_ERROR(e->server->Start());
    PublishMetrics(*e);
    absl::MutexLock lock(&entries_mu_);
    entries_.push_back(std::move(e));
  }
  if (cdi_) {
    auto stale = cdi_->RemoveStale(kinds);
    if (!stale.ok()) return stale.status();
    for (const std::string& f : *stale) spdlog::info("removed stale CDI spec {}", f);
  }
  CheckGidRoom();
  RETURN_IF_ERROR(SetUpWatches());
  RETURN_IF_ERROR(SetUpConfigWatch());
  return absl::OkStatus();
}

absl::Status Daemon::SetUpWatches() {
  inotify_fd_.Reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_fd_.valid()) {
    return absl::InternalError(fmt::format("inotify_init1: {}", std::strerror(errno)));
  }
  uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF;
  if (::inotify_add_watch(inotify_fd_.get(), device_plugins_dir_.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch {}: {}", device_plugins_dir_, std::strerror(errno)));
  }
  if (watcher_mode_ && ::inotify_add_watch(inotify_fd_.get(), registry_dir_.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch {}: {}", registry_dir_, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status Daemon::SetUpConfigWatch() {
  if (options_.config_path.empty()) return absl::OkStatus();
  config_inotify_fd_.Reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!config_inotify_fd_.valid()) {
    return absl::InternalError(fmt::format("inotify_init1: {}", std::strerror(errno)));
  }
  const std::string dir = DirOf(options_.config_path);
  uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB;
  if (::inotify_add_watch(config_inotify_fd_.get(), dir.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch config directory {}: {}", dir, std::strerror(errno)));
  }
  spdlog::info("watching {} for config changes", dir);
  return absl::OkStatus();
}

void Daemon::WriteCdi(const Entry& e) {
  if (!cdi_) return;
  auto wrote =
      cdi_->Write(e.pool->full_name(), CdiEditsForSnapshot(*e.pool->Current(), inventory_.rdma_cm));
  if (!wrote.ok()) {
    spdlog::error("resource={} CDI spec not updated: {}", e.pool->full_name(),
                  wrote.status().message());
  } else if (*wrote) {
    spdlog::info("resource={} CDI spec rewritten: {}", e.pool->full_name(),
                 cdi_->PathFor(e.pool->full_name()));
  }
}

void Daemon::PublishMetrics(const Entry& e) {
  if (metrics_.units == nullptr) return;
  auto snap = e.pool->Current();
  const std::vector<std::string> label = {e.pool->full_name()};
  int healthy = 0;
  for (const auto& d : snap->devices) healthy += d.HealthProblem().empty() ? 1 : 0;
  metrics_.units->Set(label, static_cast<double>(snap->ids.size()));
  metrics_.hcas->Set(label, static_cast<double>(snap->devices.size()));
  metrics_.hcas_healthy->Set(label, healthy);
  metrics_.healthy->Set(label, snap->healthy ? 1 : 0);
  bool registered = watcher_mode_ ? e.server->watcher_registered() : e.registered.load();
  metrics_.registered->Set(label, registered ? 1 : 0);
  // A zero sample from the start, so rate() and absent() see the series before the first
  // registration.
  if (metrics_.registrations) metrics_.registrations->Increment(label, 0);
  if (metrics_.allocations) {
    for (const char* result : {"ok", "error"}) {
      metrics_.allocations->Increment({e.pool->full_name(), result}, 0);
    }
  }
}

void Daemon::CheckGidRoom() {
  // Pods per (ibdev, port): every resource selecting the HCA can place rdmaHcaMax pods on it.
  struct PortUse {
    int pods = 0;
    int size = 0;
    std::vector<std::string> resources;
  };
  std::map<std::pair<std::string, int>, PortUse> ports;
  for (const auto& e : entries_) {
    auto snap = e->pool->Current();
    for (const auto& d : snap->devices) {
      for (const auto& p : d.ports) {
        PortUse& u = ports[{d.ibdev, p.number}];
        u.pods += e->pool->config().rdma_hca_max;
        u.size = p.gid_table_size;
        u.resources.push_back(e->pool->full_name());
      }
    }
  }
  std::set<std::string> active;
  for (const auto& [key, u] : ports) {
    if (u.size == 0) continue;
    rdma::GidRoom room = rdma::ReadGidRoom(options_.paths.sys_root, key.first, key.second);
    if (u.pods <= room.pods_fit()) continue;
    std::string names;
    for (const auto& r : u.resources) names += (names.empty() ? "" : ", ") + r;
    std::string msg = fmt::format(
        "ibdev={} port={}: resources {} can place {} pods; {}; pods beyond {} will fail to get "
        "a RoCE GID",
        key.first, key.second, names, u.pods, rdma::DescribeGidRoom(room), room.pods_fit());
    active.insert(msg);
    if (gid_warned_.count(msg) == 0) spdlog::warn("{}", msg);
  }
  gid_warned_ = std::move(active);
}

void Daemon::MarkUnserved(const std::string& resource, const absl::Status& cause) {
  spdlog::error(
      "resource={} not served: {}; the other resources are served, this one is retried at every "
      "rescan",
      resource, cause.message());
  {
    absl::MutexLock lock(&entries_mu_);
    unserved_[resource] = std::string(cause.message());
  }
  if (metrics_.registered) metrics_.registered->Set({resource}, 0);
}

bool Daemon::RetryUnserved() {
  std::map<std::string, std::string> unserved;
  {
    absl::MutexLock lock(&entries_mu_);
    unserved = unserved_;
  }
  bool started = false;
  for (const auto& [resource, reason] : unserved) {
    // Structured bindings cannot be captured by a lambda in C++17 (clang refuses): copy.
    const std::string& name = resource;
    const std::string& cause = reason;
    auto rc = std::find_if(options_.config.resources.begin(), options_.config.resources.end(),
                           [&](const ResourceConfig& r) { return r.FullName() == name; });
    if (rc == options_.config.resources.end()) continue;
    std::unique_ptr<Entry> e = MakeEntry(*rc);
    if (cdi_) {
      auto wrote = cdi_->Write(name, CdiEditsForSnapshot(*e->pool->Current(), inventory_.rdma_cm));
      if (!wrote.ok()) {
        if (wrote.status().message() != cause) MarkUnserved(name, wrote.status());
        continue;
      }
    }
    absl::Status st = e->server->Start();
    if (!st.ok()) {
      if (st.message() != cause) MarkUnserved(name, st);
      continue;
    }
    spdlog::info("resource={} served again", name);
    PublishMetrics(*e);
    absl::MutexLock lock(&entries_mu_);
    unserved_.erase(name);
    entries_.push_back(std::move(e));
    started = true;
  }
  return started;
}

absl::StatusOr<int> Daemon::Rescan() {
  auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(inventory_, scanner_->Scan());
  auto took = std::chrono::steady_clock::now() - t0;
  if (metrics_.scans) {
    metrics_.scans->Increment();
    metrics_.scan_seconds->Set(std::chrono::duration<double>(took).count());
  }
  int changed = 0;
  for (const auto& e : entries_) {
    if (!e->pool->Update(inventory_)) continue;
    ++changed;
    WriteCdi(*e);
    PublishMetrics(*e);
  }
  if (RetryUnserved()) {
    reconcile_needed_ = true;
    ++changed;
  }
  if (changed > 0) CheckGidRoom();
  return changed;
}

absl::Status Daemon::ReloadConfig() {
  absl::StatusOr<std::string> text = ReadFile(options_.config_path);
  if (!text.ok()) {
    // Mid-swap (ConfigMap) or deleted: keep running; the next event retries.
    spdlog::warn("config {} unreadable, keeping the running config: {}", options_.config_path,
                 text.status().message());
    if (metrics_.reload_failures) metrics_.reload_failures->Increment();
    return absl::OkStatus();
  }
  if (*text == config_text_) return absl::OkStatus();
  std::vector<std::string> warnings;
  absl::StatusOr<PluginConfig> config = ParseConfig(*text, &warnings);
  for (const std::string& w : warnings) spdlog::warn("config {}: {}", options_.config_path, w);
  config_text_ = *text;
  if (!config.ok()) {
    spdlog::error("config {} rejected, keeping the running config: {}", options_.config_path,
                  config.status().message());
    if (metrics_.reload_failures) metrics_.reload_failures->Increment();
    return config.status();
  }

  std::map<std::string, const ResourceConfig*> wanted;
  for (const ResourceConfig& rc : config->resources) wanted[rc.FullName()] = &rc;
  std::map<std::string, std::string> was_unserved;
  {
    // Resources not served are retried below from the new config (or are gone with it).
    absl::MutexLock lock(&entries_mu_);
    was_unserved.swap(unserved_);
  }
  for (const auto& [name, cause] : was_unserved) {
    if (wanted.count(name) == 0 && metrics_.registered) {
      metrics_.registered->RemoveMatching("resource", name);
    }
  }
  int removed = 0, added = 0, changed = 0, kept = 0;
  // Remove what is gone or changed (a changed resource restarts with its new settings).
  for (size_t i = 0; i < entries_.size();) {
    Entry& e = *entries_[i];
    auto it = wanted.find(e.pool->full_name());
    if (it != wanted.end() && *it->second == e.pool->config()) {
      ++kept;
      ++i;
      continue;
    }
    if (it == wanted.end()) {
      spdlog::info("config reload: resource={} removed; stopping it", e.pool->full_name());
      ++removed;
    } else {
      spdlog::info("config reload: resource={} changed; restarting it", e.pool->full_name());
      ++changed;
    }
    RemoveEntry(e);
    absl::MutexLock lock(&entries_mu_);
    entries_.erase(entries_.begin() + static_cast<long>(i));
  }
  for (const ResourceConfig& rc : config->resources) {
    bool exists = std::any_of(entries_.begin(), entries_.end(),
                              [&](const auto& e) { return e->pool->full_name() == rc.FullName(); });
    if (exists) continue;
    std::unique_ptr<Entry> e = MakeEntry(rc);
    if (cdi_) {
      auto wrote =
          cdi_->Write(rc.FullName(), CdiEditsForSnapshot(*e->pool->Current(), inventory_.rdma_cm));
      if (!wrote.ok()) {
        MarkUnserved(rc.FullName(), wrote.status());
        continue;
      }
    }
    absl::Status st = e->server->Start();
    if (!st.ok()) {
      spdlog::error("config reload: resource={}: {}", rc.FullName(), st.message());
      continue;
    }
    PublishMetrics(*e);
    if (std::none_of(options_.config.resources.begin(), options_.config.resources.end(),
                     [&](const ResourceConfig& o) { return o.FullName() == rc.FullName(); })) {
      spdlog::info("config reload: resource={} added", rc.FullName());
      ++added;
    }
    absl::MutexLock lock(&entries_mu_);
    entries_.push_back(std::move(e));
  }
  if (config->periodic_update_interval_s != options_.config.periodic_update_interval_s) {
    spdlog::info("config reload: periodicUpdateInterval {}s -> {}s",
                 options_.config.periodic_update_interval_s, config->periodic_update_interval_s);
  }
  options_.config = std::move(*config);
  if (metrics_.reloads) metrics_.reloads->Increment();
  spdlog::info("config reload applied: {} added, {} removed, {} changed, {} unchanged", added,
               removed, changed, kept);
  CheckGidRoom();
  reconcile_needed_ = true;
  return absl::OkStatus();
}

void Daemon::RemoveEntry(Entry& e) {
  e.pool->Shutdown();
  {
    absl::MutexLock lock(&entries_mu_);
    e.server->Stop();
  }
  if (cdi_) {
    absl::Status st = cdi_->Remove(e.pool->full_name());
    if (!st.ok()) spdlog::error("{}", st.message());
  }
  if (options_.metrics != nullptr) {
    for (MetricFamily* f : std::initializer_list<MetricFamily*>{
             metrics_.units, metrics_.hcas, metrics_.hcas_healthy, metrics_.healthy,
             metrics_.registered, metrics_.registrations, metrics_.allocations}) {
      if (f) f->RemoveMatching("resource", e.pool->full_name());
    }
  }
}

void Daemon::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
  (void)n;
}

void Daemon::Stop() {
  stop_.store(true);
  Wake();
}

absl::Status Daemon::Ready() const {
  absl::MutexLock lock(&entries_mu_);
  if (!unserved_.empty()) {
    return absl::UnavailableError(fmt::format("resource {} is not served: {}",
                                              unserved_.begin()->first, unserved_.begin()->second));
  }
  for (const auto& e : entries_) {
    bool registered = watcher_mode_ ? e->server->watcher_registered() : e->registered.load();
    if (!registered) {
      return absl::UnavailableError(
          fmt::format("resource {} is not registered with kubelet", e->pool->full_name()));
    }
  }
  return absl::OkStatus();
}

void Daemon::DrainInotify() {
  alignas(struct inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(inotify_fd_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->len > 0) {
        spdlog::debug("kubelet dir event name={} mask={:#x}", ev->name, ev->mask);
      }
      if (ev->mask & IN_DELETE_SELF) {
        spdlog::warn("watched kubelet directory was removed; recreating {}", device_plugins_dir_);
      }
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
}

bool Daemon::DrainConfigInotify() {
  const std::string base = BaseName(options_.config_path);
  bool relevant = false;
  alignas(struct inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(config_inotify_fd_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      if (ev->len > 0) {
        std::string name = ev->name;
        if (name == base || name == kConfigMapDataLink) relevant = true;
      }
      if (ev->mask & IN_Q_OVERFLOW) relevant = true;
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
  return relevant;
}

void Daemon::HandleDeviceEvents() {
  rdma::EventBatch batch = events_->Drain();
  if (!batch.needs_reconcile()) return;
  if (metrics_.events) metrics_.events->Increment({}, batch.relevant);
  std::string samples;
  for (const auto& s : batch.samples) samples += (samples.empty() ? "" : "; ") + s;
  spdlog::debug("device events={} overflow={} ignored={}: {}", batch.relevant, batch.overflow,
                batch.ignored, samples);
  absl::StatusOr<int> changed = Rescan();
  if (!changed.ok()) {
    spdlog::error("rescan after device event failed: {}", changed.status().message());
  } else if (*changed > 0) {
    spdlog::info("device event rescan changed={} resources ({})", *changed, samples);
  }
}

bool Daemon::Reconcile() {
  bool all_done = true;
  if (!PathExists(device_plugins_dir_)) {
    // Kubelet (or an operator) removed the whole directory: recreate it and re-watch.
    if (MakeDirs(device_plugins_dir_, 0750).ok()) {
      absl::Status st = SetUpWatches();
      if (!st.ok()) spdlog::error("re-watch failed: {}", st.message());
    }
  }
  const std::pair<ino_t, int64_t> kubelet_ino = IdentityOf(kubelet_socket_);
  if (kubelet_ino.first != 0 && kubelet_ino != last_kubelet_ino_) {
    if (last_kubelet_ino_.first != 0) {
      spdlog::info("kubelet restarted (new {})", kubelet_socket_);
      if (metrics_.kubelet_restarts) metrics_.kubelet_restarts->Increment();
    }
    last_kubelet_ino_ = kubelet_ino;
  }
  if (watcher_mode_.load() && kubelet_ino.first != 0 &&
      std::chrono::steady_clock::now() - watcher_since_ >= options_.watcher_fallback_after &&
      std::none_of(entries_.begin(), entries_.end(),
                   [](const auto& e) { return e->server->watcher_registered(); })) {
    FallBackToDevicePluginsMode();
  }
  if (!watcher_mode_ && kubelet_ino.first == 0) {
    auto now = std::chrono::steady_clock::now();
    if (!kubelet_wait_logged_ || now - *kubelet_wait_logged_ >= kKubeletWaitLogInterval) {
      spdlog::warn(
          "waiting for kubelet: no {} yet ({} resources will register when it appears; is "
          "kubelet running and --kubelet-dir right?)",
          kubelet_socket_, entries_.size());
      kubelet_wait_logged_ = now;
    }
  } else if (kubelet_wait_logged_ && kubelet_ino.first != 0) {
    spdlog::info("kubelet appeared: {}", kubelet_socket_);
    kubelet_wait_logged_.reset();
  }
  std::vector<Entry*> to_register;
  for (auto& ep : entries_) {
    Entry& e = *ep;
    if (!e.server->SocketIntact() || e.server->rejected()) {
      if (e.server->running()) {
        spdlog::info("socket of resource={} {}; re-creating it", e.pool->full_name(),
                     e.server->rejected() ? "was rejected by kubelet" : "was removed");
      }
      e.registered_kubelet_ino = {0, 0};
      e.registered.store(false);
      absl::Status st;
      {
        // Ready() (HTTP thread) reads the server's registration state under this lock.
        absl::MutexLock lock(&entries_mu_);
        e.server->Stop();
        st = e.server->Start();
      }
      if (!st.ok()) {
        spdlog::error("{}", st.message());
        all_done = false;
        PublishMetrics(e);
        continue;
      }
    }
    if (watcher_mode_) {
      // Kubelet's plugin watcher finds the socket itself; keep reconciling until it did, so
      // the fallback above can fire when nobody watches.
      if (!e.server->watcher_registered()) all_done = false;
      continue;
    }
    if (kubelet_ino.first == 0) {
      e.registered.store(false);
      all_done = false;  // kubelet absent: wait for kubelet.sock to appear
      continue;
    }
    if (e.registered_kubelet_ino == kubelet_ino) continue;
    e.registered.store(false);
    to_register.push_back(&e);
  }
  if (to_register.empty()) {
    for (auto& e : entries_) PublishMetrics(*e);
    return all_done;
  }
  // Register every resource concurrently over one channel: kubelet (>= 1.26) dials each plugin
  // back before answering, so sequential calls would add up on a busy node.
  std::shared_ptr<grpc::Channel> channel = KubeletChannel(kubelet_socket_);
  std::vector<absl::Status> results(to_register.size());
  std::vector<std::thread> workers;
  workers.reserve(to_register.size());
  for (size_t i = 0; i < to_register.size(); ++i) {
    workers.emplace_back([&, i] {
      const Entry& e = *to_register[i];
      results[i] = RegisterWithKubelet(channel, kubelet_socket_, BaseName(e.server->socket_path()),
                                       e.pool->full_name(), options_.register_timeout);
    });
  }
  for (std::thread& t : workers) t.join();
  for (size_t i = 0; i < to_register.size(); ++i) {
    Entry& e = *to_register[i];
    if (results[i].ok()) {
      e.registered_kubelet_ino = kubelet_ino;
      e.registered.store(true);
      if (metrics_.registrations) metrics_.registrations->Increment({e.pool->full_name()});
      spdlog::info("registered with kubelet resource={} endpoint={}", e.pool->full_name(),
                   BaseName(e.server->socket_path()));
    } else {
      spdlog::warn("{}", results[i].message());
      all_done = false;
    }
  }
  for (auto& e : entries_) PublishMetrics(*e);
  return all_done;
}

void Daemon::Run() {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds backoff = options_.retry_initial;
  Clock::time_point next_retry = Clock::now();
  bool pending = true;
  int interval_s = options_.config.periodic_update_interval_s;
  Clock::time_point next_scan =
      interval_s > 0 ? Clock::now() + std::chrono::seconds(interval_s) : Clock::time_point::max();

  while (!stop_.load()) {
    if (options_.heartbeat != nullptr) options_.heartbeat->Beat();
    Clock::time_point now = Clock::now();
    if (pending && now >= next_retry) {
      if (Reconcile()) {
        pending = false;
        backoff = options_.retry_initial;
      } else {
        next_retry = now + backoff;
        backoff = std::min(backoff * 2, options_.retry_max);
      }
    }
    if (now >= next_scan) {
      absl::StatusOr<int> changed = Rescan();
      if (!changed.ok()) {
        spdlog::error("periodic rescan failed: {}", changed.status().message());
      } else if (*changed > 0) {
        spdlog::info("periodic rescan changed={} resources", *changed);
      }
      next_scan = now + std::chrono::seconds(interval_s);
    }
    Clock::time_point wake_at = next_scan;
    if (pending) wake_at = std::min(wake_at, next_retry);
    if (options_.heartbeat != nullptr) {
      wake_at = std::min(wake_at, Clock::now() + options_.heartbeat_interval);
    }
    long timeout_ms = -1;
    if (wake_at != Clock::time_point::max()) {
      timeout_ms = std::max<long>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - Clock::now()).count() +
                 1);
    }
    struct pollfd fds[4] = {{inotify_fd_.get(), POLLIN, 0},
                            {wake_fd_.get(), POLLIN, 0},
                            {events_ ? events_->fd() : -1, POLLIN, 0},
                            {config_inotify_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 4, static_cast<int>(std::min<long>(timeout_ms, 1L << 30)));
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    bool event = false;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      DrainInotify();
      event = true;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      ssize_t r = ::read(wake_fd_.get(), &v, sizeof(v));
      (void)r;
      event = true;
    }
    if (n > 0 && (fds[2].revents & POLLIN)) HandleDeviceEvents();
    if (n > 0 && (fds[3].revents & POLLIN) && DrainConfigInotify()) {
      (void)ReloadConfig();  // logged inside
      if (options_.config.periodic_update_interval_s != interval_s) {
        interval_s = options_.config.periodic_update_interval_s;
        next_scan = interval_s > 0 ? Clock::now() + std::chrono::seconds(interval_s)
                                   : Clock::time_point::max();
      }
    }
    if (reconcile_needed_) {
      // New servers (config reload, a resource served again) to register.
      reconcile_needed_ = false;
      event = true;
    }
    if (event) {
      // A kubelet-side change: reconcile right away, whatever the backoff says.
      pending = true;
      next_retry = Clock::now();
      backoff = options_.retry_initial;
    }
  }
  spdlog::info("stopping: removing sockets");
  for (auto& e : entries_) e->pool->Shutdown();
  absl::MutexLock lock(&entries_mu_);
  for (auto& e : entries_) e->server->Stop();
}

}  // namespace rdmashare::deviceplugin
