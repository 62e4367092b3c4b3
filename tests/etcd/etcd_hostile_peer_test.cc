// rdmashare-ipam's etcd client against a hostile etcd peer: a loopback server (plain TCP, or TLS
// with a test CA) that reads each request and answers with broken framing, endless or dripping
// bytes. Through the real client (EtcdClient::Get), every case must end within the request
// timeout plus a small margin, with CNI code 11 naming the endpoint and the cause, and with the
// process's peak memory bounded by the body cap.
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cni/ipam/etcd_client.h"
#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::TestPki;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kRequestTimeout = std::chrono::milliseconds(1000);
// Scheduling slack on a loaded CI machine (the client itself stops at the deadline).
constexpr auto kMargin = std::chrono::milliseconds(700);
constexpr uint64_t kBodyCap = 1 << 20;

const TestPki& Pki() {
  static const TestPki* pki = new TestPki();
  return *pki;
}

// One accepted connection as the hostile script sees it.
class Wire {
 public:
  Wire(int fd, SSL* ssl, const std::atomic<bool>* stop) : fd_(fd), ssl_(ssl), stop_(stop) {}

  // Writes all of `data`; false once the client is gone (or the test ends).
  bool Send(std::string_view data) {
    while (!data.empty() && !stop_->load()) {
      ssize_t n;
      if (ssl_ != nullptr) {
        size_t written = 0;
        n = SSL_write_ex(ssl_, data.data(), data.size(), &written) == 1
                ? static_cast<ssize_t>(written)
                : -1;
      } else {
        n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return !stop_->load();
  }
  // Waits `ms`, or less when the client closes; false when it did (or the test ends).
  bool Pause(int ms) {
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (!stop_->load()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return true;
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 50)));
      if (r > 0) {
        char b[256];
        if (recv(fd_, b, sizeof(b), MSG_DONTWAIT) <= 0) return false;
      }
    }
    return false;
  }
  // Keeps the connection open until the client closes it (or the test ends).
  void Hold() {
    while (Pause(1000)) {
    }
  }
  // A clean close: TLS close_notify, then FIN.
  void CloseCleanly() {
    if (ssl_ != nullptr) SSL_shutdown(ssl_);
    shutdown(fd_, SHUT_WR);
    Hold();
  }

 private:
  int fd_;
  SSL* ssl_;
  const std::atomic<bool>* stop_;
};

using Script = std::function<void(Wire&)>;

// A loopback listener running `script` on every connection (each in its own thread) after
// reading the request. Stops and joins everything on destruction.
class HostilePeer {
 public:
  HostilePeer(Script script, bool tls) : script_(std::move(script)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listen_fd_, 16) != 0) {
      return;
    }
    socklen_t len = sizeof(a);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (tls) {
      ctx_ = SSL_CTX_new(TLS_server_method());
      if (SSL_CTX_use_certificate_chain_file(ctx_, Pki().server_cert().c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, Pki().server_key().c_str(), SSL_FILETYPE_PEM) != 1) {
        port_ = 0;
        return;
      }
    }
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~HostilePeer() {
    stop_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : conns_) shutdown(fd, SHUT_RDWR);
    }
    shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : workers_) t.join();
    close(listen_fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  int port() const { return port_; }
  int connections() const { return accepted_.load(); }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(fd);
      workers_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    SSL* ssl = nullptr;
    bool ready = true;
    if (ctx_ != nullptr) {
      ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      ready = SSL_accept(ssl) == 1;
    }
    if (ready && ReadRequest(fd, ssl)) {
      Wire wire(fd, ssl, &stop_);
      script_(wire);
    }
    if (ssl != nullptr) SSL_free(ssl);
    std::lock_guard<std::mutex> lock(mu_);
    conns_.erase(std::find(conns_.begin(), conns_.end(), fd));
    close(fd);
  }

  // Reads the request head and its Content-Length body (so closing never resets the connection
  // over unread bytes).
  static bool ReadRequest(int fd, SSL* ssl) {
    std::string req;
    size_t need = std::string::npos;
    while (need == std::string::npos || req.size() < need) {
      char b[4096];
      int n = ssl != nullptr ? SSL_read(ssl, b, sizeof(b))
                             : static_cast<int>(recv(fd, b, sizeof(b), 0));
      if (n <= 0) return false;
      req.append(b, static_cast<size_t>(n));
      size_t end = req.find("\r\n\r\n");
      if (need == std::string::npos && end != std::string::npos) {
        size_t cl = req.find("Content-Length: ");
        need = end + 4 + (cl < end ? std::stoul(req.substr(cl + 16)) : 0);
      }
    }
    return true;
  }

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  SSL_CTX* ctx_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
};

