// Daemon::ReloadConfig: a changed config file (read and diffed by config_watch.h) applied to the
// running resources: removed ones stop, changed ones restart with their new settings, new ones
// (and those not served before) start; unchanged ones keep their servers and streams. Event loop
// thread only.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/absl_format.h"
#include "deviceplugin/config_watch.h"
#include "deviceplugin/daemon.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

absl::Status Daemon::ReloadConfig() {
  ConfigWatch::Load load = config_watch_.Reload();
  switch (load.kind) {
    case ConfigWatch::Load::Kind::kUnchanged:
      return absl::OkStatus();
    case ConfigWatch::Load::Kind::kUnreadable:
      // Mid-swap (ConfigMap) or deleted: keep running; the next event retries.
      metrics_.OnReloadFailure();
      return absl::OkStatus();
    case ConfigWatch::Load::Kind::kInvalid:
      metrics_.OnReloadFailure();
      return load.status;
    case ConfigWatch::Load::Kind::kChanged:
      break;
  }
  PluginConfig& config = load.config;

  std::vector<const ResourceConfig*> running;
  for (const auto& e : entries_) running.push_back(&e->pool->config());
  const ConfigDiff diff = DiffConfig(running, config);
  std::map<std::string, std::string> was_unserved;
  {
    // Resources not served are retried below from the new config (or are gone with it).
    absl::MutexLock lock(&entries_mu_);
    was_unserved.swap(unserved_);
  }
  for (const auto& [name, cause] : was_unserved) {
    if (diff.wanted.count(name) == 0) metrics_.ForgetUnserved(name);
  }
  int removed = 0, added = 0, changed = 0, kept = 0;
  // Remove what is gone or changed (a changed resource restarts with its new settings).
  for (size_t i = 0; i < entries_.size();) {
    Entry& e = *entries_[i];
    const std::string name = e.pool->full_name();
    if (diff.kept.count(name) != 0) {
      ++kept;
      ++i;
      continue;
    }
    if (diff.removed.count(name) != 0) {
      spdlog::info("config reload: resource={} removed; stopping it", name);
      ++removed;
    } else {
      spdlog::info("config reload: resource={} changed; restarting it", name);
      ++changed;
    }
    RemoveEntry(e);
    absl::MutexLock lock(&entries_mu_);
    entries_.erase(entries_.begin() + static_cast<long>(i));
  }
  for (const ResourceConfig* start : diff.to_start) {
    const ResourceConfig& rc = *start;
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
  if (config.periodic_update_interval_s != options_.config.periodic_update_interval_s) {
    spdlog::info("config reload: periodicUpdateInterval {}s -> {}s",
                 options_.config.periodic_update_interval_s, config.periodic_update_interval_s);
  }
  options_.config = std::move(config);
  metrics_.OnReload();
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
  metrics_.RemoveResource(e.pool->full_name());
}

}  // namespace rdmashare::deviceplugin
