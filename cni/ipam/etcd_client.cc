#include "cni/ipam/etcd_client.h"

#include <algorithm>
#include <thread>

#include "cni/ipam/http_connection.h"
#include "cni/ipam/tcp_socket.h"
#include "cni/protocol/error.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool IsEtcdUnreachable(const absl::Status& status) {
  return !status.ok() && CniCode(status) == kTryAgainLater &&
         CniDetails(status) == kEtcdUnreachableDetails;
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return CniError(kInvalidNetworkConfig, "ipam: etcd store needs at least one endpoint");
  }
  std::vector<EtcdEndpoint> eps;
  for (const std::string& text : options.endpoints) {
    ASSIGN_OR_RETURN(EtcdEndpoint ep, ParseEtcdEndpoint(text, options.tls.enabled()));
    eps.push_back(std::move(ep));
  }
  std::unique_ptr<TlsClientContext> tls;
  if (options.tls.enabled()) {
    ASSIGN_OR_RETURN(tls, TlsClientContext::Create(options.tls, options.tls_sessions));
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::move(options), std::move(eps), std::move(tls)));
}

EtcdClient::EtcdClient(EtcdOptions options, std::vector<EtcdEndpoint> endpoints,
                       std::unique_ptr<TlsClientContext> tls)
    : options_(std::move(options)), endpoints_(std::move(endpoints)), tls_(std::move(tls)) {}

EtcdClient::~EtcdClient() = default;

EtcdTlsStats EtcdClient::tls_stats() const {
  if (tls_ == nullptr) return EtcdTlsStats();
  return tls_->stats();
}

absl::StatusOr<std::unique_ptr<HttpConnection>> EtcdClient::Connect(const EtcdEndpoint& ep,
                                                                    Clock::time_point deadline) {
  return HttpConnection::Dial(ep, options_.hosts_file, options_.dial_timeout, tls_.get(), deadline);
}

std::string EtcdClient::ClientCertHint() const {
  if (tls_ == nullptr) return "";
  return tls_->ClientCertHint();
}

absl::StatusOr<json> EtcdClient::Exchange(size_t idx, const std::string& request,
                                          Clock::time_point deadline, bool* retryable,
                                          bool* dial_failed, bool* broken) {
  *retryable = true;
  *dial_failed = false;
  *broken = false;
  HttpResponseLimits limits;
  limits.max_body_bytes = options_.max_response_bytes;
  const EtcdEndpoint& ep = endpoints_[idx];
  bool reused = conn_ != nullptr && conn_endpoint_ == idx;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (conn_ == nullptr || conn_endpoint_ != idx) {
      conn_.reset();
      auto conn = Connect(ep, deadline);
      if (!conn.ok()) {
        *dial_failed = true;
        return conn.status();
      }
      conn_ = std::move(*conn);
      conn_endpoint_ = idx;
      reused = false;
    }
    const Clock::time_point start = Clock::now();
    absl::Status st = conn_->Send(request, deadline);
    absl::StatusOr<HttpResponse> resp =
        st.ok() ? conn_->ReadResponse(limits, start, deadline) : absl::StatusOr<HttpResponse>(st);
    if (!resp.ok()) {
      conn_.reset();
      // TLS 1.3 servers reject a client certificate (or its absence) after the client's side
      // of the handshake: the alert arrives with the first answer. The endpoint is unusable.
      if (absl::IsUnauthenticated(resp.status())) {
        *dial_failed = true;
        return absl::Status(resp.status().code(),
                            fmt::format("{}{}", resp.status().message(), ClientCertHint()));
      }
      // The peer broke HTTP framing or a limit: it answered, so this is no stale connection,
      // and asking again would only fetch the same garbage.
      if (absl::IsInvalidArgument(resp.status()) || absl::IsResourceExhausted(resp.status())) {
        *broken = true;
        return resp.status();
      }
      // A kept-alive connection the server closed meanwhile: redial once.
      if (reused && !absl::IsDeadlineExceeded(resp.status())) continue;
      return resp.status();
    }
    if (!resp->keep_alive) conn_.reset();
    json body = ParseEtcdJson(resp->body).value_or(json());
    if (resp->status != 200) {
      std::string msg = body.is_object() && body.contains("error") && body["error"].is_string()
                            ? body["error"].get<std::string>()
                            : resp->body.substr(0, 200);
      int grpc_code = body.is_object() ? static_cast<int>(EtcdInt64Field(body, "code")) : 0;
      // 14 Unavailable, 4 DeadlineExceeded, 10 Aborted (leader changes, no quorum): next one.
      *retryable = resp->status >= 500 || grpc_code == 14 || grpc_code == 4 || grpc_code == 10;
      return absl::UnavailableError(fmt::format("HTTP {}: {}", resp->status, msg));
    }
    if (!body.is_object()) {
      return absl::UnavailableError(
          fmt::format("answer is not a JSON object: {}", resp->body.substr(0, 200)));
    }
    return body;
  }
  return absl::UnavailableError("connection lost");
}

