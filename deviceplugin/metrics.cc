#include "deviceplugin/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

bool IsMetricNameChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsLabelNameChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  return !first && c >= '0' && c <= '9';
}

bool ValidName(const std::string& s, bool (*ok)(char, bool)) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!ok(s[i], i == 0)) return false;
  }
  return true;
}

// HELP text escaping: only backslash and newline.
std::string EscapeHelp(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

// ---------------------------------------------------------------------------------------------
// MetricFamily

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type,
                           std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  if (label_names_.empty()) {
    absl::MutexLock lock(&mu_);
    series_[{}] = 0;
  }
}

bool MetricFamily::CheckArity(const std::vector<std::string>& label_values) const {
  if (label_values.size() == label_names_.size()) return true;
  if (!arity_error_logged_) {
    arity_error_logged_ = true;
    spdlog::error("metric {}: got {} label values for {} label names; sample dropped", name_,
                  label_values.size(), label_names_.size());
  }
  return false;
}

std::optional<double> MetricFamily::Value(const std::vector<std::string>& label_values) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(label_values);
  if (it == series_.end()) return std::nullopt;
  return it->second;
}

void MetricFamily::Remove(const std::vector<std::string>& label_values) {
  absl::MutexLock lock(&mu_);
  series_.erase(label_values);
}

void MetricFamily::ReplaceAll(std::map<std::vector<std::string>, double> series) {
  absl::MutexLock lock(&mu_);
  for (auto it = series.begin(); it != series.end();) {
    it = CheckArity(it->first) ? std::next(it) : series.erase(it);
  }
  series_ = std::move(series);
}

void MetricFamily::RemoveMatching(const std::string& label_name, const std::string& label_value) {
  auto pos = std::find(label_names_.begin(), label_names_.end(), label_name);
  if (pos == label_names_.end()) return;
  size_t idx = static_cast<size_t>(pos - label_names_.begin());
  absl::MutexLock lock(&mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    if (it->first[idx] == label_value) {
      it = series_.erase(it);
    } else {
      ++it;
    }
  }
}

void MetricFamily::AddTo(const std::vector<std::string>& label_values, double delta) {
  absl::MutexLock lock(&mu_);
  if (!CheckArity(label_values)) return;
  series_[label_values] += delta;
}

void MetricFamily::SetTo(const std::vector<std::string>& label_values, double value) {
  absl::MutexLock lock(&mu_);
  if (!CheckArity(label_values)) return;
  series_[label_values] = value;
}

void MetricFamily::Render(std::string* out) const {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name_, EscapeHelp(help_),
                 name_, type_ == MetricType::kCounter ? "counter" : "gauge");
  absl::MutexLock lock(&mu_);
  for (const auto& [values, v] : series_) {
    out->append(name_);
    if (!values.empty()) {
      out->push_back('{');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out->push_back(',');
        fmt::format_to(std::back_inserter(*out), "{}=\"{}\"", label_names_[i],
                       EscapeLabelValue(values[i]));
      }
      out->push_back('}');
    }
    out->push_back(' ');
    out->append(FormatMetricValue(v));
    out->push_back('\n');
  }
}

void Counter::Increment(const std::vector<std::string>& label_values, double delta) {
  if (!(delta >= 0)) return;
  AddTo(label_values, delta);
}

void Gauge::Set(const std::vector<std::string>& label_values, double value) {
  SetTo(label_values, value);
}

void Gauge::Add(const std::vector<std::string>& label_values, double delta) {
  AddTo(label_values, delta);
}

// ---------------------------------------------------------------------------------------------
// MetricsRegistry

