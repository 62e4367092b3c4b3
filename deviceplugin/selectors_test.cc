#include "deviceplugin/selectors.h"

#include <ostream>
#include <string>
#include <vector>

#include "deviceplugin/test_inventory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

rdma::RdmaPort Port(int number, rdma::LinkLayer layer) {
  rdma::RdmaPort port;
  port.number = number;
  port.state = "ACTIVE";
  port.link_layer = layer;
  return port;
}

// A ConnectX-5 in Ethernet mode with netdev enp11s0f0np0.
rdma::RdmaDevice Cx5Eth() {
  rdma::RdmaDevice d;
  d.ibdev = "mlx5_0";
  d.pci_address = "0000:0b:00.0";
  d.vendor_id = "15b3";
  d.device_id = "1017";
  d.driver = "mlx5_core";
  d.netdevs = {"enp11s0f0np0"};
  d.ports = {Port(1, rdma::LinkLayer::kEthernet)};
  return d;
}

// A ConnectX-6 in InfiniBand mode with two netdevs (IPoIB child).
rdma::RdmaDevice Cx6Ib() {
  rdma::RdmaDevice d;
  d.ibdev = "mlx5_1";
  d.pci_address = "0000:0c:00.0";
  d.vendor_id = "15b3";
  d.device_id = "101b";
  d.driver = "mlx5_core";
  d.netdevs = {"ib0", "ib0.8001"};
  d.ports = {Port(1, rdma::LinkLayer::kInfiniBand)};
  return d;
}

// A dual-port device whose ports run different link layers (mlx4 VPI).
rdma::RdmaDevice Vpi() {
  rdma::RdmaDevice d;
  d.ibdev = "mlx4_0";
  d.pci_address = "0000:0d:00.0";
  d.vendor_id = "15b3";
  d.device_id = "1007";
  d.driver = "mlx4_core";
  d.netdevs = {"ens4", "ib1"};
  d.ports = {Port(1, rdma::LinkLayer::kInfiniBand), Port(2, rdma::LinkLayer::kEthernet)};
  return d;
}

// A soft-RoCE device: no PCI parent, no driver, unknown link layer.
rdma::RdmaDevice Rxe() {
  rdma::RdmaDevice d;
  d.ibdev = "rxe0";
  d.netdevs = {"eth0"};
  d.ports = {Port(1, rdma::LinkLayer::kUnknown)};
  return d;
}

struct MatchCase {
  std::string name;
  Selectors selectors;
  rdma::RdmaDevice device;
  bool want;
};

void PrintTo(const MatchCase& c, std::ostream* os) { *os << c.name; }

class SelectorsMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(SelectorsMatchTest, MatchesAsExpected) {
  const MatchCase& c = GetParam();
  EXPECT_EQ(SelectorsMatch(c.selectors, c.device), c.want);
}

