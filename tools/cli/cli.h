// rs_cli: the commands of the `rdmashare` operator CLI as testable library functions.
//
// Each command's file holds its logic and its Command (flags, help, glue: see command.h); cli.cc
// dispatches. Every command reads the host through an injected HostPaths (sysfs, /dev, /proc,
// kubelet dir) and injected readers (RDMA netns mode, interface addresses), and writes to
// std::ostreams, so the tests run each command on fake nodes. RunCli() is the whole program minus
// the real readers; main.cc builds those and calls it.
//
// Exit codes: 0 success (doctor: only warnings), 1 a check failed / the host or the input is not
// usable, 2 usage error (unknown command or flag, bad value, bad template).
//
// Threading: stateless functions; the injected readers must outlive the call.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/host_paths.h"
#include "deviceplugin/config.h"
#include "nlohmann/json.hpp"
#include "rdma/device.h"
#include "rdma/netns_mode.h"
#include "rdma/verbs.h"
#include "tools/cli/command.h"

namespace rdmashare::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// ---------------------------------------------------------------------------------------------
// Interface addresses (for `gid`).

// One IPv4 address of a network interface.
struct InterfaceAddress {
  std::string ifname;
  // Dotted quad ("172.16.11.10").
  std::string ipv4;
  int prefix_len = 32;
  bool operator==(const InterfaceAddress& o) const {
    return ifname == o.ifname && ipv4 == o.ipv4 && prefix_len == o.prefix_len;
  }
};

// Source of the IPv4 addresses of this network namespace's interfaces.
class AddressSource {
 public:
  virtual ~AddressSource() = default;
  // Every IPv4 address, in interface order. Internal when the kernel refuses.
  virtual absl::StatusOr<std::vector<InterfaceAddress>> List() = 0;
};

// Reads the addresses with getifaddrs(3).
class GetifaddrsAddressSource final : public AddressSource {
 public:
  absl::StatusOr<std::vector<InterfaceAddress>> List() override;
};

// Test double returning a fixed list.
class FakeAddressSource final : public AddressSource {
 public:
  explicit FakeAddressSource(std::vector<InterfaceAddress> addresses)
      : addresses_(std::move(addresses)) {}
  absl::StatusOr<std::vector<InterfaceAddress>> List() override { return addresses_; }

 private:
  std::vector<InterfaceAddress> addresses_;
};

// What the commands read the host through. Not owned.
struct Environment {
  HostPaths paths;
  rdma::NetnsModeReader* netns_reader = nullptr;
  AddressSource* addresses = nullptr;
  // The verbs view of the host whose sysfs is paths.sys_root (main: rdma-core's libibverbs on
  // the running host). doctor consults it only while --sysfs-root names that same tree; null =
  // no verbs view.
  rdma::VerbsReader* verbs_reader = nullptr;
};

// Runs `rdmashare <args...>` (args excludes argv[0]) and returns the exit code.
int RunCli(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
           std::ostream& err);

// The version printed by --version.
std::string Version();

// ---------------------------------------------------------------------------------------------
// doctor

enum class CheckLevel { kOk, kWarn, kFail };

// "ok", "warn" or "FAIL".
const char* CheckLevelName(CheckLevel level);

// One host check.
struct CheckResult {
  // Check family ("rdma-devices", "port-state", "link-layer", "verbs", "netns-mode",
  // "gpudirect", "rdma-cm", "netdev", "gid-room", "kubelet").
  std::string check;
  // What was checked ("mlx5_0/1", "enp11s0f0np0", or "node").
  std::string subject;
  CheckLevel level = CheckLevel::kOk;
  // What was found ("ACTIVE", "up mtu 1500", ...).
  std::string detail;
  // One-line fix, for warnings and failures.
  std::string fix;
  bool operator==(const CheckResult& o) const {
    return check == o.check && subject == o.subject && level == o.level && detail == o.detail &&
           fix == o.fix;
  }
};

