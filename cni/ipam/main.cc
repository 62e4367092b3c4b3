// rdmashare-ipam: the standalone CNI IPAM plugin (usable by any main plugin, e.g. the reference
// macvlan, through "ipam": {"type": "rdmashare-ipam", ...}).
//
// The only place that reads the environment. stdout carries exactly one JSON document (the
// result, the version info or the error); logs go to stderr or to ipam.logFile. Exit status 0
// on success, 1 on error.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cni/ipam/config.h"
#include "cni/ipam/ipam.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/request.h"
#include "cni/protocol/result.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace rdmashare::cni::ipam {
namespace {

// Logs go to stderr, or to ipam.logFile when set (never to stdout, which carries the answer),
// at ipam.logLevel (default warn) either way.
void SetupIpamLogging(const nlohmann::json& ipam) {
  PluginLogOptions options;
  options.program = "rdmashare-ipam";
  std::string level = "warn";
  if (ipam.is_object()) {
    if (auto it = ipam.find("logFile"); it != ipam.end() && it->is_string()) options.file = *it;
    if (auto it = ipam.find("logLevel"); it != ipam.end() && it->is_string()) level = *it;
  }
  options.file_level = level;
  options.stderr_level = level;
  SetupPluginLogging(options);
}

absl::StatusOr<std::string> Run(const CniRequest& req) {
  if (req.command == kCmdVersion) return EncodeVersionInfo(VersionFromStdin(req.stdin_data));
  ASSIGN_OR_RETURN(NetConf conf, ParseNetConf(req.stdin_data));
  SetupIpamLogging(conf.ipam);
  RETURN_IF_ERROR(ValidateCommandForVersion(req.command, conf.cni_version));
  if (!conf.ipam.is_object()) {
    return CniError(kInvalidNetworkConfig, "network config has no \"ipam\" object");
  }
  IpamArgs args;
  args.container_id = req.container_id;
  args.ifname = req.ifname;
  args.netns = req.netns;
  args.network_name = conf.name;
  args.ipam_conf = conf.ipam;
  args.runtime_config = conf.runtime_config;
  args.args = conf.args;
  ASSIGN_OR_RETURN(args.cni_args, ParseCniArgs(req.args));
  spdlog::info("command={} network={} container={} ifname={}", req.command, conf.name,
               req.container_id, req.ifname);

  if (req.command == kCmdAdd) {
    ASSIGN_OR_RETURN(Result result, IpamAdd(args));
    return EncodeResult(result, conf.cni_version);
  }
  if (req.command == kCmdDel) {
    RETURN_IF_ERROR(IpamDel(args));
    return std::string();
  }
  if (req.command == kCmdCheck) {
    if (!conf.prev_result.has_value()) {
      return CniError(kInvalidNetworkConfig, "CHECK needs prevResult in the network config");
    }
    ASSIGN_OR_RETURN(Result prev, ParseResult(*conf.prev_result));
    RETURN_IF_ERROR(IpamCheck(args, prev));
    return std::string();
  }
  if (req.command == kCmdGc) {
    ASSIGN_OR_RETURN(std::vector<Attachment> valid, ParseValidAttachments(conf));
    RETURN_IF_ERROR(IpamGc(args, valid));
    return std::string();
  }
  // STATUS (ParseRequest accepts nothing else).
  RETURN_IF_ERROR(IpamStatus(args));
  return std::string();
}

int Main() {
  SetupIpamLogging(nlohmann::json());
  absl::StatusOr<std::string> input = ReadStdin(std::cin);
  std::string version = input.ok() ? VersionFromStdin(*input) : kLatestVersion;
  absl::StatusOr<std::string> out;
  try {
    if (!input.ok()) {
      out = input.status();
    } else {
      auto req = ParseRequest(EnvironToMap(environ), *std::move(input));
      out = req.ok() ? Run(*req) : req.status();
    }
  } catch (const std::exception& e) {
    out = CniError(kIoFailure, std::string("rdmashare-ipam: unexpected exception: ") + e.what());
  }
  if (!out.ok()) {
    spdlog::error("failed: code={} {}", CniCode(out.status()), out.status().message());
    std::cout << EncodeError(out.status(), version) << std::endl;
    return 1;
  }
  if (!out->empty()) std::cout << *out << std::endl;
  return 0;
}

}  // namespace
}  // namespace rdmashare::cni::ipam

int main(int argc, char** argv) {
  try {
    std::ios::sync_with_stdio(false);
    std::string usage = rdmashare::cni::PluginUsage(
        std::vector<std::string>(argv + 1, argv + argc), "rdmashare-ipam",
        "IP address management for the rail networks (local store, or etcd for pools that span "
        "nodes)");
    if (!usage.empty()) {
      std::cout << usage;
      return 0;
    }
    return rdmashare::cni::ipam::Main();
  } catch (...) {
    // Main answers the request's exceptions as CNI errors; what gets here is an allocation
    // failure around it, where building JSON could fail again.
    std::fputs("rdmashare-ipam: out of memory\n", stderr);
    return 1;
  }
}
