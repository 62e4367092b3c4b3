#include "cni/ipam/etcd_store.h"

#include "cni/ipam/blocks.h"
#include "cni/protocol/error.h"
#include "common/ip.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;

std::string Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A record value as etcd returned it: small and shallow (a reservation is one flat object), so
// a hostile value cannot make us build or copy a deep document.
absl::StatusOr<json> ParseRecordJson(const std::string& value) {
  JsonLimits limits;
  limits.max_depth = 8;
  limits.max_bytes = 64 << 10;
  return ParseJsonBounded(value, "record", limits);
}

}  // namespace

std::string RecordProblem(const std::string& value) {
  absl::StatusOr<json> parsed = ParseRecordJson(value);
  if (!parsed.ok()) {
    return absl::IsInvalidArgument(parsed.status()) &&
                   parsed.status().message().find("not valid JSON") != std::string_view::npos
               ? "not JSON"
               : std::string(parsed.status().message());
  }
  json j = *std::move(parsed);
  if (!j.is_object()) return "not a JSON object";
  for (const char* key :
       {"node", "network", "containerID", "ifname", "netns", "podNamespace", "podName", "podUID"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_string()) return fmt::format("\"{}\" is not a string", key);
  }
  if (Str(j, "containerID").empty()) return "no \"containerID\"";
  if (Str(j, "node").empty()) return "no \"node\"";
  if (auto it = j.find("quarantineUntil"); it != j.end() && !it->is_number_integer()) {
    return "\"quarantineUntil\" is not an integer";
  }
  return "";
}

std::string EncodeEtcdRecord(const Reservation& r) {
  json j = {
      {"node", r.node},        {"network", r.owner_network}, {"containerID", r.container_id},
      {"ifname", r.ifname},    {"netns", r.netns},           {"podNamespace", r.pod_namespace},
      {"podName", r.pod_name}, {"podUID", r.pod_uid}};
  if (r.quarantined()) j["quarantineUntil"] = r.quarantine_until;
  return j.dump();
}

EtcdStore::EtcdStore(EtcdClient* client, std::string prefix, std::string node, std::string network,
                     std::string lock_dir, uint64_t block_size, int64_t block_release_seconds)
    : client_(client),
      prefix_(std::move(prefix)),
      node_(std::move(node)),
      network_(std::move(network)),
      block_size_(block_size),
      block_release_seconds_(block_release_seconds),
      locks_(std::move(lock_dir), /*durable=*/false) {}

std::string EtcdStore::NodePrefix(const std::string& pool) const {
  return fmt::format("{}/pools/{}/nodes/{}/", prefix_, pool, node_);
}

std::string EtcdStore::IndexKey(const std::string& pool, const std::string& ip) const {
  return NodePrefix(pool) + "ips/" + ip;
}

std::string EtcdStore::BlocksPrefix(const std::string& pool) const {
  return fmt::format("{}/pools/{}/blocks/", prefix_, pool);
}

std::string EtcdStore::LastReservedKey(const std::string& pool, int pool_index) const {
  return fmt::format("{}last_reserved/{}", NodePrefix(pool), pool_index);
}

std::string EtcdStore::IpsPrefix(const std::string& pool) const {
  return fmt::format("{}/pools/{}/ips/", prefix_, pool);
}

std::string EtcdStore::IpKey(const std::string& pool, const std::string& ip) const {
  return IpsPrefix(pool) + ip;
}

absl::StatusOr<std::unique_ptr<StoreLock>> EtcdStore::Lock(const std::string& pool,
                                                           std::chrono::milliseconds timeout) {
  // Connect (and handshake) before queueing for the lock, not while holding it.
  client_->Prepare();
  return locks_.Lock(pool, timeout);
}

