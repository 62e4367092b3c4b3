// IpamConfig: the parsed "ipam" object of rdmashare-ipam (both config forms, see ipam.h).
//
// Plain values and a stateless parser; thread-safe. Every error is a CniError with code 7
// (kInvalidNetworkConfig) naming the field and the problem.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/ipam/etcd_client.h"
#include "cni/protocol/result.h"
#include "common/ip.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

// Default store directory (host-local's).
inline constexpr char kDefaultDataDir[] = "/var/lib/cni/networks";

// Bounds of store.maxResponseBytes (default kDefaultMaxResponseBytes, 64 MiB).
inline constexpr long long kMinMaxResponseBytes = 64 * 1024;
inline constexpr long long kMaxMaxResponseBytes = 1ll << 30;

// A contiguous run of candidate addresses inside one subnet.
struct AddrRange {
  IpPrefix subnet;
  IpAddr start;  // inclusive
  IpAddr end;    // inclusive
  // Gateway of the subnet (never allocated); invalid = none.
  IpAddr gateway;

  bool Contains(const IpAddr& ip) const { return start <= ip && ip <= end; }
  // "subnet start-end".
  std::string ToString() const;
};

// One pool (host-local: one range set): each ADD takes exactly one address from each pool.
struct Pool {
  std::vector<AddrRange> ranges;
  // Excluded intervals (inclusive), never allocated.
  std::vector<std::pair<IpAddr, IpAddr>> excludes;

  int family() const { return ranges.empty() ? 0 : ranges.front().subnet.family(); }
  // The range holding `ip`, or nullptr.
  const AddrRange* RangeOf(const IpAddr& ip) const;
  // True when `ip` may be handed out: in a range, not excluded, not a network/broadcast or
  // gateway address.
  bool Allocatable(const IpAddr& ip) const;
  // The first excluded interval containing `ip`, or nullptr.
  const std::pair<IpAddr, IpAddr>* ExcludeOf(const IpAddr& ip) const;
  // Human-readable description for messages ("172.16.11.0/24 172.16.11.1-172.16.11.200").
  std::string ToString() const;
};

// etcd store blocks: a node claims kDefaultBlockSize addresses at a time (a power of two in
// kMinBlockSize..kMaxBlockSize, or 0 for none).
inline constexpr uint64_t kDefaultBlockSize = 16;
inline constexpr uint64_t kMinBlockSize = 4;
inline constexpr uint64_t kMaxBlockSize = 65536;
inline constexpr int64_t kDefaultBlockReleaseSeconds = 300;
inline constexpr int64_t kMaxBlockReleaseSeconds = 30 * 86400;

// ipam "store": where reservations live.
struct StoreConfig {
  // "local" (default, LocalStore under dataDir) or "etcd".
  std::string type = "local";
  // etcd: endpoints tried in turn, key prefix, timeouts (see etcd_client.h / etcd_store.h).
  std::vector<std::string> endpoints;
  std::string prefix = "/rdmashare/ipam";
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
  // "maxResponseBytes": the largest etcd answer body accepted (64 KiB..1 GiB).
  uint64_t max_response_bytes = kDefaultMaxResponseBytes;
  // "tls": {"ca", "cert", "key"} (PEM files; ca required when present).
  EtcdTlsFiles tls;
  // "blockSize": addresses per node block (0 = no blocks: every ADD reads the whole pool);
  // "blockReleaseSeconds": how long an empty block stays claimed by its node.
  uint64_t block_size = kDefaultBlockSize;
  int64_t block_release_seconds = kDefaultBlockReleaseSeconds;
  // "tls": {"sessionCacheSeconds"}: how long a TLS session is cached for the next invocation
  // (0..86400, 0 = never; tls_session_cache.h).
  std::chrono::seconds tls_session_lifetime = kDefaultTlsSessionLifetime;
};

// Longest network or pool name: both become a directory name (LocalStore, the lock and the DEL
// journal) and part of journal file names, so they stay well below NAME_MAX (255).
inline constexpr size_t kMaxStoreNameLength = 200;

// Checks a network or pool name (`what`: "network name", "pool") before it becomes a path
// component or an etcd key segment: [A-Za-z0-9][A-Za-z0-9_.-]*, at most kMaxStoreNameLength
// characters (so no '/', no "..", no NUL). Code 7 naming the value and the rule.
absl::Status ValidateStoreName(const std::string& what, const std::string& name);

// The EtcdClient options of an etcd store config.
EtcdOptions EtcdOptionsFor(const StoreConfig& store);

// Default node-name file (read when "nodeName" is absent; else the host name is used).
inline constexpr char kDefaultNodeNameFile[] = "/etc/rdmashare/nodename";

struct IpamConfig {
  std::vector<Pool> pools;
  std::vector<Route> routes;
  Dns dns;
  std::string data_dir = kDefaultDataDir;
  std::chrono::milliseconds lock_timeout{10000};
  std::chrono::seconds quarantine{600};
  // fdatasync each lease record before it becomes visible ("fsync", default true).
  bool fsync = true;
  std::string log_file;
  std::string log_level;
  StoreConfig store;
  // Pool id in a shared store ("pool"; empty = the network name).
  std::string pool;
  // "nodeName" / "nodeNameFile" (resolved by ResolveNodeName).
  std::string node_name;
  std::string node_name_file = kDefaultNodeNameFile;
};

// The node name: conf.node_name, else the first line of conf.node_name_file, else the host name.
absl::StatusOr<std::string> ResolveNodeName(const IpamConfig& conf);

// Parses the "ipam" object. `data_dir_default` is used when "dataDir" is absent. resolvConf
// (when set) is read from disk into `dns`.
absl::StatusOr<IpamConfig> ParseIpamConfig(const nlohmann::json& ipam,
                                           const std::string& data_dir_default = kDefaultDataDir);

// Parses the resolv.conf text format (nameserver, domain, search, options lines).
Dns ParseResolvConf(const std::string& text);

}  // namespace rdmashare::cni::ipam
