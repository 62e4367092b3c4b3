// libFuzzer target: JSON from outside the process through the bounded parser
// (common/json.h ParseJsonBounded) and on into the CNI network-config decoder (ParseCniJson +
// ParseNetConf, what both plugins run on stdin). Invariants: an accepted document nests at most
// the cap (measured without recursion) and the decoder's rejections are CNI codes 1, 6 or 7
// with a message; nothing crashes however deep the input (the seeds nest 100+ levels under
// runtimeConfig, prevResult, ipam and a conflist plugin).
#include <string>
#include <vector>

#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "common/json.h"
#include "fuzz/fuzz_check.h"

namespace {

// Deepest nesting of a parsed value, with an explicit stack.
size_t DepthOf(const nlohmann::json& root) {
  size_t max_depth = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> stack = {{&root, 0}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    max_depth = std::max(max_depth, d + 1);
    for (const auto& child : *v) stack.push_back({&child, d + 1});
  }
  return max_depth;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return rdmashare::cni::ParseNetConf(rdmashare::fuzz::AsString(data, size)).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare;
  std::string input = fuzz::AsString(data, size);
  JsonLimits limits;
  limits.max_depth = 16;
  absl::StatusOr<nlohmann::json> doc = ParseJsonBounded(input, "fuzz", limits);
  if (doc.ok()) {
    RS_FUZZ_CHECK(DepthOf(*doc) <= limits.max_depth);
    nlohmann::json copy = *doc;  // the copy that used to recurse without bound
    RS_FUZZ_CHECK(copy == *doc);
  } else {
    RS_FUZZ_CHECK(doc.status().code() == absl::StatusCode::kInvalidArgument);
    RS_FUZZ_CHECK(doc.status().message().rfind("fuzz: ", 0) == 0);
  }
  absl::StatusOr<cni::NetConf> conf = cni::ParseNetConf(input);
  if (!conf.ok()) {
    int code = cni::CniCode(conf.status());
    RS_FUZZ_CHECK(code == cni::kDecodeFailure || code == cni::kInvalidNetworkConfig ||
                  code == cni::kIncompatibleVersion);
    RS_FUZZ_CHECK(!conf.status().message().empty());
  } else {
    RS_FUZZ_CHECK(DepthOf(conf->ipam) <= cni::kMaxJsonDepth);
    RS_FUZZ_CHECK(DepthOf(conf->runtime_config) <= cni::kMaxJsonDepth);
  }
  return 0;
}
