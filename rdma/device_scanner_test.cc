#include "rdma/device_scanner.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::fakenode::DevNumber;
using ::rdmashare::fakenode::FakeNode;
using ::rdmashare::fakenode::IbDeviceSpec;
using ::rdmashare::fakenode::IbPortSpec;
using ::rdmashare::fakenode::NetdevSpec;
using ::rdmashare::fakenode::NodeSpec;
using ::rdmashare::fakenode::PciFunctionSpec;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Routes spdlog's default logger into a string for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  // Number of logged lines containing `needle`.
  int Count(const std::string& needle) const {
    std::istringstream in(stream_.str());
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) ++n;
    }
    return n;
  }
  std::string text() const { return stream_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

void ExpectCharDevice(const std::optional<CharDevice>& got, const std::string& name, uint32_t major,
                      uint32_t minor, const std::string& dev_root, bool present = true) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->name, name);
  EXPECT_EQ(got->major, major);
  EXPECT_EQ(got->minor, minor);
  EXPECT_EQ(got->dev_path, dev_root + "/infiniband/" + name);
  EXPECT_EQ(got->present, present);
}

// Two ConnectX-5 RoCE PFs: mlx5_0 (0000:0b:00.0, enp11s0f0np0) and mlx5_1 (0000:0c:00.0,
// enp12s0f0np0), each behind its own root port, plus eth0.
NodeSpec TwoRoce() {
  NodeSpec spec = fakenode::PlainNic();
  spec.rdma_cm = DevNumber{10, 58};
  for (int k = 1; k <= 2; ++k) {
    PciFunctionSpec rp;
    rp.address = fmt::format("0000:00:0{}.0", k);
    rp.pci_class = "0x060400";
    rp.vendor = "0x8086";
    rp.device = "0x347a";
    rp.driver = "pcieport";
    spec.pci.push_back(rp);
    PciFunctionSpec nic;
    nic.address = fmt::format("0000:{:02x}:00.0", 0x0a + k);
    nic.parent = rp.address;
    nic.numa_node = "0";
    nic.driver = "mlx5_core";
    std::string ifname = fmt::format("enp{}s0f0np0", 10 + k);
    NetdevSpec nd;
    nd.name = ifname;
    nd.address = fmt::format("0c:42:a1:00:00:{:02x}", k);
    nd.ifindex = 2 + k;
    nic.netdevs.push_back(nd);
    spec.pci.push_back(nic);
    IbDeviceSpec ib;
    ib.ibdev = fmt::format("mlx5_{}", k - 1);
    ib.pci_address = nic.address;
    IbPortSpec port;
    port.gid_table_size = 4;
    port.gid_ndevs = {ifname, ifname};
    ib.ports.push_back(port);
    spec.ib_devices.push_back(ib);
  }
  return spec;
}

std::vector<std::string> Names(const NodeInventory& inv) {
  std::vector<std::string> out;
  for (const RdmaDevice& d : inv.devices) out.push_back(d.ibdev);
  return out;
}

TEST(DeviceScannerTest, RealHostWithoutClassInfinibandIsEmptyInventory) {
  if (PathExists("/sys/class/infiniband")) GTEST_SKIP() << "this host has RDMA devices";
  SysfsDeviceScanner scanner(HostPaths{});
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  EXPECT_THAT(inv.devices, IsEmpty());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, MissingSysRootIsEmptyInventory) {
  TempDir tmp;
  HostPaths paths;
  paths.sys_root = tmp.Sub("nope");
  paths.dev_root = tmp.Sub("dev");
  SysfsDeviceScanner scanner(paths);
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  EXPECT_EQ(inv, NodeInventory{});
}

TEST(DeviceScannerTest, PlainNicIsIgnoredQuietly) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::PlainNic(), tmp.path()));
  LogCapture logs;
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  EXPECT_THAT(inv.devices, IsEmpty());
  EXPECT_FALSE(inv.rdma_cm.has_value());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
  EXPECT_EQ(logs.text(), "");
}

