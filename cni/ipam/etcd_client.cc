#include "cni/ipam/etcd_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/escaping.h"
#include "cni/protocol/error.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

absl::StatusOr<std::string> UnB64(const json& v, const char* what) {
  if (v.is_null()) return std::string();
  std::string out;
  if (!v.is_string() || !absl::Base64Unescape(v.get<std::string>(), &out)) {
    return CniError(kIoFailure, fmt::format("etcd: answer has a malformed base64 {}", what));
  }
  return out;
}

// etcd's gateway encodes int64 as strings; absent means 0.
int64_t Int64Field(const json& obj, const char* key) {
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

absl::StatusOr<KeyValue> ParseKv(const json& kv) {
  if (!kv.is_object()) return CniError(kIoFailure, "etcd: answer has a non-object kv");
  KeyValue out;
  ASSIGN_OR_RETURN(out.key, UnB64(kv.value("key", json()), "key"));
  ASSIGN_OR_RETURN(out.value, UnB64(kv.value("value", json()), "value"));
  out.create_revision = Int64Field(kv, "create_revision");
  out.mod_revision = Int64Field(kv, "mod_revision");
  return out;
}

absl::StatusOr<std::vector<KeyValue>> ParseKvs(const json& range_response) {
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

// Parses "http://host:port", "host:port", "[v6]:port"; host must be numeric or localhost.
absl::StatusOr<std::pair<std::string, int>> ParseEndpoint(const std::string& text) {
  std::string rest = text;
  if (rest.rfind("https://", 0) == 0) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: etcd endpoint '{}': https is not supported by this build "
                                "(use http on a trusted network)",
                                text));
  }
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string host, port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' is not [address]:port", text));
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' has no port", text));
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host == "localhost") host = "127.0.0.1";
  in6_addr a6;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: etcd endpoint '{}': host '{}' must be a numeric IPv4/IPv6 "
                                "address or localhost",
                                text, host));
  }
  int p = 0;
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) digits = digits && c >= '0' && c <= '9';
  if (digits) p = std::stoi(port);
  if (!digits || p <= 0 || p > 65535) {
    return CniError(
        kInvalidNetworkConfig,
        fmt::format("ipam: etcd endpoint '{}': port '{}' is not in 1..65535", text, port));
  }
  return std::make_pair(host, p);
}

absl::StatusOr<UniqueFd> Dial(const std::string& host, int port, int timeout_ms) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*s4);
  } else {
    family = AF_INET6;
    inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*s6);
  }
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::UnavailableError(fmt::format("socket: {}", strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(fmt::format("connect: {}", strerror(errno)));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
      return absl::UnavailableError(fmt::format("connect timed out after {} ms", timeout_ms));
    if (n < 0) return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return absl::UnavailableError(fmt::format("connect: {}", strerror(err)));
  }
  return fd;
}

absl::Status SendAll(int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, RemainingMs(deadline)) <= 0) {
        return absl::UnavailableError("send timed out");
      }
      continue;
    }
    return absl::UnavailableError(fmt::format("send: {}", strerror(errno)));
  }
  return absl::OkStatus();
}

// Reads more bytes into `buf`; Unavailable on timeout, error or EOF.
absl::Status ReadMore(int fd, std::string* buf, Clock::time_point deadline) {
  char tmp[16384];
  for (;;) {
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n > 0) {
      buf->append(tmp, static_cast<size_t>(n));
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by the server");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(fmt::format("recv: {}", strerror(errno)));
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return absl::DeadlineExceededError("no answer before the request timeout");
    if (r < 0 && errno != EINTR)
      return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct HttpResponse {
  int status = 0;
  std::string body;
  bool keep_alive = true;
};

absl::StatusOr<HttpResponse> ReadResponse(int fd, Clock::time_point deadline) {
  std::string buf;
  size_t header_end;
  while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > 65536) return absl::UnavailableError("HTTP header too large");
    RETURN_IF_ERROR(ReadMore(fd, &buf, deadline));
  }
  HttpResponse resp;
  std::string head = buf.substr(0, header_end);
  std::string rest = buf.substr(header_end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return absl::UnavailableError(fmt::format("malformed HTTP status line '{}'", status_line));
  }
  resp.status = std::atoi(status_line.c_str() + 9);
  long long content_length = -1;
  bool chunked = false;
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (name == "content-length") content_length = std::atoll(value.c_str());
    if (name == "transfer-encoding" && Lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    }
    if (name == "connection" && Lower(value) == "close") resp.keep_alive = false;
  }
  if (chunked) {
    // Decode chunks: "<hex>\r\n<data>\r\n" ... "0\r\n\r\n".
    size_t p = 0;
    for (;;) {
      size_t crlf;
      while ((crlf = rest.find("\r\n", p)) == std::string::npos) {
        RETURN_IF_ERROR(ReadMore(fd, &rest, deadline));
      }
      size_t len = std::strtoul(rest.substr(p, crlf - p).c_str(), nullptr, 16);
      size_t data_start = crlf + 2;
      while (rest.size() < data_start + len + 2) RETURN_IF_ERROR(ReadMore(fd, &rest, deadline));
      if (len == 0) break;
      resp.body.append(rest, data_start, len);
      p = data_start + len + 2;
    }
  } else if (content_length >= 0) {
    while (rest.size() < static_cast<size_t>(content_length)) {
      RETURN_IF_ERROR(ReadMore(fd, &rest, deadline));
    }
    resp.body = rest.substr(0, static_cast<size_t>(content_length));
  } else {
    resp.keep_alive = false;
    for (;;) {
      absl::Status st = ReadMore(fd, &rest, deadline);
      if (!st.ok()) break;
    }
    resp.body = rest;
  }
  return resp;
}

}  // namespace