Reservation DecodeEtcdRecord(const KeyValue& kv, const std::string& ip, const std::string& node,
                             const std::string& network) {
  Reservation r;
  r.ip = ip;
  std::string problem = RecordProblem(kv.value);
  if (!IpAddr::Parse(ip).ok()) problem = "the key does not end in an IP address";
  if (!problem.empty()) {
    std::string shown = kv.value.substr(0, 100);
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';
    }
    r.error = fmt::format("etcd record {} is not a reservation ({}): '{}'", kv.key, problem, shown);
    return r;
  }
  json j = ParseRecordJson(kv.value).value_or(json());
  r.node = Str(j, "node");
  r.owner_network = Str(j, "network");
  r.container_id = Str(j, "containerID");
  r.ifname = Str(j, "ifname");
  r.netns = Str(j, "netns");
  r.pod_namespace = Str(j, "podNamespace");
  r.pod_name = Str(j, "podName");
  r.pod_uid = Str(j, "podUID");
  if (auto it = j.find("quarantineUntil"); it != j.end()) r.quarantine_until = it->get<int64_t>();
  r.foreign = r.node != node || r.owner_network != network;
  return r;
}

Reservation EtcdStore::Decode(const std::string& ip, const KeyValue& kv) const {
  return DecodeEtcdRecord(kv, ip, node_, network_);
}

absl::StatusOr<std::vector<Reservation>> EtcdStore::List(const std::string& pool) {
  {
    absl::MutexLock lock(&mu_);
    prefetched_blocks_.erase(pool);  // a ListBlocks after this one reads the claims afresh
  }
  std::string prefix = IpsPrefix(pool);
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, client_->RangePrefix(prefix));
  std::vector<Reservation> out;
  absl::MutexLock lock(&mu_);
  for (const KeyValue& kv : kvs) {
    revisions_[kv.key] = kv.mod_revision;
    values_[kv.key] = kv.value;
    out.push_back(Decode(kv.key.substr(prefix.size()), kv));
  }
  return out;
}

