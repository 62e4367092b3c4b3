#include "cni/ipam/etcd_store.h"

#include "cni/ipam/ip.h"
#include "cni/protocol/error.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

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
                     std::string lock_dir)
    : client_(client),
      prefix_(std::move(prefix)),
      node_(std::move(node)),
      network_(std::move(network)),
      locks_(std::move(lock_dir), /*durable=*/false) {}

std::string EtcdStore::IpsPrefix(const std::string& pool) const {
  return fmt::format("{}/pools/{}/ips/", prefix_, pool);
}

std::string EtcdStore::IpKey(const std::string& pool, const std::string& ip) const {
  return IpsPrefix(pool) + ip;
}

absl::StatusOr<std::unique_ptr<StoreLock>> EtcdStore::Lock(const std::string& pool,
                                                           std::chrono::milliseconds timeout) {
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
  std::string prefix = IpsPrefix(pool);
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, client_->RangePrefix(prefix));
  std::vector<Reservation> out;
  absl::MutexLock lock(&mu_);
  for (const KeyValue& kv : kvs) {
    revisions_[kv.key] = kv.mod_revision;
    out.push_back(Decode(kv.key.substr(prefix.size()), kv));
  }
  return out;
}

absl::StatusOr<bool> EtcdStore::Reserve(const std::string& pool, const Reservation& r) {
  Reservation rec = r;
  rec.node = node_;
  rec.owner_network = network_;
  std::string key = IpKey(pool, r.ip);
  ASSIGN_OR_RETURN(std::optional<int64_t> rev, client_->CreateIfAbsent(key, EncodeEtcdRecord(rec)));
  if (!rev.has_value()) return false;
  absl::MutexLock lock(&mu_);
  revisions_[key] = *rev;
  return true;
}

absl::Status EtcdStore::Release(const std::string& pool, const std::string& ip) {
  std::string key = IpKey(pool, ip);
  int64_t rev = 0;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = revisions_.find(key); it != revisions_.end()) rev = it->second;
  }
  if (rev == 0) {
    ASSIGN_OR_RETURN(std::optional<KeyValue> kv, client_->Get(key));
    if (!kv.has_value()) return absl::OkStatus();
    Reservation r = Decode(ip, *kv);
    if (r.foreign) {
      return absl::FailedPreconditionError(
          fmt::format("etcd store: pool {}: {} belongs to node {} network {}, not to "
                      "node {} network {}; not releasing it",
                      pool, ip, r.node, r.owner_network, node_, network_));
    }
    rev = kv->mod_revision;
  }
  ASSIGN_OR_RETURN(bool deleted, client_->DeleteIfUnchanged(key, rev));
  absl::MutexLock lock(&mu_);
  revisions_.erase(key);
  (void)deleted;  // false: it changed hands or is gone; either way it is no longer ours
  return absl::OkStatus();
}

absl::StatusOr<std::string> EtcdStore::LastReserved(const std::string& pool, int pool_index) {
  ASSIGN_OR_RETURN(std::optional<KeyValue> kv,
                   client_->Get(fmt::format("{}/pools/{}/nodes/{}/last_reserved/{}", prefix_, pool,
                                            node_, pool_index)));
  return kv.has_value() ? kv->value : std::string();
}

absl::Status EtcdStore::SetLastReserved(const std::string& pool, int pool_index,
                                        const std::string& ip) {
  return client_
      ->Put(fmt::format("{}/pools/{}/nodes/{}/last_reserved/{}", prefix_, pool, node_, pool_index),
            ip)
      .status();
}

absl::StatusOr<int> ReleaseNode(EtcdClient* client, const std::string& prefix,
                                const std::string& pool, const std::string& node) {
  std::string ips = fmt::format("{}/pools/{}/ips/", prefix, pool);
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, client->RangePrefix(ips));
  int released = 0;
  for (const KeyValue& kv : kvs) {
    // Unreadable records belong to no node: reported by `rdmashare pool`, never released here.
    if (!RecordProblem(kv.value).empty() || !IpAddr::Parse(kv.key.substr(ips.size())).ok()) {
      continue;
    }
    json j = ParseRecordJson(kv.value).value_or(json());
    if (Str(j, "node") != node) continue;
    ASSIGN_OR_RETURN(bool deleted, client->DeleteIfUnchanged(kv.key, kv.mod_revision));
    if (deleted) ++released;
  }
  return released;
}

}  // namespace rdmashare::cni::ipam
