#include "cni/ipam/allocator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "cni/ipam/blocks.h"
#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/failpoint.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;

absl::Status ValidateNetworkName(const std::string& name) {
  bool ok = !name.empty() && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: network name '{}' is invalid: it must match "
                                "[A-Za-z0-9][A-Za-z0-9_.-]*",
                                name));
  }
  return absl::OkStatus();
}

absl::Status ValidateOwner(const IpamArgs& args) {
  RETURN_IF_ERROR(ValidateNetworkName(args.network_name));
  RETURN_IF_ERROR(ValidateContainerId(args.container_id));
  return ValidateIfName(args.ifname);
}

absl::StatusOr<IpAddr> ParseRequested(const std::string& text, int code, const std::string& src) {
  std::string bare = text.substr(0, text.find('/'));
  auto ip = IpAddr::Parse(bare);
  if (!ip.ok()) {
    return CniError(code,
                    fmt::format("ipam: requested IP '{}' from {} is not an address", text, src));
  }
  return *ip;
}

absl::Status AppendJsonIps(const json& holder, const std::string& src, std::vector<IpAddr>* out) {
  if (!holder.is_array()) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: {} must be an array of strings", src));
  }
  for (const json& s : holder) {
    if (!s.is_string()) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: {} must be an array of strings", src));
    }
    ASSIGN_OR_RETURN(IpAddr ip, ParseRequested(s.get<std::string>(), kInvalidNetworkConfig, src));
    out->push_back(ip);
  }
  return absl::OkStatus();
}

// The pool index holding `ip`, or -1.
int PoolOf(const IpamConfig& conf, const IpAddr& ip) {
  for (size_t i = 0; i < conf.pools.size(); ++i) {
    if (conf.pools[i].RangeOf(ip) != nullptr) return static_cast<int>(i);
  }
  return -1;
}

// Walks pool candidates round robin starting after `last`, calling `try_ip` for each
// allocatable address not in `taken` until it returns true. Returns the address, or an invalid
// IpAddr when the pool has none left.
template <typename TryFn>
absl::StatusOr<IpAddr> Walk(const Pool& pool, const std::string& last,
                            const std::set<IpAddr>& taken, TryFn try_ip) {
  size_t start_range = 0;
  IpAddr start = pool.ranges[0].start;
  auto last_ip = IpAddr::Parse(last);
  if (last_ip.ok()) {
    for (size_t i = 0; i < pool.ranges.size(); ++i) {
      if (pool.ranges[i].Contains(*last_ip)) {
        if (*last_ip == pool.ranges[i].end) {
          start_range = (i + 1) % pool.ranges.size();
          start = pool.ranges[start_range].start;
        } else {
          start_range = i;
          start = last_ip->Next();
        }
        break;
      }
    }
  }
  // Visit [start, end of start_range], the other ranges in order, then [range start, start).
  for (size_t step = 0; step <= pool.ranges.size(); ++step) {
    size_t idx = (start_range + step) % pool.ranges.size();
    const AddrRange& r = pool.ranges[idx];
    IpAddr from = step == 0 ? start : r.start;
    IpAddr to = r.end;
    if (step == pool.ranges.size()) {
      if (start == r.start) break;
      to = start.Prev();
    }
    IpAddr ip = from;
    for (;;) {
      bool advance_jump = false;
      if (const auto* ex = pool.ExcludeOf(ip)) {
        if (!(ex->second < to)) break;
        ip = ex->second.Next();
        advance_jump = true;
      }
      if (!advance_jump) {
        if (pool.Allocatable(ip) && taken.count(ip) == 0) {
          ASSIGN_OR_RETURN(bool done, try_ip(ip));
          if (done) return ip;
        }
        if (ip == to) break;
        ip = ip.Next();
      }
    }
  }
  return IpAddr();
}

std::string Owner(const IpamArgs& args) {
  return fmt::format("container {} ifname {}", args.container_id, args.ifname);
}

std::string CniArg(const IpamArgs& args, const char* key) {
  auto it = args.cni_args.find(key);
  return it == args.cni_args.end() ? std::string() : it->second;
}

