// What libibverbs (rdma-core) reports about the node's RDMA devices, and its comparison with
// what sysfs shows.
//
// sysfs and verbs normally tell the same story: the kernel serves both. They part when the
// verbs side is broken (a provider that does not match the device, a stale uverbs node after a
// driver reload, a GID cache that lags) or when the sysfs side is (a driver exporting wrong
// attributes). `rdmashare doctor` reads both and reports where they disagree.
//
// VerbsReader is the interface; IbverbsReader (rdma/ibverbs_reader.h, library rs_rdma_verbs)
// is the real one over rdma-core's libibverbs; FakeVerbsReader serves tests. The records here
// carry verbs' answers already translated into sysfs's words (port state "ACTIVE", GIDs as
// "fe80:0000:...") so the comparison is a plain function of two values.
//
// Threading: records and free functions are plain values / pure (ReadSysfsRdmaView reads files
// and keeps no state). FakeVerbsReader is guarded by a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rdma/device.h"
#include "rdma/gid_table.h"

namespace rdmashare::rdma {

// The type of a GID entry as verbs reports it (enum ibv_gid_type).
enum class VerbsGidType { kIb, kRoceV1, kRoceV2 };

// "IB", "RoCE v1" or "RoCE v2".
const char* VerbsGidTypeName(VerbsGidType type);

// One valid entry of a port's GID table (struct ibv_gid_entry).
struct VerbsGid {
  int index = 0;
  // In sysfs's form: eight groups of four lower-case hex digits ("fe80:0000:...:0001").
  std::string gid;
  VerbsGidType type = VerbsGidType::kIb;
  // Interface index of the entry's netdev (0: none, as on InfiniBand ports). The index is the
  // netdev's own network namespace's: a pod's macvlan reports its index in the pod.
  int ndev_ifindex = 0;
  // Name of ndev_ifindex in the reader's network namespace; empty when nothing there has that
  // index (the netdev lives in another namespace) or ndev_ifindex is 0.
  std::string ndev;
  bool operator==(const VerbsGid& o) const {
    return index == o.index && gid == o.gid && type == o.type && ndev_ifindex == o.ndev_ifindex &&
           ndev == o.ndev;
  }
};

// One port of a device (ibv_query_port).
struct VerbsPort {
  int number = 0;
  // The port state in sysfs's words: "NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER"
  // ("UNKNOWN" for a value rdma-core does not define).
  std::string state;
  LinkLayer link_layer = LinkLayer::kUnknown;
  // Size of the port's GID table (gid_tbl_len).
  int gid_tbl_len = 0;
  // The valid entries of the port's table, by index (ibv_query_gid_table lists only those).
  std::vector<VerbsGid> gids;
  bool operator==(const VerbsPort& o) const {
    return number == o.number && state == o.state && link_layer == o.link_layer &&
           gid_tbl_len == o.gid_tbl_len && gids == o.gids;
  }
};

// One device libibverbs lists.
struct VerbsDevice {
  // Kernel name of the device ("mlx5_0").
  std::string ibdev;
  // Why the device could not be opened or queried ("ibv_open_device: Permission denied"); empty
  // when `ports` holds the answers.
  std::string error;
  // Ports, by number.
  std::vector<VerbsPort> ports;
  bool operator==(const VerbsDevice& o) const {
    return ibdev == o.ibdev && error == o.error && ports == o.ports;
  }
};

// Source of the verbs view of the node. The view describes the host the process runs on, never
// a sysfs tree elsewhere (callers compare it only with the running host's /sys).
class VerbsReader {
 public:
  virtual ~VerbsReader() = default;
  // Every device libibverbs lists, sorted by ibdev; a device that cannot be opened or queried
  // is listed with its `error`. A host without RDMA (or without the kernel's verbs interface)
  // is an empty list, not an error. Errors: Unavailable when libibverbs cannot list devices,
  // ResourceExhausted past the reader's caps.
  virtual absl::StatusOr<std::vector<VerbsDevice>> Devices() = 0;
};

// Test double: returns its answers in order, then repeats the last one.
class FakeVerbsReader final : public VerbsReader {
 public:
  explicit FakeVerbsReader(std::vector<absl::StatusOr<std::vector<VerbsDevice>>> answers);
  absl::StatusOr<std::vector<VerbsDevice>> Devices() override;
  // Number of Devices calls so far.
  int calls() const;

