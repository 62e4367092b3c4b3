#include "cni/ipam/ipam.h"

#include <chrono>
#include <memory>

#include "cni/ipam/allocator.h"
#include "cni/ipam/blocks.h"
#include "cni/ipam/config.h"
#include "cni/ipam/etcd_store.h"
#include "cni/ipam/local_store.h"
#include "cni/protocol/error.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Everything one invocation needs: the parsed config, the store and the arguments as the
// allocator sees them (network_name = the store key: the pool id for shared stores).
struct Session {
  IpamConfig conf;
  std::unique_ptr<EtcdClient> client;
  std::unique_ptr<IpamStore> store;
  IpamArgs args;
  std::string journal_dir;  // etcd only
  std::string node;         // etcd only: this invocation's node name
};

absl::StatusOr<Session> Open(const IpamArgs& args) {
  Session s;
  // Both names become path components (store, lock, journal) and etcd key segments.
  RETURN_IF_ERROR(ValidateStoreName("network name", args.network_name));
  ASSIGN_OR_RETURN(s.conf, ParseIpamConfig(args.ipam_conf));
  s.args = args;
  if (s.conf.store.type != "etcd") {
    s.store = std::make_unique<LocalStore>(s.conf.data_dir, s.conf.fsync);
    return s;
  }
  ASSIGN_OR_RETURN(std::string node, ResolveNodeName(s.conf));
  s.node = node;
  std::string pool = s.conf.pool.empty() ? args.network_name : s.conf.pool;
  EtcdOptions etcd = EtcdOptionsFor(s.conf.store);
  // TLS sessions are cached beside the pool's DEL journal, for the next invocation to resume.
  etcd.tls_sessions.base_dir = s.conf.data_dir;
  etcd.tls_sessions.sub_dir = JoinPath(pool, kTlsSessionDirName);
  ASSIGN_OR_RETURN(s.client, EtcdClient::Create(std::move(etcd)));
  s.args.network_name = pool;
  s.store = std::make_unique<EtcdStore>(s.client.get(), s.conf.store.prefix, node,
                                        args.network_name, s.conf.data_dir, s.conf.store.block_size,
                                        s.conf.store.block_release_seconds);
  s.journal_dir = JoinPath(JoinPath(s.conf.data_dir, pool), "etcd-journal");
  return s;
}

// The journal file of (network, container id, ifname): a fixed-length name whatever the length
// of the id (up to 1024 bytes), stable so a repeated DEL replaces its own entry. The entry's
// content names all three; FNV-1a 64 keeps distinct triples apart.
std::string JournalName(const IpamArgs& args) {
  uint64_t h = 1469598103934665603ULL;
  for (const std::string* part : {&args.network_name, &args.container_id, &args.ifname}) {
    for (unsigned char ch : *part) {
      h ^= ch;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;  // separator: ("ab","c") and ("a","bc") differ
    h *= 1099511628211ULL;
  }
  return fmt::format("del-{:016x}.json", h);
}

// Releases journaled DELs whose etcd call failed earlier. Stops at the first unreachable etcd.
absl::Status FlushJournal(Session& s, const Allocator& allocator) {
  if (s.journal_dir.empty() || !PathExists(s.journal_dir)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(s.journal_dir));
  for (const std::string& name : names) {
    if (name.empty() || name[0] == '.') continue;
    std::string path = JoinPath(s.journal_dir, name);
    auto text = ReadFileNoFollow(path);
    if (!text.ok()) continue;
    JsonLimits limits;
    limits.max_depth = 8;
    limits.max_bytes = 64 << 10;
    json j = ParseJsonBounded(*text, path, limits).value_or(json());
    IpamArgs owner = s.args;
    bool ok = j.is_object() && j.value("containerID", json()).is_string() &&
              j.value("ifname", json()).is_string() && j.value("network", json()).is_string();
    if (ok) {
      owner.container_id = j["containerID"].get<std::string>();
      owner.ifname = j["ifname"].get<std::string>();
      // Journal entries of another network sharing the pool are flushed by that network's
      // invocations (its records are foreign to this store).
      if (j["network"].get<std::string>() != static_cast<EtcdStore*>(s.store.get())->network()) {
        continue;
      }
      // Entries of another node name on this host (another nodeName / nodeNameFile) are that
      // node's to flush: this one's Del would skip its records as foreign and drop the entry,
      // leaking the address.
      if (auto node = j.find("node"); node != j.end() && node->is_string() && *node != s.node) {
        continue;
      }
    }
    if (ok) {
      absl::Status st = allocator.Del(owner, s.conf);
      if (IsEtcdUnreachable(st)) return st;
      if (!st.ok()) {
        spdlog::error("ipam: journal entry {}: release failed: {}", path, st.message());
        continue;
      }
      spdlog::info("ipam: pool={} journaled release of container {} ifname {} flushed",
                   s.args.network_name, owner.container_id, owner.ifname);
    } else {
      spdlog::error("ipam: journal entry {} is malformed; dropping it", path);
    }
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      spdlog::error("ipam: cannot remove journal entry {}: {}", path, strerror(errno));
    }
  }
  return absl::OkStatus();
}

