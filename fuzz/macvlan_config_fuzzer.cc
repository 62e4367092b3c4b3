// libFuzzer target: the rdmashare-macvlan network configuration (stdin), through ParseNetConf
// and ParseMacvlanConfig, with CNI_ARGS (MAC=) taken from the first line. Invariants: rejections
// carry CNI code 7 (config), 4 (CNI_ARGS), 6 (not JSON) or 1 (version) with a message; an
// accepted config has a known macvlan mode, a non-negative MTU and probes within their documented
// bounds, and its route table resolves or is rejected with code 7.
#include <string>

#include "cni/macvlan/config.h"
#include "cni/macvlan/routing_plan.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/request.h"
#include "fuzz/fuzz_check.h"

namespace {

absl::Status Parse(const std::string& input, rdmashare::cni::macvlan::MacvlanConfig* out) {
  using namespace rdmashare::cni;
  auto conf = ParseNetConf(input);
  if (!conf.ok()) return conf.status();
  std::map<std::string, std::string> args;
  if (auto a = ParseCniArgs(input.substr(0, input.find('\n'))); a.ok()) args = *a;
  auto mc = macvlan::ParseMacvlanConfig(*conf, args, "/fuzz-sys");
  if (!mc.ok()) return mc.status();
  if (out != nullptr) *out = *mc;
  return absl::OkStatus();
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return Parse(rdmashare::fuzz::AsString(data, size), nullptr).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  macvlan::MacvlanConfig mc;
  absl::Status st = Parse(rdmashare::fuzz::AsString(data, size), &mc);
  if (!st.ok()) {
    int code = CniCode(st);
    RS_FUZZ_CHECK(code == kInvalidNetworkConfig || code == kInvalidEnv || code == kDecodeFailure ||
                  code == kIncompatibleVersion);
    RS_FUZZ_CHECK(!st.message().empty());
    return 0;
  }
  RS_FUZZ_CHECK(mc.mode == "bridge" || mc.mode == "private" || mc.mode == "vepa" ||
                mc.mode == "passthru");
  RS_FUZZ_CHECK(mc.mtu == 0 || (mc.mtu >= 68 && mc.mtu <= 65535));
  RS_FUZZ_CHECK(mc.probe_count >= 1 && mc.probe_count <= 10);
  RS_FUZZ_CHECK(mc.probe_interval_ms >= 10 && mc.probe_interval_ms <= 1000);
  for (const char* ifname : {"net1", "net8", "eth0", "net999"}) {
    auto table = macvlan::ResolveRouteTable(mc, ifname);
    if (!table.ok()) RS_FUZZ_CHECK(CniCode(table.status()) == kInvalidNetworkConfig);
  }
  return 0;
}