bool IsEtcdUnreachable(const absl::Status& status) {
  return !status.ok() && CniCode(status) == kTryAgainLater &&
         CniDetails(status) == kEtcdUnreachableDetails;
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

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return CniError(kInvalidNetworkConfig, "ipam: etcd store needs at least one endpoint");
  }
  std::vector<Endpoint> eps;
  for (const std::string& text : options.endpoints) {
    ASSIGN_OR_RETURN(auto hp, ParseEndpoint(text));
    eps.push_back(Endpoint{text, hp.first, hp.second});
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(options), std::move(eps)));
}

EtcdClient::EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints)
    : options_(std::move(options)), endpoints_(std::move(endpoints)) {}

absl::StatusOr<json> EtcdClient::Exchange(size_t idx, const std::string& request,
                                          Clock::time_point deadline, bool* retryable,
                                          bool* dial_failed) {
  *retryable = true;
  *dial_failed = false;
  const Endpoint& ep = endpoints_[idx];
  bool reused = conn_.valid() && conn_endpoint_ == idx;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!conn_.valid() || conn_endpoint_ != idx) {
      int dial_ms = std::min<int>(static_cast<int>(options_.dial_timeout.count()),
                                  std::max(1, RemainingMs(deadline)));
      auto fd = Dial(ep.host, ep.port, dial_ms);
      if (!fd.ok()) {
        *dial_failed = true;
        return fd.status();
      }
      conn_ = std::move(*fd);
      conn_endpoint_ = idx;
      reused = false;
    }
    absl::Status st = SendAll(conn_.get(), request, deadline);
    absl::StatusOr<HttpResponse> resp =
        st.ok() ? ReadResponse(conn_.get(), deadline) : absl::StatusOr<HttpResponse>(st);
    if (!resp.ok()) {
      conn_.Reset();
      // A kept-alive connection the server closed meanwhile: redial once.
      if (reused && !absl::IsDeadlineExceeded(resp.status())) continue;
      return resp.status();
    }
    if (!resp->keep_alive) conn_.Reset();
    json body = json::parse(resp->body, nullptr, false);
    if (resp->status != 200) {
      std::string msg = body.is_object() && body.contains("error") && body["error"].is_string()
                            ? body["error"].get<std::string>()
                            : resp->body.substr(0, 200);
      int grpc_code = body.is_object() ? static_cast<int>(Int64Field(body, "code")) : 0;
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
  for (;;) {
    bool all_dial_failed = true;
    for (size_t step = 0; step < endpoints_.size(); ++step) {
      size_t idx = (preferred_ + step) % endpoints_.size();
      const Endpoint& ep = endpoints_[idx];
      std::string request = fmt::format(
          "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\n\r\n{}",
          path, ep.host.find(':') == std::string::npos ? ep.host : "[" + ep.host + "]", ep.port,
          payload.size(), payload);
      bool retryable = true, dial_failed = false;
      // One endpoint may hang (a member cut off from the leader keeps a proposal until its own
      // timeout): give each attempt a third of the budget so the others still get their turn.
      auto attempt_deadline = std::min(deadline, Clock::now() + attempt_budget);
      auto out = Exchange(idx, request, attempt_deadline, &retryable, &dial_failed);
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
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", {{"key", B64(prefix)},
                                                 {"range_end", B64(PrefixRangeEnd(prefix))}}));
  return ParseKvs(r);
}

absl::StatusOr<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", {{"key", B64(key)}}));
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseKvs(r));
  if (kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(kvs.front());
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/put", {{"key", B64(key)}, {"value", B64(value)}}));
  return r.contains("header") ? Int64Field(r["header"], "revision") : 0;
}

absl::StatusOr<std::optional<int64_t>> EtcdClient::CreateIfAbsent(const std::string& key,
                                                                  const std::string& value) {
  json txn = {
      {"compare", json::array({{{"key", B64(key)},
                                {"target", "CREATE"},
                                {"result", "EQUAL"},
                                {"create_revision", "0"}}})},
      {"success", json::array({{{"request_put", {{"key", B64(key)}, {"value", B64(value)}}}}})},
      {"failure", json::array({{{"request_range", {{"key", B64(key)}}}}})}};
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
  if (r.value("succeeded", false)) {
    return std::optional<int64_t>(r.contains("header") ? Int64Field(r["header"], "revision") : 0);
  }
  // Lost the race, or our own earlier attempt (a retried request) created it.
  auto responses = r.find("responses");
  if (responses != r.end() && responses->is_array() && !responses->empty()) {
    const json& first = (*responses)[0];
    if (first.contains("response_range")) {
      ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseKvs(first["response_range"]));
      if (!kvs.empty() && kvs[0].value == value) {
        return std::optional<int64_t>(kvs[0].mod_revision);
      }
    }
  }
  return std::optional<int64_t>();
}

absl::StatusOr<bool> EtcdClient::DeleteIfUnchanged(const std::string& key, int64_t mod_revision) {
  json txn = {{"compare", json::array({{{"key", B64(key)},
                                        {"target", "MOD"},
                                        {"result", "EQUAL"},
                                        {"mod_revision", std::to_string(mod_revision)}}})},
              {"success", json::array({{{"request_delete_range", {{"key", B64(key)}}}}})}};
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
  return r.value("succeeded", false);
}

}  // namespace rdmashare::cni::ipam
