// Fake-node builder: writes a sysfs tree and a /dev tree under a root directory, laid out the way
// the Linux kernel lays them out for PCI NICs, GPUs and RDMA devices, so the real discovery code
// (rdma/device_scanner.h), the device plugin, the CNI and the CLI can run against them.
//
// Layout written under <root>:
//   sys/devices/pci0000:00/<root port>/<switch up>/<switch down>/<function>/   real directories
//     {vendor,device,class,numa_node}, driver -> ../../(..)/bus/pci/drivers/<drv>,
//     subsystem -> bus/pci, net/<if>/{operstate,carrier,mtu,address,type,ifindex,device},
//     infiniband/<ibdev>/{node_guid,node_type,device,ports/<N>/{state,phys_state,link_layer,
//       gids/<i>,gid_attrs/types/<i>,gid_attrs/ndevs/<i>,counters/<c>,hw_counters/<c>}},
//     infiniband_verbs/uverbsN/{ibdev,dev,device}, infiniband_mad/{umadN,issmN}/{ibdev,port,dev}
//   sys/devices/virtual/infiniband/<ibdev>       ibdevs without a PCI parent
//   sys/devices/virtual/misc/rdma_cm/dev          the connection-manager node
//   sys/class/{infiniband,infiniband_verbs,infiniband_mad,net,misc}/..., sys/bus/pci/devices/...,
//   sys/bus/pci/drivers/<drv>/<addr>              relative symlinks, as the kernel makes them
//   dev/infiniband/{uverbsN,umadN,issmN,rdma_cm}  character devices made with mknod (needs root)
//
// A FakeNode is a handle on one such tree; it keeps no state besides the root, so every
// mutator works on whatever is on disk (including trees written by another process). Not
// thread-safe: one writer per tree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/host_paths.h"

namespace rdmashare::fakenode {

// A character device number (major:minor).
struct DevNumber {
  uint32_t major = 0;
  uint32_t minor = 0;
  bool operator==(const DevNumber& o) const { return major == o.major && minor == o.minor; }
};

// A network interface of a PCI function (sysfs <function>/net/<name>).
struct NetdevSpec {
  std::string name;
  // MAC address as sysfs prints it: 6 bytes for Ethernet, 20 bytes for IPoIB.
  std::string address;
  // ARPHRD type: 1 = Ethernet, 32 = InfiniBand.
  int type = 1;
  int mtu = 1500;
  int ifindex = 0;
  std::string operstate = "up";
  int carrier = 1;
};

// A PCI function or bridge. `parent` is the address of the upstream bridge (root port or
// switch port); empty means it sits directly on the root bus pci<domain>:<bus>.
struct PciFunctionSpec {
  std::string address;  // "0000:0b:00.0"
  std::string parent;
  std::string vendor = "0x15b3";
  std::string device = "0x1017";
  std::string pci_class = "0x020000";
  // Written verbatim into numa_node (so tests can write garbage).
  std::string numa_node = "-1";
  // Bound driver ("mlx5_core", "pcieport", "nvidia"); empty = unbound.
  std::string driver;
  std::vector<NetdevSpec> netdevs;
};

// One port of an RDMA device.
struct IbPortSpec {
  int number = 1;
  std::string state = "4: ACTIVE";
  std::string phys_state = "5: LinkUp";
  std::string link_layer = "Ethernet";
  // Real mlx5 RoCE ports have 255 entries (IB: 128). Presets use 16: every entry is three
  // files, and creating thousands of files per test build is slow on a loaded disk.
  int gid_table_size = 16;
  // Names written into gid_attrs/ndevs/<i> for the first populated GID entries (RoCE: the
  // netdev whose addresses the GIDs come from). Entries past this list are empty.
  std::vector<std::string> gid_ndevs;
  // Create umadN/issmN for this port.
  bool mad = true;
};

// One RDMA device (ibdev).
struct IbDeviceSpec {
  std::string ibdev;  // "mlx5_0"
  // PCI function it belongs to; empty = a virtual device under devices/virtual/infiniband.
  std::string pci_address;
  std::string node_guid = "0000:0000:0000:0000";
  std::vector<IbPortSpec> ports;
  // Create the uverbs node (sysfs + /dev).
  bool uverbs = true;
  // uverbs device number; default 231:(192 + index).
  std::optional<DevNumber> uverbs_dev;
};

// A whole node.
struct NodeSpec {
  // PCI functions in an order where every parent precedes its children.
  std::vector<PciFunctionSpec> pci;
  std::vector<IbDeviceSpec> ib_devices;
  // The rdma_cm misc device; nullopt = the node has no rdma_cm (module not loaded).
  std::optional<DevNumber> rdma_cm = DevNumber{10, 58};
};

// Presets. Walkthrough8Rail: 8 ConnectX-5 RoCE PFs mlx5_0..7 (enp11s0f0np0..enp18s0f0np0 at
// 0000:0b:00.0..0000:12:00.0), one A100 per rail under the same PCIe switch, rails 1-4 on NUMA 0
// and 5-8 on NUMA 1, plus eth0 on a plain Intel NIC.
NodeSpec Walkthrough8Rail();
// One ConnectX-4 (15b3:101b) with two InfiniBand ports, ib0/ib1 (type 32), umad/issm per port.
NodeSpec DualPortIb();
// eth0 on a plain Intel NIC, no RDMA at all.
NodeSpec PlainNic();
// mlx5_0 whose PCI function has no net/ directory, and a virtual ibdev (rxe-like) without any
// GID netdev.
NodeSpec NoNetdev();
// Soft-RoCE: a virtual ibdev rxe0 over eth0 (netdev only visible through gid_attrs/ndevs).
NodeSpec SoftRoce();
// One ConnectX-5 RoCE PF, no rdma_cm.
NodeSpec NoRdmaCm();
// One ConnectX-5 RoCE PF whose uverbs sits on a dynamic major ("511:0").
NodeSpec DynamicMajor();

// Preset names accepted by PresetByName: "walkthrough-8rail", "dual-port-ib", "plain-nic",
// "no-netdev", "soft-roce", "no-rdma-cm", "dynamic-major".
std::vector<std::string> PresetNames();
// The preset of that name; InvalidArgument listing the valid names otherwise.
absl::StatusOr<NodeSpec> PresetByName(const std::string& name);

// Handle on a fake tree rooted at root(): root()/sys and root()/dev.
class FakeNode {
 public:
  // Creates <root>/sys and <root>/dev (and <root> itself) and writes `spec` into them.
  // Errors: InvalidArgument for a bad spec (unknown parent, bad address, duplicate name),
  // FailedPrecondition when mknod is refused (not root), other codes for I/O failures.
  static absl::StatusOr<FakeNode> Build(const NodeSpec& spec, const std::string& root);
  // Opens an existing tree (written by Build, possibly by another process).
  static absl::StatusOr<FakeNode> Open(const std::string& root);

