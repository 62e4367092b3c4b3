// libFuzzer target: address, subnet and range syntax. Input lines: line 1 a subnet, the others
// "ips" entries ("a" or "a-b"), fed to the pool form of the IPAM config; every line also goes
// through IpAddr::Parse, IpPrefix::ParseNetwork (strict and lenient) and IpPrefix::Parse (the
// "addr/len" interface form). Invariants: parsed addresses and prefixes print canonically and
// parse back to themselves; a strict network has no host bits; the byte form round-trips;
// accepted pools only hold ranges inside the subnet.
#include <string>
#include <vector>

#include "cni/ipam/config.h"
#include "cni/protocol/error.h"
#include "common/ip.h"
#include "fuzz/fuzz_check.h"

namespace {

using nlohmann::json;

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size() && out.size() < 64) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

absl::StatusOr<rdmashare::cni::ipam::IpamConfig> PoolOf(const std::vector<std::string>& lines) {
  json ips = json::array();
  for (size_t i = 1; i < lines.size(); ++i) ips.push_back(lines[i]);
  json conf = {{"type", "rdmashare-ipam"}, {"subnet", lines[0]}, {"ips", ips}};
  // Strings that are not valid UTF-8 cannot come from a JSON document.
  try {
    (void)conf.dump();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError("not UTF-8");
  }
  return rdmashare::cni::ipam::ParseIpamConfig(conf, "/fuzz-data");
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return PoolOf(SplitLines(rdmashare::fuzz::AsString(data, size))).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  using rdmashare::IpAddr;
  using rdmashare::IpPrefix;
  std::vector<std::string> lines = SplitLines(rdmashare::fuzz::AsString(data, size));
  for (const std::string& line : lines) {
    if (auto ip = IpAddr::Parse(line); ip.ok()) {
      auto back = IpAddr::Parse(ip->ToString());
      RS_FUZZ_CHECK(back.ok() && *back == *ip);
      RS_FUZZ_CHECK(ip->Next().Prev() == *ip);
      RS_FUZZ_CHECK(IpAddr::FromBytes(ip->family(), ip->bytes().data()) == *ip);
    }
    for (bool strict : {true, false}) {
      auto net = IpPrefix::ParseNetwork(line, strict);
      if (!net.ok()) continue;
      RS_FUZZ_CHECK(net->length() >= 0 && net->length() <= net->network().bits());
      RS_FUZZ_CHECK(net->IsNetwork());
      RS_FUZZ_CHECK(net->Contains(net->network()) && net->Contains(net->Last()));
      auto back = IpPrefix::ParseNetwork(net->ToString(), true);
      RS_FUZZ_CHECK(back.ok() && *back == *net);
    }
    if (auto cidr = IpPrefix::Parse(line); cidr.ok()) {
      auto back = IpPrefix::Parse(cidr->ToString());
      RS_FUZZ_CHECK(back.ok() && *back == *cidr);
      RS_FUZZ_CHECK(IpAddr::Parse(cidr->addr().ToString()).ok());
      RS_FUZZ_CHECK(cidr->Contains(cidr->addr()));
    }
  }
  auto conf = PoolOf(lines);
  if (!conf.ok()) {
    RS_FUZZ_CHECK(!conf.status().message().empty());
    return 0;
  }
  for (const ipam::Pool& pool : conf->pools) {
    for (const ipam::AddrRange& r : pool.ranges) {
      RS_FUZZ_CHECK(r.start <= r.end && r.subnet.Contains(r.start) && r.subnet.Contains(r.end));
    }
  }
  return 0;
}