TEST(DeviceScannerTest, Walkthrough8RailEveryFieldOfEveryRail) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::Walkthrough8Rail(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 8u);
  const std::string& dev_root = node.dev_root();
  for (int k = 1; k <= 8; ++k) {
    SCOPED_TRACE(fmt::format("rail {}", k));
    const RdmaDevice& d = inv.devices[k - 1];
    EXPECT_EQ(d.ibdev, fmt::format("mlx5_{}", k - 1));
    EXPECT_EQ(d.pci_address, fmt::format("0000:{:02x}:00.0", 0x0a + k));
    EXPECT_EQ(d.vendor_id, "15b3");
    EXPECT_EQ(d.device_id, "1017");
    EXPECT_EQ(d.pci_class, "0x020000");
    EXPECT_EQ(d.driver, "mlx5_core");
    EXPECT_EQ(d.numa_node, k <= 4 ? 0 : 1);
    EXPECT_THAT(d.netdevs, ElementsAre(fmt::format("enp{}s0f0np0", 10 + k)));
    ASSERT_EQ(d.ports.size(), 1u);
    const RdmaPort& p = d.ports[0];
    EXPECT_EQ(p.number, 1);
    EXPECT_EQ(p.state, "ACTIVE");
    EXPECT_EQ(p.phys_state, "LinkUp");
    EXPECT_EQ(p.link_layer, LinkLayer::kEthernet);
    EXPECT_EQ(p.gid_table_size, 16);
    ExpectCharDevice(p.umad, fmt::format("umad{}", k - 1), 231, k - 1, dev_root);
    ExpectCharDevice(p.issm, fmt::format("issm{}", k - 1), 231, 64 + k - 1, dev_root);
    ExpectCharDevice(d.uverbs, fmt::format("uverbs{}", k - 1), 231, 192 + k - 1, dev_root);
    EXPECT_TRUE(d.usable());
  }
  ExpectCharDevice(inv.rdma_cm, "rdma_cm", 10, 58, dev_root);
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, DualPortIbHasUmadAndIssmPerPort) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::DualPortIb(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 1u);
  const RdmaDevice& d = inv.devices[0];
  EXPECT_EQ(d.ibdev, "mlx5_0");
  EXPECT_EQ(d.pci_address, "0000:5e:00.0");
  EXPECT_EQ(d.vendor_id, "15b3");
  EXPECT_EQ(d.device_id, "101b");
  EXPECT_EQ(d.pci_class, "0x020700");
  EXPECT_EQ(d.driver, "mlx5_core");
  EXPECT_EQ(d.numa_node, 0);
  EXPECT_THAT(d.netdevs, ElementsAre("ib0", "ib1"));
  ASSERT_EQ(d.ports.size(), 2u);
  for (int p = 1; p <= 2; ++p) {
    SCOPED_TRACE(p);
    const RdmaPort& port = d.ports[p - 1];
    EXPECT_EQ(port.number, p);
    EXPECT_EQ(port.state, "ACTIVE");
    EXPECT_EQ(port.phys_state, "LinkUp");
    EXPECT_EQ(port.link_layer, LinkLayer::kInfiniBand);
    EXPECT_EQ(port.gid_table_size, 8);
    ExpectCharDevice(port.umad, fmt::format("umad{}", p - 1), 231, p - 1, node.dev_root());
    ExpectCharDevice(port.issm, fmt::format("issm{}", p - 1), 231, 64 + p - 1, node.dev_root());
  }
  ExpectCharDevice(d.uverbs, "uverbs0", 231, 192, node.dev_root());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, IbdevWithoutNetdevIsKeptWithEmptyNetdevs) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::NoNetdev(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0", "rxe0"));
  EXPECT_EQ(inv.devices[0].pci_address, "0000:0b:00.0");
  EXPECT_THAT(inv.devices[0].netdevs, IsEmpty());
  EXPECT_TRUE(inv.devices[0].usable());
  const RdmaDevice& virt = inv.devices[1];
  EXPECT_EQ(virt.pci_address, "");
  EXPECT_EQ(virt.vendor_id, "");
  EXPECT_EQ(virt.driver, "");
  EXPECT_EQ(virt.numa_node, -1);
  EXPECT_THAT(virt.netdevs, IsEmpty());
  ExpectCharDevice(virt.uverbs, "uverbs1", 231, 193, node.dev_root());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, VirtualIbdevTakesNetdevsFromGidAttrs) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::SoftRoce(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("rxe0"));
  EXPECT_THAT(inv.devices[0].netdevs, ElementsAre("eth0"));
  EXPECT_EQ(inv.devices[0].pci_address, "");
  EXPECT_EQ(inv.devices[0].ports[0].link_layer, LinkLayer::kEthernet);
}

