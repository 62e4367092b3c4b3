#include "deviceplugin/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/testing/status_matchers.h"
#include "common/testing/wait.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------------------------
// Heartbeat

TEST(HeartbeatTest, HealthyWithinMaxAgeUnavailableAfterAndRecoversOnBeat) {
  auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  Heartbeat hb(std::chrono::seconds(90), [&now] { return now; });
  EXPECT_OK(hb.Check());
  now += std::chrono::seconds(90);
  EXPECT_OK(hb.Check());
  now += std::chrono::seconds(5);
  EXPECT_THAT(hb.Check(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("no heartbeat from the main loop for 95.0 s (limit 90.0 s)")));
  hb.Beat();
  EXPECT_OK(hb.Check());
}

// ---------------------------------------------------------------------------------------------
// Address parsing

TEST(ParseHostPortTest, AcceptsLiteralsLocalhostAndEmptyHost) {
  struct Case {
    const char* in;
    const char* host;
    uint16_t port;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1:9090", "127.0.0.1", 9090},
                                         {"[::1]:0", "::1", 0},
                                         {"localhost:65535", "localhost", 65535},
                                         {":8080", "", 8080}}) {
    ASSERT_OK_AND_ASSIGN(auto hp, ParseHostPort(c.in));
    EXPECT_EQ(hp.first, c.host) << c.in;
    EXPECT_EQ(hp.second, c.port) << c.in;
  }
}

TEST(ParseHostPortTest, RejectsMalformedAddresses) {
  struct Case {
    const char* in;
    const char* message;
  };
  for (const Case& c :
       std::vector<Case>{{"9090", "expected <host>:<port>"},
                         {"::1:9090", "an IPv6 address must be written in brackets"},
                         {"[::1:9090", "missing ']'"},
                         {"[::1]9090", "expected ':<port>' after ']'"},
                         {"[]:1", "empty IPv6 address"},
                         {"127.0.0.1:", "port '' is not a number"},
                         {"127.0.0.1:http", "port 'http' is not a number"},
                         {"127.0.0.1:65536", "port 65536 is out of range"}}) {
    EXPECT_THAT(ParseHostPort(c.in),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("'") + c.in + "': " + c.message)))
        << c.in;
  }
}

// ---------------------------------------------------------------------------------------------
// Request parsing

TEST(ParseHttpRequestHeadTest, ParsesRequestLineAndQuery) {
  struct Case {
    std::string head;
    HttpRequestHead want;
  };
  for (const Case& c : std::vector<Case>{
           {"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
            {"GET", "/metrics", "", "HTTP/1.1"}},
           {"HEAD /readyz?verbose=1&x HTTP/1.0\n\n",
            {"HEAD", "/readyz", "verbose=1&x", "HTTP/1.0"}},
           {"GET /healthz HTTP/1.1", {"GET", "/healthz", "", "HTTP/1.1"}},
           {"POST /? HTTP/1.1\r\nX-Empty:\r\n\r\n", {"POST", "/", "", "HTTP/1.1"}},
       }) {
    ASSERT_OK_AND_ASSIGN(HttpRequestHead got, ParseHttpRequestHead(c.head));
    EXPECT_EQ(got, c.want) << c.head;
  }
}

TEST(ParseHttpRequestHeadTest, RejectsMalformedHeadsNamingTheProblem) {
  struct Case {
    std::string head;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "request line is not '<method> <target> HTTP/1.x'"},
           {"GET /metrics\r\n\r\n", "request line is not"},
           {"GET  /metrics HTTP/1.1\r\n\r\n", "request line is not"},
           {"GET /metrics HTTP/1.1 extra\r\n\r\n", "request line is not"},
           {" /metrics HTTP/1.1\r\n\r\n", "bad method"},
           {"G(T /metrics HTTP/1.1\r\n\r\n", "bad method"},
           {"GET metrics HTTP/1.1\r\n\r\n", "target is not an absolute path"},
           {"GET http://x/metrics HTTP/1.1\r\n\r\n", "target is not an absolute path"},
           {std::string("GET /a\x01 HTTP/1.1\r\n\r\n"), "bad character in target"},
           {"GET /metrics HTTP/2.0\r\n\r\n", "unsupported HTTP version"},
           {"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", "malformed header line"},
           {"GET /metrics HTTP/1.1\r\n: no name\r\n\r\n", "malformed header line"},
       }) {
    EXPECT_THAT(ParseHttpRequestHead(c.head),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("bad request: ") + c.message)))
        << c.head;
  }
}