Selectors Vendors(std::vector<std::string> v) {
  Selectors s;
  s.vendors = std::move(v);
  return s;
}
Selectors DeviceIds(std::vector<std::string> v) {
  Selectors s;
  s.device_ids = std::move(v);
  return s;
}
Selectors Drivers(std::vector<std::string> v) {
  Selectors s;
  s.drivers = std::move(v);
  return s;
}
Selectors IfNames(std::vector<std::string> v) {
  Selectors s;
  s.if_names = std::move(v);
  return s;
}
Selectors LinkTypes(std::vector<std::string> v) {
  Selectors s;
  s.link_types = std::move(v);
  return s;
}
Selectors With(Selectors s, const Selectors& more) {
  if (!more.vendors.empty()) s.vendors = more.vendors;
  if (!more.device_ids.empty()) s.device_ids = more.device_ids;
  if (!more.drivers.empty()) s.drivers = more.drivers;
  if (!more.if_names.empty()) s.if_names = more.if_names;
  if (!more.link_types.empty()) s.link_types = more.link_types;
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SelectorsMatchTest,
    ::testing::ValuesIn(std::vector<MatchCase>{
        {"EmptySelectorsMatchNothing", Selectors{}, Cx5Eth(), false},
        {"VendorMatches", Vendors({"15b3"}), Cx5Eth(), true},
        {"VendorDiffers", Vendors({"8086"}), Cx5Eth(), false},
        {"VendorOrInList", Vendors({"8086", "15b3"}), Cx5Eth(), true},
        {"VendorWithHexPrefixOnEitherSide", Vendors({"0x15B3"}), Cx5Eth(), true},
        {"VendorNeverMatchesNonPciDevice", Vendors({"15b3"}), Rxe(), false},
        {"DeviceIdMatches", DeviceIds({"1017"}), Cx5Eth(), true},
        {"DeviceIdDiffers", DeviceIds({"1017"}), Cx6Ib(), false},
        {"DeviceIdOrInList", DeviceIds({"1017", "101b"}), Cx6Ib(), true},
        {"DriverMatches", Drivers({"mlx5_core"}), Cx5Eth(), true},
        {"DriverDiffers", Drivers({"mlx4_core"}), Cx5Eth(), false},
        {"DriverNeverMatchesUnboundDevice", Drivers({""}), Rxe(), false},
        {"IfNameMatchesOnlyNetdev", IfNames({"enp11s0f0np0"}), Cx5Eth(), true},
        {"IfNameDiffers", IfNames({"enp12s0f0np0"}), Cx5Eth(), false},
        {"IfNameMatchesSecondNetdev", IfNames({"ib0.8001"}), Cx6Ib(), true},
        {"IfNameMatchesFirstNetdev", IfNames({"ib0"}), Cx6Ib(), true},
        {"IfNameOrInList", IfNames({"eth9", "ens4"}), Vpi(), true},
        {"IfNameIsExact", IfNames({"ib"}), Cx6Ib(), false},
        {"LinkTypeEther", LinkTypes({"ether"}), Cx5Eth(), true},
        {"LinkTypeEtherRejectsIb", LinkTypes({"ether"}), Cx6Ib(), false},
        {"LinkTypeInfiniband", LinkTypes({"infiniband"}), Cx6Ib(), true},
        {"LinkTypeInfinibandRejectsEther", LinkTypes({"infiniband"}), Cx5Eth(), false},
        {"LinkTypeAnyPortEther", LinkTypes({"ether"}), Vpi(), true},
        {"LinkTypeAnyPortInfiniband", LinkTypes({"infiniband"}), Vpi(), true},
        {"LinkTypeUnknownLayerNeverMatches", LinkTypes({"ether", "infiniband"}), Rxe(), false},
        {"LinkTypeOrInList", LinkTypes({"infiniband", "ether"}), Cx5Eth(), true},
        {"AndAcrossKindsAllMatch",
         With(With(Vendors({"15b3"}), DeviceIds({"1017"})), IfNames({"enp11s0f0np0"})), Cx5Eth(),
         true},
        {"AndAcrossKindsOneFails", With(Vendors({"15b3"}), DeviceIds({"101b"})), Cx5Eth(), false},
        {"AndVendorAndLinkType", With(Vendors({"15b3"}), LinkTypes({"ether"})), Cx6Ib(), false},
        {"AndDriverAndIfName", With(Drivers({"mlx5_core"}), IfNames({"ib0"})), Cx6Ib(), true},
        {"AndAllFiveKinds",
         With(With(With(With(Vendors({"15b3"}), DeviceIds({"1007"})), Drivers({"mlx4_core"})),
                   IfNames({"ib1"})),
              LinkTypes({"ether"})),
         Vpi(), true},
        {"IfNameMatchesSoftRoce", IfNames({"eth0"}), Rxe(), true},
    }),
    [](const ::testing::TestParamInfo<MatchCase>& info) { return info.param.name; });

TEST(SelectorLinkTypeTest, MapsLinkLayers) {
  EXPECT_STREQ(SelectorLinkType(rdma::LinkLayer::kEthernet), "ether");
  EXPECT_STREQ(SelectorLinkType(rdma::LinkLayer::kInfiniBand), "infiniband");
  EXPECT_STREQ(SelectorLinkType(rdma::LinkLayer::kUnknown), "");
}

std::vector<std::string> Ibdevs(const std::vector<rdma::RdmaDevice>& devices) {
  std::vector<std::string> out;
  for (const rdma::RdmaDevice& d : devices) out.push_back(d.ibdev);
  return out;
}