IpConfig MakeIpConfig(const Pool& pool, const IpAddr& ip) {
  const AddrRange* r = pool.RangeOf(ip);
  IpConfig out;
  out.address = IpPrefix(ip, r->subnet.length());
  if (r->gateway.valid()) out.gateway = r->gateway;
  return out;
}

// Loads the reservations this node must see (IpamStore::ListForNode; every one with
// `everything`), releasing quarantines that expired.
absl::StatusOr<std::vector<Reservation>> LoadLive(IpamStore* store, const std::string& network,
                                                  int64_t now, bool everything = false) {
  ASSIGN_OR_RETURN(std::vector<Reservation> all,
                   everything ? store->List(network) : store->ListForNode(network));
  std::vector<Reservation> live;
  for (Reservation& r : all) {
    if (r.error.empty() && !r.foreign && r.quarantined() && r.quarantine_until <= now) {
      spdlog::info("ipam: network={} ip={} quarantine expired, releasing", network, r.ip);
      RETURN_IF_ERROR(store->Release(network, r.ip));
      continue;
    }
    live.push_back(std::move(r));
  }
  return live;
}

// True when some address of `taken` lies in `block`.
bool AnyIn(const std::set<IpAddr>& taken, const IpPrefix& block) {
  auto it = taken.lower_bound(block.network());
  return it != taken.end() && block.Contains(*it);
}

// A block marked empty for longer than the store's grace period, holding none of `held`, goes
// back to the pool. True when this call released it (false too when another writer changed the
// claim first: whoever did saw it).
absl::StatusOr<bool> ReleaseExpiredBlock(IpamStore* store, const std::string& network,
                                         const BlockClaim& claim, const std::set<IpAddr>& held,
                                         int64_t now) {
  if (claim.empty_since <= 0 || now - claim.empty_since < store->BlockGraceSeconds() ||
      AnyIn(held, claim.cidr)) {
    return false;
  }
  ASSIGN_OR_RETURN(bool released, store->ReleaseBlock(network, claim));
  if (released) {
    spdlog::info("ipam: network={} block {} empty since {}: released", network,
                 claim.cidr.ToString(), claim.empty_since);
  }
  return released;
}

