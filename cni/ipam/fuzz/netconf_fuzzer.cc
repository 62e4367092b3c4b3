// libFuzzer entry point over every parser of untrusted CNI input: the stdin network config,
// its prevResult and GC attachments, the ipam section (both forms), CNI_ARGS and the requested
// IPs, and host-local lease records. Input layout: the bytes are stdin; the first line (up to
// '\n', when present) is also used as CNI_ARGS and as a lease record.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cni/ipam/allocator.h"
#include "cni/ipam/config.h"
#include "cni/ipam/local_store.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/request.h"
#include "cni/protocol/result.h"

namespace {

// Crashes (so the fuzzer reports it) when an error carries no meaningful CNI code.
void CheckCode(const absl::Status& st) {
  if (st.ok()) return;
  int code = rdmashare::cni::CniCode(st);
  if (code <= 0 || code == 999) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  std::string input(reinterpret_cast<const char*>(data), size);
  std::string first_line = input.substr(0, input.find('\n'));

  auto args = ParseCniArgs(first_line);
  CheckCode(args.status());
  ipam::Reservation r = ipam::ParseRecord("10.0.0.1", first_line, "/fuzz");
  if (r.error.empty() && r.container_id.empty()) __builtin_trap();

  (void)VersionFromStdin(input);
  auto conf = ParseNetConf(input);
  CheckCode(conf.status());
  if (!conf.ok()) return 0;
  if (conf->prev_result.has_value()) CheckCode(ParseResult(*conf->prev_result).status());
  CheckCode(ParseValidAttachments(*conf).status());
  if (conf->ipam.is_object()) {
    nlohmann::json ipam_conf = conf->ipam;
    ipam_conf.erase("resolvConf");  // never read arbitrary files named by fuzz input
    auto parsed = ipam::ParseIpamConfig(ipam_conf);
    CheckCode(parsed.status());
    ipam::IpamArgs a;
    a.runtime_config = conf->runtime_config;
    a.args = conf->args;
    if (args.ok()) a.cni_args = *args;
    CheckCode(ipam::RequestedIps(a).status());
  }
  return 0;
}