  // Absolute, canonical roots.
  const std::string& root() const { return root_; }
  const std::string& sys_root() const { return sys_root_; }
  const std::string& dev_root() const { return dev_root_; }
  // HostPaths with sys_root, dev_root and host_dev_root pointing into the tree.
  HostPaths paths() const;

  // Adds a PCI function (its parent must already exist) with its netdevs.
  absl::Status AddPciFunction(const PciFunctionSpec& fn);
  // Adds an RDMA device with its ports, uverbs/umad/issm sysfs entries and /dev nodes. Node
  // indices are the lowest free ones, as the kernel allocates them.
  absl::Status AddIbDevice(const IbDeviceSpec& dev);
  // Adds the rdma_cm misc device and /dev/infiniband/rdma_cm.
  absl::Status AddRdmaCm(DevNumber number);

  // Removes an ibdev with everything of it: its directory, class links, uverbs/umad/issm
  // entries and /dev nodes. NotFound when absent.
  absl::Status RemoveIbDevice(const std::string& ibdev);
  // Rewrites ports/<port>/state and phys_state (full text such as "1: DOWN", "3: Disabled").
  // Adds `delta` to ports/<port>/counters/<name> or hw_counters/<name> (replaced atomically, as
  // the kernel's reads are); returns the new value. NotFound for an unknown counter.
  absl::StatusOr<uint64_t> AddPortCounter(const std::string& ibdev, int port,
                                          const std::string& name, uint64_t delta);
  absl::Status SetPortState(const std::string& ibdev, int port, const std::string& state,
                            const std::string& phys_state);
  // Rewrites a netdev's operstate and carrier.
  absl::Status SetNetdevState(const std::string& ifname, const std::string& operstate, int carrier);
  // Points class/net/<ifname> at `target_dir` (absolute), e.g. a real veth's
  // /sys/devices/virtual/net/<veth>, so operstate/carrier read through the class link follow a
  // real interface (and `ip link set` raises real rtnetlink events). The netdev must exist in the
  // tree; InvalidArgument when target_dir is not an absolute directory.
  absl::Status PointNetdevAt(const std::string& ifname, const std::string& target_dir);
  // Removes <dev_root>/infiniband/<name>.
  absl::Status RemoveDevNode(const std::string& name);
  // Unbinds the driver of a PCI function: removes <function>/driver and
  // bus/pci/drivers/<drv>/<address>.
  absl::Status UnbindDriver(const std::string& pci_address);
  // Sysfs directory of a PCI function (resolved through bus/pci/devices).
  absl::StatusOr<std::string> PciFunctionDir(const std::string& pci_address) const;
  // Sysfs directory of an ibdev (resolved through class/infiniband).
  absl::StatusOr<std::string> IbDeviceDir(const std::string& ibdev) const;

 private:
  explicit FakeNode(std::string root);

  std::string root_;
  std::string sys_root_;
  std::string dev_root_;
};

}  // namespace rdmashare::fakenode
