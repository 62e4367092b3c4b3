// Preset node specs (declared in fake_node.h).
#include <utility>

#include "fmt/format.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::fakenode {
namespace {

PciFunctionSpec Bridge(const std::string& address, const std::string& parent,
                       const std::string& vendor, const std::string& device,
                       const std::string& numa) {
  PciFunctionSpec b;
  b.address = address;
  b.parent = parent;
  b.vendor = vendor;
  b.device = device;
  b.pci_class = "0x060400";
  b.numa_node = numa;
  b.driver = "pcieport";
  return b;
}

// eth0 on an Intel I350 behind root port 00:1c.0 (NUMA 0): the cluster (calico) interface.
void AddEth0(NodeSpec& spec) {
  spec.pci.push_back(Bridge("0000:00:1c.0", "", "0x8086", "0xa190", "0"));
  PciFunctionSpec nic;
  nic.address = "0000:03:00.0";
  nic.parent = "0000:00:1c.0";
  nic.vendor = "0x8086";
  nic.device = "0x1521";
  nic.pci_class = "0x020000";
  nic.numa_node = "0";
  nic.driver = "igb";
  nic.netdevs.push_back(NetdevSpec{"eth0", "3c:ec:ef:00:00:01", 1, 1500, 2, "up", 1});
  spec.pci.push_back(std::move(nic));
}

// One ConnectX-5 RoCE PF at 0000:0b:00.0 (enp11s0f0np0) under root port 00:01.0 as mlx5_0.
void AddSingleRoce(NodeSpec& spec) {
  spec.pci.push_back(Bridge("0000:00:01.0", "", "0x8086", "0x347a", "0"));
  PciFunctionSpec nic;
  nic.address = "0000:0b:00.0";
  nic.parent = "0000:00:01.0";
  nic.numa_node = "0";
  nic.driver = "mlx5_core";
  nic.netdevs.push_back(NetdevSpec{"enp11s0f0np0", "0c:42:a1:00:00:01", 1, 1500, 3, "up", 1});
  spec.pci.push_back(std::move(nic));
  IbDeviceSpec ib;
  ib.ibdev = "mlx5_0";
  ib.pci_address = "0000:0b:00.0";
  ib.node_guid = "0c42:a103:0000:0001";
  IbPortSpec port;
  port.gid_ndevs = {"enp11s0f0np0", "enp11s0f0np0"};
  ib.ports.push_back(port);
  spec.ib_devices.push_back(std::move(ib));
}

}  // namespace

NodeSpec Walkthrough8Rail() {
  NodeSpec spec;
  AddEth0(spec);
  for (int k = 1; k <= 8; ++k) {
    std::string numa = k <= 4 ? "0" : "1";
    int up_bus = 0x30 + 2 * (k - 1);
    std::string root_port = fmt::format("0000:00:{:02x}.0", k);
    std::string sw_up = fmt::format("0000:{:02x}:00.0", up_bus);
    std::string sw_down_nic = fmt::format("0000:{:02x}:00.0", up_bus + 1);
    std::string sw_down_gpu = fmt::format("0000:{:02x}:01.0", up_bus + 1);
    std::string nic_addr = fmt::format("0000:{:02x}:00.0", 0x0a + k);
    std::string gpu_addr = fmt::format("0000:{:02x}:00.0", 0x1a + k);
    std::string ifname = fmt::format("enp{}s0f0np0", 10 + k);
    spec.pci.push_back(Bridge(root_port, "", "0x8086", "0x347a", numa));
    // Broadcom/PLX PEX 8796 switch: one upstream port, one downstream port per endpoint.
    spec.pci.push_back(Bridge(sw_up, root_port, "0x10b5", "0x8796", numa));
    spec.pci.push_back(Bridge(sw_down_nic, sw_up, "0x10b5", "0x8796", numa));
    spec.pci.push_back(Bridge(sw_down_gpu, sw_up, "0x10b5", "0x8796", numa));

    PciFunctionSpec nic;
    nic.address = nic_addr;
    nic.parent = sw_down_nic;
    nic.vendor = "0x15b3";
    nic.device = "0x1017";
    nic.pci_class = "0x020000";
    nic.numa_node = numa;
    nic.driver = "mlx5_core";
    nic.netdevs.push_back(
        NetdevSpec{ifname, fmt::format("0c:42:a1:00:00:{:02x}", k), 1, 1500, 2 + k, "up", 1});
    spec.pci.push_back(std::move(nic));

    PciFunctionSpec gpu;
    gpu.address = gpu_addr;
    gpu.parent = sw_down_gpu;
    gpu.vendor = "0x10de";
    gpu.device = "0x20b5";
    gpu.pci_class = "0x030200";
    gpu.numa_node = numa;
    gpu.driver = "nvidia";
    spec.pci.push_back(std::move(gpu));

    IbDeviceSpec ib;
    ib.ibdev = fmt::format("mlx5_{}", k - 1);
    ib.pci_address = nic_addr;
    ib.node_guid = fmt::format("0c42:a103:0000:{:04x}", k);
    IbPortSpec port;
    port.gid_ndevs = {ifname, ifname};
    ib.ports.push_back(port);
    spec.ib_devices.push_back(std::move(ib));
  }
  return spec;
}

