// `rdmashare doctor`: the walkthrough's host checks (declared in cli.h).
#include <sys/stat.h>

#include <algorithm>
#include <sstream>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "rdma/gid_table.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

CheckResult Make(std::string check, std::string subject, CheckLevel level, std::string detail,
                 std::string fix = "") {
  return CheckResult{std::move(check), std::move(subject), level, std::move(detail),
                     std::move(fix)};
}

// True when <proc>/modules lists `module` (first column).
bool ModuleLoaded(const HostPaths& paths, const std::string& module) {
  absl::StatusOr<std::string> text = ReadFile(JoinPath(paths.proc_root, "modules"), 16 << 20);
  if (!text.ok()) return false;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.compare(0, module.size() + 1, module + " ") == 0) return true;
  }
  return false;
}

// Kubelet is there when it serves device-plugins/kubelet.sock (Register) or has created
// plugins_registry/ (its plugin watcher); rdmashare-dp uses the watcher when the latter exists.
CheckResult CheckKubelet(const HostPaths& paths) {
  std::string dp_dir = JoinPath(paths.kubelet_dir, "device-plugins");
  std::string registry = JoinPath(paths.kubelet_dir, "plugins_registry");
  std::string sock = JoinPath(dp_dir, "kubelet.sock");
  struct stat st;
  bool has_registry = ::stat(registry.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  bool has_sock = ::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  bool has_dp_dir = ::stat(dp_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string fix = "run on a Kubernetes node with kubelet running, or pass --kubelet-dir";
  if (!has_dp_dir) return Make("kubelet", "node", CheckLevel::kFail, dp_dir + " missing", fix);
  if (has_registry) {
    return Make("kubelet", "node", CheckLevel::kOk,
                fmt::format("{} present: rdmashare-dp registers through kubelet's plugin watcher",
                            registry));
  }
  if (has_sock) {
    return Make("kubelet", "node", CheckLevel::kOk,
                fmt::format("{} present: rdmashare-dp registers there", sock));
  }
  return Make("kubelet", "node", CheckLevel::kFail,
              fmt::format("no kubelet.sock socket in {} and no {}: kubelet is not running here",
                          dp_dir, registry),
              fix);
}

void CheckPorts(const HostPaths& paths, const rdma::RdmaDevice& dev,
                std::vector<CheckResult>& out) {
  if (dev.ports.empty()) {
    out.push_back(Make("port-state", dev.ibdev, CheckLevel::kFail, "no ports in sysfs",
                       "reload the driver: modprobe -r mlx5_ib && modprobe mlx5_ib"));
  }
  std::string netdev = dev.netdevs.empty() ? "<netdev>" : dev.netdevs.front();
  for (const rdma::RdmaPort& port : dev.ports) {
    std::string subject = fmt::format("{}/{}", dev.ibdev, port.number);
    if (port.state == "ACTIVE") {
      out.push_back(Make("port-state", subject, CheckLevel::kOk,
                         fmt::format("ACTIVE ({})", port.phys_state)));
    } else {
      out.push_back(Make("port-state", subject, CheckLevel::kFail,
                         fmt::format("{} ({})", port.state, port.phys_state),
                         fmt::format("bring the link up: ip link set {} up; check cable and "
                                     "switch port (rdma link show {})",
                                     netdev, subject)));
    }
    switch (port.link_layer) {
      case rdma::LinkLayer::kEthernet:
        out.push_back(Make("link-layer", subject, CheckLevel::kOk, "Ethernet (RoCE)"));
        break;
      case rdma::LinkLayer::kInfiniBand:
        out.push_back(Make(
            "link-layer", subject, CheckLevel::kFail, "InfiniBand: macvlan cannot use IPoIB ports",
            fmt::format("switch the port to Ethernet: mlxconfig -d {} set LINK_TYPE_P{}=2, "
                        "then reboot",
                        dev.pci_address.empty() ? dev.ibdev : dev.pci_address, port.number)));
        break;
      case rdma::LinkLayer::kUnknown:
        out.push_back(Make("link-layer", subject, CheckLevel::kFail, "unknown link layer",
                           "check the driver: cat /sys/class/infiniband/" + dev.ibdev + "/ports/" +
                               std::to_string(port.number) + "/link_layer"));
        break;
    }
    rdma::GidRoom room = rdma::ReadGidRoom(paths.sys_root, dev.ibdev, port.number);
    if (room.pods_fit() < 1) {
      out.push_back(Make("gid-room", subject, CheckLevel::kFail, rdma::DescribeGidRoom(room),
                         "GID table full: remove unused addresses or pods on " + netdev));
    } else {
      out.push_back(Make("gid-room", subject, CheckLevel::kOk, rdma::DescribeGidRoom(room)));
    }
  }
}

}  // namespace

const char* CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk:
      return "ok";
    case CheckLevel::kWarn:
      return "warn";
    case CheckLevel::kFail:
      return "FAIL";
  }
  return "?";
}

