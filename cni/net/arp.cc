#include "cni/net/arp.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare::cni::net {
namespace {

using Mac = std::array<uint8_t, 6>;
using Ip4 = std::array<uint8_t, 4>;

struct __attribute__((packed)) ArpPacket {
  uint16_t htype;
  uint16_t ptype;
  uint8_t hlen;
  uint8_t plen;
  uint16_t op;
  uint8_t sha[6];
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
};

absl::StatusOr<Mac> ParseMac(const std::string& s) {
  Mac m{};
  unsigned v[6];
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) !=
      6) {
    return absl::InvalidArgumentError(fmt::format("MAC address \"{}\" is not valid", s));
  }
  for (int i = 0; i < 6; ++i) m[i] = static_cast<uint8_t>(v[i]);
  return m;
}

std::string MacString(const uint8_t* b) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4],
                     b[5]);
}

Ip4 ToIp4(const IpAddr& ip) {
  std::array<uint8_t, 16> b = ip.bytes();
  return {b[0], b[1], b[2], b[3]};
}

class ArpSocket {
 public:
  static absl::StatusOr<ArpSocket> Open(int ifindex) {
    // Protocol 0 at creation and the ARP hook only at bind: re-binding a running socket would
    // wait for an extra RCU grace period.
    int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return absl::InternalError(
          fmt::format("ARP socket on link #{}: {}", ifindex, std::strerror(errno)));
    }
    UniqueFd ufd(fd);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = ifindex;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
      return absl::InternalError(
          fmt::format("ARP socket bind to link #{}: {}", ifindex, std::strerror(errno)));
    }
    return ArpSocket(std::move(ufd), ifindex);
  }

  absl::Status Send(uint16_t op, const Mac& sha, const Ip4& spa, const Ip4& tpa) {
    ArpPacket p{};
    p.htype = htons(ARPHRD_ETHER);
    p.ptype = htons(ETH_P_IP);
    p.hlen = 6;
    p.plen = 4;
    p.op = htons(op);
    std::memcpy(p.sha, sha.data(), 6);
    std::memcpy(p.spa, spa.data(), 4);
    std::memcpy(p.tpa, tpa.data(), 4);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = ifindex_;
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xff, 6);
    ssize_t n = ::sendto(fd_.get(), &p, sizeof(p), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    if (n != static_cast<ssize_t>(sizeof(p))) {
      return absl::InternalError(
          fmt::format("ARP send on link #{}: {}", ifindex_, std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  // Waits until `deadline` for a packet accepted by `match`; returns its sender MAC.
  template <typename Match>
  absl::StatusOr<std::optional<std::string>> WaitFor(std::chrono::steady_clock::time_point deadline,
                                                     const Match& match) {
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::nullopt;
      int ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
      pollfd pfd{fd_.get(), POLLIN, 0};
      int r = ::poll(&pfd, 1, ms);
      if (r < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError(fmt::format("ARP poll: {}", std::strerror(errno)));
      }
      if (r == 0) continue;
      ArpPacket p{};
      sockaddr_ll from{};
      socklen_t fl = sizeof(from);
      ssize_t n = ::recvfrom(fd_.get(), &p, sizeof(p), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < static_cast<ssize_t>(sizeof(p))) continue;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      if (ntohs(p.htype) != ARPHRD_ETHER || ntohs(p.ptype) != ETH_P_IP || p.hlen != 6 ||
          p.plen != 4) {
        continue;
      }
      if (match(p)) return std::optional<std::string>(MacString(p.sha));
    }
  }

 private:
  ArpSocket(UniqueFd fd, int ifindex) : fd_(std::move(fd)), ifindex_(ifindex) {}
  UniqueFd fd_;
  int ifindex_;
};

absl::Status RequireV4(const IpAddr& ip, const char* what) {
  if (!ip.is_v4()) {
    return absl::InvalidArgumentError(
        fmt::format("ARP {}: {} is not an IPv4 address", what, ip.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<std::string>> ProbeAddressConflict(int ifindex,
                                                                const std::string& own_mac,
                                                                const IpAddr& addr,
                                                                const ProbeOptions& options) {
  if (auto s = RequireV4(addr, "probe"); !s.ok()) return s;
  auto mac = ParseMac(own_mac);
  if (!mac.ok()) return mac.status();
  auto sock = ArpSocket::Open(ifindex);
  if (!sock.ok()) return sock.status();
  Ip4 target = ToIp4(addr);
  Ip4 zero{};
  for (int i = 0; i < options.count; ++i) {
    if (auto s = sock->Send(ARPOP_REQUEST, *mac, zero, target); !s.ok()) return s;
    auto deadline = std::chrono::steady_clock::now() + options.interval;
    auto found = sock->WaitFor(deadline, [&](const ArpPacket& p) {
      if (std::memcmp(p.sha, mac->data(), 6) == 0) return false;
      // Someone uses the address (RFC 5227 2.1.1: sender IP is ours) ...
      if (std::memcmp(p.spa, target.data(), 4) == 0) return true;
      // ... or probes for it at the same time (sender 0.0.0.0, target ours, request).
      return ntohs(p.op) == ARPOP_REQUEST && std::memcmp(p.spa, zero.data(), 4) == 0 &&
             std::memcmp(p.tpa, target.data(), 4) == 0;
    });
    if (!found.ok() || found->has_value()) return found;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<std::string>> ProbeGateway(int ifindex, const std::string& own_mac,
                                                        const IpAddr& own, const IpAddr& gateway,
                                                        const ProbeOptions& options) {
  if (auto s = RequireV4(own, "gateway probe"); !s.ok()) return s;
  if (auto s = RequireV4(gateway, "gateway probe"); !s.ok()) return s;
  auto mac = ParseMac(own_mac);
  if (!mac.ok()) return mac.status();
  auto sock = ArpSocket::Open(ifindex);
  if (!sock.ok()) return sock.status();
  Ip4 gw = ToIp4(gateway);
  for (int i = 0; i < options.count; ++i) {
    if (auto s = sock->Send(ARPOP_REQUEST, *mac, ToIp4(own), gw); !s.ok()) return s;
    auto deadline = std::chrono::steady_clock::now() + options.interval;
    auto found = sock->WaitFor(deadline, [&](const ArpPacket& p) {
      return ntohs(p.op) == ARPOP_REPLY && std::memcmp(p.spa, gw.data(), 4) == 0;
    });
    if (!found.ok() || found->has_value()) return found;
  }
  return std::nullopt;
}

absl::StatusOr<ProbeOutcome> ProbeAddressAndGateway(int ifindex, const std::string& own_mac,
                                                    const IpAddr& addr,
                                                    const std::optional<IpAddr>& gateway,
                                                    const ProbeOptions& conflict,
                                                    std::chrono::milliseconds gateway_budget,
                                                    int announcements) {
  using Clock = std::chrono::steady_clock;
  if (auto s = RequireV4(addr, "probe"); !s.ok()) return s;
  if (gateway) {
    if (auto s = RequireV4(*gateway, "gateway probe"); !s.ok()) return s;
  }
  auto mac = ParseMac(own_mac);
  if (!mac.ok()) return mac.status();
  auto sock = ArpSocket::Open(ifindex);
  if (!sock.ok()) return sock.status();
  const Ip4 target = ToIp4(addr);
  const Ip4 zero{};
  const Ip4 gw = gateway ? ToIp4(*gateway) : zero;
  const auto interval = std::max(conflict.interval, std::chrono::milliseconds(1));
  const auto start = Clock::now();
  const auto window_end = start + interval * std::max(conflict.count, 0);
  const auto gateway_end = start + std::max(gateway_budget, std::chrono::milliseconds(0));
  ProbeOutcome out;
  int probes_sent = 0;
  auto next_send = start;
  for (;;) {
    const auto now = Clock::now();
    const bool window_open = now < window_end;
    const bool want_gateway = gateway && !out.gateway_mac && now < gateway_end;
    if (!window_open && !want_gateway) {
      if (!gateway || out.gateway_mac) {
        for (int i = 0; i < announcements; ++i) {
          if (auto s = sock->Send(ARPOP_REQUEST, *mac, target, target); !s.ok()) return s;
        }
      }
      return out;
    }
    if (now >= next_send) {
      if (window_open && probes_sent < conflict.count) {
        if (auto s = sock->Send(ARPOP_REQUEST, *mac, zero, target); !s.ok()) return s;
        ++probes_sent;
      }
      if (want_gateway) {
        // A probe while the address may still be someone else's; a plain request after.
        const Ip4& sender = window_open ? zero : target;
        if (auto s = sock->Send(ARPOP_REQUEST, *mac, sender, gw); !s.ok()) return s;
      }
      next_send += interval;
    }
    auto until = std::min(
        next_send, std::max(window_open ? window_end : now, want_gateway ? gateway_end : now));
    if (until <= Clock::now()) until = next_send;
    auto seen = sock->WaitFor(until, [&](const ArpPacket& p) {
      if (std::memcmp(p.sha, mac->data(), 6) == 0) return false;
      // Someone uses the address (RFC 5227 2.1.1: sender IP is ours), or probes for it at the
      // same time (sender 0.0.0.0, target ours, request).
      bool claims = std::memcmp(p.spa, target.data(), 4) == 0 ||
                    (ntohs(p.op) == ARPOP_REQUEST && std::memcmp(p.spa, zero.data(), 4) == 0 &&
                     std::memcmp(p.tpa, target.data(), 4) == 0);
      if (claims && Clock::now() < window_end) {
        out.conflict_mac = MacString(p.sha);
        return true;
      }
      if (gateway && !out.gateway_mac && ntohs(p.op) == ARPOP_REPLY &&
          std::memcmp(p.spa, gw.data(), 4) == 0) {
        out.gateway_mac = MacString(p.sha);
        return true;
      }
      return false;
    });
    if (!seen.ok()) return seen.status();
    if (out.conflict_mac) return out;
  }
}

absl::Status AnnounceAddress(int ifindex, const std::string& own_mac, const IpAddr& addr,
                             int count) {
  if (auto s = RequireV4(addr, "announce"); !s.ok()) return s;
  auto mac = ParseMac(own_mac);
  if (!mac.ok()) return mac.status();
  auto sock = ArpSocket::Open(ifindex);
  if (!sock.ok()) return sock.status();
  for (int i = 0; i < count; ++i) {
    if (auto s = sock->Send(ARPOP_REQUEST, *mac, ToIp4(addr), ToIp4(addr)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace rdmashare::cni::net