// Deterministic mutations (byte flips, insertions, deletions, truncations) of valid heads: the
// parser never crashes (the sanitizer build checks memory safety) and only ever answers OK or
// InvalidArgument; whatever it accepts is well formed.
TEST(ParseHttpRequestHeadTest, MutatedHeadsAreAcceptedWellFormedOrRejected) {
  const std::vector<std::string> seeds = {
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nAccept: text/plain\r\n\r\n",
      "HEAD /readyz?x=1 HTTP/1.0\n\n",
      "GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.27\r\nConnection: close\r\n\r\n",
  };
  std::mt19937 rng(20261129);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          s.insert(pos, 1, static_cast<char>(rng() % 256));
          break;
        case 2:
          s.erase(pos, 1);
          break;
        default:
          s.resize(pos);
      }
    }
    absl::StatusOr<HttpRequestHead> r = ParseHttpRequestHead(s);
    if (r.ok()) {
      ++accepted;
      ASSERT_FALSE(r->method.empty()) << s;
      ASSERT_EQ(r->path.front(), '/') << s;
      ASSERT_THAT(r->version, ::testing::AnyOf("HTTP/1.0", "HTTP/1.1")) << s;
    } else {
      ++rejected;
      ASSERT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument)) << s;
    }
  }
  // Both outcomes occur, so the mutations exercise both paths.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(rejected, 1000);
}

// ---------------------------------------------------------------------------------------------
// HTTP server over real loopback sockets

// Connects to 127.0.0.1:<port> from `source` (another loopback address stands for another
// host); `rcvbuf` > 0 shrinks the receive buffer first (a client that reads nothing).
UniqueFd ConnectFrom(uint16_t port, const char* source, int rcvbuf = 0) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (rcvbuf > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in src = {};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &src.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) return UniqueFd();
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return UniqueFd();
  return fd;
}

UniqueFd Connect(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return UniqueFd();
  return fd;
}

