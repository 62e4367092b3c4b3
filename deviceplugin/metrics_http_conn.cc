// HttpServer's connection state machine: accepting (and evicting at the cap), reading the
// request head, writing the response, draining, and closing at deadlines. Runs on the server
// thread only (see metrics_http.h).
#include "deviceplugin/metrics_http_conn.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "deviceplugin/http_message.h"
#include "deviceplugin/metrics_http.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr size_t kReadChunk = 4096;
// What a client may still send after its request head (a body, a second request) before the
// connection is closed: it is read and discarded, never parsed.
constexpr size_t kMaxDrainBytes = 64 * 1024;

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

}  // namespace

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
    SendBestEffort(victim->fd.get(),
                   MakeTextHttpResponse(
                       503, fmt::format("connection limit ({}) reached\n", options_.max_clients)));
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
  size_t end = HttpHeadEnd(c.in, old >= 3 ? old - 3 : 0);
  if (end != std::string::npos && end <= options_.max_request_bytes) {
    StartResponse(c, Respond(c.in.substr(0, end)), now);
    return;
  }
  if (c.in.size() > options_.max_request_bytes) {
    StartResponse(c,
                  MakeTextHttpResponse(431, fmt::format("request head exceeds {} bytes\n",
                                                        options_.max_request_bytes)),
                  now);
    return;
  }
  if (c.line_checked) return;
  if (c.in.find('\n', old) != std::string::npos) {
    // Reject a bad request line at once instead of waiting for the rest of the head.
    c.line_checked = true;
    std::string m, t;
    if (std::string p = HttpRequestLineProblem(*HttpFirstLine(c.in), &m, &t); !p.empty()) {
      StartResponse(c, MakeTextHttpResponse(400, fmt::format("bad request: {}\n", p)), now);
    }
    return;
  }
  // No line end yet: binary garbage (a TLS ClientHello) is answered without waiting for one.
  if (std::any_of(c.in.begin() + static_cast<std::ptrdiff_t>(old), c.in.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) < 0x20 && ch != '\r') || ch == 0x7f;
      })) {
    StartResponse(c, MakeTextHttpResponse(400, "bad request: control character in request line\n"),
                  now);
  }
}

void HttpServer::ExpireDeadlines(ConnList& conns, Clock::time_point now) {
  for (Conn& c : conns) {
    if (c.state == Conn::State::kClosed || c.deadline > now) continue;
    switch (c.state) {
      case Conn::State::kReading:
        SendBestEffort(c.fd.get(), MakeTextHttpResponse(408, "request timeout\n"));
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

}  // namespace rdmashare::deviceplugin
