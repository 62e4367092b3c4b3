// Allocator: the IPAM logic (reserve, release, check, GC, quarantine, status) over an injected
// IpamStore. ipam.h's free functions build one over a LocalStore; tests use a FakeStore.
//
// Allocation follows host-local: for each pool, start after the pool's last reserved address
// and go round robin over its ranges, skipping network/broadcast/gateway addresses, excluded
// intervals and every address that has a record (including unreadable records and
// quarantines). One reservation per (containerID, ifname) per pool.
//
// Thread-safety: the object is immutable after construction; each call takes the network's
// store lock, so concurrent calls (threads or processes sharing the store) are safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/ipam/config.h"
#include "cni/ipam/ipam.h"
#include "cni/ipam/store.h"

namespace rdmashare::cni::ipam {

class Allocator {
 public:
  // `store` must outlive the allocator. `now_seconds` returns Unix time (quarantine expiry).
  Allocator(IpamStore* store, std::function<int64_t()> now_seconds);

  // See IpamAdd in ipam.h. When `reserved` is not null it receives the addresses this call
  // reserved (not those the owner already held).
  absl::StatusOr<Result> Add(const IpamArgs& args, const IpamConfig& conf,
                             std::vector<std::string>* reserved = nullptr) const;
  // See IpamDel.
  absl::Status Del(const IpamArgs& args, const IpamConfig& conf) const;
  // See IpamRelease.
  absl::Status Release(const IpamArgs& args, const IpamConfig& conf,
                       const std::vector<std::string>& ips) const;
  // See IpamCheck.
  absl::Status Check(const IpamArgs& args, const IpamConfig& conf, const Result& prev) const;
  // See IpamGc.
  absl::Status Gc(const IpamArgs& args, const IpamConfig& conf,
                  const std::vector<Attachment>& valid) const;
  // See IpamQuarantine.
  absl::Status Quarantine(const IpamArgs& args, const IpamConfig& conf,
                          const std::string& ip) const;
  // See IpamStatus.
  absl::Status Status(const IpamArgs& args, const IpamConfig& conf) const;

 private:
  IpamStore* store_;
  std::function<int64_t()> now_seconds_;
};

// The addresses requested for this attachment: CNI_ARGS "IP" (comma-separated),
// args.cni.ips and runtimeConfig.ips (strings, bare or CIDR). Code 7 for malformed entries.
absl::StatusOr<std::vector<IpAddr>> RequestedIps(const IpamArgs& args);

}  // namespace rdmashare::cni::ipam