// The blocks path of an ADD (stores with BlockSize() > 0) for one pool: an address of this
// node's blocks; else of a block it claims now (the first free one of the pool); else, when
// no block is free, one borrowed from another node's block. `claims` are the pool's claims as
// read (kept current here); `taken` grows with what is learnt.
template <typename TryFn>
absl::StatusOr<IpAddr> PickInBlocks(IpamStore* store, const std::string& network, const Pool& pool,
                                    const std::string& last, int64_t now,
                                    std::vector<BlockClaim>& claims, std::set<IpAddr>& taken,
                                    TryFn try_ip) {
  const uint64_t size = store->BlockSize();
  const std::string me = store->NodeName();
  auto in_pool = [&](const BlockClaim& c) {
    return c.error.empty() && c.cidr.family() == pool.family() &&
           !NarrowToBlocks(pool, {c.cidr}).ranges.empty();
  };
  // This node's blocks; those empty for longer than the grace period go back to the pool.
  std::vector<IpPrefix> mine;
  for (auto it = claims.begin(); it != claims.end();) {
    if (it->node != me || !in_pool(*it)) {
      ++it;
      continue;
    }
    ASSIGN_OR_RETURN(bool released, ReleaseExpiredBlock(store, network, *it, taken, now));
    if (released) {
      it = claims.erase(it);
      continue;
    }
    mine.push_back(it->cidr);
    ++it;
  }
  auto in_use = [&](const IpAddr& ip) -> absl::Status {
    for (BlockClaim& c : claims) {
      if (c.node == me && c.error.empty() && c.cidr.Contains(ip) && c.empty_since != 0) {
        ASSIGN_OR_RETURN(bool marked, store->MarkBlock(network, c, 0));
        (void)marked;  // changed meanwhile: whoever changed it saw it too
      }
    }
    return absl::OkStatus();
  };
  if (!mine.empty()) {
    ASSIGN_OR_RETURN(IpAddr ip, Walk(NarrowToBlocks(pool, mine), last, taken, try_ip));
    if (ip.valid()) {
      RETURN_IF_ERROR(in_use(ip));
      return ip;
    }
  }
  // Claim the first free block. A lost race skips that block; a block whose every free-looking
  // address turns out held (records of nodes without blocks) is given back.
  std::set<IpPrefix> skip;
  for (const BlockClaim& c : claims) {
    if (c.cidr.family() != 0) skip.insert(c.cidr);
  }
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::optional<IpPrefix> free = FirstFreeBlock(pool, size, skip, taken);
    if (!free.has_value()) break;
    skip.insert(*free);
    ASSIGN_OR_RETURN(std::optional<BlockClaim> claim, store->ClaimBlock(network, *free));
    if (!claim.has_value()) {
      spdlog::info("ipam: network={} block {} was claimed by another node first", network,
                   free->ToString());
      continue;
    }
    claims.push_back(*claim);
    spdlog::info("ipam: network={} node {} claimed block {}", network, me, free->ToString());
    RDMASHARE_FAILPOINT("ipam.block.after_claim");
    ASSIGN_OR_RETURN(IpAddr ip, Walk(NarrowToBlocks(pool, {*free}), "", taken, try_ip));
    if (ip.valid()) return ip;
    ASSIGN_OR_RETURN(bool released, store->ReleaseBlock(network, *claim));
    if (released) claims.pop_back();
  }
  // No free block: borrow one address anywhere in the pool, knowing every record.
  ASSIGN_OR_RETURN(std::vector<Reservation> all, store->List(network));
  for (const Reservation& r : all) {
    if (auto ip = IpAddr::Parse(r.ip); ip.ok()) taken.insert(*ip);
  }
  ASSIGN_OR_RETURN(IpAddr ip, Walk(pool, last, taken, try_ip));
  if (ip.valid()) {
    std::string holder = "no node";
    for (const BlockClaim& c : claims) {
      if (c.error.empty() && c.cidr.Contains(ip)) holder = "node " + c.node;
    }
    spdlog::warn("ipam: network={} no free block left in pool {}: borrowed {} from the block of {}",
                 network, pool.ToString(), ip.ToString(), holder);
  }
  return ip;
}