absl::StatusOr<std::vector<Reservation>> EtcdStore::ListForNode(const std::string& pool) {
  if (block_size_ == 0) return List(pool);
  const std::string node_prefix = NodePrefix(pool);
  const std::string index_prefix = node_prefix + "ips/";
  // This node's prefix and the pool's block claims, read in one transaction.
  ASSIGN_OR_RETURN(EtcdTxnResult read,
                   client_->Txn({}, {{EtcdOp::Kind::kGetPrefix, node_prefix, ""},
                                     {EtcdOp::Kind::kGetPrefix, BlocksPrefix(pool), ""}}));
  if (read.reads.size() != 2) return CniError(kIoFailure, "etcd: short transaction answer");
  std::vector<KeyValue>& kvs = read.reads[0];
  {
    absl::MutexLock lock(&mu_);
    prefetched_blocks_[pool] = std::move(read.reads[1]);
  }
  bool indexed = false;
  std::vector<KeyValue> index;
  std::map<std::string, std::string> last;
  for (KeyValue& kv : kvs) {
    if (kv.key == node_prefix + "indexed") {
      indexed = true;
    } else if (kv.key.rfind(index_prefix, 0) == 0) {
      index.push_back(std::move(kv));
    } else if (kv.key.rfind(node_prefix + "last_reserved/", 0) == 0) {
      last[kv.key] = kv.value;
    }
  }
  if (!indexed) {
    // Records this node wrote before the index existed: copy them in once. A record written
    // meanwhile by this node is indexed already (same lock), so create-if-absent is enough.
    const std::string ips = IpsPrefix(pool);
    ASSIGN_OR_RETURN(std::vector<KeyValue> all, client_->RangePrefix(ips));
    int copied = 0;
    for (const KeyValue& kv : all) {
      if (!RecordProblem(kv.value).empty()) continue;
      json j = ParseRecordJson(kv.value).value_or(json());
      if (Str(j, "node") != node_) continue;
      std::string ip = kv.key.substr(ips.size());
      ASSIGN_OR_RETURN(EtcdTxnResult t,
                       client_->Txn({{IndexKey(pool, ip), EtcdCompare::Target::kCreate, 0, ""}},
                                    {{EtcdOp::Kind::kPut, IndexKey(pool, ip), kv.value}}));
      if (t.succeeded) ++copied;
      KeyValue copy = kv;
      copy.key = IndexKey(pool, ip);
      index.push_back(std::move(copy));
    }
    RETURN_IF_ERROR(client_->Put(node_prefix + "indexed", "1").status());
    if (copied > 0) {
      spdlog::info("ipam: pool={} node={}: indexed {} reservation(s) made before blocks", pool,
                   node_, copied);
    }
  }
  std::vector<Reservation> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : last) last_reserved_[key] = value;
  for (const KeyValue& kv : index) {
    std::string ip = kv.key.substr(index_prefix.size());
    std::string key = IpKey(pool, ip);
    // The index copy holds the record's value: Release compares that value, not a revision.
    revisions_.erase(key);
    values_[key] = kv.value;
    Reservation r = Decode(ip, kv);
    if (!r.error.empty()) {
      r.error =
          fmt::format("etcd record {} (index copy {}) is unreadable: {}", key, kv.key, r.error);
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<bool> EtcdStore::Reserve(const std::string& pool, const Reservation& r) {
  Reservation rec = r;
  rec.node = node_;
  rec.owner_network = network_;
  std::string key = IpKey(pool, r.ip);
  std::string value = EncodeEtcdRecord(rec);
  // The record, this node's index copy and the pool's last_reserved hint in one transaction; on
  // failure read who holds it (our own earlier attempt, when a retried request had in fact been
  // applied).
  std::vector<EtcdOp> writes = {{EtcdOp::Kind::kPut, key, value},
                                {EtcdOp::Kind::kPut, IndexKey(pool, r.ip), value}};
  std::string last_key;
  {
    absl::MutexLock lock(&mu_);
    if (reserving_pool_ >= 0) last_key = LastReservedKey(pool, reserving_pool_);
  }
  if (!last_key.empty()) writes.push_back({EtcdOp::Kind::kPut, last_key, r.ip});
  ASSIGN_OR_RETURN(EtcdTxnResult t, client_->Txn({{key, EtcdCompare::Target::kCreate, 0, ""}},
                                                 writes, {{EtcdOp::Kind::kGet, key, ""}}));
  int64_t rev = t.revision;
  if (!t.succeeded) {
    if (t.reads.empty() || t.reads[0].empty() || t.reads[0][0].value != value) return false;
    rev = t.reads[0][0].mod_revision;
  }
  absl::MutexLock lock(&mu_);
  revisions_[key] = rev;
  values_[key] = value;
  if (t.succeeded && !last_key.empty()) last_reserved_[last_key] = r.ip;
  return true;
}

void EtcdStore::ReservingFromPool(int pool_index) {
  absl::MutexLock lock(&mu_);
  reserving_pool_ = pool_index;
}

absl::Status EtcdStore::Release(const std::string& pool, const std::string& ip) {
  std::string key = IpKey(pool, ip);
  std::optional<std::string> value;
  int64_t rev = 0;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = values_.find(key); it != values_.end()) value = it->second;
    if (auto it = revisions_.find(key); it != revisions_.end()) rev = it->second;
  }
  if (!value.has_value() && rev == 0) {
    ASSIGN_OR_RETURN(std::optional<KeyValue> kv, client_->Get(key));
    if (!kv.has_value()) {
      // Nothing to release; drop a stale index copy if there is one.
      return client_->Txn({}, {{EtcdOp::Kind::kDelete, IndexKey(pool, ip), ""}}).status();
    }
    Reservation r = Decode(ip, *kv);
    if (r.foreign) {
      return absl::FailedPreconditionError(
          fmt::format("etcd store: pool {}: {} belongs to node {} network {}, not to "
                      "node {} network {}; not releasing it",
                      pool, ip, r.node, r.owner_network, node_, network_));
    }
    rev = kv->mod_revision;
  }
  // Deleted only while it still holds what this store read (the value: the index copy carries
  // it; else the mod revision). Otherwise it changed hands or is gone: either way it is no longer
  // ours, and this node's index copy of it is stale.
  EtcdCompare same = value.has_value() ? EtcdCompare{key, EtcdCompare::Target::kValue, 0, *value}
                                       : EtcdCompare{key, EtcdCompare::Target::kMod, rev, ""};
  ASSIGN_OR_RETURN(EtcdTxnResult t,
                   client_->Txn({same},
                                {{EtcdOp::Kind::kDelete, key, ""},
                                 {EtcdOp::Kind::kDelete, IndexKey(pool, ip), ""}},
                                {{EtcdOp::Kind::kDelete, IndexKey(pool, ip), ""}}));
  (void)t;
  absl::MutexLock lock(&mu_);
  revisions_.erase(key);
  values_.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<std::string> EtcdStore::LastReserved(const std::string& pool, int pool_index) {
  std::string key = LastReservedKey(pool, pool_index);
  {
    absl::MutexLock lock(&mu_);
    if (auto it = last_reserved_.find(key); it != last_reserved_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::optional<KeyValue> kv, client_->Get(key));
  return kv.has_value() ? kv->value : std::string();
}

absl::Status EtcdStore::SetLastReserved(const std::string& pool, int pool_index,
                                        const std::string& ip) {
  std::string key = LastReservedKey(pool, pool_index);
  {
    absl::MutexLock lock(&mu_);
    // Written with the reservation already (ReservingFromPool).
    if (auto it = last_reserved_.find(key); it != last_reserved_.end() && it->second == ip) {
      return absl::OkStatus();
    }
  }
  RETURN_IF_ERROR(client_->Put(key, ip).status());
  absl::MutexLock lock(&mu_);
  last_reserved_[key] = ip;
  return absl::OkStatus();
}

BlockClaim DecodeBlockClaim(const KeyValue& kv, const std::string& segment) {
  BlockClaim c;
  c.mod_revision = kv.mod_revision;
  auto cidr = ParseBlockKeySegment(segment);
  if (!cidr.ok()) {
    c.error = fmt::format("etcd key {} is not a block claim: {}", kv.key,
                          std::string(cidr.status().message()));
    return c;
  }
  c.cidr = *cidr;
  JsonLimits limits;
  limits.max_depth = 4;
  limits.max_bytes = 4 << 10;
  auto j = ParseJsonBounded(kv.value, "block claim", limits);
  if (!j.ok() || !j->is_object() || Str(*j, "node").empty() ||
      (j->contains("emptySince") && !(*j)["emptySince"].is_number_integer())) {
    std::string shown = kv.value.substr(0, 100);
    for (char& ch : shown) {
      if (static_cast<unsigned char>(ch) < 0x20) ch = '?';
    }
    c.error =
        fmt::format("etcd block claim {} is not {{\"node\", \"emptySince\"}}: '{}'", kv.key, shown);
    return c;
  }
  c.node = Str(*j, "node");
  c.empty_since = j->value("emptySince", int64_t{0});
  return c;
}

namespace {

std::string EncodeBlockClaim(const std::string& node, int64_t empty_since) {
  return json{{"node", node}, {"emptySince", empty_since}}.dump();
}

}  // namespace

absl::StatusOr<std::vector<BlockClaim>> EtcdStore::ListBlocks(const std::string& pool) {
  std::string prefix = BlocksPrefix(pool);
  std::optional<std::vector<KeyValue>> prefetched;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = prefetched_blocks_.find(pool); it != prefetched_blocks_.end()) {
      prefetched = std::move(it->second);
      prefetched_blocks_.erase(it);
    }
  }
  std::vector<KeyValue> kvs;
  if (prefetched.has_value()) {
    kvs = *std::move(prefetched);
  } else {
    ASSIGN_OR_RETURN(kvs, client_->RangePrefix(prefix));
  }
  std::vector<BlockClaim> out;
  out.reserve(kvs.size());
  for (const KeyValue& kv : kvs) out.push_back(DecodeBlockClaim(kv, kv.key.substr(prefix.size())));
  return out;
}