// Sends `request` (if any), then reads until the server closes (or 10 s pass).
std::string Exchange(int fd, const std::string& request) {
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Request(uint16_t port, const std::string& request) {
  UniqueFd fd = Connect(port);
  if (!fd.valid()) return "connect failed";
  return Exchange(fd.get(), request);
}

std::string Get(uint16_t port, const std::string& path) {
  return Request(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
}

std::string Body(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = registry_.AddGauge("rdmashare_ready_resources", "Registered resources.");
    ASSERT_OK(g.status());
    (*g)->Set(3);
  }
  void StartServer(HttpServerOptions opts = {}) {
    server_ = std::make_unique<HttpServer>(
        std::move(opts), &registry_, [this] { return live_status_(); },
        [this] { return ready_status_(); });
    ASSERT_OK(server_->Start());
    ASSERT_NE(server_->port(), 0);
  }

  MetricsRegistry registry_;
  std::function<absl::Status()> live_status_ = [] { return absl::OkStatus(); };
  std::function<absl::Status()> ready_status_ = [] { return absl::OkStatus(); };
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, MetricsServesTheRegistryWithThePrometheusContentType) {
  StartServer();
  std::string r = Get(server_->port(), "/metrics");
  std::string body = registry_.Render();
  EXPECT_EQ(r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: " +
                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(body,
            "# HELP rdmashare_ready_resources Registered resources.\n"
            "# TYPE rdmashare_ready_resources gauge\nrdmashare_ready_resources 3\n");
}

TEST_F(HttpServerTest, QueryStringIsIgnored) {
  StartServer();
  EXPECT_THAT(Get(server_->port(), "/metrics?name[]=x"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServerTest, HealthzFollowsTheLivenessCallback) {
  StartServer();
  std::string ok = Get(server_->port(), "/healthz");
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(Body(ok), "ok\n");
  live_status_ = [] { return absl::UnavailableError("event loop stalled for 42 s"); };
  std::string bad = Get(server_->port(), "/healthz");
  EXPECT_THAT(bad, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(Body(bad), "event loop stalled for 42 s\n");
}

TEST_F(HttpServerTest, ReadyzFollowsTheReadinessCallbackWithTheReason) {
  ready_status_ = [] {
    return absl::UnavailableError("resource spidernet.io/rail3 is not registered");
  };
  StartServer();
  std::string not_ready = Get(server_->port(), "/readyz");
  EXPECT_THAT(not_ready, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(Body(not_ready), "resource spidernet.io/rail3 is not registered\n");
  ready_status_ = [] { return absl::OkStatus(); };
  std::string ready = Get(server_->port(), "/readyz");
  EXPECT_THAT(ready, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(Body(ready), "ok\n");
}

TEST_F(HttpServerTest, NullProbesReportOk) {
  server_ = std::make_unique<HttpServer>(HttpServerOptions{}, &registry_, nullptr, nullptr);
  ASSERT_OK(server_->Start());
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(Get(server_->port(), "/readyz"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServerTest, HeadGetsHeadersWithoutBody) {
  StartServer();
  std::string r = Request(server_->port(), "HEAD /healthz HTTP/1.1\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_EQ(Body(r), "");
}

TEST_F(HttpServerTest, ErrorResponses) {
  StartServer();
  struct Case {
    std::string request;
    std::string status_line;
  };
  for (const Case& c : std::vector<Case>{
           {"GET /nothing HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
           {"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
           {"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy",
            "HTTP/1.1 405 Method Not Allowed\r\n"},
           {"DELETE /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n"},
           {"hello\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           {"GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           {"GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           {"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           {"G(T /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           {"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           // A bad request line is answered as soon as the line is complete...
           {"BLAH\r\n", "HTTP/1.1 400 Bad Request\r\n"},
           // ...and binary garbage (a TLS ClientHello) without waiting for a line end.
           {std::string("\x16\x03\x01\x02\x00\x01", 6), "HTTP/1.1 400 Bad Request\r\n"},
       }) {
    EXPECT_THAT(Request(server_->port(), c.request), StartsWith(c.status_line)) << c.request;
  }
  EXPECT_EQ(Body(Request(server_->port(), "GET metrics HTTP/1.1\r\n\r\n")),
            "bad request: target is not an absolute path\n");
  EXPECT_THAT(Request(server_->port(), "PUT /x HTTP/1.1\r\n\r\n"), HasSubstr("Allow: GET, HEAD"));
}

TEST_F(HttpServerTest, OversizedRequestHeadGets431) {
  HttpServerOptions opts;
  opts.max_request_bytes = 1024;
  StartServer(opts);
  std::string big = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  std::string r = Request(server_->port(), big);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  EXPECT_THAT(Body(r), HasSubstr("exceeds 1024 bytes"));
  // A head just under the limit is still served.
  std::string fits = "GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(900, 'a') + "\r\n\r\n";
  EXPECT_THAT(Request(server_->port(), fits), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServerTest, SilentClientDoesNotBlockOthersAndTimesOut) {
  HttpServerOptions opts;
  opts.header_timeout = std::chrono::milliseconds(1500);
  StartServer(opts);
  UniqueFd silent = Connect(server_->port());
  ASSERT_TRUE(silent.valid());
  // A half-sent request holds its connection open too.
  UniqueFd partial = Connect(server_->port());
  ASSERT_TRUE(partial.valid());
  ASSERT_GT(::send(partial.get(), "GET /metr", 9, MSG_NOSIGNAL), 0);
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
  // The silent client is cut off at its deadline with 408.
  EXPECT_THAT(Exchange(silent.get(), ""), StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  EXPECT_THAT(Exchange(partial.get(), ""), StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
}

TEST_F(HttpServerTest, AtTheCapANewConnectionEvictsTheOldestHalfOpenOne) {
  HttpServerOptions opts;
  opts.max_clients = 2;
  StartServer(opts);
  UniqueFd a = Connect(server_->port());
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 1; }));
  UniqueFd b = Connect(server_->port());
  ASSERT_TRUE(b.valid());
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 2; }));
  // a and b hold the two slots: a third connection is served and a, the oldest, makes room.
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  std::string evicted = Exchange(a.get(), "");
  EXPECT_THAT(evicted, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ(Body(evicted), "connection limit (2) reached\n");
  EXPECT_THAT(Exchange(b.get(), "GET /healthz HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  // The stats are published at the end of the server's round, after the response went out.
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().evicted == 1u; }))
      << server_->stats().evicted;
}

TEST_F(HttpServerTest, AnsweredConnectionsAreEvictedBeforeHalfOpenOnes) {
  HttpServerOptions opts;
  opts.max_clients = 2;
  opts.idle_timeout = std::chrono::seconds(30);
  StartServer(opts);
  // a is answered but kept open by its client; b has sent nothing yet.
  UniqueFd a = Connect(server_->port());
  ASSERT_TRUE(a.valid());
  ASSERT_THAT(Exchange(a.get(), "GET /healthz HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
  UniqueFd b = Connect(server_->port());
  ASSERT_TRUE(b.valid());
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 2; }));
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  // The stats are published at the end of the server's round, after the response went out.
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().evicted == 1u; }))
      << server_->stats().evicted;
  // b kept its slot.
  EXPECT_THAT(Exchange(b.get(), "GET /readyz HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServerTest, AFloodFromOneHostEvictsItsOwnConnectionsNotTheProbes) {
  HttpServerOptions opts;
  opts.max_clients = 4;
  StartServer(opts);
  std::vector<UniqueFd> attackers;
  auto attack = [&](int n) {
    for (int i = 0; i < n; ++i) {
      UniqueFd fd = ConnectFrom(server_->port(), "127.0.0.2");
      ASSERT_TRUE(fd.valid()) << "connect from 127.0.0.2: " << std::strerror(errno);
      attackers.push_back(std::move(fd));
    }
  };
  attack(4);
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 4; }));
  // The probe (from 127.0.0.1) has sent half of its head when 40 more attackers connect.
  UniqueFd probe = Connect(server_->port());
  ASSERT_TRUE(probe.valid());
  ASSERT_GT(::send(probe.get(), "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL), 0);
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 5; }));
  attack(40);
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 45; }));
  // Older than all 40, the probe still holds its slot: each eviction hit the busiest host.
  EXPECT_THAT(Exchange(probe.get(), "Host: x\r\n\r\n"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().evicted == 41u; }))
      << server_->stats().evicted;
}

TEST_F(HttpServerTest, ABurstOfConnectsDoesNotEvictAProbeWhoseRequestHasArrived) {
  // The first /healthz holds the server thread until released, so the connects below wait in
  // the listen queue in a known order: 4 attackers, the probe (request sent), 10 attackers.
  absl::Notification release;
  std::atomic<bool> holding{false};
  live_status_ = [&] {
    if (!holding.exchange(true)) release.WaitForNotificationWithTimeout(absl::Seconds(20));
    return absl::OkStatus();
  };
  HttpServerOptions opts;
  opts.max_clients = 4;
  StartServer(opts);
  std::thread holder([&] { Get(server_->port(), "/healthz"); });
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return holding.load(); }));
  std::vector<UniqueFd> attackers;
  for (int i = 0; i < 4; ++i) attackers.push_back(Connect(server_->port()));
  UniqueFd probe = Connect(server_->port());
  ASSERT_TRUE(probe.valid());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(probe.get(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  for (int i = 0; i < 10; ++i) attackers.push_back(Connect(server_->port()));
  release.Notify();
  // The probe is answered as it is accepted, before the 10 behind it take the slots.
  EXPECT_THAT(Exchange(probe.get(), ""), StartsWith("HTTP/1.1 200 OK\r\n"));
  holder.join();
}

TEST_F(HttpServerTest, HalfOpenFloodDoesNotStarveTheLivenessProbe) {
  StartServer();  // the defaults main() uses: 64 connections
  // 80 attackers hold connections: half send nothing, half a partial head.
  std::vector<UniqueFd> attackers;
  for (int i = 0; i < 80; ++i) {
    UniqueFd fd = Connect(server_->port());
    ASSERT_TRUE(fd.valid()) << i;
    if (i % 2 == 1) {
      ASSERT_GT(::send(fd.get(), "GET /healthz HTTP/1.1\r\nHo", 25, MSG_NOSIGNAL), 0);
    }
    attackers.push_back(std::move(fd));
  }
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  // Well inside the header timeout (5 s): the probe did not wait for attackers to time out.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(HttpServerTest, OpenConnectionsNeverExceedTheCap) {
  HttpServerOptions opts;
  opts.max_clients = 8;
  StartServer(opts);
  std::vector<UniqueFd> attackers;
  for (int i = 0; i < 200; ++i) {
    UniqueFd fd = Connect(server_->port());
    ASSERT_TRUE(fd.valid()) << i;
    if (i % 2 == 1) {
      ASSERT_GT(::send(fd.get(), "GET /", 5, MSG_NOSIGNAL), 0) << i;
    }
    attackers.push_back(std::move(fd));
  }
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().accepted == 200; }));
  HttpServerStats st = server_->stats();
  EXPECT_EQ(st.peak_connections, 8);
  EXPECT_EQ(st.open_connections, 8);
  EXPECT_EQ(st.evicted, 192u);
  // Seen from the clients: every evicted one was closed (it reads a 503 and EOF); the 8 that
  // are still open have received nothing.
  int still_open = 0;
  for (const UniqueFd& fd : attackers) {
    pollfd p = {fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) ++still_open;
  }
  EXPECT_EQ(still_open, 8);
}

