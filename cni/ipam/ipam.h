// rdmashare-ipam, in-process API: what the macvlan plugin calls when its "ipam.type" is
// "rdmashare-ipam", and what the standalone rdmashare-ipam binary (main.cc) runs.
//
// Every call opens the store named by the IPAM config ("dataDir", default
// /var/lib/cni/networks, host-local's layout) and takes the network's lock for the duration of
// the call (bounded wait; timeout -> code 11). The functions are thread-safe and process-safe.
// Errors are CniError statuses: 7 bad config (incl. a network or pool name that is not
// [A-Za-z0-9][A-Za-z0-9_.-]{0,199}), 100 pool exhausted, 103 requested address taken,
// 105 corrupted record, 11 lock timeout, 5 I/O.
//
// IPAM config (the "ipam" object), two forms that are never mixed (code 7):
//  host-local form: {"type", "ranges": [[{"subnet", "rangeStart", "rangeEnd", "gateway"}]],
//                    "routes": [{"dst", "gw"}], "resolvConf", "dataDir"}
//  pool form:       {"type", "subnet", "ips": ["a", "a-b"], "excludeIPs": [...], "gateway",
//                    "routes", "dataDir"}  or  {"type", "pools": [{subnet, ips, ...}, ...],
//                    "routes", "dataDir"} for dual stack.
//  store (both forms): "store": {"type": "local" (default) | "etcd", "endpoints": [...],
//        "prefix" (default /rdmashare/ipam), "dialTimeoutMs" (2000), "requestTimeoutMs" (5000),
//        "maxResponseBytes" (64 MiB, 65536..1073741824: largest etcd answer body accepted),
//        "tls": {"ca", "cert", "key"} (PEM files; https:// endpoints need "ca"; see
//        etcd_client.h)} (see etcd_store.h for the key layout); "pool": pool id in a shared store
//        (default: the network name, so networks naming one pool share its addresses); "nodeName",
//        else the first line of "nodeNameFile" (default /etc/rdmashare/nodename), else the host
//        name. With etcd, a DEL that cannot reach etcd is journaled under
//        <dataDir>/<pool>/etcd-journal and answered with success; every later invocation that
//        reaches etcd flushes it.
//  both: "dataDir", "lockTimeoutMs" (default 10000), "quarantineSeconds" (default 600),
//        "fsync" (default true: each lease record is fdatasync'ed before it becomes visible;
//        false trades crash durability for ~8 ms less per ADD on slow disks), "logFile",
//        "logLevel" (the binary only).
// Requested addresses: CNI_ARGS "IP=a,b" (malformed -> code 4), args.cni.ips and
// runtimeConfig.ips (bare or CIDR; malformed -> 7); each must be allocatable in one pool (7)
// and free (103).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/ipam/store.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/result.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

// The "type" value that selects in-process IPAM.
inline constexpr char kIpamType[] = "rdmashare-ipam";

struct IpamArgs {
  std::string container_id;
  std::string ifname;
  // Pod netns path (stored in the sidecar metadata; may be empty).
  std::string netns;
  // Network name (NetConf::name): the store directory.
  std::string network_name;
  // The "ipam" object of the network config.
  nlohmann::json ipam_conf;
  // NetConf::runtime_config ("ips" requests addresses).
  nlohmann::json runtime_config = nlohmann::json::object();
  // Parsed CNI_ARGS ("IP=" requests addresses; K8S_POD_* go to the sidecar).
  std::map<std::string, std::string> cni_args;
  // NetConf::args ("cni.ips" requests addresses).
  nlohmann::json args = nlohmann::json::object();
  // Pod identity for the sidecar; when empty, taken from cni_args K8S_POD_NAMESPACE/NAME/UID.
  std::string pod_namespace, pod_name, pod_uid;
};

// Reserves one address per pool / range set for (container_id, ifname) and returns them with
// gateways, the config's routes and DNS (resolvConf). Result::interfaces is empty and
// IpConfig::interface unset: the caller fills them in. An existing reservation for the same
// owner is returned unchanged (idempotent ADD). When `reserved` is not null it receives the
// addresses THIS call reserved (empty when the owner already held everything): what the caller's
// undo may release (IpamRelease) without taking an address from a concurrent or earlier ADD of the
// same owner that is using it.
absl::StatusOr<Result> IpamAdd(const IpamArgs& args, std::vector<std::string>* reserved = nullptr);