// Runs every check of the walkthrough's host preparation. Errors only for a scan failure.
//
// With a `verbs` reader (describing the host whose sysfs is paths.sys_root) that lists devices,
// adds one ok "verbs" line for the node naming libibverbs as the source, then a "verbs" check
// per device: ok when verbs agrees with sysfs, FAIL naming each disagreement
// (rdma::CompareVerbsWithSysfs) that a second reading of both sides confirms (GID tables change
// while pods start and stop), warn for a device verbs cannot read. When verbs lists no device,
// one "verbs" line says the checks use sysfs only: ok, or warn when sysfs does list devices; a
// reader error is a warning. A null `verbs` (a sysfs tree other than the running host's) gives
// one ok line saying verbs was not queried.
absl::StatusOr<std::vector<CheckResult>> RunDoctorChecks(const HostPaths& paths,
                                                         rdma::NetnsModeReader& netns_reader,
                                                         rdma::VerbsReader* verbs);
// 1 when a check failed, else 0.
int DoctorExitCode(const std::vector<CheckResult>& results);
// Table for people, ending with a summary line.
void PrintDoctorTable(const std::vector<CheckResult>& results, std::ostream& out);
// {"ok": bool, "checks": [{"check","subject","level","detail","fix"}...]}.
nlohmann::json DoctorJson(const std::vector<CheckResult>& results);

// `rdmashare doctor [--json]`: the checks as a table (or JSON); exit code by DoctorExitCode.
const Command& DoctorCommand();

// ---------------------------------------------------------------------------------------------
// devices

// Table of the node's RDMA devices.
void PrintDevicesTable(const rdma::NodeInventory& inventory, std::ostream& out);
// The inventory as JSON ({"devices": [...], "rdma_cm": {...}|null}).
nlohmann::json DevicesJson(const rdma::NodeInventory& inventory);

// What one resource of a config selects on this node.
struct ResourceMatch {
  std::string full_name;
  // ibdevs selected, in inventory order.
  std::vector<std::string> ibdevs;
  // Selector values that match no device of the node ("ifNames=enp99s0").
  std::vector<std::string> dead_selectors;
  // What kubelet would be told, by the resource's healthPolicy (the daemon's own rule).
  bool healthy = false;
  std::string health_cause;
};
// Dry run of `config` against `inventory`.
std::vector<ResourceMatch> MatchResources(const deviceplugin::PluginConfig& config,
                                          const rdma::NodeInventory& inventory);

// `rdmashare devices [--config FILE] [--json]`: the inventory, and with --config the dry run
// (exit 1 when a resource selects no device).
const Command& DevicesCommand();

// ---------------------------------------------------------------------------------------------
// rails

// Expands a template holding `{n}`, `{A+n}` or `{n+A}` (A a non-negative integer) for rail n.
// InvalidArgument for anything else between braces or unbalanced braces.
absl::StatusOr<std::string> ExpandTemplate(const std::string& tmpl, int n);

// A GPU paired with its nearest RDMA NIC.
struct Rail {
  // 1-based, GPUs in PCI address order.
  int number = 0;
  std::string gpu_pci;
  std::string nic_pci;
  std::string ibdev;
  std::string netdev;
  // "pcie" (common upstream bridge below the root complex), "numa" or "none".
  std::string affinity;
  // Number of PCI bridges shared by the GPU and the NIC.
  int shared_bridges = 0;
  bool operator==(const Rail& o) const {
    return number == o.number && gpu_pci == o.gpu_pci && nic_pci == o.nic_pci && ibdev == o.ibdev &&
           netdev == o.netdev && affinity == o.affinity && shared_bridges == o.shared_bridges;
  }
};

// Pairing result plus what stayed unpaired.
struct RailPlan {
  std::vector<Rail> rails;
  std::vector<std::string> unpaired_gpus;
  std::vector<std::string> unpaired_nics;
};

// Pairs GPUs (NVIDIA, class 0x0300xx/0x0302xx, from <sys>/bus/pci/devices) with the RoCE NICs
// of `inventory`: deepest common upstream bridge first, then same NUMA node, then address order.
// FailedPrecondition when the node has no GPU or no RoCE NIC.
absl::StatusOr<RailPlan> PlanRails(const HostPaths& paths, const rdma::NodeInventory& inventory);