rdma::NodeInventory Inventory() {
  rdma::NodeInventory inv;
  inv.devices = {Vpi(), Cx5Eth(), Cx6Ib(), Rxe()};
  return inv;
}

TEST(SelectDevicesTest, ReturnsSelectedDevicesInInventoryOrder) {
  ResourceConfig rc;
  rc.resource_name = "mlx";
  rc.selectors.vendors = {"15b3"};
  EXPECT_THAT(Ibdevs(SelectDevices(rc, Inventory())), ElementsAre("mlx4_0", "mlx5_0", "mlx5_1"));
}

TEST(SelectDevicesTest, ReturnsWholeRecords) {
  ResourceConfig rc;
  rc.selectors.if_names = {"enp11s0f0np0"};
  EXPECT_THAT(SelectDevices(rc, Inventory()), ElementsAre(Cx5Eth()));
}

TEST(SelectDevicesTest, IncludesUnusableDevices) {
  ResourceConfig rc;
  rc.selectors.if_names = {"eth0"};
  std::vector<rdma::RdmaDevice> got = SelectDevices(rc, Inventory());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].usable());
  EXPECT_EQ(got[0].ibdev, "rxe0");
}

TEST(SelectDevicesTest, EmptySelectorsSelectNothing) {
  ResourceConfig rc;
  EXPECT_THAT(SelectDevices(rc, Inventory()), IsEmpty());
}

TEST(SelectDevicesTest, NoMatchGivesEmptyList) {
  ResourceConfig rc;
  rc.selectors.device_ids = {"a2dc"};
  EXPECT_THAT(SelectDevices(rc, Inventory()), IsEmpty());
}

TEST(SelectDevicesTest, DeprecatedDevicesSelectByNetdevWhenSelectorsAreEmpty) {
  ResourceConfig rc;
  rc.devices = {"ib0", "ens4"};
  EXPECT_THAT(Ibdevs(SelectDevices(rc, Inventory())), ElementsAre("mlx4_0", "mlx5_1"));
}

TEST(SelectDevicesTest, SelectorsTakePrecedenceOverDevices) {
  ResourceConfig rc;
  rc.devices = {"ib0"};
  rc.selectors.if_names = {"enp11s0f0np0"};
  EXPECT_THAT(Ibdevs(SelectDevices(rc, Inventory())), ElementsAre("mlx5_0"));
}

TEST(SelectDevicesTest, DeviceMayBelongToSeveralResources) {
  ResourceConfig by_vendor;
  by_vendor.selectors.vendors = {"15b3"};
  ResourceConfig by_link;
  by_link.selectors.link_types = {"ether"};
  rdma::NodeInventory inv = Inventory();
  EXPECT_THAT(Ibdevs(SelectDevices(by_vendor, inv)), ElementsAre("mlx4_0", "mlx5_0", "mlx5_1"));
  EXPECT_THAT(Ibdevs(SelectDevices(by_link, inv)), ElementsAre("mlx4_0", "mlx5_0"));
}

TEST(EvaluateHealthTest, PolicyAnyNeedsOneHealthyHcaAllNeedsEvery) {
  rdma::RdmaDevice good = testing::TestHca(0, "enp11s0f0np0", 0);
  rdma::RdmaDevice down = testing::TestHca(1, "enp12s0f0np0", 0);
  down.ports[0].state = "DOWN";
  ResourceConfig any, all;
  all.health_policy = HealthPolicy::kAll;
  struct Case {
    const ResourceConfig* rc;
    std::vector<rdma::RdmaDevice> devices;
    ResourceHealth want;
  };
  for (const Case& c : std::vector<Case>{
           {&any, {good, down}, {true, 1, ""}},
           {&all, {good, down}, {false, 1, "mlx5_1: port 1 DOWN"}},
           {&all, {good}, {true, 1, ""}},
           {&any, {down}, {false, 0, "mlx5_1: port 1 DOWN"}},
           {&any, {}, {false, 0, "no HCA matches the selectors"}},
           {&all, {}, {false, 0, "no HCA matches the selectors"}},
       }) {
    EXPECT_EQ(EvaluateHealth(*c.rc, c.devices), c.want)
        << (c.rc == &all ? "all" : "any") << " " << c.devices.size();
  }
}

}  // namespace
}  // namespace rdmashare::deviceplugin