// Runs `fn(allocator, session)` over the configured store, flushing the DEL journal first.
template <typename Fn>
auto WithAllocator(const IpamArgs& args, Fn fn)
    -> decltype(fn(std::declval<Allocator&>(), std::declval<Session&>())) {
  ASSIGN_OR_RETURN(Session s, Open(args));
  Allocator allocator(s.store.get(), UnixNow);
  absl::Status flushed = FlushJournal(s, allocator);
  if (!flushed.ok()) spdlog::warn("ipam: journal not flushed: {}", flushed.message());
  return fn(allocator, s);
}

}  // namespace

absl::StatusOr<Result> IpamAdd(const IpamArgs& args, std::vector<std::string>* reserved) {
  return WithAllocator(args, [&](Allocator& a, Session& s) {
    auto result = a.Add(s.args, s.conf, reserved);
    RDMASHARE_FAILPOINT("ipam.add.after_alloc");
    return result;
  });
}

absl::Status IpamRelease(const IpamArgs& args, const std::vector<std::string>& ips) {
  return WithAllocator(args,
                       [&](Allocator& a, Session& s) { return a.Release(s.args, s.conf, ips); });
}

absl::Status IpamDel(const IpamArgs& args) {
  return WithAllocator(args, [&](Allocator& a, Session& s) -> absl::Status {
    absl::Status st = a.Del(s.args, s.conf);
    RDMASHARE_FAILPOINT("ipam.del.after_release");
    if (s.journal_dir.empty() || !IsEtcdUnreachable(st)) return st;
    // etcd is down: a DEL must not leave the pod stuck. Record the release; the next
    // invocation or GC that reaches etcd performs it (only if still held by this owner).
    json entry = {{"network", args.network_name},
                  {"node", s.node},
                  {"containerID", args.container_id},
                  {"ifname", args.ifname},
                  {"time", UnixNow()}};
    RETURN_IF_ERROR(MakeDirs(s.journal_dir, 0700));
    absl::Status w =
        WriteFileAtomic(JoinPath(s.journal_dir, JournalName(args)), entry.dump(), 0600);
    if (!w.ok()) {
      return CniError(kIoFailure, fmt::format("ipam DEL: etcd unreachable ({}) and the release "
                                              "cannot be journaled: {}",
                                              st.message(), w.message()));
    }
    spdlog::warn("ipam: pool={} DEL of container {} ifname {} journaled: {}", s.args.network_name,
                 args.container_id, args.ifname, st.message());
    return absl::OkStatus();
  });
}

absl::Status IpamCheck(const IpamArgs& args, const Result& prev) {
  return WithAllocator(args,
                       [&](Allocator& a, Session& s) { return a.Check(s.args, s.conf, prev); });
}

absl::Status IpamGc(const IpamArgs& args, const std::vector<Attachment>& valid) {
  return WithAllocator(args, [&](Allocator& a, Session& s) { return a.Gc(s.args, s.conf, valid); });
}

absl::Status IpamQuarantine(const IpamArgs& args, const std::string& ip) {
  return WithAllocator(args,
                       [&](Allocator& a, Session& s) { return a.Quarantine(s.args, s.conf, ip); });
}

absl::Status IpamStatus(const IpamArgs& args) {
  return WithAllocator(args, [&](Allocator& a, Session& s) { return a.Status(s.args, s.conf); });
}

