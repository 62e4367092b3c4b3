#include "cni/ipam/ipam.h"

#include <chrono>

#include "cni/ipam/allocator.h"
#include "cni/ipam/config.h"
#include "cni/ipam/local_store.h"
#include "common/status_macros.h"

namespace rdmashare::cni::ipam {
namespace {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs `fn(allocator, conf)` over a LocalStore at the config's dataDir.
template <typename Fn>
auto WithAllocator(const IpamArgs& args, Fn fn)
    -> decltype(fn(std::declval<Allocator&>(), std::declval<IpamConfig&>())) {
  ASSIGN_OR_RETURN(IpamConfig conf, ParseIpamConfig(args.ipam_conf));
  LocalStore store(conf.data_dir, conf.fsync);
  Allocator allocator(&store, UnixNow);
  return fn(allocator, conf);
}

}  // namespace

absl::StatusOr<Result> IpamAdd(const IpamArgs& args) {
  return WithAllocator(args, [&](Allocator& a, IpamConfig& c) { return a.Add(args, c); });
}

absl::Status IpamDel(const IpamArgs& args) {
  return WithAllocator(args, [&](Allocator& a, IpamConfig& c) { return a.Del(args, c); });
}

absl::Status IpamCheck(const IpamArgs& args, const Result& prev) {
  return WithAllocator(args, [&](Allocator& a, IpamConfig& c) { return a.Check(args, c, prev); });
}

absl::Status IpamGc(const IpamArgs& args, const std::vector<Attachment>& valid) {
  return WithAllocator(args, [&](Allocator& a, IpamConfig& c) { return a.Gc(args, c, valid); });
}

absl::Status IpamQuarantine(const IpamArgs& args, const std::string& ip) {
  return WithAllocator(args,
                       [&](Allocator& a, IpamConfig& c) { return a.Quarantine(args, c, ip); });
}

absl::Status IpamStatus(const IpamArgs& args) {
  return WithAllocator(args, [&](Allocator& a, IpamConfig& c) { return a.Status(args, c); });
}

}  // namespace rdmashare::cni::ipam