// Releases those of `ips` that (container_id, ifname) still holds; other reservations of the
// owner stay. The undo of a failed ADD, with the addresses IpamAdd reported as reserved by it.
absl::Status IpamRelease(const IpamArgs& args, const std::vector<std::string>& ips);

// Releases every reservation of (container_id, ifname) in the network. Succeeds when nothing is
// held (repeated DEL, DEL after a failed ADD).
absl::Status IpamDel(const IpamArgs& args);

// Verifies that the owner holds exactly the addresses of `prev` that fall in this network's
// pools (code 7 when prev lists an address not held, code 3 when nothing is held).
absl::Status IpamCheck(const IpamArgs& args, const Result& prev);

// Releases every reservation of THIS network whose owner is not in `valid`, plus expired
// quarantines. Reservations of other networks are not touched.
absl::Status IpamGc(const IpamArgs& args, const std::vector<Attachment>& valid);

// Moves `ip` (held by args' owner, or free) into quarantine: it stays reserved under an owner
// no container id can have ("_quarantine") for "quarantineSeconds", so the next ADD skips it.
// An expired quarantine is released lazily by the next ADD or GC of the network.
absl::Status IpamQuarantine(const IpamArgs& args, const std::string& ip);

// STATUS: OK when the store is usable and at least one pool can still hand out an address;
// code 50 otherwise (message says why).
absl::Status IpamStatus(const IpamArgs& args);

// Usage of one pool (range set) of a network's IPAM config, for `rdmashare pool`.
struct PoolUsage {
  // Pool::ToString() of the range set.
  std::string ranges;
  // Allocatable addresses (counted up to kPoolCountLimit; `total_exact` false beyond).
  uint64_t total = 0;
  bool total_exact = true;
  // Reservations inside the range set (every node's, with `node` set for shared stores).
  std::vector<Reservation> holders;
  // etcd store with blocks: the claimed blocks inside the range set, and the holders whose
  // address lies outside their node's blocks (borrowed when the pool had no free block).
  struct Block {
    std::string cidr, node;
    uint64_t used = 0;
    int64_t empty_since = 0;
  };
  std::vector<Block> blocks;
  std::set<std::string> borrowed;
  // Unreadable block claims (named with the problem).
  std::vector<std::string> block_errors;
  uint64_t used() const { return holders.size(); }
  uint64_t free() const { return total > holders.size() ? total - holders.size() : 0; }
};
inline constexpr uint64_t kPoolCountLimit = uint64_t{1} << 20;

// Per range set of the config: size, used/free counts and who holds what, from whichever store
// the config names (local or etcd). What the `rdmashare pool` CLI command calls.
absl::StatusOr<std::vector<PoolUsage>> IpamPoolReport(const IpamArgs& args);

// Reclaims every reservation and block of `node` in the (etcd) store and pool named by args'
// config (a dead node's addresses; `rdmashare pool release --node N`). Returns how many
// addresses and blocks were released. Code 7 when the config's store is not etcd.
absl::StatusOr<NodeRelease> IpamReleaseNode(const IpamArgs& args, const std::string& node);

// What IpamReleaseQuarantined did.
struct QuarantineRelease {
  std::vector<std::string> released;
  // Quarantines it could not release, with the reason (e.g. another node's, on etcd).
  std::vector<std::string> skipped;
};

// Ends quarantines before their "quarantineSeconds" run out (`rdmashare pool release
// --quarantined [--ip A]`), under the network's lock: every quarantined address of the pool
// (on etcd: whichever node quarantined it), or only `ip`. With `ip`, an address that is not
// quarantined is refused (code 7: a container holds it, or it is free) and an unknown one is
// NotFound.
absl::StatusOr<QuarantineRelease> IpamReleaseQuarantined(const IpamArgs& args,
                                                         const std::string& ip);

}  // namespace rdmashare::cni::ipam