absl::StatusOr<std::vector<CheckResult>> RunDoctorChecks(const HostPaths& paths,
                                                         rdma::NetnsModeReader& netns_reader) {
  rdma::SysfsDeviceScanner scanner(paths);
  ASSIGN_OR_RETURN(rdma::NodeInventory inv, scanner.Scan());
  std::vector<CheckResult> out;

  if (inv.devices.empty()) {
    out.push_back(Make("rdma-devices", "node", CheckLevel::kFail,
                       "no RDMA devices under " + JoinPath(paths.sys_root, "class/infiniband"),
                       "load the RDMA driver: modprobe mlx5_ib (or install MLNX_OFED/DOCA-OFED)"));
  } else {
    out.push_back(Make("rdma-devices", "node", CheckLevel::kOk,
                       fmt::format("{} RDMA devices", inv.devices.size())));
  }
  for (const std::string& warning : scanner.Warnings()) {
    out.push_back(Make("rdma-devices", "scan", CheckLevel::kWarn, warning,
                       "inspect the sysfs entry named above"));
  }
  for (const rdma::RdmaDevice& dev : inv.devices) {
    if (!dev.usable()) {
      out.push_back(
          Make("rdma-devices", dev.ibdev, CheckLevel::kFail,
               dev.uverbs ? "verbs node " + dev.uverbs->dev_path + " missing" : "no uverbs device",
               "load the verbs module: modprobe ib_uverbs (and check /dev/infiniband)"));
    } else {
      out.push_back(
          Make("rdma-devices", dev.ibdev, CheckLevel::kOk,
               fmt::format("{} pci={} uverbs={}", dev.ibdev,
                           dev.pci_address.empty() ? "-" : dev.pci_address, dev.uverbs->name)));
    }
    CheckPorts(paths, dev, out);
  }

  absl::StatusOr<rdma::NetnsMode> mode = netns_reader.Read();
  if (!mode.ok()) {
    out.push_back(Make("netns-mode", "node", CheckLevel::kWarn,
                       fmt::format("unknown: {}", mode.status().message()),
                       "check by hand: rdma system (must say netns shared)"));
  } else if (*mode == rdma::NetnsMode::kShared) {
    out.push_back(Make("netns-mode", "node", CheckLevel::kOk, "shared"));
  } else if (*mode == rdma::NetnsMode::kExclusive) {
    out.push_back(Make("netns-mode", "node", CheckLevel::kFail, "exclusive",
                       "rdma system set netns shared (persist: options ib_core netns_mode=1)"));
  } else {
    out.push_back(Make("netns-mode", "node", CheckLevel::kWarn,
                       "unknown (the kernel has no RDMA netlink)",
                       "load ib_core (kernel >= 5.2) and check: rdma system"));
  }

  if (ModuleLoaded(paths, "nvidia_peermem")) {
    out.push_back(Make("gpudirect", "node", CheckLevel::kOk, "nvidia_peermem loaded"));
  } else {
    out.push_back(Make("gpudirect", "node", CheckLevel::kWarn,
                       "nvidia_peermem not in " + JoinPath(paths.proc_root, "modules") +
                           " (fine for DMA-BUF setups)",
                       "modprobe nvidia_peermem (gpu-operator: driver.rdma.enabled=true)"));
  }

  if (inv.rdma_cm && inv.rdma_cm->present) {
    out.push_back(Make("rdma-cm", "node", CheckLevel::kOk, inv.rdma_cm->dev_path));
  } else {
    out.push_back(Make("rdma-cm", "node", CheckLevel::kFail,
                       inv.rdma_cm ? inv.rdma_cm->dev_path + " missing" : "no rdma_cm device",
                       "modprobe rdma_ucm"));
  }

  for (const rdma::RdmaDevice& dev : inv.devices) {
    for (const std::string& ifname : dev.netdevs) {
      std::string dir = JoinPath(paths.sys_root, "class/net/" + ifname);
      absl::StatusOr<std::string> state = ReadAttr(JoinPath(dir, "operstate"));
      absl::StatusOr<int64_t> mtu = ReadIntAttr(JoinPath(dir, "mtu"));
      std::string mtu_text = mtu.ok() ? std::to_string(*mtu) : "?";
      if (state.ok() && *state == "up") {
        out.push_back(Make("netdev", ifname, CheckLevel::kOk, "up mtu " + mtu_text));
      } else {
        out.push_back(Make("netdev", ifname, CheckLevel::kFail,
                           fmt::format("{} mtu {}", state.ok() ? *state : "unreadable", mtu_text),
                           fmt::format("ip link set {} up (and check its cable)", ifname)));
      }
    }
  }

  out.push_back(CheckKubelet(paths));
  return out;
}

