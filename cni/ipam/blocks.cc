#include "cni/ipam/blocks.h"

#include <algorithm>

#include "cni/ipam/store.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

int BlockPrefix(int family, uint64_t block_size) {
  int bits = family == 4 ? 32 : 128;
  int host_bits = 0;
  while (host_bits < 63 && (uint64_t{1} << host_bits) < block_size) ++host_bits;
  return std::max(0, bits - host_bits);
}

IpPrefix BlockOf(const IpAddr& ip, uint64_t block_size) {
  return IpPrefix::Containing(ip, BlockPrefix(ip.family(), block_size));
}

Pool NarrowToBlocks(const Pool& pool, const std::vector<IpPrefix>& blocks) {
  std::vector<IpPrefix> sorted = blocks;
  std::sort(sorted.begin(), sorted.end());
  Pool out;
  out.excludes = pool.excludes;
  for (const AddrRange& r : pool.ranges) {
    for (const IpPrefix& b : sorted) {
      if (b.family() != r.subnet.family()) continue;
      IpAddr start = std::max(r.start, b.network());
      IpAddr end = std::min(r.end, b.Last());
      if (end < start) continue;
      AddrRange part = r;
      part.start = start;
      part.end = end;
      out.ranges.push_back(part);
    }
  }
  return out;
}

std::optional<IpPrefix> FirstFreeBlock(const Pool& pool, uint64_t block_size,
                                       const std::set<IpPrefix>& skip,
                                       const std::set<IpAddr>& taken, uint64_t max_visits) {
  uint64_t visits = 0;
  for (const AddrRange& r : pool.ranges) {
    IpPrefix b = BlockOf(r.start, block_size);
    for (;;) {
      if (++visits > max_visits) return std::nullopt;
      if (skip.count(b) == 0) {
        IpAddr from = std::max(r.start, b.network());
        IpAddr to = std::min(r.end, b.Last());
        for (IpAddr ip = from;; ip = ip.Next()) {
          if (pool.Allocatable(ip) && taken.count(ip) == 0) return b;
          if (ip == to) break;
        }
      }
      if (!(b.Last() < r.end)) break;
      b = BlockOf(b.Last().Next(), block_size);
    }
  }
  return std::nullopt;
}

std::string BlockKeySegment(const IpPrefix& block) {
  return fmt::format("{}_{}", block.network().ToString(), block.length());
}

absl::StatusOr<IpPrefix> ParseBlockKeySegment(const std::string& segment) {
  size_t sep = segment.rfind('_');
  if (sep == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a block (addr_prefix)", segment));
  }
  std::string cidr = segment;
  cidr[sep] = '/';
  auto net = IpPrefix::ParseNetwork(cidr, /*strict=*/true);
  if (!net.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a block: {}", segment, std::string(net.status().message())));
  }
  return *net;
}

// Stores without blocks never get these calls (BlockSize() == 0).
absl::StatusOr<std::vector<BlockClaim>> IpamStore::ListBlocks(const std::string& network) {
  return absl::UnimplementedError(fmt::format("store of {} has no blocks", network));
}
absl::StatusOr<std::optional<BlockClaim>> IpamStore::ClaimBlock(const std::string& network,
                                                                const IpPrefix&) {
  return absl::UnimplementedError(fmt::format("store of {} has no blocks", network));
}
absl::StatusOr<bool> IpamStore::MarkBlock(const std::string& network, BlockClaim&, int64_t) {
  return absl::UnimplementedError(fmt::format("store of {} has no blocks", network));
}
absl::StatusOr<bool> IpamStore::ReleaseBlock(const std::string& network, const BlockClaim&) {
  return absl::UnimplementedError(fmt::format("store of {} has no blocks", network));
}

}  // namespace rdmashare::cni::ipam