void EtcdClient::Prepare() {
  absl::MutexLock lock(&mu_);
  if (conn_ != nullptr || endpoints_.empty()) return;
  size_t idx = preferred_ % endpoints_.size();
  auto conn = Connect(endpoints_[idx], Clock::now() + options_.dial_timeout);
  if (!conn.ok()) return;
  conn_ = std::move(*conn);
  conn_endpoint_ = idx;
}

absl::StatusOr<json> EtcdClient::Call(const std::string& path, const json& body) {
  std::string payload = body.dump();
  absl::MutexLock lock(&mu_);
  auto deadline = Clock::now() + options_.request_timeout;
  std::vector<std::string> causes(endpoints_.size());
  auto backoff = std::chrono::milliseconds(20);
  const auto attempt_budget =
      std::max(std::chrono::milliseconds(250), options_.request_timeout / 3);
  // Passes in which no endpoint even accepted a connection: after two, give up early (etcd is
  // down; a DEL journals, an ADD fails fast) instead of waiting for the whole request timeout.
  int refused_passes = 0;
  // Endpoints that broke the protocol in this call: not asked again (their answer is garbage,
  // possibly megabytes of it); the others still are.
  std::vector<bool> broken(endpoints_.size(), false);
  for (;;) {
    bool all_dial_failed = true;
    for (size_t step = 0; step < endpoints_.size(); ++step) {
      size_t idx = (preferred_ + step) % endpoints_.size();
      if (broken[idx]) continue;
      const EtcdEndpoint& ep = endpoints_[idx];
      std::string request = FormatHttpJsonPost(path, ep.host, ep.port, payload);
      bool retryable = true, dial_failed = false, protocol_error = false;
      // One endpoint may hang (a member cut off from the leader keeps a proposal until its own
      // timeout): give each attempt a third of the budget so the others still get their turn.
      auto attempt_deadline = std::min(deadline, Clock::now() + attempt_budget);
      auto out =
          Exchange(idx, request, attempt_deadline, &retryable, &dial_failed, &protocol_error);
      broken[idx] = protocol_error;
      all_dial_failed = all_dial_failed && dial_failed;
      if (out.ok()) {
        preferred_ = idx;
        return out;
      }
      causes[idx] = std::string(out.status().message());
      if (!retryable) {
        return CniError(kIoFailure, fmt::format("etcd {} {}: {}", ep.text, path, causes[idx]));
      }
      if (RemainingMs(deadline) == 0) break;
    }
    if (std::all_of(broken.begin(), broken.end(), [](bool b) { return b; })) break;
    if (all_dial_failed && ++refused_passes >= 2) break;
    if (RemainingMs(deadline) <= backoff.count()) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
  std::string tried;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (!tried.empty()) tried += "; ";
    tried += endpoints_[i].text + ": " + (causes[i].empty() ? "not tried" : causes[i]);
  }
  return CniError(kTryAgainLater, fmt::format("etcd unreachable ({}): tried {}", path, tried),
                  kEtcdUnreachableDetails);
}

absl::StatusOr<std::vector<KeyValue>> EtcdClient::RangePrefix(const std::string& prefix) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", EtcdPrefixRangeRequest(prefix)));
  return ParseEtcdKvs(r);
}

absl::StatusOr<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", EtcdGetRequest(key)));
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseEtcdKvs(r));
  if (kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(kvs.front());
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/put", EtcdPutRequest(key, value)));
  return EtcdHeaderRevision(r);
}

absl::StatusOr<std::optional<int64_t>> EtcdClient::CreateIfAbsent(const std::string& key,
                                                                  const std::string& value) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", EtcdCreateIfAbsentTxn(key, value)));
  return ParseEtcdCreateIfAbsentAnswer(r, value);
}

absl::StatusOr<bool> EtcdClient::DeleteIfUnchanged(const std::string& key, int64_t mod_revision) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", EtcdDeleteIfUnchangedTxn(key, mod_revision)));
  return r.value("succeeded", false);
}

absl::StatusOr<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compares,
                                              const std::vector<EtcdOp>& success,
                                              const std::vector<EtcdOp>& failure) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", EtcdTxnRequest(compares, success, failure)));
  return ParseEtcdTxnAnswer(r, success, failure);
}

}  // namespace rdmashare::cni::ipam
