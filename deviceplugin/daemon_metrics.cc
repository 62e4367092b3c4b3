#include "deviceplugin/daemon_metrics.h"

#include <initializer_list>
#include <utility>

#include "common/absl_format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

void DaemonMetrics::Init(MetricsRegistry* r, const std::string& sys_root,
                         std::function<std::vector<PortRef>()> port_refs) {
  registry_ = r;
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
  units_ = gauge("rdmashare_dp_devices", "Units advertised to kubelet per resource.", {"resource"});
  hcas_ = gauge("rdmashare_dp_hcas", "RDMA devices (HCAs) selected per resource.", {"resource"});
  hcas_healthy_ =
      gauge("rdmashare_dp_hcas_healthy", "Selected HCAs that are usable now.", {"resource"});
  healthy_ = gauge("rdmashare_dp_resource_healthy", "1 when the resource's units are Healthy.",
                   {"resource"});
  registered_ = gauge("rdmashare_dp_resource_registered",
                      "1 while the resource is registered with kubelet.", {"resource"});
  registrations_ = counter("rdmashare_dp_registrations_total",
                           "Successful registrations with kubelet.", {"resource"});
  kubelet_restarts_ = counter("rdmashare_dp_kubelet_restarts_total",
                              "Kubelet restarts seen (new kubelet.sock).", {});
  allocations_ =
      counter("rdmashare_dp_allocate_total", "Allocate calls by outcome.", {"resource", "result"});
  reloads_ = counter("rdmashare_dp_config_reloads_total", "Config changes applied.", {});
  reload_failures_ = counter("rdmashare_dp_config_reload_failures_total",
                             "Config changes rejected (running config kept).", {});
  scans_ = counter("rdmashare_dp_scans_total", "Device scans.", {});
  scan_seconds_ =
      gauge("rdmashare_dp_scan_duration_seconds", "Duration of the latest device scan.", {});
  events_ = counter("rdmashare_dp_device_events_total",
                    "Kernel device/link events that triggered a rescan.", {});
  PortMetricsOptions port_options;
  port_options.sys_root = sys_root;
  port_counters_ = PortCounterCollector::Register(r, std::move(port_refs), std::move(port_options));
}

void DaemonMetrics::OnScan(std::chrono::steady_clock::duration took) {
  if (scans_) {
    scans_->Increment();
    scan_seconds_->Set(std::chrono::duration<double>(took).count());
  }
}

void DaemonMetrics::OnDeviceEvents(double relevant) {
  if (events_) events_->Increment({}, relevant);
}

void DaemonMetrics::OnKubeletRestart() {
  if (kubelet_restarts_) kubelet_restarts_->Increment();
}

void DaemonMetrics::OnRegistered(const std::string& resource) {
  if (registrations_) registrations_->Increment({resource});
}

void DaemonMetrics::OnReload() {
  if (reloads_) reloads_->Increment();
}

void DaemonMetrics::OnReloadFailure() {
  if (reload_failures_) reload_failures_->Increment();
}

void DaemonMetrics::PublishPool(const ResourcePool& pool, bool registered) {
  if (units_ == nullptr) return;
  auto snap = pool.Current();
  const std::vector<std::string> label = {pool.full_name()};
  int healthy = 0;
  for (const auto& d : snap->devices) healthy += d.HealthProblem().empty() ? 1 : 0;
  units_->Set(label, static_cast<double>(snap->ids.size()));
  hcas_->Set(label, static_cast<double>(snap->devices.size()));
  hcas_healthy_->Set(label, healthy);
  healthy_->Set(label, snap->healthy ? 1 : 0);
  registered_->Set(label, registered ? 1 : 0);
  // A zero sample from the start, so rate() and absent() see the series before the first
  // registration.
  if (registrations_) registrations_->Increment(label, 0);
  if (allocations_) {
    for (const char* result : {"ok", "error"}) {
      allocations_->Increment({pool.full_name(), result}, 0);
    }
  }
}

void DaemonMetrics::MarkUnregistered(const std::string& resource) {
  if (registered_) registered_->Set({resource}, 0);
}

void DaemonMetrics::ForgetUnserved(const std::string& resource) {
  if (registered_) registered_->RemoveMatching("resource", resource);
}

void DaemonMetrics::RemoveResource(const std::string& resource) {
  if (registry_ == nullptr) return;
  for (MetricFamily* f : std::initializer_list<MetricFamily*>{
           units_, hcas_, hcas_healthy_, healthy_, registered_, registrations_, allocations_}) {
    if (f) f->RemoveMatching("resource", resource);
  }
}

std::function<void(bool ok)> DaemonMetrics::AllocateObserver(const std::string& resource) const {
  if (allocations_ == nullptr) return nullptr;
  Counter* c = allocations_;
  return [c, name = resource](bool ok) { c->Increment({name, ok ? "ok" : "error"}); };
}

}  // namespace rdmashare::deviceplugin
