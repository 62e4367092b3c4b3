// libFuzzer target: a CNI result (prevResult of DEL/CHECK, a delegated IPAM plugin's stdout),
// ParseResult and ParseDns. Invariants: rejections are CNI code 7 (or 6 for non-JSON in the
// target's own decode); an accepted result re-encodes for every supported version, and the
// 1.1.0 encoding parses back to the same value.
#include <string>

#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/result.h"
#include "fuzz/fuzz_check.h"

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(rdmashare::fuzz::AsString(data, size), nullptr, false);
  return !j.is_discarded() && rdmashare::cni::ParseResult(j).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  auto j = nlohmann::json::parse(rdmashare::fuzz::AsString(data, size), nullptr, false);
  if (j.is_discarded()) return 0;
  auto dns = ParseDns(j.is_object() && j.contains("dns") ? j["dns"] : j);
  if (!dns.ok()) RS_FUZZ_CHECK(CniCode(dns.status()) == kInvalidNetworkConfig);
  auto result = ParseResult(j);
  if (!result.ok()) {
    RS_FUZZ_CHECK(CniCode(result.status()) == kInvalidNetworkConfig);
    RS_FUZZ_CHECK(!result.status().message().empty());
    return 0;
  }
  for (const char* v : kSupportedVersions) {
    std::string text = EncodeResult(*result, v);
    auto back = nlohmann::json::parse(text, nullptr, false);
    RS_FUZZ_CHECK(back.is_object());
    RS_FUZZ_CHECK(ParseResult(back).ok());
  }
  auto back = ParseResult(ResultToJson(*result, kLatestVersion));
  RS_FUZZ_CHECK(back.ok() && *back == *result);
  return 0;
}
