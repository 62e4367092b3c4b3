// Daemon::Reconcile: keeps every resource's socket and registration alive. Servers whose socket
// vanished (or was rejected) restart; in device-plugins mode each resource registers on
// kubelet.sock (again after a kubelet restart, told by kubelet_watch.h); in plugin-watcher mode
// kubelet finds the sockets itself, and when it never does the daemon falls back to
// device-plugins mode (registration.h). Event loop thread only.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/absl_format.h"
#include "common/files.h"
#include "deviceplugin/daemon.h"
#include "deviceplugin/registration.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

void Daemon::FallBackToDevicePluginsMode() {
  spdlog::warn(
      "plugin-watcher mode: kubelet called GetInfo on none of our {} sockets in {} within {} ms, "
      "but {} exists; registering there instead",
      entries_.size(), kubelet_.registry_dir(), options_.watcher_fallback_after.count(),
      kubelet_.kubelet_socket());
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

bool Daemon::Reconcile() {
  bool all_done = true;
  kubelet_.RecreateDirIfGone(watcher_mode_);
  bool restarted = false;
  const SocketIdentity kubelet_ino = kubelet_.Observe(&restarted);
  if (restarted) metrics_.OnKubeletRestart();
  if (watcher_mode_.load() &&
      WatcherFallbackDue(kubelet_ino.first != 0,
                         std::any_of(entries_.begin(), entries_.end(),
                                     [](const auto& e) { return e->server->watcher_registered(); }),
                         watcher_since_, options_.watcher_fallback_after,
                         std::chrono::steady_clock::now())) {
    FallBackToDevicePluginsMode();
  }
  kubelet_.LogWaiting(!watcher_mode_ && kubelet_ino.first == 0, kubelet_ino, entries_.size());
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
  // Register every resource concurrently (registration.h).
  std::vector<RegistrationRequest> requests;
  requests.reserve(to_register.size());
  for (const Entry* e : to_register) {
    requests.push_back({BaseName(e->server->socket_path()), e->pool->full_name()});
  }
  std::vector<absl::Status> results =
      RegisterAll(kubelet_.kubelet_socket(), requests, options_.register_timeout);
  for (size_t i = 0; i < to_register.size(); ++i) {
    Entry& e = *to_register[i];
    if (results[i].ok()) {
      e.registered_kubelet_ino = kubelet_ino;
      e.registered.store(true);
      metrics_.OnRegistered(e.pool->full_name());
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

}  // namespace rdmashare::deviceplugin