absl::Status MetricsRegistry::CheckNew(const std::string& name,
                                       const std::vector<std::string>& label_names) const {
  if (!ValidName(name, IsMetricNameChar)) {
    return absl::InvalidArgumentError(
        fmt::format("metric name '{}' does not match [a-zA-Z_:][a-zA-Z0-9_:]*", name));
  }
  if (families_.count(name) != 0) {
    return absl::AlreadyExistsError(fmt::format("metric {} is already registered", name));
  }
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    if (!ValidName(l, IsLabelNameChar) || l.rfind("__", 0) == 0) {
      return absl::InvalidArgumentError(fmt::format(
          "metric {}: label name '{}' does not match [a-zA-Z_][a-zA-Z0-9_]* or starts with '__'",
          name, l));
    }
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(fmt::format("metric {}: label name {} repeated", name, l));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Counter*> MetricsRegistry::AddCounter(const std::string& name,
                                                     const std::string& help,
                                                     std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names));
  auto c = std::make_unique<Counter>(name, help, MetricType::kCounter, std::move(label_names));
  Counter* raw = c.get();
  families_[name] = std::move(c);
  return raw;
}

absl::StatusOr<Gauge*> MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                                 std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names));
  auto g = std::make_unique<Gauge>(name, help, MetricType::kGauge, std::move(label_names));
  Gauge* raw = g.get();
  families_[name] = std::move(g);
  return raw;
}

void MetricsRegistry::AddCollectHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(hook));
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->Render(&out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Heartbeat

Heartbeat::Heartbeat(std::chrono::milliseconds max_age, Clock clock)
    : max_age_(max_age), clock_(std::move(clock)) {
  Beat();
}

std::chrono::steady_clock::time_point Heartbeat::Now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void Heartbeat::Beat() {
  last_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Now().time_since_epoch()).count(),
      std::memory_order_relaxed);
}

absl::Status Heartbeat::Check() const {
  int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Now().time_since_epoch()).count();
  int64_t age_ns = now_ns - last_ns_.load(std::memory_order_relaxed);
  if (age_ns <= std::chrono::duration_cast<std::chrono::nanoseconds>(max_age_).count()) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      fmt::format("no heartbeat from the main loop for {:.1f} s (limit {:.1f} s)", age_ns / 1e9,
                  std::chrono::duration<double>(max_age_).count()));
}

// ---------------------------------------------------------------------------------------------
// Address parsing

absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(fmt::format("address '{}': {}", address, why));
  };
  std::string host, port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos) return bad("missing ']' after the IPv6 address");
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return bad("expected ':<port>' after ']'");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (host.empty()) return bad("empty IPv6 address");
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return bad("expected <host>:<port>");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return bad("an IPv6 address must be written in brackets ([::1]:9090)");
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad(fmt::format("port '{}' is not a number", port));
  }
  unsigned long p = std::stoul(port);
  if (p > 65535) return bad(fmt::format("port {} is out of range", p));
  return std::make_pair(host, static_cast<uint16_t>(p));
}

// ---------------------------------------------------------------------------------------------
// HttpServer

namespace {

constexpr size_t kReadChunk = 4096;
// What a client may still send after its request head (a body, a second request) before the
// connection is closed: it is read and discarded, never parsed.
constexpr size_t kMaxDrainBytes = 64 * 1024;

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

std::string MakeResponse(int code, const std::string& content_type, const std::string& body,
                         bool head_only = false, const std::string& extra_headers = "") {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      code, ReasonPhrase(code), content_type, body.size(), extra_headers,
      head_only ? std::string() : body);
}

std::string TextResponse(int code, const std::string& body, bool head_only = false,
                         const std::string& extra_headers = "") {
  return MakeResponse(code, "text/plain; charset=utf-8", body, head_only, extra_headers);
}

// True for RFC 9110 "tchar" (token characters of a method).
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Why a request line is malformed, or "".
std::string RequestLineProblem(const std::string& line, std::string* method, std::string* target) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    return "request line is not '<method> <target> HTTP/1.x'";
  }
  *method = line.substr(0, sp1);
  *target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  if (method->empty() || !std::all_of(method->begin(), method->end(), IsTokenChar)) {
    return "bad method";
  }
  if (target->empty() || target->front() != '/') return "target is not an absolute path";
  for (char c : *target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "bad character in target";
  }
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return "unsupported HTTP version";
  return "";
}

