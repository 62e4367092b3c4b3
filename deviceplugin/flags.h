// Command-line flags of rdmashare-dp.
//
// Accepts GNU style (--config=F, --config F) and Go style (-config F, -config-file=F), since
// the Go k8s-rdma-shared-dev-plugin's DaemonSets pass `-config-file`. Pure function; no I/O.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/host_paths.h"

namespace rdmashare::deviceplugin {

struct DpFlags {
  std::string config_path = "/k8s-rdma-shared-dev-plugin/config.json";
  HostPaths paths;
  // True when --host-dev-root was given; otherwise it follows --dev-root.
  bool host_dev_root_set = false;
  std::string log_level = "info";
  // Host path of the rdmashare CLI, mounted into containers of resources with "mountCli".
  std::string cli_host_path = "/opt/cni/bin/rdmashare";
  // --cdi (Go: -use-cdi): write CDI specs and answer Allocate with CDI device names.
  bool cdi = false;
  std::string cdi_dir = "/var/run/cdi";
  // --metrics-addr host:port for /metrics, /healthz, /readyz; empty = no HTTP endpoint.
  std::string metrics_addr;
  bool validate = false;
  bool version = false;
  bool help = false;

  bool operator==(const DpFlags& o) const {
    return config_path == o.config_path && paths == o.paths &&
           host_dev_root_set == o.host_dev_root_set && log_level == o.log_level &&
           cli_host_path == o.cli_host_path && cdi == o.cdi && cdi_dir == o.cdi_dir &&
           metrics_addr == o.metrics_addr && validate == o.validate && version == o.version &&
           help == o.help;
  }
};

// Parses argv[1..]. InvalidArgument names the offending flag.
absl::StatusOr<DpFlags> ParseDpFlags(const std::vector<std::string>& args);

// The --help text.
std::string DpUsage();

}  // namespace rdmashare::deviceplugin
