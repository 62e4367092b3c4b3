// EtcdClient: a small blocking client of etcd's v3 JSON gateway (etcd 3.4+: POST /v3/kv/range,
// /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange over HTTP/1.1, keys and values base64 encoded):
// the KV operations the IPAM store needs, and the failover across the configured endpoints.
// Our own sockets, no libcurl/gRPC, so the static CNI binaries stay small and start fast.
//
// The parts it is built from, each in its own unit:
//  - etcd_endpoint.h: endpoints ("http://10.0.0.1:2379", "https://etcd-0.example:2379",
//    "127.0.0.1:2379", "[::1]:2379") parsed and validated (code 7 from Create()).
//  - name_lookup.h: a host name is resolved at connect time from the hosts file
//    (EtcdOptions::hosts_file, default /etc/hosts), else with getaddrinfo(3), "localhost" falling
//    back to 127.0.0.1 and ::1; every address of a name is tried before the endpoint counts as
//    failed. A name that does not resolve fails that endpoint with a message naming the name.
//  - tls_transport.h: "https://" endpoints, and bare "host:port" ones when EtcdOptions::tls is
//    set, use TLS 1.2+ verified against tls.ca and the endpoint's host; tls.cert/tls.key are
//    presented when the server asks. A failed handshake fails that endpoint like a refused
//    connection, with OpenSSL's reason in the message. Unreadable or invalid TLS files are code 7
//    from Create(), naming the file. With EtcdOptions::tls_sessions set, each endpoint's session
//    is saved to and resumed from a file (tls_session_cache.h); tls_stats() counts handshakes.
//  - http_connection.h / http_response.h: one kept-alive HTTP/1.1 connection; answers are
//    untrusted and framed strictly (header section <= 64 KiB and 100 fields, body <=
//    max_response_bytes, chunk sizes and Content-Length overflow-checked), every read bounded by
//    the attempt's deadline.
//  - etcd_kv_json.h: the gateway's request and answer JSON.
//
// Failover (here): endpoints are tried in turn: a connection refused, a timeout, an HTTP 5xx or
// an etcd "unavailable" answer moves on to the next endpoint, cycling with a short backoff until
// the operation's deadline (or after two passes in which no endpoint accepted a connection). One
// attempt gets at most a third of request_timeout (at least 250 ms), so a hung member cannot
// eat the whole budget. A create retried after a lost answer is recognised (see CreateIfAbsent).
// dial_timeout bounds each connect, request_timeout the whole operation (all endpoints and retries
// included). When every endpoint failed the status is CniError(11, "etcd unreachable: tried
// <endpoint>: <cause>; ...", kEtcdUnreachableDetails). The connection is kept alive between
// operations. An endpoint that breaks the HTTP framing or a limit is not asked again within the
// operation (the others are); its cause ("response chunk size '-6' is not hexadecimal") appears
// in the code-11 message.
//
// Ownership: the client owns its connection and TLS context. Thread-safe (operations are
// serialized by an internal mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cni/ipam/etcd_endpoint.h"
#include "cni/ipam/etcd_kv_json.h"
#include "cni/ipam/http_response.h"
#include "cni/ipam/tls_session_cache.h"
#include "cni/ipam/tls_transport.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

class HttpConnection;

// CniDetails() of the status returned when no endpoint answered.
inline constexpr char kEtcdUnreachableDetails[] = "etcd unreachable";

// The hosts file consulted before DNS by default.
inline constexpr char kDefaultHostsFile[] = "/etc/hosts";

// How to reach etcd (the ipam "store" section).
struct EtcdOptions {
  std::vector<std::string> endpoints;
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};
  // Largest response body accepted (store.maxResponseBytes); see http_response.h.
  uint64_t max_response_bytes = kDefaultMaxResponseBytes;
  EtcdTlsFiles tls;
  // Consulted before DNS for host names in endpoints (injectable for tests).
  std::string hosts_file = kDefaultHostsFile;
  // Where TLS sessions are cached between processes (disabled unless base_dir is set).
  TlsSessionCacheOptions tls_sessions;
};

// True when `status` means "no etcd endpoint could be reached" (worth journaling a DEL).
bool IsEtcdUnreachable(const absl::Status& status);

class EtcdClient {
 public:
  // Endpoints are validated and the TLS files loaded here (code 7 naming the bad endpoint or
  // file). No connection is made.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();

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

  // One transaction: `success` when every compare holds, else `failure`.
  absl::StatusOr<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compares,
                                    const std::vector<EtcdOp>& success,
                                    const std::vector<EtcdOp>& failure = {});

  // Opens the connection (TCP, and TLS handshake) to the endpoint the next request goes to, if
  // none is open, within the dial timeout; failures are left for that request to meet and
  // report. Lets a caller pay the connection before it takes a lock.
  void Prepare();

  // POSTs `body` to `path` ("/v3/kv/range", ...) and returns the parsed JSON answer.
  absl::StatusOr<nlohmann::json> Call(const std::string& path, const nlohmann::json& body);

  const EtcdOptions& options() const { return options_; }

  // Handshake counters (all zero without TLS).
  EtcdTlsStats tls_stats() const;

 private:
  EtcdClient(EtcdOptions options, std::vector<EtcdEndpoint> endpoints,
             std::unique_ptr<TlsClientContext> tls);

  // Resolves, connects (and for TLS, handshakes with) endpoint `ep` within `deadline`.
  absl::StatusOr<std::unique_ptr<HttpConnection>> Connect(
      const EtcdEndpoint& ep, std::chrono::steady_clock::time_point deadline);

  // Appended to TLS handshake failures when no client certificate is configured.
  std::string ClientCertHint() const;

  // One request/response on endpoint `idx` (reusing the kept-alive connection). Sets
  // `retryable` when the next endpoint should be tried, `dial_failed` when no connection was
  // made, `broken` when the endpoint answered but broke HTTP framing or a limit.
  absl::StatusOr<nlohmann::json> Exchange(size_t idx, const std::string& request,
                                          std::chrono::steady_clock::time_point deadline,
                                          bool* retryable, bool* dial_failed, bool* broken)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EtcdOptions options_;
  const std::vector<EtcdEndpoint> endpoints_;
  std::unique_ptr<TlsClientContext> tls_;
  absl::Mutex mu_;
  std::unique_ptr<HttpConnection> conn_ ABSL_GUARDED_BY(mu_);
  size_t conn_endpoint_ ABSL_GUARDED_BY(mu_) = 0;
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rdmashare::cni::ipam