// Returns the first line of `data` without its terminator, when a full line is present.
std::optional<std::string> FirstLine(const std::string& data) {
  size_t nl = data.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  size_t end = nl > 0 && data[nl - 1] == '\r' ? nl - 1 : nl;
  return data.substr(0, end);
}

// End of the request head (index after the blank line), or npos. Searches from `from` on: the
// caller passes where new bytes begin minus 3, since an end found earlier was already answered.
size_t HeadEnd(const std::string& data, size_t from = 0) {
  size_t a = data.find("\r\n\r\n", from);
  size_t b = data.find("\n\n", from);
  size_t ea = a == std::string::npos ? a : a + 4;
  size_t eb = b == std::string::npos ? b : b + 2;
  return std::min(ea, eb);
}

// The client's address without the port (the unit of fairness when evicting), "" if unknown.
std::string PeerKey(const struct sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    return std::string(reinterpret_cast<const char*>(&in.sin_addr), sizeof(in.sin_addr));
  }
  if (sa.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    return std::string(reinterpret_cast<const char*>(&in6.sin6_addr), sizeof(in6.sin6_addr));
  }
  return "";
}

// Sends `data` without blocking; what does not fit is dropped (the connection closes next).
void SendBestEffort(int fd, const std::string& data) {
  if (::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
    // The client is dropped either way.
  }
}

absl::Status ErrnoBindStatus(int err, const std::string& address) {
  std::string msg = fmt::format("metrics server: bind {}: {}", address, std::strerror(err));
  switch (err) {
    case EADDRINUSE:
      return absl::UnavailableError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

struct HttpServer::Conn {
  // kReading: waiting for the request head (header deadline); kWriting: sending the response
  // (write deadline); kDraining: answered and half-closed, discarding input until the client
  // closes (idle deadline); kClosed: fd closed, erased at the end of the round.
  enum class State { kReading, kWriting, kDraining, kClosed };
  UniqueFd fd;
  std::string peer;
  State state = State::kReading;
  std::string in;             // the request head so far
  bool line_checked = false;  // the request line is complete and was validated
  std::string out;            // the response
  size_t out_off = 0;         // bytes of `out` already sent
  size_t drained = 0;         // bytes discarded after the head
  std::chrono::steady_clock::time_point deadline;
};

HttpServer::HttpServer(HttpServerOptions options, const MetricsRegistry* registry, ProbeFn liveness,
                       ProbeFn readiness)
    : options_(std::move(options)),
      registry_(registry),
      liveness_(std::move(liveness)),
      readiness_(std::move(readiness)) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  if (thread_.joinable() || listen_fd_.valid()) {
    return absl::FailedPreconditionError(
        fmt::format("metrics server {}: already started", options_.address));
  }
  auto bad_limit = [this](const char* what, int64_t got) {
    return absl::InvalidArgumentError(fmt::format("metrics server {}: {} must be positive (got {})",
                                                  options_.address, what, got));
  };
  if (options_.max_clients < 1) return bad_limit("max_clients", options_.max_clients);
  if (options_.max_request_bytes < 1) return bad_limit("max_request_bytes", 0);
  for (auto [name, value] : {std::pair{"header_timeout", options_.header_timeout},
                             std::pair{"write_timeout", options_.write_timeout},
                             std::pair{"idle_timeout", options_.idle_timeout}}) {
    if (value.count() <= 0) return bad_limit(name, value.count());
  }
  ASSIGN_OR_RETURN(auto host_port, ParseHostPort(options_.address));
  auto [host, port] = host_port;
  // Only literals and "localhost" (as 127.0.0.1): no name service lookups at startup.
  std::string node = host == "localhost" ? "127.0.0.1" : host;
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  struct addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int gai = ::getaddrinfo(node.empty() ? nullptr : node.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        fmt::format("metrics server: address '{}': host '{}' is not an IP address or localhost "
                    "({})",
                    options_.address, host, ::gai_strerror(gai)));
  }
  absl::Status last = absl::InternalError(
      fmt::format("metrics server: address '{}' resolved to nothing", options_.address));
  UniqueFd fd;
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.valid()) {
      last = ErrnoBindStatus(errno, options_.address);
      continue;
    }
    int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoBindStatus(errno, options_.address);
      continue;
    }
    // A deep backlog: the loop accepts everything pending each round, and a probe behind a
    // burst of attackers must wait in the queue rather than have its SYN dropped.
    if (::listen(s.get(), SOMAXCONN) != 0) {
      last = ErrnoBindStatus(errno, options_.address);
      continue;
    }
    fd = std::move(s);
    break;
  }
  ::freeaddrinfo(res);
  if (!fd.valid()) return last;
  struct sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd.get(), reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) {
    return absl::InternalError(
        fmt::format("metrics server {}: getsockname: {}", options_.address, std::strerror(errno)));
  }
  port_ = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) {
    return absl::InternalError(
        fmt::format("metrics server {}: eventfd: {}", options_.address, std::strerror(errno)));
  }
  listen_fd_ = std::move(fd);
  wake_fd_ = std::move(wake);
  stop_ = false;
  work_stats_ = HttpServerStats();
  {
    absl::MutexLock lock(&stats_mu_);
    stats_ = work_stats_;
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof(one)) < 0) {
    // The eventfd counter cannot overflow with one write; nothing else to do.
  }
  thread_.join();
  listen_fd_.Reset();
  wake_fd_.Reset();
}

absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(const std::string& head) {
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(fmt::format("bad request: {}", why));
  };
  std::optional<std::string> line = FirstLine(head);
  if (!line) {
    // A head without any line end is its request line alone.
    line = head;
  }
  HttpRequestHead req;
  std::string target;
  if (std::string p = RequestLineProblem(*line, &req.method, &target); !p.empty()) return bad(p);
  req.version = line->substr(line->rfind(' ') + 1);
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  size_t pos = head.find('\n');
  pos = pos == std::string::npos ? head.size() : pos + 1;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string::npos) nl = head.size();
    std::string h = head.substr(pos, nl - pos);
    if (!h.empty() && h.back() == '\r') h.pop_back();
    if (!h.empty() && (h.find(':') == std::string::npos || h.front() == ':')) {
      return bad("malformed header line");
    }
    pos = nl + 1;
  }
  return req;
}

std::string HttpServer::Respond(const std::string& head) const {
  absl::StatusOr<HttpRequestHead> req = ParseHttpRequestHead(head);
  if (!req.ok()) return TextResponse(400, fmt::format("{}\n", req.status().message()));
  const std::string& method = req->method;
  const std::string& path = req->path;
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return TextResponse(405, fmt::format("method {} not allowed\n", method), false,
                        "Allow: GET, HEAD\r\n");
  }
  if (path == "/metrics") {
    std::string body = registry_ ? registry_->Render() : std::string();
    return MakeResponse(200, kPrometheusContentType, body, head_only);
  }
  if (path == "/healthz" || path == "/readyz") {
    const ProbeFn& probe = path == "/healthz" ? liveness_ : readiness_;
    absl::Status st = probe ? probe() : absl::OkStatus();
    if (st.ok()) return TextResponse(200, "ok\n", head_only);
    return TextResponse(503, fmt::format("{}\n", st.message()), head_only);
  }
  return TextResponse(404, fmt::format("no handler for {}\n", path), head_only);
}

HttpServerStats HttpServer::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

void HttpServer::Close(Conn& c) {
  if (c.state == Conn::State::kClosed) return;
  c.fd.Reset();
  c.state = Conn::State::kClosed;
  std::string().swap(c.in);
  std::string().swap(c.out);
  --work_stats_.open_connections;
}