TEST_F(HttpServerTest, SlowDripHeadIsCutOffAtTheHeaderDeadline) {
  HttpServerOptions opts;
  opts.header_timeout = std::chrono::milliseconds(500);
  StartServer(opts);
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(fd.valid());
  // One byte every 100 ms: each byte arrives well inside the header timeout, the whole head
  // (3.5 s) does not.
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t sent = 0;
  for (; sent < request.size(); ++sent) {
    pollfd p = {fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) != 0) break;  // the server answered or closed
    if (::send(fd.get(), &request[sent], 1, MSG_NOSIGNAL) != 1) break;
  }
  EXPECT_LT(sent, request.size());
  EXPECT_THAT(Exchange(fd.get(), ""), StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  EXPECT_TRUE(
      ::rdmashare::testing::WaitFor([&] { return server_->stats().header_timeouts == 1u; }));
  EXPECT_EQ(server_->stats().responses, 0u);
}

TEST_F(HttpServerTest, ConnectionKeptOpenAfterTheResponseIsClosedAtTheIdleTimeout) {
  HttpServerOptions opts;
  opts.idle_timeout = std::chrono::milliseconds(200);
  StartServer(opts);
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(fd.valid());
  // HTTP/1.1 without "Connection: close" asks for keep-alive: the server answers once, says
  // close and half-closes; the client keeps its end open.
  std::string r = Exchange(fd.get(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] {
    HttpServerStats st = server_->stats();
    return st.idle_timeouts == 1 && st.open_connections == 0;
  }));
}

