#include "deviceplugin/flags.h"

#include <map>

#include "common/absl_format.h"
#include "deviceplugin/http_message.h"
#include "fmt/format.h"

namespace rdmashare::deviceplugin {

std::string DpUsage() {
  return R"(Usage: rdmashare-dp [flags]

Kubelet device plugin for shared RDMA HCAs (RoCE / InfiniBand), config.json compatible with
k8s-rdma-shared-dev-plugin.

Flags:
  --config FILE        config.json (default /k8s-rdma-shared-dev-plugin/config.json);
                       -config-file FILE is accepted too
  --sysfs-root DIR     sysfs root (default /sys)
  --dev-root DIR       where this process finds /dev/infiniband nodes (default /dev)
  --host-dev-root DIR  /dev as the container runtime on the host sees it; DeviceSpec host
                       paths are built from it (default: the value of --dev-root)
  --kubelet-dir DIR    kubelet state dir holding device-plugins/ and plugins_registry/
                       (default /var/lib/kubelet)
  --cli-host-path F    host path of the rdmashare CLI, mounted read-only at
                       /usr/local/bin/rdmashare for resources with "mountCli": true
                       (default /opt/cni/bin/rdmashare)
  --cdi                write one CDI spec per resource and answer Allocate with CDI device
                       names instead of device nodes (Go: -use-cdi); --cdi=false turns it off
  --cdi-dir DIR        where the CDI specs go (default /var/run/cdi)
  --metrics-addr A     serve /metrics (Prometheus), /healthz and /readyz on host:port A
                       (e.g. 127.0.0.1:9646, :9646 for every interface); default: off
  --log-level LEVEL    trace, debug, info, warn, error, off (default info)
  --validate           check the config against this node, print the result and exit
  --version            print the version and exit
  --help               this text
)";
}

absl::StatusOr<DpFlags> ParseDpFlags(const std::vector<std::string>& args) {
  DpFlags f;
  enum Kind { kConfig, kSys, kDev, kHostDev, kKubelet, kLog, kCli, kCdiDir, kMetrics };
  static const std::map<std::string, Kind> kValued = {
      {"config", kConfig},       {"config-file", kConfig},    {"sysfs-root", kSys},
      {"dev-root", kDev},        {"host-dev-root", kHostDev}, {"kubelet-dir", kKubelet},
      {"log-level", kLog},       {"cli-host-path", kCli},     {"cdi-dir", kCdiDir},
      {"metrics-addr", kMetrics}};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 2 || a[0] != '-') {
      return absl::InvalidArgumentError(fmt::format("unexpected argument '{}'", a));
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "cdi" || name == "use-cdi") {
      // A boolean like Go's flag package: -use-cdi, -use-cdi=true, --cdi=false.
      if (!has_value || value == "true" || value == "1") {
        f.cdi = true;
      } else if (value == "false" || value == "0") {
        f.cdi = false;
      } else {
        return absl::InvalidArgumentError(
            fmt::format("flag --{}: '{}' is not a boolean (true or false)", name, value));
      }
      continue;
    }
    if (name == "validate" || name == "version" || name == "help" || name == "h") {
      if (has_value) {
        return absl::InvalidArgumentError(fmt::format("flag --{} takes no value", name));
      }
      if (name == "validate") f.validate = true;
      if (name == "version") f.version = true;
      if (name == "help" || name == "h") f.help = true;
      continue;
    }
    auto it = kValued.find(name);
    if (it == kValued.end()) {
      return absl::InvalidArgumentError(fmt::format("unknown flag '{}' (see --help)", a));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(fmt::format("flag --{} needs a value", name));
      }
      value = args[++i];
    }
    if (value.empty()) {
      return absl::InvalidArgumentError(fmt::format("flag --{}: empty value", name));
    }
    // Roots are handed to gRPC (unix socket addresses), inotify and to kubelet in DeviceSpecs:
    // a relative one would resolve against whatever the working directory is, so refuse it.
    if ((it->second == kSys || it->second == kDev || it->second == kHostDev ||
         it->second == kKubelet) &&
        value[0] != '/') {
      return absl::InvalidArgumentError(
          fmt::format("flag --{}: '{}' is not an absolute path", name, value));
    }
    switch (it->second) {
      case kConfig:
        f.config_path = value;
        break;
      case kSys:
        f.paths.sys_root = value;
        break;
      case kDev:
        f.paths.dev_root = value;
        break;
      case kHostDev:
        f.paths.host_dev_root = value;
        f.host_dev_root_set = true;
        break;
      case kKubelet:
        f.paths.kubelet_dir = value;
        break;
      case kLog:
        f.log_level = value;
        break;
      case kCli:
        if (value[0] != '/') {
          return absl::InvalidArgumentError(
              fmt::format("flag --cli-host-path: '{}' is not an absolute path", value));
        }
        f.cli_host_path = value;
        break;
      case kCdiDir:
        if (value[0] != '/') {
          return absl::InvalidArgumentError(
              fmt::format("flag --cdi-dir: '{}' is not an absolute path", value));
        }
        f.cdi_dir = value;
        break;
      case kMetrics: {
        auto hp = ParseHostPort(value);
        if (!hp.ok()) {
          return absl::InvalidArgumentError(
              fmt::format("flag --metrics-addr: {}", hp.status().message()));
        }
        f.metrics_addr = value;
        break;
      }
    }
  }
  if (!f.host_dev_root_set) f.paths.host_dev_root = f.paths.dev_root;
  return f;
}

}  // namespace rdmashare::deviceplugin