void HttpServer::EvictOne(ConnList& conns) {
  // Cheapest to lose first: an answered connection, then one still sending its head, then one
  // being written to (a scrape in progress); the lower the rank, the earlier it goes.
  auto rank = [](Conn::State s) {
    switch (s) {
      case Conn::State::kDraining:
        return 0;
      case Conn::State::kReading:
        return 1;
      case Conn::State::kWriting:
        return 2;
      case Conn::State::kClosed:
        break;
    }
    return 3;
  };
  std::map<std::string, int> per_peer;
  int best_rank = 3;
  for (const Conn& c : conns) {
    if (c.state == Conn::State::kClosed) continue;
    ++per_peer[c.peer];
    best_rank = std::min(best_rank, rank(c.state));
  }
  Conn* victim = nullptr;
  int victim_peer_conns = 0;
  // The list is in accept order: the first of the busiest peer is its oldest.
  for (Conn& c : conns) {
    if (rank(c.state) != best_rank || best_rank == 3) continue;
    int n = per_peer[c.peer];
    if (victim == nullptr || n > victim_peer_conns) {
      victim = &c;
      victim_peer_conns = n;
    }
  }
  if (victim == nullptr) return;
  if (victim->state == Conn::State::kReading) {
    SendBestEffort(
        victim->fd.get(),
        TextResponse(503, fmt::format("connection limit ({}) reached\n", options_.max_clients)));
  }
  Close(*victim);
  ++work_stats_.evicted;
}

void HttpServer::AcceptNew(ConnList& conns, Clock::time_point now) {
  // Bounded per round, so a flood of connects cannot keep the loop from serving the others.
  for (int i = 0; i < options_.max_clients; ++i) {
    struct sockaddr_storage sa = {};
    socklen_t len = sizeof(sa);
    int cfd = ::accept4(listen_fd_.get(), reinterpret_cast<struct sockaddr*>(&sa), &len,
                        SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::warn("metrics server {}: accept: {}", options_.address, std::strerror(errno));
      }
      return;
    }
    if (work_stats_.open_connections >= options_.max_clients) EvictOne(conns);
    Conn& c = conns.emplace_back();
    c.fd.Reset(cfd);
    c.peer = PeerKey(sa);
    c.deadline = now + options_.header_timeout;
    ++work_stats_.accepted;
    ++work_stats_.open_connections;
    work_stats_.peak_connections =
        std::max(work_stats_.peak_connections, work_stats_.open_connections);
    // A probe sends its request right after connecting: answer it in this round, before later
    // connects of the same burst can evict it.
    ReadFrom(c, now);
  }
}

void HttpServer::StartResponse(Conn& c, std::string response, Clock::time_point now) {
  std::string().swap(c.in);
  c.out = std::move(response);
  c.out_off = 0;
  c.state = Conn::State::kWriting;
  c.deadline = now + options_.write_timeout;
  ++work_stats_.responses;
  WriteTo(c, now);
}

void HttpServer::WriteTo(Conn& c, Clock::time_point now) {
  while (c.out_off < c.out.size()) {
    ssize_t w =
        ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) Close(c);
      return;
    }
    c.out_off += static_cast<size_t>(w);
  }
  // Half-close and read what the client still sends, so that closing with unread data does not
  // turn into a reset that destroys the response in flight.
  ::shutdown(c.fd.get(), SHUT_WR);
  std::string().swap(c.out);
  c.state = Conn::State::kDraining;
  c.deadline = now + options_.idle_timeout;
}

