#include "deviceplugin/port_metrics.h"

#include <map>

#include "common/absl_format.h"
#include "fmt/format.h"
#include "rdma/port_counters.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

PortCounterCollector::PortCounterCollector(std::function<std::vector<PortRef>()> ports,
                                           PortMetricsOptions options)
    : ports_(std::move(ports)), options_(std::move(options)) {}

std::shared_ptr<PortCounterCollector> PortCounterCollector::Register(
    MetricsRegistry* registry, std::function<std::vector<PortRef>()> ports,
    PortMetricsOptions options) {
  auto self = std::make_shared<PortCounterCollector>(std::move(ports), std::move(options));
  if (registry == nullptr) return self;
  const std::vector<std::string> base = {"resource", "ibdev", "port", "netdev"};
  auto with = [&](const char* extra) {
    std::vector<std::string> v = base;
    v.push_back(extra);
    return v;
  };
  auto bytes = registry->AddCounter(
      "rdmashare_rdma_port_data_bytes_total",
      "Bytes sent (tx) and received (rx) by the RDMA port: the kernel's port_xmit_data / "
      "port_rcv_data (4-octet words) x 4.",
      with("direction"));
  auto packets = registry->AddCounter(
      "rdmashare_rdma_port_packets_total",
      "Packets sent (tx) and received (rx) by the RDMA port (port_xmit/rcv_packets).",
      with("direction"));
  auto hw = registry->AddCounter(
      "rdmashare_rdma_hw_counter_total",
      "The driver's hardware counters of the RDMA port (ports/N/hw_counters), e.g. np_cnp_sent, "
      "rp_cnp_handled, np_ecn_marked_roce_packets, out_of_sequence, local_ack_timeout_err.",
      with("counter"));
  auto secs = registry->AddGauge("rdmashare_rdma_counters_read_seconds",
                                 "Time the last read of the RDMA port counters took.");
  for (const absl::Status& st : {bytes.status(), packets.status(), hw.status(), secs.status()}) {
    if (!st.ok()) {
      spdlog::error("metrics: {}", st.message());
      return self;
    }
  }
  self->bytes_ = *bytes;
  self->packets_ = *packets;
  self->hw_ = *hw;
  self->read_seconds_ = *secs;
  std::weak_ptr<PortCounterCollector> weak = self;
  registry->AddCollectHook([weak] {
    if (std::shared_ptr<PortCounterCollector> c = weak.lock()) c->Collect();
  });
  return self;
}

void PortCounterCollector::Collect() {
  if (bytes_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  const auto now = options_.now();
  if (collected_ && now - last_ < options_.min_interval) return;
  collected_ = true;
  last_ = now;
  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::vector<std::string>, double> bytes, packets, hw;
  std::vector<PortRef> ports = ports_();
  if (ports.size() > options_.max_ports) {
    std::string msg = fmt::format("RDMA port counters: {} ports, reading the first {}",
                                  ports.size(), options_.max_ports);
    if (logged_.insert(msg).second) spdlog::warn("{}", msg);
    ports.resize(options_.max_ports);
  }
  // An HCA selected by several resources is read once.
  std::map<std::pair<std::string, int>, absl::StatusOr<rdma::PortCounters>> cache;
  for (const PortRef& p : ports) {
    auto key = std::make_pair(p.ibdev, p.port);
    auto it = cache.find(key);
    if (it == cache.end()) {
      it = cache.emplace(key, rdma::ReadPortCounters(options_.sys_root, p.ibdev, p.port)).first;
    }
    const absl::StatusOr<rdma::PortCounters>& c = it->second;
    if (!c.ok()) continue;  // the HCA went away since the last scan
    for (const std::string& problem : c->problems) {
      if (logged_.insert(problem).second) spdlog::warn("RDMA port counters: {}", problem);
    }
    const std::vector<std::string> base = {p.resource, p.ibdev, std::to_string(p.port), p.netdev};
    auto labels = [&](const std::string& extra) {
      std::vector<std::string> v = base;
      v.push_back(extra);
      return v;
    };
    if (c->has_port_counters) {
      bytes[labels("tx")] = static_cast<double>(c->xmit_bytes());
      bytes[labels("rx")] = static_cast<double>(c->rcv_bytes());
      packets[labels("tx")] = static_cast<double>(c->xmit_packets);
      packets[labels("rx")] = static_cast<double>(c->rcv_packets);
    }
    for (const auto& [name, value] : c->hw) hw[labels(name)] = static_cast<double>(value);
  }
  bytes_->ReplaceAll(std::move(bytes));
  packets_->ReplaceAll(std::move(packets));
  hw_->ReplaceAll(std::move(hw));
  read_seconds_->Set(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace rdmashare::deviceplugin
