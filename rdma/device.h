// Plain records describing the RDMA hardware of a node, as discovered from sysfs and /dev.
//
// Value types with operator==, no behaviour beyond trivial accessors. Produced by a
// DeviceScanner (rdma/device_scanner.h), consumed by the device plugin, the CNI and the CLI.
// A device's stable identity is (pci_address, ibdev).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rdmashare::rdma {

// Link layer of an RDMA port (sysfs ports/N/link_layer).
enum class LinkLayer { kUnknown, kEthernet, kInfiniBand };

// "Ethernet", "InfiniBand" or "unknown".
const char* LinkLayerName(LinkLayer layer);

// A character device node of the RDMA stack (uverbsN, umadN, issmN, rdma_cm).
struct CharDevice {
  // Node name as in /dev/infiniband: "uverbs0", "umad1", "issm1", "rdma_cm".
  std::string name;
  // Device number from the sysfs `dev` attribute (or stat of the node when sysfs lacks it).
  uint32_t major = 0;
  uint32_t minor = 0;
  // Absolute path of the node under the daemon's dev root (<dev_root>/infiniband/<name>).
  std::string dev_path;
  // True when dev_path exists and is a character device with the expected number.
  bool present = false;

  bool operator==(const CharDevice& o) const {
    return name == o.name && major == o.major && minor == o.minor && dev_path == o.dev_path &&
           present == o.present;
  }
};

// One port of an RDMA device (sysfs class/infiniband/<ibdev>/ports/<N>).
struct RdmaPort {
  int number = 0;
  // Textual state without the numeric prefix: "ACTIVE", "DOWN", "INIT", "ARMED", ...
  std::string state;
  // Textual physical state without prefix: "LinkUp", "Disabled", "Polling", ...
  std::string phys_state;
  LinkLayer link_layer = LinkLayer::kUnknown;
  // Number of entries in ports/N/gids (the GID table size).
  int gid_table_size = 0;
  // Management datagram nodes for this port, when the kernel created them.
  std::optional<CharDevice> umad;
  std::optional<CharDevice> issm;

  bool operator==(const RdmaPort& o) const {
    return number == o.number && state == o.state && phys_state == o.phys_state &&
           link_layer == o.link_layer && gid_table_size == o.gid_table_size && umad == o.umad &&
           issm == o.issm;
  }
};

// Link state of one netdev of an RDMA device (sysfs class/net/<if>/{operstate,carrier}).
struct NetdevState {
  std::string name;
  // "up", "down", "lowerlayerdown", "unknown", ...; empty when unreadable.
  std::string operstate;
  // 1 = carrier, 0 = none (also when the kernel refuses the read: interface down), -1 = no
  // carrier attribute.
  int carrier = -1;

  // Usable for traffic: operstate "up" (or "unknown", which some drivers report while working;
  // or unreadable: no evidence of a problem) and a carrier unless the attribute is absent.
  bool up() const {
    return (operstate.empty() || operstate == "up" || operstate == "unknown") && carrier != 0;
  }

  bool operator==(const NetdevState& o) const {
    return name == o.name && operstate == o.operstate && carrier == o.carrier;
  }
};

// One RDMA device (an ibdev such as mlx5_0) with its PCI parent, netdevs, ports and nodes.
struct RdmaDevice {
  // Kernel name of the RDMA device ("mlx5_0").
  std::string ibdev;
  // PCI address of the parent function ("0000:0b:00.0"); empty when the parent is not PCI.
  std::string pci_address;
  // PCI ids, lower-case hex without "0x" ("15b3", "1017"); empty when not PCI.
  std::string vendor_id;
  std::string device_id;
  // PCI class as in sysfs ("0x020000").
  std::string pci_class;
  // Bound kernel driver ("mlx5_core"); empty when unbound.
  std::string driver;
  // NUMA node of the PCI function; -1 when the platform reports none.
  int numa_node = -1;
  // Network interfaces of the parent function, sorted ("enp11s0f0np0").
  std::vector<std::string> netdevs;
  // Link state of each netdev, in the order of `netdevs`.
  std::vector<NetdevState> netdev_states;
  // Ports, ordered by number.
  std::vector<RdmaPort> ports;
  // The verbs node; a device without one (or whose node is absent) is not usable.
  std::optional<CharDevice> uverbs;

  // Usable by a container: the uverbs node exists.
  bool usable() const { return uverbs.has_value() && uverbs->present; }

  // Why the device cannot carry RDMA traffic now, or "" when it is healthy. Healthy means:
  // usable(), a bound driver (PCI devices), at least one ACTIVE port (when it has ports), and
  // for RoCE (an Ethernet port) at least one netdev up (when it has netdevs).
  std::string HealthProblem() const;
  bool operator==(const RdmaDevice& o) const {
    return ibdev == o.ibdev && pci_address == o.pci_address && vendor_id == o.vendor_id &&
           device_id == o.device_id && pci_class == o.pci_class && driver == o.driver &&
           numa_node == o.numa_node && netdevs == o.netdevs && netdev_states == o.netdev_states &&
           ports == o.ports && uverbs == o.uverbs;
  }
};

// Everything one scan found.
struct NodeInventory {
  // Devices ordered by ibdev name.
  std::vector<RdmaDevice> devices;
  // The global connection-manager node, shared by all devices.
  std::optional<CharDevice> rdma_cm;

  bool operator==(const NodeInventory& o) const {
    return devices == o.devices && rdma_cm == o.rdma_cm;
  }
};

}  // namespace rdmashare::rdma