// After a node released `released` (stores with blocks): each of its blocks left without any of
// its records is marked empty, to be released after the grace period; blocks empty for longer
// than that are released now.
absl::Status MarkEmptyBlocks(IpamStore* store, const std::string& network,
                             const std::vector<Reservation>& before,
                             const std::set<std::string>& released, int64_t now) {
  if (store->BlockSize() == 0 || released.empty()) return absl::OkStatus();
  std::set<IpAddr> left, gone;
  for (const Reservation& r : before) {
    auto ip = IpAddr::Parse(r.ip);
    if (!ip.ok()) continue;
    (released.count(r.ip) != 0 ? gone : left).insert(*ip);
  }
  ASSIGN_OR_RETURN(std::vector<BlockClaim> claims, store->ListBlocks(network));
  for (BlockClaim& c : claims) {
    if (!c.error.empty() || c.node != store->NodeName() || AnyIn(left, c.cidr)) continue;
    if (c.empty_since > 0) {
      RETURN_IF_ERROR(ReleaseExpiredBlock(store, network, c, left, now).status());
      continue;
    }
    if (!AnyIn(gone, c.cidr)) continue;
    ASSIGN_OR_RETURN(bool marked, store->MarkBlock(network, c, now));
    if (marked) {
      spdlog::info(
          "ipam: network={} block {} has no reservation left; released if still empty in {} s",
          network, c.cidr.ToString(), store->BlockGraceSeconds());
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<IpAddr>> RequestedIps(const IpamArgs& args) {
  std::vector<IpAddr> out;
  auto it = args.cni_args.find("IP");
  if (it != args.cni_args.end() && !it->second.empty()) {
    size_t start = 0;
    while (start <= it->second.size()) {
      size_t comma = it->second.find(',', start);
      if (comma == std::string::npos) comma = it->second.size();
      std::string item = it->second.substr(start, comma - start);
      start = comma + 1;
      if (item.empty()) continue;
      ASSIGN_OR_RETURN(IpAddr ip, ParseRequested(item, kInvalidEnv, "CNI_ARGS IP"));
      out.push_back(ip);
    }
  }
  if (args.args.is_object() && args.args.contains("cni") && args.args["cni"].is_object() &&
      args.args["cni"].contains("ips")) {
    RETURN_IF_ERROR(AppendJsonIps(args.args["cni"]["ips"], "args.cni.ips", &out));
  }
  if (args.runtime_config.is_object() && args.runtime_config.contains("ips")) {
    RETURN_IF_ERROR(AppendJsonIps(args.runtime_config["ips"], "runtimeConfig.ips", &out));
  }
  std::vector<IpAddr> unique;
  for (const IpAddr& ip : out) {
    bool seen = false;
    for (const IpAddr& u : unique) seen = seen || u == ip;
    if (!seen) unique.push_back(ip);
  }
  return unique;
}

Allocator::Allocator(IpamStore* store, std::function<int64_t()> now_seconds)
    : store_(store), now_seconds_(std::move(now_seconds)) {}

absl::StatusOr<Result> Allocator::Add(const IpamArgs& args, const IpamConfig& conf,
                                      std::vector<std::string>* reserved) const {
  RETURN_IF_ERROR(ValidateOwner(args));
  const std::string& network = args.network_name;
  ASSIGN_OR_RETURN(std::vector<IpAddr> requested_list, RequestedIps(args));
  // Requested address per pool, validated before anything is reserved.
  std::map<int, IpAddr> requested;
  for (const IpAddr& ip : requested_list) {
    int pool = PoolOf(conf, ip);
    if (pool < 0) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: network {}: requested IP {} is in no pool of the network",
                                  network, ip.ToString()));
    }
    if (!conf.pools[pool].Allocatable(ip)) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: network {}: requested IP {} is a network, broadcast, "
                                  "gateway or excluded address of pool {}",
                                  network, ip.ToString(), conf.pools[pool].ToString()));
    }
    if (requested.count(pool) != 0) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: network {}: requested IPs {} and {} are in the same pool",
                                  network, requested[pool].ToString(), ip.ToString()));
    }
    requested[pool] = ip;
  }

  ASSIGN_OR_RETURN(auto lock, store_->Lock(network, conf.lock_timeout));
  const int64_t now = now_seconds_();
  ASSIGN_OR_RETURN(std::vector<Reservation> all, LoadLive(store_, network, now));
  // Reserve calls outside this ADD (a quarantine) record no last_reserved hint.
  absl::Cleanup no_pool = [this] { store_->ReservingFromPool(-1); };
  // The pool's block claims (stores with blocks), read when an address is to be picked.
  std::optional<std::vector<BlockClaim>> claims;
  std::map<IpAddr, const Reservation*> by_ip;
  std::set<IpAddr> taken;
  for (const Reservation& r : all) {
    auto ip = IpAddr::Parse(r.ip);
    if (!ip.ok()) continue;
    by_ip[*ip] = &r;
    taken.insert(*ip);
  }

  Reservation proto;
  proto.container_id = args.container_id;
  proto.ifname = args.ifname;
  proto.netns = args.netns;
  proto.pod_namespace =
      args.pod_namespace.empty() ? CniArg(args, "K8S_POD_NAMESPACE") : args.pod_namespace;
  proto.pod_name = args.pod_name.empty() ? CniArg(args, "K8S_POD_NAME") : args.pod_name;
  proto.pod_uid = args.pod_uid.empty() ? CniArg(args, "K8S_POD_UID") : args.pod_uid;

  std::vector<std::string> created;
  auto rollback = [&]() {
    for (const std::string& ip : created) {
      absl::Status st = store_->Release(network, ip);
      if (!st.ok())
        spdlog::error("ipam: network={} ip={} rollback failed: {}", network, ip, st.message());
    }
  };

  Result result;
  for (size_t i = 0; i < conf.pools.size(); ++i) {
    const Pool& pool = conf.pools[i];
    store_->ReservingFromPool(static_cast<int>(i));
    IpAddr chosen;
    for (const Reservation& r : all) {
      auto ip = IpAddr::Parse(r.ip);
      if (ip.ok() && r.OwnedBy(args.container_id, args.ifname) && pool.RangeOf(*ip) != nullptr) {
        chosen = *ip;
        break;
      }
    }
    if (chosen.valid()) {
      spdlog::info("ipam: network={} {} already holds {}; returning it", network, Owner(args),
                   chosen.ToString());
      result.ips.push_back(MakeIpConfig(pool, chosen));
      continue;
    }
    auto want = requested.find(static_cast<int>(i));
    if (want != requested.end()) {
      const IpAddr& ip = want->second;
      auto held = by_ip.find(ip);
      if (held != by_ip.end()) {
        rollback();
        if (!held->second->error.empty()) {
          return CniError(kStoreCorrupt, fmt::format("ipam: network {}: requested IP {}: {}",
                                                     network, ip.ToString(), held->second->error));
        }
        return CniError(
            kAddressInUse,
            fmt::format("ipam: network {}: requested IP {} is already reserved by "
                        "container {} ifname {}",
                        network, ip.ToString(), held->second->container_id, held->second->ifname));
      }
      Reservation r = proto;
      r.ip = ip.ToString();
      auto ok = store_->Reserve(network, r);
      if (!ok.ok() || !*ok) {
        rollback();
        if (!ok.ok()) return ok.status();
        return CniError(kAddressInUse,
                        fmt::format("ipam: network {}: requested IP {} {}", network, ip.ToString(),
                                    store_->BlockSize() == 0
                                        ? "was reserved concurrently"
                                        : "is already reserved by another node or network"));
      }
      created.push_back(r.ip);
      chosen = ip;
    } else {
      auto last = store_->LastReserved(network, static_cast<int>(i));
      if (!last.ok()) {
        rollback();
        return last.status();
      }
      auto try_ip = [&](const IpAddr& ip) -> absl::StatusOr<bool> {
        Reservation r = proto;
        r.ip = ip.ToString();
        ASSIGN_OR_RETURN(bool ok, store_->Reserve(network, r));
        if (ok) created.push_back(r.ip);
        return ok;
      };
      absl::StatusOr<IpAddr> picked;
      if (store_->BlockSize() == 0) {
        picked = Walk(pool, *last, taken, try_ip);
      } else {
        if (!claims.has_value()) {
          auto read = store_->ListBlocks(network);
          if (!read.ok()) {
            rollback();
            return read.status();
          }
          claims = *std::move(read);
        }
        picked = PickInBlocks(store_, network, pool, *last, now, *claims, taken, try_ip);
      }
      if (!picked.ok()) {
        rollback();
        return picked.status();
      }
      if (!picked->valid()) {
        rollback();
        return CniError(kPoolExhausted,
                        fmt::format("ipam: network {}: no free address left in pool {} "
                                    "({} addresses reserved in the network)",
                                    network, pool.ToString(), std::max(all.size(), taken.size())));
      }
      chosen = *picked;
    }
    taken.insert(chosen);
    absl::Status st = store_->SetLastReserved(network, static_cast<int>(i), chosen.ToString());
    if (!st.ok()) {
      rollback();
      return st;
    }
    spdlog::info("ipam: network={} {} reserved {}", network, Owner(args), chosen.ToString());
    result.ips.push_back(MakeIpConfig(pool, chosen));
  }
  result.routes = conf.routes;
  result.dns = conf.dns;
  if (reserved != nullptr) *reserved = created;
  return result;
}

