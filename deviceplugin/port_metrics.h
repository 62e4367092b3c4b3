// RoCE port counters in /metrics: at scrape time, reads the counters of every port of every HCA
// the resources select (rdma/port_counters.h) and mirrors them into three families, labelled
// resource, ibdev, port and netdev:
//   rdmashare_rdma_port_data_bytes_total{direction="tx"|"rx"}   port_{xmit,rcv}_data x 4
//   rdmashare_rdma_port_packets_total{direction="tx"|"rx"}      port_{xmit,rcv}_packets
//   rdmashare_rdma_hw_counter_total{counter="<name>"}           every ports/N/hw_counters file
// plus rdmashare_rdma_counters_read_seconds (the cost of the last read).
//
// Bounded cost: one read per `min_interval` whatever the scrape rate (a scrape in between
// serves the values of the last read), at most `max_ports` ports per read, and each port's
// hardware counters capped by rdma::kMaxHwCounters. A counter file that cannot be read is
// logged once and left out. Thread-safe: Collect() may run on several HTTP threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "deviceplugin/metrics_registry.h"

namespace rdmashare::deviceplugin {

// One port of one HCA as a resource sees it.
struct PortRef {
  std::string resource;
  std::string ibdev;
  int port = 0;
  std::string netdev;  // the HCA's netdevs, comma-separated; may be empty
  bool operator==(const PortRef& o) const {
    return resource == o.resource && ibdev == o.ibdev && port == o.port && netdev == o.netdev;
  }
};

struct PortMetricsOptions {
  std::string sys_root = "/sys";
  std::chrono::milliseconds min_interval{1000};
  size_t max_ports = 512;
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

class PortCounterCollector {
 public:
  // Adds the families to `registry` (errors are logged; the collector then does nothing) and
  // registers Collect as a collect hook that holds the collector weakly: once the returned
  // pointer is gone, scrapes skip it. `ports` lists the ports to read; it runs on the scrape
  // thread and must be thread-safe. `registry` must outlive the collector.
  static std::shared_ptr<PortCounterCollector> Register(MetricsRegistry* registry,
                                                        std::function<std::vector<PortRef>()> ports,
                                                        PortMetricsOptions options);

  PortCounterCollector(std::function<std::vector<PortRef>()> ports, PortMetricsOptions options);

  // Reads the counters unless the last read is younger than min_interval.
  void Collect() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::function<std::vector<PortRef>()> ports_;
  const PortMetricsOptions options_;
  Counter* bytes_ = nullptr;
  Counter* packets_ = nullptr;
  Counter* hw_ = nullptr;
  Gauge* read_seconds_ = nullptr;

  absl::Mutex mu_;
  bool collected_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> logged_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdmashare::deviceplugin
