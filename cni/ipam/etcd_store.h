// EtcdStore: IpamStore over etcd (v3 JSON gateway, see etcd_client.h) for address pools shared
// by several nodes. Key layout under `prefix` (default "/rdmashare/ipam"):
//
//   <prefix>/pools/<pool>/ips/<ip>
//       one reservation, JSON {"node", "network", "containerID", "ifname", "netns",
//       "podNamespace", "podName", "podUID"[, "quarantineUntil"]}; created only by a txn with
//       compare create_revision == 0, so two nodes can never hold one address, and deleted only
//       by a txn with compare mod_revision == <revision this node read>, so a release never
//       removes a record that changed hands meanwhile.
//   <prefix>/pools/<pool>/nodes/<node>/last_reserved/<N>
//       last address this node handed out from range set N (a hint; per node so nodes spread
//       over the pool instead of racing for the same next address).
//
// `network` in IpamStore calls is the pool id (ipam "pool", else the network name). Records of
// another node or another network sharing the pool come back from List with `foreign` set.
// Lock() is a local flock (<lock_dir>/<pool>/lock, LocalStore's): it orders this node's
// invocations (one reservation per (node, containerID, ifname)); nodes are kept apart by the CAS
// transactions alone.
//
// Thread-safe; the client is shared and serializes its requests.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cni/ipam/etcd_client.h"
#include "cni/ipam/local_store.h"
#include "cni/ipam/store.h"

namespace rdmashare::cni::ipam {

inline constexpr char kDefaultEtcdPrefix[] = "/rdmashare/ipam";

class EtcdStore : public IpamStore {
 public:
  // `client` must outlive the store. `node` and `network` identify this caller's records.
  // `lock_dir` holds the local per-pool lock files.
  EtcdStore(EtcdClient* client, std::string prefix, std::string node, std::string network,
            std::string lock_dir);

  absl::StatusOr<std::unique_ptr<StoreLock>> Lock(const std::string& pool,
                                                  std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<Reservation>> List(const std::string& pool) override;
  absl::StatusOr<bool> Reserve(const std::string& pool, const Reservation& r) override;
  // Deletes the record only if it is unchanged since this store read or wrote it (a record never
  // seen is read first). Records of other nodes/networks are refused (FailedPrecondition).
  absl::Status Release(const std::string& pool, const std::string& ip) override;
  absl::StatusOr<std::string> LastReserved(const std::string& pool, int pool_index) override;
  absl::Status SetLastReserved(const std::string& pool, int pool_index,
                               const std::string& ip) override;

  // <prefix>/pools/<pool>/ips/ and the key of one address.
  std::string IpsPrefix(const std::string& pool) const;
  std::string IpKey(const std::string& pool, const std::string& ip) const;

  const std::string& node() const { return node_; }
  const std::string& network() const { return network_; }

 private:
  Reservation Decode(const std::string& ip, const KeyValue& kv) const;

  EtcdClient* client_;
  const std::string prefix_, node_, network_;
  LocalStore locks_;
  absl::Mutex mu_;
  // Key -> mod revision last seen by this store.
  std::map<std::string, int64_t> revisions_ ABSL_GUARDED_BY(mu_);
};

// Why `value` is not a valid reservation record (not JSON, not an object, a field of the wrong
// type, no containerID or node), or "" when it is one. Such records count as taken, carry
// Reservation::error, and are never released, expired or garbage-collected by the allocator.
std::string RecordProblem(const std::string& value);

// The reservation that `kv` (key <prefix>/pools/<pool>/ips/<ip>, `ip` its last segment) holds,
// as seen by `node` / `network`: Reservation::error (naming the key) for a value RecordProblem
// refuses or a key whose last segment is no address; `foreign` when the record belongs to another
// node or network.
Reservation DecodeEtcdRecord(const KeyValue& kv, const std::string& ip, const std::string& node,
                             const std::string& network);

// JSON value of a reservation record (see the layout above).
std::string EncodeEtcdRecord(const Reservation& r);

// Releases every reservation of `node` in `pool` (reclaiming a dead node's addresses; what
// `rdmashare pool release --node N` calls). Returns how many were released.
absl::StatusOr<int> ReleaseNode(EtcdClient* client, const std::string& prefix,
                                const std::string& pool, const std::string& node);

}  // namespace rdmashare::cni::ipam