TEST(DeviceScannerTest, NonPciParentHasNoPciFieldsAndNetdevsFromGidAttrs) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::SoftRoce(), tmp.path()));
  // Re-parent rxe0 onto a platform device, as SoC RDMA engines (hns) are.
  std::string platform = node.sys_root() + "/devices/platform/hns-roce0";
  WriteTestFile(platform + "/modalias", "platform:hns-roce");
  ASSERT_OK_AND_ASSIGN(std::string ib_dir, node.IbDeviceDir("rxe0"));
  ASSERT_EQ(::symlink("../../../platform/hns-roce0", (ib_dir + "/device").c_str()), 0);
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("rxe0"));
  EXPECT_EQ(inv.devices[0].pci_address, "");
  EXPECT_EQ(inv.devices[0].vendor_id, "");
  EXPECT_EQ(inv.devices[0].numa_node, -1);
  EXPECT_THAT(inv.devices[0].netdevs, ElementsAre("eth0"));
  EXPECT_TRUE(inv.devices[0].usable());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, MissingRdmaCmKeepsDeviceAndWarnsOnceAcrossScans) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::NoRdmaCm(), tmp.path()));
  LogCapture logs;
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory first, scanner.Scan());
  ASSERT_OK_AND_ASSIGN(NodeInventory second, scanner.Scan());
  EXPECT_EQ(first, second);
  ASSERT_THAT(Names(first), ElementsAre("mlx5_0"));
  EXPECT_TRUE(first.devices[0].usable());
  EXPECT_FALSE(first.rdma_cm.has_value());
  EXPECT_EQ(logs.Count("warning rdma scan: node=rdma_cm: class/misc/rdma_cm missing"), 1)
      << logs.text();
  EXPECT_THAT(scanner.Warnings(), ElementsAre(HasSubstr("node=rdma_cm")));
}

TEST(DeviceScannerTest, ResolvedProblemIsForgottenAndLoggedAgainWhenItReturns) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::NoRdmaCm(), tmp.path()));
  LogCapture logs;
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK(scanner.Scan().status());
  ASSERT_OK(node.AddRdmaCm(DevNumber{10, 58}));
  ASSERT_OK_AND_ASSIGN(NodeInventory fixed, scanner.Scan());
  ExpectCharDevice(fixed.rdma_cm, "rdma_cm", 10, 58, node.dev_root());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
  ASSERT_OK(node.RemoveDevNode("rdma_cm"));
  ASSERT_OK_AND_ASSIGN(NodeInventory broken, scanner.Scan());
  ASSERT_OK_AND_ASSIGN(broken, scanner.Scan());
  ExpectCharDevice(broken.rdma_cm, "rdma_cm", 10, 58, node.dev_root(), /*present=*/false);
  EXPECT_EQ(logs.Count("node=rdma_cm: " + node.dev_root() + "/infiniband/rdma_cm does not exist"),
            1)
      << logs.text();
}

TEST(DeviceScannerTest, DynamicMajorComesFromSysfs) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::DynamicMajor(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 1u);
  ExpectCharDevice(inv.devices[0].uverbs, "uverbs0", 511, 0, node.dev_root());
  EXPECT_THAT(scanner.Warnings(), IsEmpty());
}

