// IbverbsReader: the VerbsReader over rdma-core's libibverbs (rdma/verbs.h has the interface).
//
// Lists the devices with ibv_get_device_list, opens each (ibv_open_device on its
// /dev/infiniband/uverbsN), and asks ibv_query_device for the port count, ibv_query_port for
// each port's state, link layer and GID table size, and ibv_query_gid_table for every valid GID
// entry (value, type, netdev ifindex; the ifindex is named with if_indextoname). The library
// rs_rdma_verbs links libibverbs and every provider from their static archives
// (RDMA_STATIC_PROVIDERS=all: static libibverbs never loads providers at run time), so the
// static `rdmashare` binary carries them; nothing else in rdmashare depends on it.
//
// The verbs calls are ioctls on the uverbs node that the kernel answers at once (no deadline to
// enforce). Caps: kMaxDevices devices, kMaxPorts ports per device, kMaxGidEntries GID entries per
// device. A kernel without the verbs interface (ibv_get_device_list fails with ENOSYS, as on a
// host without RDMA) yields an empty list.
//
// Threading: stateless; Devices() may be called from any thread (libibverbs locks its own device
// list). Each call opens and closes the devices it queries.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "rdma/verbs.h"

namespace rdmashare::rdma {

// Reads the running host's devices through libibverbs.
class IbverbsReader final : public VerbsReader {
 public:
  // More devices than this is ResourceExhausted.
  static constexpr int kMaxDevices = 1024;
  // Ports per device read (ibv_device_attr.phys_port_cnt is a uint8_t anyway).
  static constexpr int kMaxPorts = 255;
  // GID entries per device (the sum of its ports' gid_tbl_len); a device past it is listed with
  // an error.
  static constexpr int kMaxGidEntries = 1 << 16;

  absl::StatusOr<std::vector<VerbsDevice>> Devices() override;
};

}  // namespace rdmashare::rdma