absl::StatusOr<std::vector<PoolUsage>> IpamPoolReport(const IpamArgs& args) {
  ASSIGN_OR_RETURN(Session s, Open(args));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, s.store->List(s.args.network_name));
  std::vector<BlockClaim> claims;
  if (s.store->BlockSize() > 0) {
    ASSIGN_OR_RETURN(claims, s.store->ListBlocks(s.args.network_name));
  }
  std::vector<PoolUsage> out;
  for (const Pool& pool : s.conf.pools) {
    PoolUsage u;
    u.ranges = pool.ToString();
    for (const AddrRange& r : pool.ranges) {
      for (IpAddr ip = r.start;; ip = ip.Next()) {
        if (u.total >= kPoolCountLimit) {
          u.total_exact = false;
          break;
        }
        if (pool.Allocatable(ip)) ++u.total;
        if (ip == r.end) break;
      }
    }
    for (const Reservation& r : all) {
      auto ip = IpAddr::Parse(r.ip);
      if (ip.ok() && pool.RangeOf(*ip) != nullptr) u.holders.push_back(r);
    }
    for (const BlockClaim& c : claims) {
      if (!c.error.empty()) {
        u.block_errors.push_back(c.error);
        continue;
      }
      if (c.cidr.family() != pool.family() || NarrowToBlocks(pool, {c.cidr}).ranges.empty()) {
        continue;
      }
      PoolUsage::Block b{c.cidr.ToString(), c.node, 0, c.empty_since};
      for (const Reservation& r : u.holders) {
        auto ip = IpAddr::Parse(r.ip);
        if (ip.ok() && c.cidr.Contains(*ip)) ++b.used;
      }
      u.blocks.push_back(std::move(b));
    }
    if (s.store->BlockSize() > 0) {
      for (const Reservation& r : u.holders) {
        auto ip = IpAddr::Parse(r.ip);
        if (!ip.ok() || !r.error.empty()) continue;
        bool in_own = false;
        for (const BlockClaim& c : claims) {
          in_own = in_own || (c.error.empty() && c.node == r.node && c.cidr.Contains(*ip));
        }
        if (!in_own) u.borrowed.insert(r.ip);
      }
    }
    // The local store's List skips the per-reservation sidecars (ADD lists every record and
    // needs only the owners); a report wants the netns and pod too.
    if (s.conf.store.type == "local") {
      auto* local = static_cast<LocalStore*>(s.store.get());
      for (Reservation& r : u.holders) {
        if (!r.error.empty() || r.quarantined()) continue;
        auto full = local->Get(s.args.network_name, r.ip);
        if (!full.ok()) continue;
        r.netns = full->netns;
        r.pod_namespace = full->pod_namespace;
        r.pod_name = full->pod_name;
        r.pod_uid = full->pod_uid;
      }
    }
    out.push_back(std::move(u));
  }
  return out;
}

absl::StatusOr<NodeRelease> IpamReleaseNode(const IpamArgs& args, const std::string& node) {
  ASSIGN_OR_RETURN(Session s, Open(args));
  if (s.client == nullptr) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: network {}: releasing a node's addresses needs the etcd "
                                "store (this network uses the local store)",
                                args.network_name));
  }
  return ReleaseNode(s.client.get(), s.conf.store.prefix, s.args.network_name, node);
}

absl::StatusOr<QuarantineRelease> IpamReleaseQuarantined(const IpamArgs& args,
                                                         const std::string& ip) {
  ASSIGN_OR_RETURN(Session s, Open(args));
  const std::string& network = s.args.network_name;
  ASSIGN_OR_RETURN(std::unique_ptr<StoreLock> lock, s.store->Lock(network, s.conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, s.store->List(network));
  QuarantineRelease out;
  bool found = false;
  for (const Reservation& r : all) {
    if (!ip.empty() && r.ip != ip) continue;
    found = true;
    if (!r.error.empty() || !r.quarantined()) {
      if (ip.empty()) continue;
      return CniError(
          kInvalidNetworkConfig,
          fmt::format("ipam: network {}: {} is not quarantined ({}); a pod's address "
                      "goes with the pod's DEL",
                      network, ip,
                      !r.error.empty() ? r.error : "held by container " + r.container_id));
    }
    absl::Status st = s.store->Release(network, r.ip);
    if (st.ok()) {
      spdlog::info("ipam: network={} ip={} quarantine ended by the operator", network, r.ip);
      out.released.push_back(r.ip);
    } else {
      out.skipped.push_back(fmt::format("{}: {}", r.ip, st.message()));
    }
  }
  if (!ip.empty() && !found) {
    return absl::NotFoundError(
        fmt::format("ipam: network {}: {} is not reserved (nothing to release)", network, ip));
  }
  return out;
}

}  // namespace rdmashare::cni::ipam
