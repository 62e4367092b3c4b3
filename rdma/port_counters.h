// RDMA port counters from sysfs, for the device plugin's /metrics: the InfiniBand port counters
// that every RDMA device has (ports/<n>/counters/port_{xmit,rcv}_{data,packets}) and the
// driver's hardware counters (ports/<n>/hw_counters/*, e.g. mlx5's np_cnp_sent,
// rp_cnp_handled, np_ecn_marked_roce_packets, out_of_sequence, packet_seq_err,
// local_ack_timeout_err, rx_icrc_encapsulated).
//
// Free functions over a sysfs root; thread-safe; every read is bounded (regular files of at most
// 4 KiB, at most kMaxHwCounters hardware counters per port, names [a-z0-9_] only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdmashare::rdma {

// The hardware counters read per port at most (mlx5 has about 40; the rest is ignored).
inline constexpr size_t kMaxHwCounters = 128;

// Counters of one port. The data counters are in the units the kernel reports: 4-octet words
// (PortXmitData/PortRcvData of the InfiniBand spec); `*_bytes()` converts.
struct PortCounters {
  uint64_t xmit_data = 0;
  uint64_t rcv_data = 0;
  uint64_t xmit_packets = 0;
  uint64_t rcv_packets = 0;
  bool has_port_counters = false;  // counters/ was there and readable
  // hw_counters/<name> values, sorted by name.
  std::vector<std::pair<std::string, uint64_t>> hw;
  // Files that were there but could not be read or parsed (named, for the log).
  std::vector<std::string> problems;

  uint64_t xmit_bytes() const { return xmit_data * 4; }
  uint64_t rcv_bytes() const { return rcv_data * 4; }
  bool operator==(const PortCounters& o) const {
    return xmit_data == o.xmit_data && rcv_data == o.rcv_data && xmit_packets == o.xmit_packets &&
           rcv_packets == o.rcv_packets && has_port_counters == o.has_port_counters && hw == o.hw &&
           problems == o.problems;
  }
};

// Reads the counters of <sys_root>/class/infiniband/<ibdev>/ports/<port>. NotFound when the
// port does not exist; a port without counters/ or hw_counters/ gives empty values.
absl::StatusOr<PortCounters> ReadPortCounters(const std::string& sys_root, const std::string& ibdev,
                                              int port);

}  // namespace rdmashare::rdma
