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
//   <prefix>/pools/<pool>/nodes/<node>/ips/<ip>
//       this node's index: a copy of each of its records, written and deleted in the same
//       transaction as the record, so a node reads its own reservations with one range over its
//       own prefix whatever the size of the pool. Records written before the index existed are
//       copied in once (<prefix>/pools/<pool>/nodes/<node>/indexed marks that).
//   <prefix>/pools/<pool>/blocks/<addr>_<prefixlen>
//       a block claimed by a node, JSON {"node", "emptySince"}; created only with compare
//       create_revision == 0 (one owner), changed and deleted only with compare mod_revision.
//
// Blocks (blockSize > 0, the default 16): a node hands out addresses from its own blocks, claims
// the first free block of the pool when they are full, and borrows single addresses from other
// nodes' blocks only when no block is free; an empty block is released after
// blockReleaseSeconds. Blocks are an affinity, not a lock: the address record's
// create_revision == 0 compare still decides every reservation, so nodes without blocks (older
// versions, blockSize 0) share a pool safely with nodes that use them.
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
#include "cni/ipam/config.h"
#include "cni/ipam/etcd_client.h"
#include "cni/ipam/local_store.h"
#include "cni/ipam/store.h"

namespace rdmashare::cni::ipam {

inline constexpr char kDefaultEtcdPrefix[] = "/rdmashare/ipam";

class EtcdStore : public IpamStore {
 public:
  // `client` must outlive the store. `node` and `network` identify this caller's records.
  // `lock_dir` holds the local per-pool lock files.
  // `block_size` 0 = no blocks.
  EtcdStore(EtcdClient* client, std::string prefix, std::string node, std::string network,
            std::string lock_dir, uint64_t block_size = 0,
            int64_t block_release_seconds = kDefaultBlockReleaseSeconds);

  absl::StatusOr<std::unique_ptr<StoreLock>> Lock(const std::string& pool,
                                                  std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<Reservation>> List(const std::string& pool) override;
  // With blocks: this node's records from its index (one range, independent of the pool's size).
  absl::StatusOr<std::vector<Reservation>> ListForNode(const std::string& pool) override;
  absl::StatusOr<bool> Reserve(const std::string& pool, const Reservation& r) override;
  // Deletes the record only if it is unchanged since this store read or wrote it (a record never
  // seen is read first). Records of other nodes/networks are refused (FailedPrecondition).
  absl::Status Release(const std::string& pool, const std::string& ip) override;
  absl::StatusOr<std::string> LastReserved(const std::string& pool, int pool_index) override;
  void ReservingFromPool(int pool_index) override;
  absl::Status SetLastReserved(const std::string& pool, int pool_index,
                               const std::string& ip) override;

  uint64_t BlockSize() const override { return block_size_; }
  int64_t BlockGraceSeconds() const override { return block_release_seconds_; }
  std::string NodeName() const override { return node_; }
  absl::StatusOr<std::vector<BlockClaim>> ListBlocks(const std::string& pool) override;
  absl::StatusOr<std::optional<BlockClaim>> ClaimBlock(const std::string& pool,
                                                       const IpPrefix& cidr) override;
  absl::StatusOr<bool> MarkBlock(const std::string& pool, BlockClaim& claim,
                                 int64_t empty_since) override;
  absl::StatusOr<bool> ReleaseBlock(const std::string& pool, const BlockClaim& claim) override;

  // <prefix>/pools/<pool>/ips/ and the key of one address.
  std::string IpsPrefix(const std::string& pool) const;
  std::string IpKey(const std::string& pool, const std::string& ip) const;
  // This node's index key of `ip`, and the blocks' prefix.
  std::string IndexKey(const std::string& pool, const std::string& ip) const;
  std::string BlocksPrefix(const std::string& pool) const;

  const std::string& node() const { return node_; }
  const std::string& network() const { return network_; }

 private:
  Reservation Decode(const std::string& ip, const KeyValue& kv) const;

  std::string NodePrefix(const std::string& pool) const;
  std::string LastReservedKey(const std::string& pool, int pool_index) const;

  EtcdClient* client_;
  const std::string prefix_, node_, network_;
  const uint64_t block_size_;
  const int64_t block_release_seconds_;
  LocalStore locks_;
  absl::Mutex mu_;
  // Record key -> mod revision and value last seen by this store (Release deletes a record only
  // while it still holds what was read).
  std::map<std::string, int64_t> revisions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> values_ ABSL_GUARDED_BY(mu_);
  // The pool's block claims read by ListForNode in the same request (pool -> claims), handed to
  // the next ListBlocks of that pool once: one round trip fewer per ADD.
  std::map<std::string, std::vector<KeyValue>> prefetched_blocks_ ABSL_GUARDED_BY(mu_);
  // last_reserved values read by ListForNode (key -> value), so LastReserved needs no request.
  std::map<std::string, std::string> last_reserved_ ABSL_GUARDED_BY(mu_);
  // ReservingFromPool's index (-1: none): Reserve also writes that last_reserved key.
  int reserving_pool_ ABSL_GUARDED_BY(mu_) = -1;
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

// Decodes a block claim (key <prefix>/pools/<pool>/blocks/<segment>); BlockClaim::error names a
// key or value that is not a claim.
BlockClaim DecodeBlockClaim(const KeyValue& kv, const std::string& segment);

// Releases every reservation and block claim of `node` in `pool`, and its index and hints
// (reclaiming a dead node's addresses; what `rdmashare pool release --node N` calls).
absl::StatusOr<NodeRelease> ReleaseNode(EtcdClient* client, const std::string& prefix,
                                        const std::string& pool, const std::string& node);

}  // namespace rdmashare::cni::ipam