absl::StatusOr<std::optional<BlockClaim>> EtcdStore::ClaimBlock(const std::string& pool,
                                                                const IpPrefix& cidr) {
  std::string key = BlocksPrefix(pool) + BlockKeySegment(cidr);
  ASSIGN_OR_RETURN(std::optional<int64_t> rev,
                   client_->CreateIfAbsent(key, EncodeBlockClaim(node_, 0)));
  if (!rev.has_value()) return std::optional<BlockClaim>();
  BlockClaim c;
  c.cidr = cidr;
  c.node = node_;
  c.mod_revision = *rev;
  return std::optional<BlockClaim>(c);
}

absl::StatusOr<bool> EtcdStore::MarkBlock(const std::string& pool, BlockClaim& claim,
                                          int64_t empty_since) {
  std::string key = BlocksPrefix(pool) + BlockKeySegment(claim.cidr);
  ASSIGN_OR_RETURN(EtcdTxnResult t,
                   client_->Txn({{key, EtcdCompare::Target::kMod, claim.mod_revision, ""}},
                                {{EtcdOp::Kind::kPut, key, EncodeBlockClaim(node_, empty_since)}}));
  if (t.succeeded) {
    claim.empty_since = empty_since;
    claim.mod_revision = t.revision;
  }
  return t.succeeded;
}