// VmHWM/VmRSS of this process in KiB (from /proc/self/status).
long StatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// Resets the peak-RSS mark (VmHWM) to the current RSS.
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

constexpr char kChunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

struct HostileCase {
  std::string name;
  Script script;
  // Expected after "<endpoint>: " in the message.
  std::string cause;
};

class HostilePeerTest : public ::testing::TestWithParam<std::tuple<HostileCase, bool>> {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }  // the TLS server's writes
};

TEST_P(HostilePeerTest, EndsWithinTheTimeoutWithCode11NamingEndpointAndCause) {
  const auto& [c, tls] = GetParam();
  if (tls) {
    ASSERT_TRUE(Pki().ok()) << Pki().error();
  }
  HostilePeer peer(c.script, tls);
  ASSERT_NE(peer.port(), 0);
  std::string endpoint = fmt::format("{}127.0.0.1:{}", tls ? "https://" : "", peer.port());
  EtcdOptions o;
  o.endpoints = {endpoint};
  o.dial_timeout = std::chrono::milliseconds(500);
  o.request_timeout = kRequestTimeout;
  o.max_response_bytes = kBodyCap;
  if (tls) o.tls.ca = Pki().ca();
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(o));

  ResetPeakRss();
  long rss_before = StatusKb("VmRSS");
  auto start = Clock::now();
  auto got = client->Get("/k");
  auto elapsed = Clock::now() - start;
  long peak_growth_kb = StatusKb("VmHWM") - rss_before;

  ASSERT_FALSE(got.ok());
  EXPECT_EQ(CniCode(got.status()), kTryAgainLater) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr(endpoint + ": " + c.cause));
  EXPECT_LT(elapsed, kRequestTimeout + kMargin);
  // The body cap (1 MiB) bounds what an endless peer makes us hold; the old client grew by GBs.
  EXPECT_LT(peak_growth_kb, 24 * 1024);
}

std::string Body(char c, size_t n) { return std::string(n, c); }

const HostileCase kCases[] = {
    {"NegativeChunkSize",
     [](Wire& w) {
       if (w.Send(std::string(kChunked) + "-6\r\n")) w.Hold();
     },
     "response chunk size '-6' is not hexadecimal"},
    {"ChunkSizeThatWrapsSizeT",
     [](Wire& w) {
       if (w.Send(std::string(kChunked) + "2\r\n{}\r\nFFFFFFFFFFFFFFEC\r\n" + Body('x', 64))) {
         w.Hold();
       }
     },
     "response chunk size 'FFFFFFFFFFFFFFEC' too large (the body limit is 1048576 bytes)"},
    {"HugeContentLengthThenEndlessBytes",
     [](Wire& w) {
       if (!w.Send("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")) return;
       std::string block = Body('y', 16384);
       while (w.Send(block)) {
       }
     },
     "response Content-Length 99999999999 exceeds the limit of 1048576 bytes"},
    {"EndlessChunkedBody",
     [](Wire& w) {
       if (!w.Send(kChunked)) return;
       std::string chunk = "4000\r\n" + Body('z', 0x4000) + "\r\n";
       while (w.Send(chunk)) {
       }
     },
     "response body exceeds the limit of 1048576 bytes"},
    {"EndlessCloseDelimitedBody",
     [](Wire& w) {
       if (!w.Send("HTTP/1.1 200 OK\r\n\r\n")) return;
       std::string block = Body('b', 16384);
       while (w.Send(block)) {
       }
     },
     "response body exceeds the limit of 1048576 bytes"},
    {"EndlessHeaders",
     [](Wire& w) {
       if (!w.Send("HTTP/1.1 200 OK\r\nX-Endless: ")) return;
       std::string block = Body('h', 4096);
       while (w.Send(block)) {
       }
     },
     "response header section exceeds 65536 bytes"},
    {"NegativeContentLength",
     [](Wire& w) {
       if (w.Send("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{\"kvs\":[]}")) w.Hold();
     },
     "response Content-Length '-5' is not a decimal number"},
    {"CloseDelimitedBodyNeverClosed",
     [](Wire& w) {
       if (w.Send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"kvs\":[")) {
         w.Hold();
       }
     },
     "timed out after"},
    {"SlowDrip",
     [](Wire& w) {
       std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
       for (char ch : answer) {
         if (!w.Send(std::string(1, ch)) || !w.Pause(100)) return;
       }
       w.Hold();
     },
     "timed out after"},
};

