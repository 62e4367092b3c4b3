// IPv4 ARP probes and announcements (RFC 5227) over an AF_PACKET socket bound to one interface.
//
// Each call opens its own socket (O_CLOEXEC) in the calling thread's network namespace, so call
// inside the pod namespace. Every wait is bounded: count × interval. Thread-safe (no shared
// state). IPv6 (DAD/NDP) is not probed: the kernel's own DAD is disabled for our addresses
// (IFA_F_NODAD) and v6 conflict/gateway detection is documented as not supported.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/ip.h"

namespace rdmashare::cni::net {

struct ProbeOptions {
  // Requests sent; the wait after each is `interval`.
  int count = 3;
  std::chrono::milliseconds interval{100};
};

// RFC 5227 probe (sender IP 0.0.0.0, target `addr`) from `own_mac` on `ifindex`. Returns the MAC
// of another host that claims the address (answers, or probes for it at the same time), nullopt
// when nobody did within the bounded time.
absl::StatusOr<std::optional<std::string>> ProbeAddressConflict(int ifindex,
                                                                const std::string& own_mac,
                                                                const IpAddr& addr,
                                                                const ProbeOptions& options);

// ARP request for `gateway` from (`own_mac`, `own`); returns the gateway's MAC when it answers,
// nullopt when silent for the whole bounded time.
absl::StatusOr<std::optional<std::string>> ProbeGateway(int ifindex, const std::string& own_mac,
                                                        const IpAddr& own, const IpAddr& gateway,
                                                        const ProbeOptions& options);

// What ProbeAddressAndGateway saw.
struct ProbeOutcome {
  // MAC of another host that claims the address (nullopt: nobody within the conflict window).
  std::optional<std::string> conflict_mac;
  // MAC of the gateway (nullopt: silent for the gateway budget, or no gateway probed).
  std::optional<std::string> gateway_mac;
};

// Both checks at once on one socket, so a pod pays for the longer of the two, not their sum:
//  - the RFC 5227 conflict probe for `addr`: `conflict.count` probes, `conflict.interval` apart;
//    its window (count x interval) always runs to the end unless a conflict shows up earlier;
//  - when `gateway` is set, ARP requests for it every `conflict.interval` until it answers or
//    `gateway_budget` has passed. While the conflict window is open the requests carry sender
//    0.0.0.0 (an ARP probe: the address is not claimed before it is known to be free, and a
//    host answers probes for its own address); afterwards they carry `addr`, for gateways that
//    ignore probes.
// Returns as soon as a conflict is seen, or once the conflict window has passed and the gateway
// has answered (or its budget ran out). Without a conflict (and with the gateway's answer when
// one was asked for) it then sends `announcements` RFC 5227 announcements for `addr` from the
// same socket: every AF_PACKET socket costs an RCU grace period at close, so one serves all.
// Call inside the pod namespace; nothing is configured.
absl::StatusOr<ProbeOutcome> ProbeAddressAndGateway(int ifindex, const std::string& own_mac,
                                                    const IpAddr& addr,
                                                    const std::optional<IpAddr>& gateway,
                                                    const ProbeOptions& conflict,
                                                    std::chrono::milliseconds gateway_budget,
                                                    int announcements = 0);

// RFC 5227 announcement (gratuitous ARP request, sender = target = `addr`), `count` times.
absl::Status AnnounceAddress(int ifindex, const std::string& own_mac, const IpAddr& addr,
                             int count = 1);

}  // namespace rdmashare::cni::net