absl::Status Allocator::Del(const IpamArgs& args, const IpamConfig& conf) const {
  RETURN_IF_ERROR(ValidateOwner(args));
  ASSIGN_OR_RETURN(auto lock, store_->Lock(args.network_name, conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, store_->ListForNode(args.network_name));
  std::set<std::string> released;
  for (const Reservation& r : FilterByOwner(all, args.container_id, args.ifname)) {
    RETURN_IF_ERROR(store_->Release(args.network_name, r.ip));
    released.insert(r.ip);
    spdlog::info("ipam: network={} {} released {}", args.network_name, Owner(args), r.ip);
  }
  return MarkEmptyBlocks(store_, args.network_name, all, released, now_seconds_());
}

absl::Status Allocator::Release(const IpamArgs& args, const IpamConfig& conf,
                                const std::vector<std::string>& ips) const {
  RETURN_IF_ERROR(ValidateOwner(args));
  if (ips.empty()) return absl::OkStatus();
  const std::set<std::string> wanted(ips.begin(), ips.end());
  ASSIGN_OR_RETURN(auto lock, store_->Lock(args.network_name, conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, store_->ListForNode(args.network_name));
  std::set<std::string> released;
  for (const Reservation& r : FilterByOwner(all, args.container_id, args.ifname)) {
    if (wanted.count(r.ip) == 0) continue;
    RETURN_IF_ERROR(store_->Release(args.network_name, r.ip));
    released.insert(r.ip);
    spdlog::info("ipam: network={} {} released {} (undo of its own ADD)", args.network_name,
                 Owner(args), r.ip);
  }
  return MarkEmptyBlocks(store_, args.network_name, all, released, now_seconds_());
}

absl::Status Allocator::Check(const IpamArgs& args, const IpamConfig& conf,
                              const Result& prev) const {
  RETURN_IF_ERROR(ValidateOwner(args));
  ASSIGN_OR_RETURN(auto lock, store_->Lock(args.network_name, conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, store_->ListForNode(args.network_name));
  std::vector<Reservation> held = FilterByOwner(all, args.container_id, args.ifname);
  if (held.empty()) {
    return CniError(kUnknownContainer, fmt::format("ipam CHECK: network {}: {} holds no address",
                                                   args.network_name, Owner(args)));
  }
  std::set<std::string> held_ips;
  for (const Reservation& r : held) held_ips.insert(r.ip);
  std::set<std::string> prev_ips;
  for (const IpConfig& c : prev.ips) {
    const IpAddr& ip = c.address.addr();
    if (PoolOf(conf, ip) < 0) continue;
    prev_ips.insert(ip.ToString());
    if (held_ips.count(ip.ToString()) == 0) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam CHECK: network {}: prevResult lists {} but {} does not "
                                  "hold it",
                                  args.network_name, c.address.ToString(), Owner(args)));
    }
  }
  for (const std::string& ip : held_ips) {
    if (prev_ips.count(ip) == 0) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam CHECK: network {}: {} holds {} which prevResult does not "
                                  "list",
                                  args.network_name, Owner(args), ip));
    }
  }
  return absl::OkStatus();
}

