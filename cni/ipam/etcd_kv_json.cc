#include "cni/ipam/etcd_kv_json.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "cni/protocol/error.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

absl::StatusOr<std::string> UnB64(const json& v, const char* what) {
  if (v.is_null()) return std::string();
  std::string out;
  if (!v.is_string() || !absl::Base64Unescape(v.get<std::string>(), &out)) {
    return CniError(kIoFailure, fmt::format("etcd: answer has a malformed base64 {}", what));
  }
  return out;
}

absl::StatusOr<KeyValue> ParseKv(const json& kv) {
  if (!kv.is_object()) return CniError(kIoFailure, "etcd: answer has a non-object kv");
  KeyValue out;
  ASSIGN_OR_RETURN(out.key, UnB64(kv.value("key", json()), "key"));
  ASSIGN_OR_RETURN(out.value, UnB64(kv.value("value", json()), "value"));
  out.create_revision = EtcdInt64Field(kv, "create_revision");
  out.mod_revision = EtcdInt64Field(kv, "mod_revision");
  return out;
}

json Ops(const std::vector<EtcdOp>& list) {
  json out = json::array();
  for (const EtcdOp& op : list) {
    switch (op.kind) {
      case EtcdOp::Kind::kPut:
        out.push_back({{"request_put", {{"key", B64(op.key)}, {"value", B64(op.value)}}}});
        break;
      case EtcdOp::Kind::kDelete:
        out.push_back({{"request_delete_range", {{"key", B64(op.key)}}}});
        break;
      case EtcdOp::Kind::kGet:
        out.push_back({{"request_range", {{"key", B64(op.key)}}}});
        break;
      case EtcdOp::Kind::kGetPrefix:
        out.push_back({{"request_range",
                        {{"key", B64(op.key)}, {"range_end", B64(PrefixRangeEnd(op.key))}}}});
        break;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<json> ParseEtcdJson(const std::string& body) {
  // Range answers hold base64 keys/values, at most 4 levels.
  JsonLimits limits;
  limits.max_depth = 16;
  limits.max_bytes = 64 << 20;
  return ParseJsonBounded(body, "etcd answer", limits);
}

int64_t EtcdInt64Field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

absl::StatusOr<std::vector<KeyValue>> ParseEtcdKvs(const json& range_response) {
  std::vector<KeyValue> out;
  auto it = range_response.find("kvs");
  if (it == range_response.end()) return out;
  if (!it->is_array()) return CniError(kIoFailure, "etcd: range answer has a non-array kvs");
  for (const json& kv : *it) {
    ASSIGN_OR_RETURN(KeyValue parsed, ParseKv(kv));
    out.push_back(std::move(parsed));
  }
  return out;
}

absl::StatusOr<std::vector<KeyValue>> ParseEtcdRangeResponse(const std::string& body) {
  json j = ParseEtcdJson(body).value_or(json());
  if (j.is_null() || !j.is_object()) {
    return CniError(kIoFailure, "etcd: range answer is not a JSON object");
  }
  return ParseEtcdKvs(j);
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

int64_t EtcdHeaderRevision(const json& answer) {
  return answer.contains("header") ? EtcdInt64Field(answer["header"], "revision") : 0;
}

json EtcdGetRequest(const std::string& key) { return {{"key", B64(key)}}; }

json EtcdPrefixRangeRequest(const std::string& prefix) {
  return {{"key", B64(prefix)}, {"range_end", B64(PrefixRangeEnd(prefix))}};
}

json EtcdPutRequest(const std::string& key, const std::string& value) {
  return {{"key", B64(key)}, {"value", B64(value)}};
}

json EtcdCreateIfAbsentTxn(const std::string& key, const std::string& value) {
  return {{"compare", json::array({{{"key", B64(key)},
                                    {"target", "CREATE"},
                                    {"result", "EQUAL"},
                                    {"create_revision", "0"}}})},
          {"success", json::array({{{"request_put", {{"key", B64(key)}, {"value", B64(value)}}}}})},
          {"failure", json::array({{{"request_range", {{"key", B64(key)}}}}})}};
}

absl::StatusOr<std::optional<int64_t>> ParseEtcdCreateIfAbsentAnswer(const json& r,
                                                                     const std::string& value) {
  if (r.value("succeeded", false)) {
    return std::optional<int64_t>(EtcdHeaderRevision(r));
  }
  // Lost the race, or our own earlier attempt (a retried request) created it.
  auto responses = r.find("responses");
  if (responses != r.end() && responses->is_array() && !responses->empty()) {
    const json& first = (*responses)[0];
    if (first.contains("response_range")) {
      ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseEtcdKvs(first["response_range"]));
      if (!kvs.empty() && kvs[0].value == value) {
        return std::optional<int64_t>(kvs[0].mod_revision);
      }
    }
  }
  return std::optional<int64_t>();
}

json EtcdDeleteIfUnchangedTxn(const std::string& key, int64_t mod_revision) {
  return {{"compare", json::array({{{"key", B64(key)},
                                    {"target", "MOD"},
                                    {"result", "EQUAL"},
                                    {"mod_revision", std::to_string(mod_revision)}}})},
          {"success", json::array({{{"request_delete_range", {{"key", B64(key)}}}}})}};
}

json EtcdTxnRequest(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                    const std::vector<EtcdOp>& failure) {
  json cmp = json::array();
  for (const EtcdCompare& c : compares) {
    json one = {{"key", B64(c.key)}, {"result", "EQUAL"}};
    switch (c.target) {
      case EtcdCompare::Target::kCreate:
        one["target"] = "CREATE";
        one["create_revision"] = std::to_string(c.revision);
        break;
      case EtcdCompare::Target::kMod:
        one["target"] = "MOD";
        one["mod_revision"] = std::to_string(c.revision);
        break;
      case EtcdCompare::Target::kValue:
        one["target"] = "VALUE";
        one["value"] = B64(c.value);
        break;
    }
    cmp.push_back(std::move(one));
  }
  return {{"compare", cmp}, {"success", Ops(success)}, {"failure", Ops(failure)}};
}

absl::StatusOr<EtcdTxnResult> ParseEtcdTxnAnswer(const json& r, const std::vector<EtcdOp>& success,
                                                 const std::vector<EtcdOp>& failure) {
  EtcdTxnResult out;
  out.succeeded = r.value("succeeded", false);
  out.revision = EtcdHeaderRevision(r);
  const std::vector<EtcdOp>& taken = out.succeeded ? success : failure;
  auto responses = r.find("responses");
  size_t i = 0;
  for (const EtcdOp& op : taken) {
    if (op.kind != EtcdOp::Kind::kGet && op.kind != EtcdOp::Kind::kGetPrefix) {
      ++i;
      continue;
    }
    if (responses == r.end() || !responses->is_array() || i >= responses->size() ||
        !(*responses)[i].is_object() || !(*responses)[i].contains("response_range")) {
      return CniError(kIoFailure, "etcd: transaction answer lacks a range response");
    }
    ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseEtcdKvs((*responses)[i]["response_range"]));
    out.reads.push_back(std::move(kvs));
    ++i;
  }
  return out;
}

}  // namespace rdmashare::cni::ipam