TEST(DeviceScannerTest, NumberFromDevNodeWhenSysfsLacksDevAttribute) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(fakenode::DynamicMajor(), tmp.path()));
  ASSERT_EQ(::unlink((node.sys_root() + "/class/infiniband_verbs/uverbs0/dev").c_str()), 0);
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 1u);
  ExpectCharDevice(inv.devices[0].uverbs, "uverbs0", 511, 0, node.dev_root());
}

TEST(DeviceScannerTest, NoUverbsMakesDeviceUnusableButKept) {
  TempDir tmp;
  NodeSpec spec = TwoRoce();
  spec.ib_devices[1].uverbs = false;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(spec, tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0", "mlx5_1"));
  EXPECT_TRUE(inv.devices[0].usable());
  EXPECT_FALSE(inv.devices[1].uverbs.has_value());
  EXPECT_FALSE(inv.devices[1].usable());
  EXPECT_THAT(scanner.Warnings(), ElementsAre(HasSubstr("ibdev=mlx5_1 has no uverbs device")));
}

TEST(DeviceScannerTest, MissingUmadKeepsDeviceAndWarnsPerPort) {
  TempDir tmp;
  NodeSpec spec = TwoRoce();
  spec.ib_devices[0].ports[0].mad = false;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(spec, tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0", "mlx5_1"));
  EXPECT_FALSE(inv.devices[0].ports[0].umad.has_value());
  EXPECT_FALSE(inv.devices[0].ports[0].issm.has_value());
  EXPECT_TRUE(inv.devices[0].usable());
  // mlx5_1's nodes are umad0/issm0 since mlx5_0 made none.
  ExpectCharDevice(inv.devices[1].ports[0].umad, "umad0", 231, 0, node.dev_root());
  EXPECT_THAT(scanner.Warnings(),
              ElementsAre("ibdev=mlx5_0 port=1 has no issm device (ib_umad not loaded?)",
                          "ibdev=mlx5_0 port=1 has no umad device (ib_umad not loaded?)"));
}

// One corruption of mlx5_1's tree; mlx5_0 must survive it.
struct MalformedCase {
  std::string name;
  std::function<void(const FakeNode&, const std::string& ib_dir, const std::string& fn_dir)>
      corrupt;
  std::string message;
};

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class MalformedDeviceTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedDeviceTest, BadDeviceSkippedWithOneWarningOthersKept) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  ASSERT_OK_AND_ASSIGN(std::string ib_dir, node.IbDeviceDir("mlx5_1"));
  ASSERT_OK_AND_ASSIGN(std::string fn_dir, node.PciFunctionDir("0000:0c:00.0"));
  GetParam().corrupt(node, ib_dir, fn_dir);
  LogCapture logs;
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_OK_AND_ASSIGN(NodeInventory again, scanner.Scan());
  EXPECT_EQ(inv, again);
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0"));
  EXPECT_TRUE(inv.devices[0].usable());
  EXPECT_THAT(scanner.Warnings(), ElementsAre(HasSubstr("ibdev=mlx5_1 skipped: ")));
  EXPECT_THAT(scanner.Warnings(), ElementsAre(HasSubstr(GetParam().message)));
  EXPECT_EQ(logs.Count("ibdev=mlx5_1 skipped"), 1) << logs.text();
}

void Replace(const std::string& path, const std::string& content) {
  ::unlink(path.c_str());
  WriteTestFile(path, content);
}

void Relink(const std::string& link, const std::string& target) {
  ::unlink(link.c_str());
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link;
}

