// `rdmashare pool`: usage of rdmashare-ipam address pools (used/free, who holds what) and
// reclaiming a dead node's addresses, for the local file store and the shared etcd store.
//
// The network is named by its config file (--conf): a CNI network config, a conflist (the first
// plugin with an "ipam" object of type rdmashare-ipam) or a NetworkAttachmentDefinition in JSON
// (`kubectl get net-attach-def NAME -o json`, spec.config holding the network config). The
// store, its endpoints/TLS files/data dir and the pool id come from that config, exactly as
// rdmashare-ipam reads them; --data-dir overrides the local store's directory.
//
// Stateless functions; thread-safe.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/ipam/ipam.h"
#include "nlohmann/json.hpp"
#include "tools/cli/command.h"

namespace rdmashare::cli {

// A network config file reduced to what `pool` needs.
// NOLINTNEXTLINE(bugprone-exception-escape): the implicit moves are noexcept (nlohmann::json's).
struct PoolTarget {
  // Network name (NetConf "name").
  std::string network;
  // The "ipam" object (type rdmashare-ipam).
  nlohmann::json ipam;
};

// Reads `path` (network config, conflist or NetworkAttachmentDefinition JSON). InvalidArgument
// naming the file and the problem for anything else; NotFound when it cannot be read.
absl::StatusOr<PoolTarget> LoadPoolTarget(const std::string& path);

// What a `pool list` shows for one network.
struct PoolListing {
  std::string network;
  // Pool id in the store (ipam "pool", else the network name).
  std::string pool;
  // "local" or "etcd"; where: the data dir or the endpoints.
  std::string store;
  std::string where;
  std::vector<cni::ipam::PoolUsage> ranges;
};

// Reads the usage of `target`'s pools from its store. `data_dir` (non-empty) overrides the
// config's dataDir. Errors from the store (etcd unreachable: CniError 11, ...) are returned.
absl::StatusOr<PoolListing> ListPool(const PoolTarget& target, const std::string& data_dir);

// Human-readable listing: a header per network, a line per range set with total/used/free, then
// one line per holder (address, node, container, ifname, pod) or the problem of an unreadable
// record.
void PrintPoolListing(const PoolListing& listing, std::ostream& out);

// The listing as JSON: {"network","pool","store","where","ranges":[{"ranges","total",
// "totalExact","used","free","holders":[{"ip","node","network","containerID","ifname","netns",
// "podNamespace","podName","podUID","quarantineUntil"?,"error"?}]}]}.
nlohmann::ordered_json PoolListingJson(const PoolListing& listing);

// Releases every reservation of `node` in `target`'s etcd pool (`pool` non-empty overrides the
// pool id). Returns how many were released. CniError 7 for the local store (node-local by
// construction: there is no other node's address to reclaim).
absl::StatusOr<cni::ipam::NodeRelease> ReleasePoolNode(const PoolTarget& target,
                                                       const std::string& node,
                                                       const std::string& pool);

// Ends quarantines early (`pool release --quarantined [--ip A]`): every quarantined address of
// `target`'s pool, or only `ip`. `data_dir` / `pool` non-empty override the config's.
absl::StatusOr<cni::ipam::QuarantineRelease> ReleasePoolQuarantined(const PoolTarget& target,
                                                                    const std::string& ip,
                                                                    const std::string& data_dir,
                                                                    const std::string& pool);

// `rdmashare pool [list|release] --conf FILE ...`: ListPool / ReleasePoolNode /
// ReleasePoolQuarantined with their flag rules (a flag of the other action is a usage error).
const Command& PoolCommand();

}  // namespace rdmashare::cli
