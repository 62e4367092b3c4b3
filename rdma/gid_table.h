// The RoCE GID table of one RDMA port, as sysfs shows it (ports/<n>/gids/<index>,
// gid_attrs/types/<index>, gid_attrs/ndevs/<index>), and the one computation of how many more
// pods a port's table can hold. Used by rdmashare-dp (GID-room warning), `rdmashare doctor` and
// `rdmashare gid`.
//
// Free functions over a sysfs root; no state; thread-safe. Reads are bounded (ReadAttr: 4 KiB,
// regular files only).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdmashare::rdma {

// The all-zero GID the kernel shows for an unused entry.
inline constexpr char kZeroGid[] = "0000:0000:0000:0000:0000:0000:0000:0000";

// GID entries a pod's macvlan on a RoCE port adds to that port's table: RoCE v1 and v2 for its
// IPv4 address, and v1 and v2 for the IPv6 link-local address the kernel gives every macvlan
// (unless IPv6 is disabled in the pod).
inline constexpr int kGidEntriesPerPod = 4;

// One entry of a port's GID table. Unused entries read as kZeroGid; their type and netdev
// attributes are unreadable (the kernel answers EINVAL), left empty here.
struct GidTableEntry {
  int index = 0;
  std::string gid;
  std::string type;    // "RoCE v2", "RoCE v1", "IB/RoCE v1"; empty when unused or unreadable
  std::string netdev;  // gid_attrs/ndevs/<index>; empty when unused or unreadable
  bool used() const { return !gid.empty() && gid != kZeroGid; }
  bool operator==(const GidTableEntry& o) const {
    return index == o.index && gid == o.gid && type == o.type && netdev == o.netdev;
  }
};

// Reads <sys_root>/class/infiniband/<ibdev>/ports/<port>/gids (and gid_attrs), sorted by
// index. NotFound when the port has no gids directory.
absl::StatusOr<std::vector<GidTableEntry>> ReadGidTable(const std::string& sys_root,
                                                        const std::string& ibdev, int port);

// Room for pods in one port's GID table.
struct GidRoom {
  int size = 0;  // entries in the table
  int used = 0;  // entries holding a GID
  int free() const { return size > used ? size - used : 0; }
  // Pods whose macvlan addresses still fit (kGidEntriesPerPod each).
  int pods_fit() const { return free() / kGidEntriesPerPod; }
  bool operator==(const GidRoom& o) const { return size == o.size && used == o.used; }
};

// Counts the used entries of one port's table (an unreadable table counts as size 0).
GidRoom ReadGidRoom(const std::string& sys_root, const std::string& ibdev, int port);

// The one sentence about a port's room, shared by the daemon's warning and doctor:
// "12 of 16 GID entries free (4 used): room for 3 pods (4 entries each: RoCE v1+v2 of the pod's
// IPv4 and IPv6 link-local addresses)".
std::string DescribeGidRoom(const GidRoom& room);

}  // namespace rdmashare::rdma
