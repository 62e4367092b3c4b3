// The JSON of etcd's v3 KV gateway (etcd 3.4+): the request bodies the etcd client POSTs to
// /v3/kv/range, /v3/kv/put and /v3/kv/txn, and the decoding of their answers. Keys and values
// travel base64 encoded, int64 fields as decimal strings.
//
// Answers are untrusted (they come from the network): parsing is bounded (ParseEtcdJson) and
// never throws; a malformed answer is CNI code 5 naming the problem.
//
// Plain values and pure functions; no state, no I/O. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

// One key and its value, with its create and mod revisions.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  bool operator==(const KeyValue& o) const {
    return key == o.key && value == o.value && create_revision == o.create_revision &&
           mod_revision == o.mod_revision;
  }
};

// One condition of a transaction (etcd Compare, result EQUAL): the key's create revision, mod
// revision or value.
struct EtcdCompare {
  enum class Target { kCreate, kMod, kValue };
  std::string key;
  Target target = Target::kMod;
  int64_t revision = 0;  // kCreate, kMod (0 with kCreate = the key does not exist)
  std::string value;     // kValue
};

// One operation of a transaction branch: put, delete, or read a key.
struct EtcdOp {
  enum class Kind { kPut, kDelete, kGet, kGetPrefix };
  Kind kind = Kind::kGet;
  std::string key;    // kGetPrefix: every key with this prefix
  std::string value;  // kPut
};

// What a transaction did.
struct EtcdTxnResult {
  bool succeeded = false;
  // The store revision after the transaction.
  int64_t revision = 0;
  // What each kGet / kGetPrefix of the branch taken read, in order (empty when absent).
  std::vector<std::vector<KeyValue>> reads;
};

// The exclusive end of the key range of every key starting with `prefix` (etcd's range_end).
std::string PrefixRangeEnd(const std::string& prefix);

// The key-values of a range answer body of the JSON gateway ({"kvs": [{"key", "value" (base64),
// "create_revision", "mod_revision"}...]}; no "kvs" = none). Code 5 naming the problem for
// anything else (not JSON, wrong types, bad base64). Untrusted input: the answer comes from the
// network.
absl::StatusOr<std::vector<KeyValue>> ParseEtcdRangeResponse(const std::string& body);

// An answer body parsed as JSON, bounded (depth 16, 64 MiB); an error for anything else.
absl::StatusOr<nlohmann::json> ParseEtcdJson(const std::string& body);

// Integer field `key` of `obj` (the gateway encodes int64 as strings): 0 when absent, -1 when
// not an integer.
int64_t EtcdInt64Field(const nlohmann::json& obj, const char* key);

// The key-values of a parsed range answer ("kvs"); code 5 for malformed ones.
absl::StatusOr<std::vector<KeyValue>> ParseEtcdKvs(const nlohmann::json& range_response);

// header.revision of a parsed answer (0 without a header).
int64_t EtcdHeaderRevision(const nlohmann::json& answer);

// Range request of one key.
nlohmann::json EtcdGetRequest(const std::string& key);
// Range request of every key with `prefix`.
nlohmann::json EtcdPrefixRangeRequest(const std::string& prefix);
// Put request.
nlohmann::json EtcdPutRequest(const std::string& key, const std::string& value);

// Transaction creating `key` with `value` when it does not exist (create_revision == 0), reading
// it otherwise.
nlohmann::json EtcdCreateIfAbsentTxn(const std::string& key, const std::string& value);
// The answer of EtcdCreateIfAbsentTxn: the mod revision of the record when it now holds `value`
// (created, or already holding exactly `value`), nullopt when it holds something else.
absl::StatusOr<std::optional<int64_t>> ParseEtcdCreateIfAbsentAnswer(const nlohmann::json& answer,
                                                                     const std::string& value);

// Transaction deleting `key` when its mod revision is still `mod_revision`.
nlohmann::json EtcdDeleteIfUnchangedTxn(const std::string& key, int64_t mod_revision);

// Transaction request: `success` when every compare holds, else `failure`.
nlohmann::json EtcdTxnRequest(const std::vector<EtcdCompare>& compares,
                              const std::vector<EtcdOp>& success,
                              const std::vector<EtcdOp>& failure);
// The answer of EtcdTxnRequest (the reads of the branch taken); code 5 when a read's range
// response is missing or malformed.
absl::StatusOr<EtcdTxnResult> ParseEtcdTxnAnswer(const nlohmann::json& answer,
                                                 const std::vector<EtcdOp>& success,
                                                 const std::vector<EtcdOp>& failure);

}  // namespace rdmashare::cni::ipam