INSTANTIATE_TEST_SUITE_P(
    Corruptions, MalformedDeviceTest,
    ::testing::Values(MalformedCase{"GarbageNumaNode",
                                    [](const FakeNode&, const std::string&, const std::string& fn) {
                                      Replace(fn + "/numa_node", "zero\n");
                                    },
                                    "'zero' is not a decimal integer"},
                      MalformedCase{"GarbageVendor",
                                    [](const FakeNode&, const std::string&, const std::string& fn) {
                                      Replace(fn + "/vendor", "0x15g3\n");
                                    },
                                    "'0x15g3' is not a 0x-prefixed 4-digit hex id"},
                      MalformedCase{"TruncatedUverbsDev",
                                    [](const FakeNode& n, const std::string&, const std::string&) {
                                      Replace(n.sys_root() + "/class/infiniband_verbs/uverbs1/dev",
                                              "231:");
                                    },
                                    "'231:' is not a major:minor device number"},
                      MalformedCase{"EmptyUmadDev",
                                    [](const FakeNode& n, const std::string&, const std::string&) {
                                      Replace(n.sys_root() + "/class/infiniband_mad/umad1/dev", "");
                                    },
                                    "umad1/dev: '' is not a major:minor"},
                      MalformedCase{"TruncatedPortState",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      Replace(ib + "/ports/1/state", "4:");
                                    },
                                    "'4:' is not '<number>: <name>'"},
                      MalformedCase{"GarbageLinkLayer",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      Replace(ib + "/ports/1/link_layer", "Etherknet\n");
                                    },
                                    "'Etherknet' is not a link layer"},
                      MalformedCase{"GarbageMadPort",
                                    [](const FakeNode& n, const std::string&, const std::string&) {
                                      Replace(n.sys_root() + "/class/infiniband_mad/issm1/port",
                                              "one\n");
                                    },
                                    "'one' is not a port number"},
                      MalformedCase{"DanglingDeviceLink",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      Relink(ib + "/device", "../../../0000:0c:00.7");
                                    },
                                    "resolving parent link"},
                      MalformedCase{"MissingDeviceLink",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      ASSERT_EQ(::unlink((ib + "/device").c_str()), 0);
                                    },
                                    "has no `device` link to its parent"},
                      MalformedCase{"DeviceLinkLoop",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      Relink(ib + "/device", "device");
                                    },
                                    "Too many levels of symbolic links"},
                      MalformedCase{"MissingPortsDir",
                                    [](const FakeNode&, const std::string& ib, const std::string&) {
                                      testing::RemoveTree(ib + "/ports");
                                    },
                                    "ports"}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

TEST(MalformedDeviceTest, ClassLinkLoopAlsoSkipsTheLoopEntry) {
  // The second link of a loop is itself an "ibdev" entry; it must be skipped, not returned.
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  std::string cls = node.sys_root() + "/class/infiniband/";
  ::unlink((cls + "mlx5_1").c_str());
  ASSERT_EQ(::symlink("loop_b", (cls + "mlx5_1").c_str()), 0);
  ASSERT_EQ(::symlink("mlx5_1", (cls + "loop_b").c_str()), 0);
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  EXPECT_THAT(Names(inv), ElementsAre("mlx5_0"));
  EXPECT_THAT(scanner.Warnings(),
              ElementsAre(HasSubstr("ibdev=loop_b skipped"), HasSubstr("ibdev=mlx5_1 skipped")));
}

// A broken /dev node keeps the device (unusable when it is the uverbs node) with a warning.
struct DevNodeCase {
  std::string name;
  std::function<void(const std::string& node_path)> corrupt;
  std::string message;
};

void PrintTo(const DevNodeCase& c, std::ostream* os) { *os << c.name; }

class DevNodeProblemTest : public ::testing::TestWithParam<DevNodeCase> {};

