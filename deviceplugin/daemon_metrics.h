// DaemonMetrics: the daemon's metrics observer. It registers the rdmashare_dp_* families
// (units, HCAs and health per resource, registrations, kubelet restarts, Allocate outcomes,
// config reloads, scans, device events) and the RoCE port counters in a MetricsRegistry, and
// turns what the daemon reports (a scan took this long, a resource registered, a pool changed,
// a resource went away) into samples. Without a registry every method does nothing.
//
// Ownership: the registry is the caller's and must outlive this object; the family pointers are
// the registry's. Owns the port counter collector (scrapes skip it once this object is gone).
// Threading: the daemon's event loop calls it; the families themselves are thread-safe (the
// Allocate observer runs on gRPC threads, the port-ref callback on the scrape thread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deviceplugin/metrics_registry.h"
#include "deviceplugin/port_metrics.h"
#include "deviceplugin/resource_pool.h"

namespace rdmashare::deviceplugin {

class DaemonMetrics {
 public:
  DaemonMetrics() = default;
  DaemonMetrics(const DaemonMetrics&) = delete;
  DaemonMetrics& operator=(const DaemonMetrics&) = delete;

  // Adds the families to `registry` (null: metrics off; a family that cannot be added is logged
  // and left out) and the port counters of the ports `port_refs` lists (read under `sys_root`
  // at scrape time; `port_refs` runs on the scrape thread and must be thread-safe).
  void Init(MetricsRegistry* registry, const std::string& sys_root,
            std::function<std::vector<PortRef>()> port_refs);

  // A device scan that took `took`.
  void OnScan(std::chrono::steady_clock::duration took);
  // `relevant` kernel device/link events triggered a rescan.
  void OnDeviceEvents(double relevant);
  // A new kubelet.sock replaced the one seen before.
  void OnKubeletRestart();
  // `resource` registered with kubelet.
  void OnRegistered(const std::string& resource);
  // A config change was applied / rejected (running config kept).
  void OnReload();
  void OnReloadFailure();

  // The samples of `pool`'s current snapshot and registration state; also zero samples of the
  // per-resource counters so their series exist before the first event.
  void PublishPool(const ResourcePool& pool, bool registered);
  // `resource` is configured but not served: not registered.
  void MarkUnregistered(const std::string& resource);
  // `resource` (not served) left the config: drops its registered series.
  void ForgetUnserved(const std::string& resource);
  // Drops every per-resource series of `resource` (it was stopped).
  void RemoveResource(const std::string& resource);

  // Counts `resource`'s Allocate calls by outcome; empty when metrics are off.
  std::function<void(bool ok)> AllocateObserver(const std::string& resource) const;

 private:
  MetricsRegistry* registry_ = nullptr;
  Gauge* units_ = nullptr;
  Gauge* hcas_ = nullptr;
  Gauge* hcas_healthy_ = nullptr;
  Gauge* healthy_ = nullptr;
  Gauge* registered_ = nullptr;
  Counter* registrations_ = nullptr;
  Counter* kubelet_restarts_ = nullptr;
  Counter* allocations_ = nullptr;
  Counter* reloads_ = nullptr;
  Counter* reload_failures_ = nullptr;
  Counter* scans_ = nullptr;
  Gauge* scan_seconds_ = nullptr;
  Counter* events_ = nullptr;
  // RoCE port counters in /metrics (read at scrape time from the pools' snapshots).
  std::shared_ptr<PortCounterCollector> port_counters_;
};

}  // namespace rdmashare::deviceplugin
