// libFuzzer target: the "ipam" object of rdmashare-ipam (both forms, store section, routes,
// requested IPs from runtimeConfig/args/CNI_ARGS). Input: the JSON object; its "runtimeConfig",
// "args" and "cniArgs" (a CNI_ARGS string) members, when present, feed RequestedIps. resolvConf
// and nodeNameFile are dropped so fuzz input never names files to read. Invariants: rejections
// are CNI code 7 (config) or 4 (CNI_ARGS) with a message; an accepted config has at least one
// pool, every range inside its subnet with start <= end, one family per pool, and no pool
// overlapping another.
#include <string>

#include "cni/ipam/allocator.h"
#include "cni/ipam/config.h"
#include "cni/ipam/ipam.h"
#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/ip.h"
#include "fuzz/fuzz_check.h"

namespace {

using nlohmann::json;

json Decode(const uint8_t* data, size_t size) {
  json j = json::parse(rdmashare::fuzz::AsString(data, size), nullptr, false);
  if (j.is_object()) {
    j.erase("resolvConf");
    j.erase("nodeNameFile");
  }
  return j;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  json j = Decode(data, size);
  return !j.is_discarded() && rdmashare::cni::ipam::ParseIpamConfig(j, "/fuzz-data").ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  json j = Decode(data, size);
  if (j.is_discarded()) return 0;
  auto conf = ipam::ParseIpamConfig(j, "/fuzz-data");
  if (!conf.ok()) {
    RS_FUZZ_CHECK(CniCode(conf.status()) == kInvalidNetworkConfig);
    RS_FUZZ_CHECK(!conf.status().message().empty());
    return 0;
  }
  RS_FUZZ_CHECK(!conf->pools.empty());
  for (const ipam::Pool& pool : conf->pools) {
    RS_FUZZ_CHECK(!pool.ranges.empty());
    for (const ipam::AddrRange& r : pool.ranges) {
      RS_FUZZ_CHECK(r.subnet.family() == pool.family());
      RS_FUZZ_CHECK(r.start <= r.end);
      RS_FUZZ_CHECK(r.subnet.Contains(r.start) && r.subnet.Contains(r.end));
      RS_FUZZ_CHECK(pool.RangeOf(r.start) != nullptr);
    }
  }
  ipam::IpamArgs a;
  a.container_id = "fuzz";
  a.ifname = "net1";
  a.network_name = "fuzz";
  a.ipam_conf = j;
  if (auto it = j.find("runtimeConfig"); it != j.end() && it->is_object()) a.runtime_config = *it;
  if (auto it = j.find("args"); it != j.end() && it->is_object()) a.args = *it;
  if (auto it = j.find("cniArgs"); it != j.end() && it->is_string()) {
    auto parsed = ParseCniArgs(it->get<std::string>());
    if (parsed.ok()) a.cni_args = *parsed;
  }
  auto ips = ipam::RequestedIps(a);
  if (!ips.ok()) {
    int code = CniCode(ips.status());
    RS_FUZZ_CHECK(code == kInvalidNetworkConfig || code == kInvalidEnv);
  } else {
    for (const rdmashare::IpAddr& ip : *ips) RS_FUZZ_CHECK(ip.valid());
  }
  return 0;
}