TEST_P(DevNodeProblemTest, DeviceKeptNotPresentWithWarning) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  std::string path = node.dev_root() + "/infiniband/uverbs1";
  GetParam().corrupt(path);
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0", "mlx5_1"));
  EXPECT_TRUE(inv.devices[0].usable());
  ExpectCharDevice(inv.devices[1].uverbs, "uverbs1", 231, 193, node.dev_root(),
                   /*present=*/false);
  EXPECT_FALSE(inv.devices[1].usable());
  EXPECT_THAT(scanner.Warnings(),
              ElementsAre("ibdev=mlx5_1 node=uverbs1: " + path + GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Nodes, DevNodeProblemTest,
    ::testing::Values(DevNodeCase{"WrongNumber",
                                  [](const std::string& p) {
                                    ::unlink(p.c_str());
                                    ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0666, makedev(231, 250)),
                                              0);
                                  },
                                  " is 231:250, sysfs says 231:193"},
                      DevNodeCase{"RegularFile",
                                  [](const std::string& p) {
                                    ::unlink(p.c_str());
                                    WriteTestFile(p, "not a device");
                                  },
                                  " is not a character device"},
                      DevNodeCase{"Missing",
                                  [](const std::string& p) { ASSERT_EQ(::unlink(p.c_str()), 0); },
                                  " does not exist"},
                      // A symlink to a node with the right number elsewhere (here: the real
                      // node moved out of infiniband/) must not be followed.
                      DevNodeCase{"SymlinkOutside",
                                  [](const std::string& p) {
                                    std::string outside =
                                        p.substr(0, p.rfind('/')) + "/../uverbs1.moved";
                                    ASSERT_EQ(::rename(p.c_str(), outside.c_str()), 0);
                                    ASSERT_EQ(::symlink(outside.c_str(), p.c_str()), 0);
                                  },
                                  " is a symlink; not used"}),
    [](const ::testing::TestParamInfo<DevNodeCase>& info) { return info.param.name; });

TEST(DeviceScannerTest, UnboundDriverReportsEmptyDriver) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  ASSERT_OK(node.UnbindDriver("0000:0c:00.0"));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 2u);
  EXPECT_EQ(inv.devices[0].driver, "mlx5_core");
  EXPECT_EQ(inv.devices[1].driver, "");
}

TEST(DeviceScannerTest, RescanSeesHotplugAndPortChanges) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK(node.RemoveIbDevice("mlx5_0"));
  ASSERT_OK(node.SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled"));
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_1"));
  EXPECT_EQ(inv.devices[0].ports[0].state, "DOWN");
  EXPECT_EQ(inv.devices[0].ports[0].phys_state, "Disabled");
  IbDeviceSpec back;
  back.ibdev = "mlx5_0";
  back.pci_address = "0000:0b:00.0";
  back.ports.push_back(IbPortSpec{});
  ASSERT_OK(node.AddIbDevice(back));
  ASSERT_OK_AND_ASSIGN(inv, scanner.Scan());
  ASSERT_THAT(Names(inv), ElementsAre("mlx5_0", "mlx5_1"));
  // The re-added device takes the lowest free index again, as with the kernel.
  EXPECT_TRUE(inv.devices[0].usable());
  EXPECT_EQ(inv.devices[0].uverbs->name, "uverbs0");
}

TEST(DeviceScannerTest, ConcurrentScansAgree) {
  TempDir tmp;
  NodeSpec spec = TwoRoce();
  spec.rdma_cm.reset();
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(spec, tmp.path()));
  LogCapture logs;
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory expected, scanner.Scan());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto inv = scanner.Scan();
        if (!inv.ok() || !(*inv == expected)) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(logs.Count("node=rdma_cm"), 1) << logs.text();
}

// Health inputs: each mutation of mlx5_1 (0000:0c:00.0, enp12s0f0np0) makes exactly that device
// unhealthy, with its cause; mlx5_0 stays healthy.
struct HealthCase {
  std::string name;
  std::function<void(FakeNode&)> mutate;
  std::string cause;
};

class HealthProblemTest : public ::testing::TestWithParam<HealthCase> {};

TEST_P(HealthProblemTest, MutationMakesOnlyThatDeviceUnhealthyWithItsCause) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory before, scanner.Scan());
  ASSERT_EQ(before.devices.size(), 2u);
  EXPECT_EQ(before.devices[1].HealthProblem(), "");
  GetParam().mutate(node);
  ASSERT_OK_AND_ASSIGN(NodeInventory after, scanner.Scan());
  ASSERT_EQ(after.devices.size(), 2u);
  EXPECT_EQ(after.devices[0].HealthProblem(), "");
  EXPECT_THAT(after.devices[1].HealthProblem(), HasSubstr(GetParam().cause));
}