absl::StatusOr<bool> EtcdStore::ReleaseBlock(const std::string& pool, const BlockClaim& claim) {
  return client_->DeleteIfUnchanged(BlocksPrefix(pool) + BlockKeySegment(claim.cidr),
                                    claim.mod_revision);
}

absl::StatusOr<NodeRelease> ReleaseNode(EtcdClient* client, const std::string& prefix,
                                        const std::string& pool, const std::string& node) {
  std::string ips = fmt::format("{}/pools/{}/ips/", prefix, pool);
  std::string index = fmt::format("{}/pools/{}/nodes/{}/ips/", prefix, pool, node);
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, client->RangePrefix(ips));
  NodeRelease out;
  for (const KeyValue& kv : kvs) {
    // Unreadable records belong to no node: reported by `rdmashare pool`, never released here.
    if (!RecordProblem(kv.value).empty() || !IpAddr::Parse(kv.key.substr(ips.size())).ok()) {
      continue;
    }
    json j = ParseRecordJson(kv.value).value_or(json());
    if (Str(j, "node") != node) continue;
    ASSIGN_OR_RETURN(EtcdTxnResult t,
                     client->Txn({{kv.key, EtcdCompare::Target::kMod, kv.mod_revision, ""}},
                                 {{EtcdOp::Kind::kDelete, kv.key, ""},
                                  {EtcdOp::Kind::kDelete, index + kv.key.substr(ips.size()), ""}}));
    if (t.succeeded) ++out.addresses;
  }
  std::string blocks = fmt::format("{}/pools/{}/blocks/", prefix, pool);
  ASSIGN_OR_RETURN(std::vector<KeyValue> claims, client->RangePrefix(blocks));
  for (const KeyValue& kv : claims) {
    BlockClaim c = DecodeBlockClaim(kv, kv.key.substr(blocks.size()));
    if (!c.error.empty() || c.node != node) continue;
    ASSIGN_OR_RETURN(bool deleted, client->DeleteIfUnchanged(kv.key, kv.mod_revision));
    if (deleted) ++out.blocks;
  }
  // The node's index (stale copies included), hints and migration marker go with it.
  std::string node_prefix = fmt::format("{}/pools/{}/nodes/{}/", prefix, pool, node);
  ASSIGN_OR_RETURN(std::vector<KeyValue> rest, client->RangePrefix(node_prefix));
  for (const KeyValue& kv : rest) {
    RETURN_IF_ERROR(client->DeleteIfUnchanged(kv.key, kv.mod_revision).status());
  }
  return out;
}

}  // namespace rdmashare::cni::ipam