INSTANTIATE_TEST_SUITE_P(Cases, HostilePeerTest,
                         ::testing::Combine(::testing::ValuesIn(kCases), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<HostileCase, bool>>& info) {
                           return std::get<0>(info.param).name +
                                  (std::get<1>(info.param) ? "OverTls" : "OverTcp");
                         });

EtcdOptions OptionsFor(const HostilePeer& peer, bool tls) {
  EtcdOptions o;
  o.endpoints = {fmt::format("{}127.0.0.1:{}", tls ? "https://" : "", peer.port())};
  o.dial_timeout = std::chrono::milliseconds(500);
  o.request_timeout = kRequestTimeout;
  if (tls) o.tls.ca = Pki().ca();
  return o;
}

class CloseDelimitedTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }
};

TEST_P(CloseDelimitedTest, AnswerCountsWhenTheServerClosesCleanly) {
  bool tls = GetParam();
  if (tls) {
    ASSERT_TRUE(Pki().ok()) << Pki().error();
  }
  HostilePeer peer(
      [](Wire& w) {
        if (w.Send("HTTP/1.1 200 OK\r\n\r\n{\"kvs\":[{\"key\":\"L2s=\",\"value\":\"dg==\"}]}")) {
          w.CloseCleanly();
        }
      },
      tls);
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(OptionsFor(peer, tls)));
  ASSERT_OK_AND_ASSIGN(std::optional<KeyValue> kv, client->Get("/k"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "v");
}

INSTANTIATE_TEST_SUITE_P(Transports, CloseDelimitedTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("OverTls") : std::string("OverTcp");
                         });

TEST(HostilePeerTlsTest, CloseDelimitedAnswerCutWithoutCloseNotifyIsRefused) {
  ASSERT_TRUE(Pki().ok()) << Pki().error();
  signal(SIGPIPE, SIG_IGN);
  HostilePeer peer(
      [](Wire& w) {
        // The whole JSON, then a bare FIN: a truncation attack looks the same.
        // No SSL_shutdown afterwards: the TCP connection just ends.
        w.Send("HTTP/1.1 200 OK\r\n\r\n{\"kvs\":[]}");
      },
      true);
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(OptionsFor(peer, true)));
  auto got = client->Get("/k");
  EXPECT_EQ(CniCode(got.status()), kTryAgainLater) << got.status();
  EXPECT_THAT(got.status().message(),
              HasSubstr("connection closed by the server without a TLS close_notify"));
}

TEST(EtcdClientHostileTest, BrokenEndpointIsNotAskedAgainWithinTheOperation) {
  HostilePeer peer(
      [](Wire& w) {
        if (w.Send(std::string(kChunked) + "-6\r\n")) w.Hold();
      },
      false);
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(OptionsFor(peer, false)));
  auto start = Clock::now();
  auto got = client->Get("/k");
  EXPECT_FALSE(got.ok());
  // Answered garbage once: the operation ends at once instead of retrying until the deadline.
  EXPECT_EQ(peer.connections(), 1);
  EXPECT_LT(Clock::now() - start, kRequestTimeout / 2);
}

}  // namespace
}  // namespace rdmashare::cni::ipam
