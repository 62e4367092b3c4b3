// EtcdClient: a small blocking client of etcd's v3 JSON gateway (etcd 3.4+: POST /v3/kv/range,
// /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange over HTTP/1.1, keys and values base64 encoded).
// Our own sockets, no libcurl/gRPC, so the static CNI binaries stay small and start fast.
//
// Endpoints ("http://10.0.0.1:2379", "127.0.0.1:2379", "[::1]:2379"; numeric addresses or
// "localhost") are tried in turn: a connection refused, a timeout, an HTTP 5xx or an etcd
// "unavailable" answer moves on to the next endpoint, cycling with a short backoff until the
// operation's deadline (or after two passes in which no endpoint accepted a connection). One
// attempt gets at most a third of request_timeout (at least 250 ms), so a hung member cannot
// eat the whole budget. A create retried after a lost answer is recognised (see CreateIfAbsent).
// dial_timeout bounds each connect, request_timeout the whole operation (all endpoints and retries
// included). When every endpoint failed the status is CniError(11, "etcd unreachable: tried
// <endpoint>: <cause>; ...", kEtcdUnreachableDetails). The connection is kept alive between
// operations.
//
// Thread-safe (operations are serialized by an internal mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

// CniDetails() of the status returned when no endpoint answered.
inline constexpr char kEtcdUnreachableDetails[] = "etcd unreachable";

struct EtcdOptions {
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
};

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

// True when `status` means "no etcd endpoint could be reached" (worth journaling a DEL).
bool IsEtcdUnreachable(const absl::Status& status);

class EtcdClient {
 public:
  // Endpoints are validated here (code 7 naming the bad endpoint).
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);

  // Every key with prefix `prefix`, sorted by key.
  absl::StatusOr<std::vector<KeyValue>> RangePrefix(const std::string& prefix);
  // One key, or nullopt when absent.
  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key);
  // Unconditional put; returns the new mod revision.
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value);
  // Creates `key` only when it does not exist (txn: create_revision == 0). Returns the mod
  // revision of the record when it now holds `value` (created by us, or already holding exactly
  // `value`, e.g. after a retried request), nullopt when someone else holds the key.
  absl::StatusOr<std::optional<int64_t>> CreateIfAbsent(const std::string& key,
                                                        const std::string& value);
  // Deletes `key` only when its mod revision is still `mod_revision`. Returns false when the key
  // changed or is gone.
  absl::StatusOr<bool> DeleteIfUnchanged(const std::string& key, int64_t mod_revision);

  // POSTs `body` to `path` ("/v3/kv/range", ...) and returns the parsed JSON answer.
  absl::StatusOr<nlohmann::json> Call(const std::string& path, const nlohmann::json& body);

  const EtcdOptions& options() const { return options_; }

 private:
  struct Endpoint {
    std::string text;  // as configured
    std::string host;  // numeric address
    int port = 0;
  };
  EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints);

  // One request/response on endpoint `idx` (reusing the kept-alive connection). Sets
  // `retryable` when the next endpoint should be tried.
  absl::StatusOr<nlohmann::json> Exchange(size_t idx, const std::string& request,
                                          std::chrono::steady_clock::time_point deadline,
                                          bool* retryable, bool* dial_failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EtcdOptions options_;
  const std::vector<Endpoint> endpoints_;
  absl::Mutex mu_;
  UniqueFd conn_ ABSL_GUARDED_BY(mu_);
  size_t conn_endpoint_ ABSL_GUARDED_BY(mu_) = 0;
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

// The exclusive end of the key range of every key starting with `prefix` (etcd's range_end).
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace rdmashare::cni::ipam