int DoctorExitCode(const std::vector<CheckResult>& results) {
  for (const CheckResult& r : results) {
    if (r.level == CheckLevel::kFail) return kExitFailure;
  }
  return kExitOk;
}

void PrintDoctorTable(const std::vector<CheckResult>& results, std::ostream& out) {
  size_t w_check = 5, w_subject = 7;
  for (const CheckResult& r : results) {
    w_check = std::max(w_check, r.check.size());
    w_subject = std::max(w_subject, r.subject.size());
  }
  out << fmt::format("{:<4}  {:<{}}  {:<{}}  {}\n", "", "CHECK", w_check, "SUBJECT", w_subject,
                     "DETAIL");
  int fails = 0, warns = 0;
  for (const CheckResult& r : results) {
    out << fmt::format("{:<4}  {:<{}}  {:<{}}  {}\n", CheckLevelName(r.level), r.check, w_check,
                       r.subject, w_subject, r.detail);
    if (r.level != CheckLevel::kOk && !r.fix.empty()) {
      out << fmt::format("{:<4}  {:<{}}  {:<{}}  fix: {}\n", "", "", w_check, "", w_subject, r.fix);
    }
    if (r.level == CheckLevel::kFail) ++fails;
    if (r.level == CheckLevel::kWarn) ++warns;
  }
  out << fmt::format("{} checks: {} failed, {} warnings\n", results.size(), fails, warns);
}

nlohmann::json DoctorJson(const std::vector<CheckResult>& results) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& r : results) {
    checks.push_back({{"check", r.check},
                      {"subject", r.subject},
                      {"level", r.level == CheckLevel::kOk     ? "ok"
                                : r.level == CheckLevel::kWarn ? "warn"
                                                               : "fail"},
                      {"detail", r.detail},
                      {"fix", r.fix}});
  }
  return {{"ok", DoctorExitCode(results) == kExitOk}, {"checks", checks}};
}

}  // namespace rdmashare::cli
