// libFuzzer target: the device plugin's config.json (ParseConfig), which comes from a ConfigMap
// anyone with edit rights on the namespace controls. Invariants: a rejection is InvalidArgument
// with a message; an accepted config has unique, non-empty resource names and an
// rdmaHcaMax within 0..10000, and parsing is deterministic.
#include <set>
#include <string>
#include <vector>

#include "deviceplugin/config.h"
#include "fuzz/fuzz_check.h"

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return rdmashare::deviceplugin::ParseConfig(rdmashare::fuzz::AsString(data, size), nullptr).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::deviceplugin;
  std::string input = rdmashare::fuzz::AsString(data, size);
  std::vector<std::string> warnings;
  auto conf = ParseConfig(input, &warnings);
  if (!conf.ok()) {
    RS_FUZZ_CHECK(conf.status().code() == absl::StatusCode::kInvalidArgument);
    RS_FUZZ_CHECK(!conf.status().message().empty());
    return 0;
  }
  std::set<std::string> names;
  for (const ResourceConfig& r : conf->resources) {
    RS_FUZZ_CHECK(!r.resource_name.empty());
    RS_FUZZ_CHECK(r.rdma_hca_max >= 0 && r.rdma_hca_max <= 10000);
    RS_FUZZ_CHECK(names.insert(r.FullName()).second);
  }
  RS_FUZZ_CHECK(conf->periodic_update_interval_s >= 0);
  auto again = ParseConfig(input, nullptr);
  RS_FUZZ_CHECK(again.ok() && *again == *conf);
  return 0;
}