TEST_F(HttpServerTest, OneRequestPerConnection) {
  StartServer();
  std::string r = Request(server_->port(),
                          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(r.find("HTTP/1.1", 1), std::string::npos) << r;
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().responses == 1u; }));
}

TEST_F(HttpServerTest, ClientSendingEndlesslyAfterItsRequestIsClosed) {
  StartServer();
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(fd.valid());
  const std::string head = "POST /healthz HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
  ASSERT_GT(::send(fd.get(), head.data(), head.size(), MSG_NOSIGNAL), 0);
  // The body is never parsed; past 64 KiB the server stops reading it and closes.
  const std::string chunk(16 * 1024, 'b');
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] {
    ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return server_->stats().drain_limits == 1;
  }));
  EXPECT_EQ(server_->stats().open_connections, 0);
}

TEST_F(HttpServerTest, ClientThatNeverReadsTheMetricsIsDroppedAtTheWriteDeadline) {
  // About 10 MB of exposition text: more than the socket buffers of both ends hold.
  ASSERT_OK_AND_ASSIGN(Gauge * big, registry_.AddGauge("rdmashare_big", "Padding.", {"i"}));
  for (int i = 0; i < 100000; ++i) big->Set({std::string(64, 'x') + std::to_string(i)}, i);
  HttpServerOptions opts;
  opts.write_timeout = std::chrono::milliseconds(300);
  StartServer(opts);
  UniqueFd stuck = ConnectFrom(server_->port(), "127.0.0.1", 4096);
  ASSERT_TRUE(stuck.valid());
  const std::string request = "GET /metrics HTTP/1.1\r\n\r\n";
  ASSERT_GT(::send(stuck.get(), request.data(), request.size(), MSG_NOSIGNAL), 0);
  ASSERT_TRUE(::rdmashare::testing::WaitFor([&] { return server_->stats().responses == 1; }));
  // The server thread is not blocked on it...
  EXPECT_THAT(Get(server_->port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  // ...and drops it at the write deadline.
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] {
    HttpServerStats st = server_->stats();
    return st.write_timeouts == 1 && st.open_connections == 0;
  }));
}

