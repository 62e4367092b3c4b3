// `rdmashare doctor`: the walkthrough's host checks (declared in cli.h).
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "rdma/gid_table.h"
#include "rdma/verbs.h"
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

constexpr char kVerbsFix[] =
    "sysfs and verbs disagree: reload the driver (modprobe -r mlx5_ib && modprobe mlx5_ib) or "
    "check rdma-core's provider for this device";
// Disagreements named on one line; the rest are counted.
constexpr size_t kMaxListedDisagreements = 4;

// One reading of both sides: verbs first, then sysfs.
struct VerbsReading {
  std::vector<rdma::VerbsDevice> devices;
  std::vector<rdma::VerbsDisagreement> disagreements;
  // Every ibdev either side lists, sorted.
  std::set<std::string> ibdevs;
};

absl::StatusOr<VerbsReading> ReadVerbsAndSysfs(const HostPaths& paths, rdma::VerbsReader& verbs) {
  VerbsReading r;
  ASSIGN_OR_RETURN(r.devices, verbs.Devices());
  rdma::SysfsDeviceScanner scanner(paths);
  ASSIGN_OR_RETURN(rdma::NodeInventory inv, scanner.Scan());
  rdma::SysfsRdmaView view = rdma::ReadSysfsRdmaView(paths.sys_root, std::move(inv));
  r.disagreements = rdma::CompareVerbsWithSysfs(r.devices, view);
  for (const rdma::RdmaDevice& d : view.inventory.devices) r.ibdevs.insert(d.ibdev);
  for (const rdma::VerbsDevice& d : r.devices) r.ibdevs.insert(d.ibdev);
  return r;
}

