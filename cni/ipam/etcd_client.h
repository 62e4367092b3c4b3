// EtcdClient: a small blocking client of etcd's v3 JSON gateway (etcd 3.4+: POST /v3/kv/range,
// /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange over HTTP/1.1, keys and values base64 encoded).
// Our own sockets, no libcurl/gRPC, so the static CNI binaries stay small and start fast.
//
// Endpoints ("http://10.0.0.1:2379", "https://etcd-0.example:2379", "127.0.0.1:2379",
// "[::1]:2379") are tried in turn. A host name is resolved at connect time from the hosts file
// (EtcdOptions::hosts_file, default /etc/hosts; no NSS surprises in a static binary), else with
// getaddrinfo(3) (DNS), "localhost" falling back to 127.0.0.1 and ::1; every address of a name
// is tried before the endpoint counts as failed. A name that does not resolve fails that
// endpoint with a message naming the name.
//
// TLS (OpenSSL, linked statically): "https://" endpoints, and bare "host:port" ones when
// EtcdOptions::tls is set, use TLS 1.2+; the server certificate must chain to tls.ca and be
// issued for the endpoint's host name or IP address; tls.cert/tls.key (optional) are presented
// when the server asks for a client certificate. A failed handshake (certificate verify failed,
// a missing client certificate, ...) fails that endpoint like a refused connection, with
// OpenSSL's reason in the message. Unreadable or invalid TLS files are code 7 from Create(),
// naming the file. With EtcdOptions::tls_sessions set, each endpoint's session (ticket) is saved
// to and resumed from a file (tls_session_cache.h), so a new process skips the full handshake;
// tls_stats() counts the handshakes of both kinds.
//
// Endpoints are tried in turn: a connection refused, a timeout, an HTTP 5xx or an etcd
// "unavailable" answer moves on to the next endpoint, cycling with a short backoff until the
// operation's deadline (or after two passes in which no endpoint accepted a connection). One
// attempt gets at most a third of request_timeout (at least 250 ms), so a hung member cannot
// eat the whole budget. A create retried after a lost answer is recognised (see CreateIfAbsent).
// dial_timeout bounds each connect, request_timeout the whole operation (all endpoints and retries
// included). When every endpoint failed the status is CniError(11, "etcd unreachable: tried
// <endpoint>: <cause>; ...", kEtcdUnreachableDetails). The connection is kept alive between
// operations.
//
// Answers are untrusted: HttpResponseParser (http_response.h) frames them strictly (header
// section <= 64 KiB and 100 fields, body <= max_response_bytes, chunk sizes and Content-Length
// overflow-checked), the same for plain and TLS connections. Every read waits at most until the
// attempt's deadline, which is also checked between reads, so a silent, slow-drip or endless
// peer ends the attempt on time. An endpoint that breaks the framing or a limit is not asked
// again within the operation (the others are); its cause ("response chunk size '-6' is not
// hexadecimal") appears in the code-11 message. A body without Content-Length or chunked
// framing counts only when the server closes the connection cleanly (TLS: close_notify).
//
// Thread-safe (operations are serialized by an internal mutex).
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
#include "cni/ipam/http_response.h"
#include "cni/ipam/tls_session_cache.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {

// CniDetails() of the status returned when no endpoint answered.
inline constexpr char kEtcdUnreachableDetails[] = "etcd unreachable";

// PEM files of the TLS client ("store.tls": {"ca", "cert", "key"}). `ca` is required for TLS;
// `cert` and `key` come together or not at all.
struct EtcdTlsFiles {
  std::string ca, cert, key;
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

inline constexpr char kDefaultHostsFile[] = "/etc/hosts";

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

// TLS handshakes of one EtcdClient: full ones, resumed ones (a cached session was accepted) and
// sessions saved to the cache.
struct EtcdTlsStats {
  int64_t full_handshakes = 0;
  int64_t resumed_handshakes = 0;
  int64_t sessions_saved = 0;
  bool operator==(const EtcdTlsStats& o) const {
    return full_handshakes == o.full_handshakes && resumed_handshakes == o.resumed_handshakes &&
           sessions_saved == o.sessions_saved;
  }
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

// The key-values of a range answer body of the JSON gateway ({"kvs": [{"key", "value" (base64),
// "create_revision", "mod_revision"}...]}; no "kvs" = none). Code 5 naming the problem for
// anything else (not JSON, wrong types, bad base64). Untrusted input: the answer comes from the
// network.
absl::StatusOr<std::vector<KeyValue>> ParseEtcdRangeResponse(const std::string& body);

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

struct EtcdTxnResult {
  bool succeeded = false;
  // The store revision after the transaction.
  int64_t revision = 0;
  // What each kGet / kGetPrefix of the branch taken read, in order (empty when absent).
  std::vector<std::vector<KeyValue>> reads;
};

// True when `status` means "no etcd endpoint could be reached" (worth journaling a DEL).
bool IsEtcdUnreachable(const absl::Status& status);

// The addresses `name` maps to in hosts-file text (hosts(5): "address name [aliases...]", '#'
// comments; names compared case-insensitively), in file order.
std::vector<std::string> HostsFileAddresses(const std::string& hosts_text, const std::string& name);

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
  struct Endpoint {
    std::string text;  // as configured
    std::string host;  // numeric address or host name (no brackets)
    int port = 0;
    bool tls = false;
  };
  // An open connection (socket, plus the TLS session for https endpoints).
  struct Conn;

 public:
  // The SSL_CTX shared by the client's TLS connections (opaque; defined in etcd_client.cc).
  struct TlsContext;

 private:
  EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints, std::unique_ptr<TlsContext> tls);

  // Resolves, connects (and for TLS, handshakes with) endpoint `ep` within `deadline`.
  absl::StatusOr<std::unique_ptr<Conn>> Connect(const Endpoint& ep,
                                                std::chrono::steady_clock::time_point deadline);

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
  const std::vector<Endpoint> endpoints_;
  std::unique_ptr<TlsContext> tls_;
  absl::Mutex mu_;
  std::unique_ptr<Conn> conn_ ABSL_GUARDED_BY(mu_);
  size_t conn_endpoint_ ABSL_GUARDED_BY(mu_) = 0;
  size_t preferred_ ABSL_GUARDED_BY(mu_) = 0;
};

// The exclusive end of the key range of every key starting with `prefix` (etcd's range_end).
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace rdmashare::cni::ipam