TEST_F(HttpServerTest, StartRefusesLimitsThatAreNotPositive) {
  struct Case {
    std::function<void(HttpServerOptions&)> set;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {[](HttpServerOptions& o) { o.max_clients = 0; }, "max_clients"},
           {[](HttpServerOptions& o) { o.max_request_bytes = 0; }, "max_request_bytes"},
           {[](HttpServerOptions& o) { o.header_timeout = {}; }, "header_timeout"},
           {[](HttpServerOptions& o) { o.write_timeout = {}; }, "write_timeout"},
           {[](HttpServerOptions& o) { o.idle_timeout = std::chrono::milliseconds(-1); },
            "idle_timeout"},
       }) {
    HttpServerOptions opts;
    c.set(opts);
    HttpServer server(opts, &registry_, nullptr, nullptr);
    EXPECT_THAT(server.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr(c.field + " must be positive")));
  }
}

TEST_F(HttpServerTest, ManySequentialAndParallelClientsAreServed) {
  StartServer();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (Get(server_->port(), "/metrics").rfind("HTTP/1.1 200 OK\r\n", 0) == 0) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST_F(HttpServerTest, BindFailureNamesTheAddress) {
  StartServer();
  std::string taken = "127.0.0.1:" + std::to_string(server_->port());
  HttpServer second(HttpServerOptions{taken}, &registry_, nullptr, nullptr);
  EXPECT_THAT(second.Start(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("bind " + taken + ": ")));
  // 192.0.2.1 (TEST-NET-1) is not an address of this host.
  HttpServer foreign(HttpServerOptions{"192.0.2.1:0"}, &registry_, nullptr, nullptr);
  EXPECT_THAT(foreign.Start(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bind 192.0.2.1:0: ")));
  HttpServer name(HttpServerOptions{"metrics.example:9090"}, &registry_, nullptr, nullptr);
  EXPECT_THAT(name.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("host 'metrics.example' is not an IP address")));
  HttpServer garbage(HttpServerOptions{"nonsense"}, &registry_, nullptr, nullptr);
  EXPECT_THAT(garbage.Start(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'nonsense'")));
}

TEST_F(HttpServerTest, ListensOnIpv6LoopbackAndLocalhost) {
  HttpServer v6(HttpServerOptions{"[::1]:0"}, &registry_, nullptr, nullptr);
  absl::Status st = v6.Start();
  if (st.ok()) {
    UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 sa = {};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(v6.port());
    sa.sin6_addr = in6addr_loopback;
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_THAT(Exchange(fd.get(), "GET /healthz HTTP/1.1\r\n\r\n"),
                StartsWith("HTTP/1.1 200 OK\r\n"));
  } else {
    // Only acceptable when the kernel has no IPv6 loopback.
    EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument)) << st;
  }
  HttpServer local(HttpServerOptions{"localhost:0"}, &registry_, nullptr, nullptr);
  ASSERT_OK(local.Start());
  EXPECT_THAT(Get(local.port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST_F(HttpServerTest, StartTwiceFailsAndStopIsIdempotent) {
  StartServer();
  EXPECT_THAT(server_->Start(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already started")));
  uint16_t port = server_->port();
  server_->Stop();
  server_->Stop();
  EXPECT_FALSE(Connect(port).valid());
}

TEST_F(HttpServerTest, StopClosesOpenConnections) {
  StartServer();
  UniqueFd idle = Connect(server_->port());
  ASSERT_TRUE(idle.valid());
  server_->Stop();
  // The server's end is closed: the client reads EOF (no 408, no hang).
  EXPECT_EQ(Exchange(idle.get(), ""), "");
}

TEST(HeartbeatTest, DrivesHealthzOverHttp) {
  auto now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  std::atomic<int64_t> offset_s{0};
  Heartbeat hb(std::chrono::seconds(10), [&] { return now + std::chrono::seconds(offset_s); });
  MetricsRegistry r;
  HttpServer server(
      HttpServerOptions{}, &r, [&hb] { return hb.Check(); }, nullptr);
  ASSERT_OK(server.Start());
  EXPECT_THAT(Get(server.port(), "/healthz"), StartsWith("HTTP/1.1 200 OK\r\n"));
  offset_s = 11;
  std::string stuck = Get(server.port(), "/healthz");
  EXPECT_THAT(stuck, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(Body(stuck), HasSubstr("no heartbeat from the main loop for 11.0 s"));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