std::string Plural(size_t n, const char* word) {
  return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// The "verbs" checks: what rdma-core's libibverbs says against what sysfs says.
void CheckVerbs(const HostPaths& paths, rdma::VerbsReader* verbs, size_t sysfs_devices,
                std::vector<CheckResult>& out) {
  const std::string sysfs_only = "checks use sysfs only";
  if (verbs == nullptr) {
    out.push_back(Make("verbs", "node", CheckLevel::kOk,
                       fmt::format("not queried: libibverbs reads the running host, not the sysfs "
                                   "tree at {}: {}",
                                   paths.sys_root, sysfs_only)));
    return;
  }
  const std::string error_fix =
      "check that ib_uverbs is loaded and /dev/infiniband/uverbs* can be opened";
  absl::StatusOr<VerbsReading> reading = ReadVerbsAndSysfs(paths, *verbs);
  if (!reading.ok()) {
    out.push_back(Make("verbs", "node", CheckLevel::kWarn,
                       fmt::format("{}: {}", reading.status().message(), sysfs_only), error_fix));
    return;
  }
  if (reading->devices.empty()) {
    if (sysfs_devices == 0) {
      out.push_back(Make("verbs", "node", CheckLevel::kOk,
                         "no verbs devices (libibverbs found none): " + sysfs_only));
    } else {
      out.push_back(
          Make("verbs", "node", CheckLevel::kWarn,
               fmt::format("no verbs devices (libibverbs found none, sysfs lists {}): {}",
                           sysfs_devices, sysfs_only),
               "modprobe ib_uverbs and check /dev/infiniband; a device whose provider rdma-core "
               "lacks stays invisible to verbs"));
    }
    return;
  }
  // A second reading of both sides confirms what the first saw: pods starting or stopping
  // change GID tables (and links change port states) between the two sides' reads.
  if (!reading->disagreements.empty()) {
    absl::StatusOr<VerbsReading> second = ReadVerbsAndSysfs(paths, *verbs);
    if (!second.ok()) {
      out.push_back(
          Make("verbs", "node", CheckLevel::kWarn,
               fmt::format("{} (second reading): {}", second.status().message(), sysfs_only),
               error_fix));
      return;
    }
    std::vector<rdma::VerbsDisagreement> confirmed;
    for (const rdma::VerbsDisagreement& d : second->disagreements) {
      if (std::find(reading->disagreements.begin(), reading->disagreements.end(), d) !=
          reading->disagreements.end()) {
        confirmed.push_back(d);
      }
    }
    second->disagreements = std::move(confirmed);
    second->ibdevs.insert(reading->ibdevs.begin(), reading->ibdevs.end());
    reading = std::move(second);
  }
  out.push_back(Make("verbs", "node", CheckLevel::kOk,
                     fmt::format("libibverbs (rdma-core) lists {}: their ports and GID tables "
                                 "are compared with sysfs",
                                 Plural(reading->devices.size(), "device"))));
  for (const std::string& ibdev : reading->ibdevs) {
    const rdma::VerbsDevice* dev = nullptr;
    for (const rdma::VerbsDevice& d : reading->devices) {
      if (d.ibdev == ibdev) dev = &d;
    }
    std::vector<std::string> clauses;
    for (const rdma::VerbsDisagreement& d : reading->disagreements) {
      if (d.ibdev == ibdev) clauses.push_back(d.Describe());
    }
    if (!clauses.empty()) {
      std::string detail;
      for (size_t i = 0; i < clauses.size() && i < kMaxListedDisagreements; ++i) {
        detail += (i == 0 ? "" : "; ") + clauses[i];
      }
      if (clauses.size() > kMaxListedDisagreements) {
        detail += fmt::format(" (and {} more)", clauses.size() - kMaxListedDisagreements);
      }
      out.push_back(Make("verbs", ibdev, CheckLevel::kFail, detail, kVerbsFix));
    } else if (dev != nullptr && !dev->error.empty()) {
      out.push_back(Make("verbs", ibdev, CheckLevel::kWarn,
                         fmt::format("libibverbs cannot read {}: {}", ibdev, dev->error),
                         "check /dev/infiniband/uverbs* (permissions, ib_uverbs) and rdma-core's "
                         "provider for this device"));
    } else if (dev != nullptr) {
      size_t gids = 0;
      for (const rdma::VerbsPort& p : dev->ports) gids += p.gids.size();
      out.push_back(Make("verbs", ibdev, CheckLevel::kOk,
                         fmt::format("libibverbs agrees with sysfs: {}, {}",
                                     Plural(dev->ports.size(), "port"), Plural(gids, "GID"))));
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
                                                         rdma::NetnsModeReader& netns_reader,
                                                         rdma::VerbsReader* verbs) {
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
  CheckVerbs(paths, verbs, inv.devices.size(), out);

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

// ---------------------------------------------------------------------------------------------
// The `doctor` command: flags and glue.

namespace {

// True when both paths name the same directory (or, unresolvable, are the same text).
bool SameDirectory(const std::string& a, const std::string& b) {
  if (a == b) return true;
  absl::StatusOr<std::string> ra = RealPath(a);
  absl::StatusOr<std::string> rb = RealPath(b);
  return ra.ok() && rb.ok() && *ra == *rb;
}

int RunDoctor(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  rdma::FakeNetnsModeReader unavailable(rdma::NetnsMode::kUnavailable);
  rdma::NetnsModeReader& reader = env.netns_reader ? *env.netns_reader : unavailable;
  // The verbs view describes the tree at env.paths.sys_root (the running host's /sys in main);
  // compared with any other tree it would report differences that are not there.
  rdma::VerbsReader* verbs =
      SameDirectory(paths.sys_root, env.paths.sys_root) ? env.verbs_reader : nullptr;
  absl::StatusOr<std::vector<CheckResult>> results = RunDoctorChecks(paths, reader, verbs);
  if (!results.ok()) return Fail(err, "doctor", results.status(), kExitFailure);
  if (p.bools.count("json")) {
    out << DoctorJson(*results).dump(2) << "\n";
  } else {
    PrintDoctorTable(*results, out);
  }
  return DoctorExitCode(*results);
}

}  // namespace

const Command& DoctorCommand() {
  static const Command kCommand = {
      {"doctor",
       "",
       "check this host for rdmashare: RDMA devices, ports, link layer, verbs (rdma-core's "
       "libibverbs) against sysfs, netns mode, GPUDirect, rdma_cm, netdevs, GID room, kubelet",
       {{"json", false, "print JSON instead of a table"}}},
      RunDoctor};
  return kCommand;
}

}  // namespace rdmashare::cli