absl::Status Allocator::Gc(const IpamArgs& args, const IpamConfig& conf,
                           const std::vector<Attachment>& valid) const {
  RETURN_IF_ERROR(ValidateNetworkName(args.network_name));
  ASSIGN_OR_RETURN(auto lock, store_->Lock(args.network_name, conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all,
                   LoadLive(store_, args.network_name, now_seconds_()));
  std::set<Attachment> keep(valid.begin(), valid.end());
  std::set<std::string> keep_ids;
  for (const Attachment& a : valid) keep_ids.insert(a.container_id);
  std::set<std::string> released;
  for (const Reservation& r : all) {
    if (!r.error.empty()) {
      spdlog::warn("ipam GC: network={} keeping unreadable record: {}", args.network_name, r.error);
      continue;
    }
    if (r.quarantined() || r.foreign) continue;
    bool in_use = r.ifname.empty() ? keep_ids.count(r.container_id) != 0
                                   : keep.count(Attachment{r.container_id, r.ifname}) != 0;
    if (in_use) continue;
    RETURN_IF_ERROR(store_->Release(args.network_name, r.ip));
    released.insert(r.ip);
    spdlog::info("ipam GC: network={} released {} of container {} ifname {}", args.network_name,
                 r.ip, r.container_id, r.ifname);
  }
  return MarkEmptyBlocks(store_, args.network_name, all, released, now_seconds_());
}

absl::Status Allocator::Quarantine(const IpamArgs& args, const IpamConfig& conf,
                                   const std::string& ip_text) const {
  RETURN_IF_ERROR(ValidateOwner(args));
  auto ip = IpAddr::Parse(ip_text.substr(0, ip_text.find('/')));
  if (!ip.ok() || PoolOf(conf, *ip) < 0) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam quarantine: network {}: '{}' is not an address of the "
                                "network's pools",
                                args.network_name, ip_text));
  }
  ASSIGN_OR_RETURN(auto lock, store_->Lock(args.network_name, conf.lock_timeout));
  ASSIGN_OR_RETURN(std::vector<Reservation> all, store_->ListForNode(args.network_name));
  for (const Reservation& r : all) {
    if (r.ip != ip->ToString()) continue;
    if (!r.error.empty()) return CniError(kStoreCorrupt, "ipam quarantine: " + r.error);
    if (r.foreign) {
      return CniError(kAddressInUse,
                      fmt::format("ipam quarantine: network {}: {} is reserved by node {} "
                                  "(network {}), not by this node",
                                  args.network_name, r.ip, r.node, r.owner_network));
    }
    if (!r.quarantined() && !r.OwnedBy(args.container_id, args.ifname)) {
      return CniError(kAddressInUse,
                      fmt::format("ipam quarantine: network {}: {} is reserved by container {} "
                                  "ifname {}, not by {}",
                                  args.network_name, r.ip, r.container_id, r.ifname, Owner(args)));
    }
    RETURN_IF_ERROR(store_->Release(args.network_name, r.ip));
  }
  Reservation q;
  q.ip = ip->ToString();
  q.container_id = kQuarantineOwner;
  q.quarantine_until = now_seconds_() + conf.quarantine.count();
  ASSIGN_OR_RETURN(bool ok, store_->Reserve(args.network_name, q));
  if (!ok) {
    return CniError(kAddressInUse, fmt::format("ipam quarantine: network {}: {} is reserved by "
                                               "another node or network",
                                               args.network_name, q.ip));
  }
  spdlog::warn("ipam: network={} ip={} quarantined until {} (address conflict)", args.network_name,
               q.ip, q.quarantine_until);
  return absl::OkStatus();
}