void HttpServer::ReadFrom(Conn& c, Clock::time_point now) {
  char buf[kReadChunk];
  ssize_t r = ::recv(c.fd.get(), buf, sizeof(buf), 0);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) Close(c);
    return;
  }
  if (r == 0) {
    Close(c);
    return;
  }
  if (c.state == Conn::State::kDraining) {
    c.drained += static_cast<size_t>(r);
    if (c.drained > kMaxDrainBytes) {
      ++work_stats_.drain_limits;
      Close(c);
    }
    return;
  }
  const size_t old = c.in.size();
  c.in.append(buf, static_cast<size_t>(r));
  size_t end = HeadEnd(c.in, old >= 3 ? old - 3 : 0);
  if (end != std::string::npos && end <= options_.max_request_bytes) {
    StartResponse(c, Respond(c.in.substr(0, end)), now);
    return;
  }
  if (c.in.size() > options_.max_request_bytes) {
    StartResponse(c,
                  TextResponse(431, fmt::format("request head exceeds {} bytes\n",
                                                options_.max_request_bytes)),
                  now);
    return;
  }
  if (c.line_checked) return;
  if (c.in.find('\n', old) != std::string::npos) {
    // Reject a bad request line at once instead of waiting for the rest of the head.
    c.line_checked = true;
    std::string m, t;
    if (std::string p = RequestLineProblem(*FirstLine(c.in), &m, &t); !p.empty()) {
      StartResponse(c, TextResponse(400, fmt::format("bad request: {}\n", p)), now);
    }
    return;
  }
  // No line end yet: binary garbage (a TLS ClientHello) is answered without waiting for one.
  if (std::any_of(c.in.begin() + static_cast<std::ptrdiff_t>(old), c.in.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) < 0x20 && ch != '\r') || ch == 0x7f;
      })) {
    StartResponse(c, TextResponse(400, "bad request: control character in request line\n"), now);
  }
}

void HttpServer::ExpireDeadlines(ConnList& conns, Clock::time_point now) {
  for (Conn& c : conns) {
    if (c.state == Conn::State::kClosed || c.deadline > now) continue;
    switch (c.state) {
      case Conn::State::kReading:
        SendBestEffort(c.fd.get(), TextResponse(408, "request timeout\n"));
        ++work_stats_.header_timeouts;
        break;
      case Conn::State::kWriting:
        ++work_stats_.write_timeouts;
        break;
      case Conn::State::kDraining:
        ++work_stats_.idle_timeouts;
        break;
      case Conn::State::kClosed:
        break;
    }
    Close(c);
  }
  conns.remove_if([](const Conn& c) { return c.state == Conn::State::kClosed; });
}

void HttpServer::Loop() {
  ConnList conns;
  std::vector<struct pollfd> pfds;
  std::vector<Conn*> polled;
  while (!stop_) {
    pfds.clear();
    polled.clear();
    pfds.push_back({wake_fd_.get(), POLLIN, 0});
    pfds.push_back({listen_fd_.get(), POLLIN, 0});
    Clock::time_point now = Clock::now();
    Clock::time_point next_deadline = Clock::time_point::max();
    for (Conn& c : conns) {
      short events = c.state == Conn::State::kWriting ? POLLOUT : POLLIN;
      pfds.push_back({c.fd.get(), events, 0});
      polled.push_back(&c);
      next_deadline = std::min(next_deadline, c.deadline);
    }
    int timeout_ms = -1;
    if (next_deadline != Clock::time_point::max()) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
    }
    int n = ::poll(pfds.data(), pfds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics server: poll: {}", std::strerror(errno));
      break;
    }
    if (stop_) break;
    now = Clock::now();
    // Accepting may evict polled connections: they are marked closed, skipped below and
    // erased by ExpireDeadlines, so the pointers in `polled` stay valid for this round.
    if (pfds[1].revents & POLLIN) AcceptNew(conns, now);
    for (size_t i = 0; i < polled.size(); ++i) {
      Conn& c = *polled[i];
      short re = pfds[i + 2].revents;
      if (re == 0 || c.state == Conn::State::kClosed) continue;
      if (c.state == Conn::State::kWriting) {
        if (re & (POLLERR | POLLHUP | POLLNVAL)) {
          Close(c);
        } else {
          WriteTo(c, now);
        }
        continue;
      }
      ReadFrom(c, now);
    }
    ExpireDeadlines(conns, now);
    absl::MutexLock lock(&stats_mu_);
    stats_ = work_stats_;
  }
  for (Conn& c : conns) Close(c);
  absl::MutexLock lock(&stats_mu_);
  stats_ = work_stats_;
}

}  // namespace rdmashare::deviceplugin