NodeSpec DualPortIb() {
  NodeSpec spec;
  AddEth0(spec);
  spec.pci.push_back(Bridge("0000:00:02.0", "", "0x8086", "0x347a", "0"));
  PciFunctionSpec hca;
  hca.address = "0000:5e:00.0";
  hca.parent = "0000:00:02.0";
  hca.vendor = "0x15b3";
  hca.device = "0x101b";
  hca.pci_class = "0x020700";
  hca.numa_node = "0";
  hca.driver = "mlx5_core";
  for (int p = 1; p <= 2; ++p) {
    hca.netdevs.push_back(NetdevSpec{
        fmt::format("ib{}", p - 1),
        fmt::format("00:00:10:87:fe:80:00:00:00:00:00:00:0c:42:a1:03:00:aa:bb:{:02x}", p), 32, 2044,
        3 + p, "up", 1});
  }
  spec.pci.push_back(std::move(hca));
  IbDeviceSpec ib;
  ib.ibdev = "mlx5_0";
  ib.pci_address = "0000:5e:00.0";
  ib.node_guid = "0c42:a103:00aa:bb00";
  for (int p = 1; p <= 2; ++p) {
    IbPortSpec port;
    port.number = p;
    port.link_layer = "InfiniBand";
    port.gid_table_size = 8;
    ib.ports.push_back(port);
  }
  spec.ib_devices.push_back(std::move(ib));
  return spec;
}

NodeSpec PlainNic() {
  NodeSpec spec;
  AddEth0(spec);
  spec.rdma_cm.reset();
  return spec;
}

NodeSpec NoNetdev() {
  NodeSpec spec;
  AddEth0(spec);
  AddSingleRoce(spec);
  spec.pci.back().netdevs.clear();
  spec.ib_devices.back().ports.back().gid_ndevs.clear();
  IbDeviceSpec virt;
  virt.ibdev = "rxe0";
  virt.node_guid = "3eec:effe:ff00:0001";
  IbPortSpec port;
  port.gid_table_size = 8;
  virt.ports.push_back(port);
  spec.ib_devices.push_back(std::move(virt));
  return spec;
}

NodeSpec SoftRoce() {
  NodeSpec spec;
  AddEth0(spec);
  IbDeviceSpec rxe;
  rxe.ibdev = "rxe0";
  rxe.node_guid = "3eec:effe:ff00:0001";
  IbPortSpec port;
  port.gid_table_size = 8;
  port.gid_ndevs = {"eth0", "eth0"};
  rxe.ports.push_back(port);
  spec.ib_devices.push_back(std::move(rxe));
  return spec;
}

NodeSpec NoRdmaCm() {
  NodeSpec spec;
  AddEth0(spec);
  AddSingleRoce(spec);
  spec.rdma_cm.reset();
  return spec;
}

NodeSpec DynamicMajor() {
  NodeSpec spec;
  AddEth0(spec);
  AddSingleRoce(spec);
  spec.ib_devices.back().uverbs_dev = DevNumber{511, 0};
  return spec;
}

std::vector<std::string> PresetNames() {
  return {"walkthrough-8rail", "dual-port-ib", "plain-nic",    "no-netdev",
          "soft-roce",         "no-rdma-cm",   "dynamic-major"};
}

absl::StatusOr<NodeSpec> PresetByName(const std::string& name) {
  if (name == "walkthrough-8rail") return Walkthrough8Rail();
  if (name == "dual-port-ib") return DualPortIb();
  if (name == "plain-nic") return PlainNic();
  if (name == "no-netdev") return NoNetdev();
  if (name == "soft-roce") return SoftRoce();
  if (name == "no-rdma-cm") return NoRdmaCm();
  if (name == "dynamic-major") return DynamicMajor();
  std::string valid;
  for (const std::string& n : PresetNames()) valid += (valid.empty() ? "" : ", ") + n;
  return absl::InvalidArgumentError(fmt::format("unknown preset '{}' (valid: {})", name, valid));
}

}  // namespace rdmashare::fakenode