// Options of `rails` output.
struct RailsOptions {
  std::string resource_template = "shared_cx5_gpu{n}";
  std::string network_template = "gpu{n}-net{10+n}";
  std::string prefix = "spidernet.io";
  int rdma_hca_max = 100;
  int periodic_update_interval = 300;
  std::string subnet_template = "172.16.{10+n}.0/24";
  int gateway_host = 254;
  int range_first = 1;
  int range_last = 200;
  int table_base = 100;
  // Namespace of the generated objects (manifests/ installs into "rdmashare", where rdmashare-dp
  // reads its ConfigMap); empty = none written.
  std::string namespace_name = "rdmashare";
  // "mountCli": true on every resource, so `rdmashare gid` runs in any workload image.
  bool mount_cli = false;
  std::string config_map_name = "rdmashare-dp-config";
};

// The device-plugin config.json for the plan. InvalidArgument for a bad template.
absl::StatusOr<nlohmann::ordered_json> RailsDpConfig(const RailPlan& plan,
                                                     const RailsOptions& options);
// The rdmashare-macvlan network config (with rdmashare-ipam pool) of one rail.
absl::StatusOr<nlohmann::ordered_json> RailNetworkConfig(const Rail& rail,
                                                         const RailsOptions& options);
// NetworkAttachmentDefinition objects, one per rail.
absl::StatusOr<std::vector<nlohmann::ordered_json>> RailsNetworks(const RailPlan& plan,
                                                                  const RailsOptions& options);

// Renders a JSON value as block-style YAML (strings quoted when needed, multi-line strings as
// literal blocks).
std::string ToYaml(const nlohmann::ordered_json& value);

// `rdmashare rails [flags]`: the plan on stderr, the ConfigMap and networks (YAML or JSON) on
// stdout. Bad flag values and templates are usage errors (exit 2), checked before the host is read.
const Command& RailsCommand();

// ---------------------------------------------------------------------------------------------
// gid

// The RoCE v2 GID of one interface address.
struct GidEntry {
  std::string ifname;
  std::string ipv4;
  int prefix_len = 32;
  std::string ibdev;
  int port = 0;
  int gid_index = -1;
  bool operator==(const GidEntry& o) const {
    return ifname == o.ifname && ipv4 == o.ipv4 && prefix_len == o.prefix_len && ibdev == o.ibdev &&
           port == o.port && gid_index == o.gid_index;
  }
};

// The GID string sysfs shows for an IPv4-mapped address ("0000:...:ffff:ac10:0b0a").
// InvalidArgument for a malformed address.
absl::StatusOr<std::string> Ipv4MappedGid(const std::string& ipv4);

// Finds the RoCE v2 GID of `address` in every ibdev/port of <sys>/class/infiniband. NotFound
// when no GID has its value; FailedPrecondition when it exists only with another type.
absl::StatusOr<GidEntry> FindRoceV2Gid(const HostPaths& paths, const InterfaceAddress& address);

// NCCL/UCX settings for the rails, as `export K=V` lines.
std::string GidEnvironment(const std::vector<GidEntry>& entries, const std::string& socket_ifname);

// `rdmashare gid [--ifname IF] [--env] [--socket-ifname IF]`: the GID index of each rail
// interface (Environment::addresses, else getifaddrs), as a table or export lines.
const Command& GidCommand();

// ---------------------------------------------------------------------------------------------
// capture

// Summary of a capture.
struct CaptureStats {
  int files = 0;
  int links = 0;
  int dev_nodes = 0;
  // Char devices listed in dev-numbers.txt.
  int listed = 0;
  // Attributes that could not be read (copied as empty files).
  int skipped = 0;
  // Entries that are not regular files, directories or symlinks (a FIFO, socket or device in a
  // sysfs tree is nobody's attribute): "<path relative to the sysfs root> (a FIFO)", never opened
  // nor copied.
  std::vector<std::string> refused;
};

// Copies the RDMA-relevant sysfs of `paths` into <dir>/sys (relative symlinks kept) and the
// /dev/infiniband nodes into <dir>/dev/infiniband (mknod with the same numbers when allowed;
// <dir>/dev-numbers.txt always lists them). <dir> must be empty or absent (FailedPrecondition).
absl::StatusOr<CaptureStats> Capture(const HostPaths& paths, const std::string& dir);

// `rdmashare capture DIR`: Capture() and a summary naming the flags that replay the fixture.
const Command& CaptureCommand();

}  // namespace rdmashare::cli
