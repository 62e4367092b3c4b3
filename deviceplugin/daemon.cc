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
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr char kKubeletSocketName[] = "kubelet.sock";

ino_t InodeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

Daemon::Daemon(DaemonOptions options, std::unique_ptr<rdma::DeviceScanner> scanner)
    : options_(std::move(options)), scanner_(std::move(scanner)) {
  device_plugins_dir_ = JoinPath(options_.paths.kubelet_dir, "device-plugins");
  registry_dir_ = JoinPath(options_.paths.kubelet_dir, "plugins_registry");
  kubelet_socket_ = JoinPath(device_plugins_dir_, kKubeletSocketName);
}

Daemon::~Daemon() {
  for (Entry& e : entries_) e.server->Stop();
}

absl::Status Daemon::Start() {
  wake_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid())
    return absl::InternalError(fmt::format("eventfd: {}", std::strerror(errno)));
  watcher_mode_ = PathExists(registry_dir_);
  // Kubelet creates device-plugins/ itself; creating it early lets us watch it while kubelet is
  // still absent.
  RETURN_IF_ERROR(MakeDirs(device_plugins_dir_, 0750));
  spdlog::info("registration mode={} kubelet_dir={}",
               watcher_mode_ ? "plugin-watcher" : "device-plugins", options_.paths.kubelet_dir);

  for (const ResourceConfig& rc : options_.config.resources) {
    pools_.push_back(std::make_unique<ResourcePool>(
        rc, options_.paths.dev_root, options_.paths.host_dev_root, options_.cli_host_path));
  }
  ASSIGN_OR_RETURN(int changed, Rescan());
  (void)changed;
  for (const auto& pool : pools_) {
    auto snap = pool->Current();
    if (snap->devices.empty()) {
      spdlog::warn("resource {}: selectors matched no RDMA device; advertising 0 units",
                   pool->full_name());
    } else {
      std::string ibdevs;
      for (const auto& d : snap->devices) ibdevs += (ibdevs.empty() ? "" : ",") + d.ibdev;
      spdlog::info("resource={} units={} ibdevs={} healthy={}", pool->full_name(), snap->ids.size(),
                   ibdevs, snap->healthy);
    }
  }

  const std::string& dir = watcher_mode_ ? registry_dir_ : device_plugins_dir_;
  for (const auto& pool : pools_) {
    Entry e;
    e.pool = pool.get();
    e.server =
        std::make_unique<PluginServer>(pool.get(), JoinPath(dir, SocketNameFor(pool->config())),
                                       watcher_mode_, [this] { Wake(); });
    RETURN_IF_ERROR(e.server->Start());
    entries_.push_back(std::move(e));
  }
  RETURN_IF_ERROR(SetUpWatches());
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

absl::StatusOr<int> Daemon::Rescan() {
  ASSIGN_OR_RETURN(rdma::NodeInventory inv, scanner_->Scan());
  int changed = 0;
  for (const auto& pool : pools_) {
    if (pool->Update(inv)) ++changed;
  }
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

bool Daemon::Reconcile() {
  bool all_done = true;
  if (!PathExists(device_plugins_dir_)) {
    // Kubelet (or an operator) removed the whole directory: recreate it and re-watch.
    if (MakeDirs(device_plugins_dir_, 0750).ok()) {
      absl::Status st = SetUpWatches();
      if (!st.ok()) spdlog::error("re-watch failed: {}", st.message());
    }
  }
  const ino_t kubelet_ino = InodeOf(kubelet_socket_);
  std::vector<Entry*> to_register;
  for (Entry& e : entries_) {
    if (!e.server->SocketIntact() || e.server->rejected()) {
      if (e.server->running()) {
        spdlog::info("socket of resource={} {}; re-creating it", e.pool->full_name(),
                     e.server->rejected() ? "was rejected by kubelet" : "was removed");
      }
      e.server->Stop();
      e.registered_kubelet_ino = 0;
      absl::Status st = e.server->Start();
      if (!st.ok()) {
        spdlog::error("{}", st.message());
        all_done = false;
        continue;
      }
    }
    if (watcher_mode_) continue;  // kubelet's plugin watcher finds the socket itself
    if (kubelet_ino == 0) {
      all_done = false;  // kubelet absent: wait for kubelet.sock to appear
      continue;
    }
    if (e.registered_kubelet_ino == kubelet_ino) continue;
    to_register.push_back(&e);
  }
  if (to_register.empty()) return all_done;
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
      spdlog::info("registered with kubelet resource={} endpoint={}", e.pool->full_name(),
                   BaseName(e.server->socket_path()));
    } else {
      spdlog::warn("{}", results[i].message());
      all_done = false;
    }
  }
  return all_done;
}

void Daemon::Run() {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds backoff = options_.retry_initial;
  Clock::time_point next_retry = Clock::now();
  bool pending = true;
  const int interval_s = options_.config.periodic_update_interval_s;
  Clock::time_point next_scan =
      interval_s > 0 ? Clock::now() + std::chrono::seconds(interval_s) : Clock::time_point::max();

  while (!stop_.load()) {
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
    long timeout_ms = -1;
    if (wake_at != Clock::time_point::max()) {
      timeout_ms = std::max<long>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - Clock::now()).count() +
                 1);
    }
    struct pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::min<long>(timeout_ms, 1L << 30)));
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
    if (event) {
      // A kubelet-side change: reconcile right away, whatever the backoff says.
      pending = true;
      next_retry = Clock::now();
      backoff = options_.retry_initial;
    }
  }
  spdlog::info("stopping: removing sockets");
  for (const auto& pool : pools_) pool->Shutdown();
  for (Entry& e : entries_) e.server->Stop();
}

}  // namespace rdmashare::deviceplugin
