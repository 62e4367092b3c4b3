// IpamStore: where reservations live. One interface, small on purpose: the local file backend
// (LocalStore, host-local's on-disk layout) is the default; EtcdStore keeps pools shared by
// several nodes in etcd; tests use FakeStore.
//
// Threading/ownership: a store object may be shared by threads. Callers take the network's lock
// with Lock() (also excludes other processes for LocalStore) and hold the returned StoreLock
// while they call the other methods for that network; the methods themselves do not lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/ip.h"

namespace rdmashare::cni::ipam {

// Owner id of quarantined addresses. A leading '_' is not allowed in container ids, so no
// container can ever own (or release) a quarantined address by accident.
inline constexpr char kQuarantineOwner[] = "_quarantine";

struct Reservation {
  // Canonical address text (also the record's file name in LocalStore).
  std::string ip;
  // Owner. `ifname` is empty for legacy host-local records that hold only the container id.
  std::string container_id;
  std::string ifname;
  // Sidecar metadata (not part of host-local's record; List may leave it empty).
  std::string netns;
  std::string pod_namespace, pod_name, pod_uid;
  // Unix seconds after which a quarantine ends (owner kQuarantineOwner only).
  int64_t quarantine_until = 0;
  // Shared stores (EtcdStore): the node and network that made the reservation. `foreign` is set
  // by the store when either differs from the caller's: such records count as taken but are
  // never owned, released, garbage-collected or expired by this caller.
  std::string node, owner_network;
  bool foreign = false;
  // Non-empty when the record could not be read: the address counts as taken and the message
  // names the file and the problem.
  std::string error;

  bool quarantined() const { return container_id == kQuarantineOwner; }
  // True when this reservation belongs to (container_id, ifname); legacy records (no ifname)
  // match on the container id alone, like host-local.
  bool OwnedBy(const std::string& id, const std::string& if_name) const {
    return error.empty() && !foreign && container_id == id && (ifname.empty() || ifname == if_name);
  }
  bool operator==(const Reservation& o) const {
    return ip == o.ip && container_id == o.container_id && ifname == o.ifname && netns == o.netns &&
           pod_namespace == o.pod_namespace && pod_name == o.pod_name && pod_uid == o.pod_uid &&
           quarantine_until == o.quarantine_until && error == o.error && node == o.node &&
           owner_network == o.owner_network && foreign == o.foreign;
  }
};

// A block of a pool claimed by one node (stores with per-node blocks: EtcdStore with a
// blockSize). The node hands out addresses of its own blocks first; `empty_since` (Unix seconds,
// 0 = in use) marks a block that lost its last reservation, released after a grace period.
struct BlockClaim {
  IpPrefix cidr;
  std::string node;
  int64_t empty_since = 0;
  int64_t mod_revision = 0;
  // Non-empty when the claim record could not be read (it counts as claimed by nobody we know).
  std::string error;
};

// What releasing a (dead) node's share of a shared pool did.
struct NodeRelease {
  int addresses = 0;
  int blocks = 0;
};

// Held while a network is being modified; releases the lock on destruction.
class StoreLock {
 public:
  virtual ~StoreLock() = default;
};

class IpamStore {
 public:
  virtual ~IpamStore() = default;

  // Takes `network`'s exclusive lock, waiting at most `timeout` (CniError 11 after that).
  virtual absl::StatusOr<std::unique_ptr<StoreLock>> Lock(const std::string& network,
                                                          std::chrono::milliseconds timeout) = 0;
  // Every reservation of `network` (unreadable records included, with `error` set). An unknown
  // network has none.
  virtual absl::StatusOr<std::vector<Reservation>> List(const std::string& network) = 0;
  // The reservations this caller's ADD/DEL/CHECK/GC must see: every one by default. A store with
  // per-node blocks returns this node's records only (any network sharing the pool; those of
  // another network come back `foreign`), so an ADD's cost does not grow with the pool; other
  // nodes' records are then found by Reserve's compare-and-swap.
  virtual absl::StatusOr<std::vector<Reservation>> ListForNode(const std::string& network) {
    return List(network);
  }
  // Records `r`. Returns false (and changes nothing) when r.ip is already reserved.
  virtual absl::StatusOr<bool> Reserve(const std::string& network, const Reservation& r) = 0;
  // Removes the reservation of `ip` (and its metadata). OK when there is none.
  virtual absl::Status Release(const std::string& network, const std::string& ip) = 0;
  // Last address handed out from pool `pool_index` ("" when none is recorded).
  virtual absl::StatusOr<std::string> LastReserved(const std::string& network, int pool_index) = 0;
  virtual absl::Status SetLastReserved(const std::string& network, int pool_index,
                                       const std::string& ip) = 0;
  // The pool index the following Reserve calls are for: a store may record the last reserved
  // address in the same write as the reservation (SetLastReserved then has nothing left to do).
  virtual void ReservingFromPool(int pool_index) {}

  // Per-node blocks. BlockSize() is the number of addresses of a block, 0 when the store has no
  // blocks (the default; the other block calls are then never made).
  virtual uint64_t BlockSize() const { return 0; }
  // Seconds an empty block stays claimed before its node releases it.
  virtual int64_t BlockGraceSeconds() const { return 0; }
  // The caller's node name (owner of its claims).
  virtual std::string NodeName() const { return ""; }
  // Every claimed block of `network`'s pool.
  virtual absl::StatusOr<std::vector<BlockClaim>> ListBlocks(const std::string& network);
  // Claims `cidr` for this node with one compare-and-swap; nullopt when another node has it.
  virtual absl::StatusOr<std::optional<BlockClaim>> ClaimBlock(const std::string& network,
                                                               const IpPrefix& cidr);
  // Sets the claim's empty_since (0 = in use) if the claim is unchanged since read (updates
  // `claim`); false when it changed meanwhile.
  virtual absl::StatusOr<bool> MarkBlock(const std::string& network, BlockClaim& claim,
                                         int64_t empty_since);
  // Drops this node's claim if unchanged since read.
  virtual absl::StatusOr<bool> ReleaseBlock(const std::string& network, const BlockClaim& claim);
};

// Reservations of (container_id, ifname) among `all`.
std::vector<Reservation> FilterByOwner(const std::vector<Reservation>& all,
                                       const std::string& container_id, const std::string& ifname);

}  // namespace rdmashare::cni::ipam
