#include "deviceplugin/daemon.h"

// The daemon's lifecycle and event loop: start-up, device rescans, the resources not served,
// readiness, and the poll loop that dispatches kubelet, device and config events. Config reloads
// are applied in daemon_reload.cc, registrations kept alive in daemon_registration.cc.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/absl_format.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "deviceplugin/daemon.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

Daemon::Daemon(DaemonOptions options, std::unique_ptr<rdma::DeviceScanner> scanner,
               std::unique_ptr<rdma::EventSource> events)
    : options_(std::move(options)),
      scanner_(std::move(scanner)),
      events_(std::move(events)),
      kubelet_(options_.paths.kubelet_dir),
      config_watch_(options_.config_path),
      gid_room_(options_.paths.sys_root) {}

Daemon::~Daemon() {
  for (auto& e : entries_) e->server->Stop();
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
  const std::string& dir = watcher ? kubelet_.registry_dir() : kubelet_.device_plugins_dir();
  ServiceOptions so;
  so.cdi = options_.cdi;
  so.on_allocate = metrics_.AllocateObserver(e.pool->full_name());
  return std::make_unique<PluginServer>(
      e.pool.get(), JoinPath(dir, SocketNameFor(e.pool->config())), watcher, [this] { Wake(); },
      std::move(so));
}

absl::Status Daemon::Start() {
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid())
    return absl::InternalError(fmt::format("eventfd: {}", std::strerror(errno)));
  watcher_mode_.store(PathExists(kubelet_.registry_dir()));
  watcher_since_ = std::chrono::steady_clock::now();
  // Kubelet creates device-plugins/ itself; creating it early lets us watch it while kubelet is
  // still absent.
  RETURN_IF_ERROR(MakeDirs(kubelet_.device_plugins_dir(), 0750));
  spdlog::info("registration mode={} kubelet_dir={}",
               watcher_mode_.load() ? "plugin-watcher" : "device-plugins",
               options_.paths.kubelet_dir);
  metrics_.Init(options_.metrics, options_.paths.sys_root, [this] { return PortRefs(); });
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
  config_watch_.Prime();

  auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(inventory_, scanner_->Scan());
  metrics_.OnScan(std::chrono::steady_clock::now() - t0);
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
  RETURN_IF_ERROR(kubelet_.SetUp(watcher_mode_));
  RETURN_IF_ERROR(config_watch_.SetUp());
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

bool Daemon::IsRegistered(const Entry& e) const {
  return watcher_mode_ ? e.server->watcher_registered() : e.registered.load();
}

void Daemon::PublishMetrics(const Entry& e) { metrics_.PublishPool(*e.pool, IsRegistered(e)); }

void Daemon::CheckGidRoom() {
  std::vector<const ResourcePool*> pools;
  for (const auto& e : entries_) pools.push_back(e->pool.get());
  gid_room_.Check(pools);
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
  metrics_.MarkUnregistered(resource);
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
  metrics_.OnScan(std::chrono::steady_clock::now() - t0);
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
    if (!IsRegistered(*e)) {
      return absl::UnavailableError(
          fmt::format("resource {} is not registered with kubelet", e->pool->full_name()));
    }
  }
  return absl::OkStatus();
}

void Daemon::HandleDeviceEvents() {
  rdma::EventBatch batch = events_->Drain();
  if (!batch.needs_reconcile()) return;
  metrics_.OnDeviceEvents(batch.relevant);
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
    struct pollfd fds[4] = {{kubelet_.fd(), POLLIN, 0},
                            {wake_fd_.get(), POLLIN, 0},
                            {events_ ? events_->fd() : -1, POLLIN, 0},
                            {config_watch_.fd(), POLLIN, 0}};
    int n = ::poll(fds, 4, static_cast<int>(std::min<long>(timeout_ms, 1L << 30)));
    if (n < 0 && errno != EINTR) {
      spdlog::error("poll: {}", std::strerror(errno));
      break;
    }
    bool event = false;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      kubelet_.Drain();
      event = true;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      ssize_t r = ::read(wake_fd_.get(), &v, sizeof(v));
      (void)r;
      event = true;
    }
    if (n > 0 && (fds[2].revents & POLLIN)) HandleDeviceEvents();
    if (n > 0 && (fds[3].revents & POLLIN) && config_watch_.Drain()) {
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
