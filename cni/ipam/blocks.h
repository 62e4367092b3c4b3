// Per-node address blocks: the geometry the allocator uses with a store that has blocks
// (EtcdStore with a blockSize). A block is an aligned subnet of `block_size` addresses (a power
// of two); a pool's blocks are those overlapping its ranges, in range order.
//
// Plain functions over values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/ipam/config.h"
#include "common/ip.h"

namespace rdmashare::cni::ipam {

// Prefix length of a block of `block_size` addresses (a power of two) in `family` (4 or 6).
int BlockPrefix(int family, uint64_t block_size);

// The block of `block_size` addresses holding `ip`.
IpPrefix BlockOf(const IpAddr& ip, uint64_t block_size);

// `pool` cut down to the addresses inside `blocks` (ranges keep their subnet and gateway, so
// Allocatable() answers as in the full pool; excludes are kept). Ranges stay in pool order, then
// address order; a pool with no address in `blocks` has no ranges.
Pool NarrowToBlocks(const Pool& pool, const std::vector<IpPrefix>& blocks);

// The first block of `pool`, in range order, that is not in `skip` and has an allocatable address
// not in `taken`; nullopt when there is none. Visits at most `max_visits` blocks (huge IPv6
// pools: the claimed blocks are few, so a free one is found early).
std::optional<IpPrefix> FirstFreeBlock(const Pool& pool, uint64_t block_size,
                                       const std::set<IpPrefix>& skip,
                                       const std::set<IpAddr>& taken,
                                       uint64_t max_visits = uint64_t{1} << 20);

// etcd key segment of a block ("10.40.0.16_28", "fd00::10_124") and back.
std::string BlockKeySegment(const IpPrefix& block);
absl::StatusOr<IpPrefix> ParseBlockKeySegment(const std::string& segment);

}  // namespace rdmashare::cni::ipam
