#include "deviceplugin/metrics_http.h"

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
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "deviceplugin/metrics_http_conn.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

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
// HttpServer

namespace {

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

std::string HttpServer::Respond(const std::string& head) const {
  absl::StatusOr<HttpRequestHead> req = ParseHttpRequestHead(head);
  if (!req.ok()) return MakeTextHttpResponse(400, fmt::format("{}\n", req.status().message()));
  const std::string& method = req->method;
  const std::string& path = req->path;
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return MakeTextHttpResponse(405, fmt::format("method {} not allowed\n", method), false,
                                "Allow: GET, HEAD\r\n");
  }
  if (path == "/metrics") {
    std::string body = registry_ ? registry_->Render() : std::string();
    return MakeHttpResponse(200, kPrometheusContentType, body, head_only);
  }
  if (path == "/healthz" || path == "/readyz") {
    const ProbeFn& probe = path == "/healthz" ? liveness_ : readiness_;
    absl::Status st = probe ? probe() : absl::OkStatus();
    if (st.ok()) return MakeTextHttpResponse(200, "ok\n", head_only);
    return MakeTextHttpResponse(503, fmt::format("{}\n", st.message()), head_only);
  }
  return MakeTextHttpResponse(404, fmt::format("no handler for {}\n", path), head_only);
}

HttpServerStats HttpServer::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
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