INSTANTIATE_TEST_SUITE_P(
    Mutations, HealthProblemTest,
    ::testing::Values(
        HealthCase{
            "PortDown",
            [](FakeNode& n) { ASSERT_OK(n.SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled")); },
            "port 1 DOWN"},
        HealthCase{"NetdevDown",
                   [](FakeNode& n) { ASSERT_OK(n.SetNetdevState("enp12s0f0np0", "down", 0)); },
                   "netdev enp12s0f0np0 operstate=down carrier=0"},
        HealthCase{"NoCarrier",
                   [](FakeNode& n) { ASSERT_OK(n.SetNetdevState("enp12s0f0np0", "up", 0)); },
                   "netdev enp12s0f0np0 operstate=up carrier=0"},
        HealthCase{"UverbsNodeRemoved", [](FakeNode& n) { ASSERT_OK(n.RemoveDevNode("uverbs1")); },
                   "uverbs node "},
        HealthCase{"DriverUnbound", [](FakeNode& n) { ASSERT_OK(n.UnbindDriver("0000:0c:00.0")); },
                   "PCI function 0000:0c:00.0 has no driver bound"}),
    [](const ::testing::TestParamInfo<HealthCase>& info) { return info.param.name; });

TEST(DeviceScannerTest, NetdevStatesFollowTheNetdevList) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  ASSERT_OK(node.SetNetdevState("enp11s0f0np0", "lowerlayerdown", 0));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices[0].netdev_states.size(), 1u);
  EXPECT_EQ(inv.devices[0].netdev_states[0], (NetdevState{"enp11s0f0np0", "lowerlayerdown", 0}));
  EXPECT_EQ(inv.devices[1].netdev_states[0], (NetdevState{"enp12s0f0np0", "up", 1}));
}

TEST(NetdevStateTest, UpNeedsUpOrUnknownOperstateAndNoMissingCarrier) {
  EXPECT_TRUE((NetdevState{"a", "up", 1}).up());
  EXPECT_TRUE((NetdevState{"a", "unknown", -1}).up());
  EXPECT_TRUE((NetdevState{"a", "", -1}).up());
  EXPECT_FALSE((NetdevState{"a", "up", 0}).up());
  EXPECT_FALSE((NetdevState{"a", "down", 1}).up());
  EXPECT_FALSE((NetdevState{"a", "dormant", 1}).up());
}

TEST(HealthProblemTest, InfiniBandPortIgnoresItsIpoibNetdev) {
  RdmaDevice d;
  d.ibdev = "mlx5_0";
  d.uverbs = CharDevice{"uverbs0", 231, 192, "/dev/infiniband/uverbs0", true};
  RdmaPort p;
  p.number = 1;
  p.state = "ACTIVE";
  p.link_layer = LinkLayer::kInfiniBand;
  d.ports.push_back(p);
  d.netdevs = {"ib0"};
  d.netdev_states = {NetdevState{"ib0", "down", 0}};
  EXPECT_EQ(d.HealthProblem(), "");
  d.ports[0].link_layer = LinkLayer::kEthernet;
  EXPECT_THAT(d.HealthProblem(), HasSubstr("netdev ib0 operstate=down"));
}

// A tampered tree claiming uverbs1 is 1:1 (/dev/mem), with a matching node: never usable.
TEST(DeviceScannerTest, ForeignDeviceNumberIsNeverUsable) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(TwoRoce(), tmp.path()));
  std::string attr = node.sys_root() + "/class/infiniband_verbs/uverbs1/dev";
  WriteTestFile(attr, "1:1\n");
  std::string path = node.dev_root() + "/infiniband/uverbs1";
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0600, makedev(1, 1)), 0);
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  ASSERT_EQ(inv.devices.size(), 2u);
  EXPECT_FALSE(inv.devices[1].usable());
  EXPECT_THAT(scanner.Warnings(),
              ElementsAre("ibdev=mlx5_1 node=uverbs1: device number 1:1 is not an RDMA device's; "
                          "not used"));
}

}  // namespace
}  // namespace rdmashare::rdma