absl::Status Allocator::Status(const IpamArgs& args, const IpamConfig& conf) const {
  RETURN_IF_ERROR(ValidateNetworkName(args.network_name));
  auto lock = store_->Lock(args.network_name, conf.lock_timeout);
  if (!lock.ok()) {
    return CniError(kPluginNotAvailable, fmt::format("ipam: network {}: store unusable: {}",
                                                     args.network_name, lock.status().message()));
  }
  auto all = LoadLive(store_, args.network_name, now_seconds_(), /*everything=*/true);
  if (!all.ok()) {
    return CniError(kPluginNotAvailable, fmt::format("ipam: network {}: store unreadable: {}",
                                                     args.network_name, all.status().message()));
  }
  std::set<IpAddr> taken;
  for (const Reservation& r : *all) {
    if (auto ip = IpAddr::Parse(r.ip); ip.ok()) taken.insert(*ip);
  }
  for (const Pool& pool : conf.pools) {
    auto free_ip =
        Walk(pool, "", taken, [](const IpAddr&) -> absl::StatusOr<bool> { return true; });
    if (!free_ip.ok() || !free_ip->valid()) {
      return CniError(kPluginNotAvailable,
                      fmt::format("ipam: network {}: no free address left in pool {}",
                                  args.network_name, pool.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace rdmashare::cni::ipam