 private:
  mutable absl::Mutex mu_;
  const std::vector<absl::StatusOr<std::vector<VerbsDevice>>> answers_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// The sysfs side of the comparison.
struct SysfsRdmaView {
  NodeInventory inventory;
  // GID table of each (ibdev, port) whose gids/ directory could be read.
  std::map<std::pair<std::string, int>, std::vector<GidTableEntry>> gid_tables;
  // The netdevs of the reader's network namespace (<sys>/class/net).
  std::set<std::string> netdevs;
};

// Reads the GID table of every port of `inventory` and the names under <sys_root>/class/net.
// A table or a directory that cannot be read is left out (its comparison is skipped).
SysfsRdmaView ReadSysfsRdmaView(const std::string& sys_root, NodeInventory inventory);

// What one disagreement is about.
enum class VerbsDisagreementKind {
  kDeviceOnlyInSysfs,
  kDeviceOnlyInVerbs,
  kPortOnlyInSysfs,
  kPortOnlyInVerbs,
  kPortState,
  kLinkLayer,
  kGidTableSize,
  // The entry's GID (one side may have none: "unused" in sysfs, "none" in verbs).
  kGidValue,
  kGidType,
  kGidNetdev,
};

// One point where sysfs and verbs disagree.
struct VerbsDisagreement {
  std::string ibdev;
  // 0 for device-level records.
  int port = 0;
  // -1 unless the record is about one GID entry.
  int gid_index = -1;
  VerbsDisagreementKind kind = VerbsDisagreementKind::kDeviceOnlyInSysfs;
  // What each side says, in sysfs's words ("ACTIVE", "Ethernet", "16", a GID, a netdev).
  std::string sysfs;
  std::string verbs;
  // One clause without the device name: "port 1 state: sysfs ACTIVE, verbs DOWN".
  std::string Describe() const;
  bool operator==(const VerbsDisagreement& o) const {
    return ibdev == o.ibdev && port == o.port && gid_index == o.gid_index && kind == o.kind &&
           sysfs == o.sysfs && verbs == o.verbs;
  }
};

// Compares the two views device by device (by ibdev), port by port and GID entry by entry.
// Devices whose verbs `error` is set are skipped (nothing to compare), as are the GID entries of
// ports without a sysfs table. A GID entry's type is compared when sysfs has one ("IB/RoCE v1"
// stands for IB and RoCE v1 alike, as the kernel prints both so); its netdev is compared by
// name when both sides name a netdev of this namespace (ifindexes of other namespaces cannot be
// compared), and always for presence (a netdev on one side only). Ordered by ibdev, port, GID
// index.
std::vector<VerbsDisagreement> CompareVerbsWithSysfs(const std::vector<VerbsDevice>& verbs,
                                                     const SysfsRdmaView& sysfs);

// ---------------------------------------------------------------------------------------------
// Translation of verbs' numbers into sysfs's words (the values of rdma-core's enums; the real
// reader checks them against <infiniband/verbs.h> at compile time).

// enum ibv_port_state -> "DOWN", "ACTIVE", ...; "UNKNOWN" outside 0-5.
std::string VerbsPortStateName(uint32_t state);
// enum ibv_link_layer (0 unspecified, 1 InfiniBand, 2 Ethernet) -> LinkLayer.
LinkLayer VerbsLinkLayer(uint32_t link_layer);
// enum ibv_gid_type (0 IB, 1 RoCE v1, 2 RoCE v2) -> VerbsGidType; InvalidArgument otherwise.
absl::StatusOr<VerbsGidType> VerbsGidTypeFromValue(uint32_t type);
// 16 raw GID bytes (network order) -> "fe80:0000:0000:0000:0000:0000:0000:0001".
std::string GidText(const uint8_t (&raw)[16]);

}  // namespace rdmashare::rdma
