#include "tools/fakenode/fake_node.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::fakenode {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Attr(const std::string& path) {
  auto v = ReadAttr(path);
  return v.ok() ? *v : "<" + std::string(v.status().message()) + ">";
}

std::string Link(const std::string& path) {
  auto v = ReadLink(path);
  return v.ok() ? *v : "<" + std::string(v.status().message()) + ">";
}

// "M:m" of a char device node, "not-chr" otherwise.
std::string CharDev(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  if (!S_ISCHR(st.st_mode)) return "not-chr";
  return fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
}

bool IsSymlink(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

TEST(FakeNodeTest, EveryPresetBuildsAndIsFoundByName) {
  for (const std::string& name : PresetNames()) {
    SCOPED_TRACE(name);
    TempDir tmp;
    ASSERT_OK_AND_ASSIGN(NodeSpec spec, PresetByName(name));
    ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(spec, tmp.Sub("node")));
    EXPECT_EQ(node.sys_root(), tmp.Sub("node/sys"));
    EXPECT_EQ(node.dev_root(), tmp.Sub("node/dev"));
    EXPECT_TRUE(PathExists(node.sys_root() + "/class/net/eth0"));
  }
}

TEST(FakeNodeTest, UnknownPresetNameIsInvalidArgumentListingValidNames) {
  EXPECT_THAT(PresetByName("bogus"), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("unknown preset 'bogus' (valid: ")));
}

TEST(FakeNodeTest, ClassInfinibandLinkIsRelativeIntoPcieHierarchy) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  EXPECT_EQ(Link(node.sys_root() + "/class/infiniband/mlx5_0"),
            "../../devices/pci0000:00/0000:00:01.0/0000:30:00.0/0000:31:00.0/0000:0b:00.0/"
            "infiniband/mlx5_0");
  EXPECT_EQ(Link(node.sys_root() + "/class/infiniband/mlx5_7"),
            "../../devices/pci0000:00/0000:00:08.0/0000:3e:00.0/0000:3f:00.0/0000:12:00.0/"
            "infiniband/mlx5_7");
}

TEST(FakeNodeTest, PciFunctionHasDriverSubsystemAndBusLinks) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  std::string fn =
      node.sys_root() + "/devices/pci0000:00/0000:00:01.0/0000:30:00.0/0000:31:00.0/0000:0b:00.0";
  EXPECT_EQ(Link(fn + "/driver"), "../../../../../../bus/pci/drivers/mlx5_core");
  EXPECT_EQ(Link(fn + "/subsystem"), "../../../../../../bus/pci");
  EXPECT_EQ(Link(node.sys_root() + "/bus/pci/devices/0000:0b:00.0"),
            "../../../devices/pci0000:00/0000:00:01.0/0000:30:00.0/0000:31:00.0/0000:0b:00.0");
  EXPECT_EQ(Link(node.sys_root() + "/bus/pci/drivers/mlx5_core/0000:0b:00.0"),
            "../../../../devices/pci0000:00/0000:00:01.0/0000:30:00.0/0000:31:00.0/0000:0b:00.0");
  EXPECT_EQ(Attr(fn + "/vendor"), "0x15b3");
  EXPECT_EQ(Attr(fn + "/device"), "0x1017");
  EXPECT_EQ(Attr(fn + "/class"), "0x020000");
  EXPECT_EQ(Attr(fn + "/numa_node"), "0");
  EXPECT_EQ(Link(fn + "/infiniband/mlx5_0/device"), "../../../0000:0b:00.0");
}

TEST(FakeNodeTest, NetdevAttributesAndClassLink) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  std::string nd = node.sys_root() + "/class/net/enp18s0f0np0";
  EXPECT_THAT(Link(nd), StartsWith("../../devices/pci0000:00/0000:00:08.0/"));
  EXPECT_EQ(Attr(nd + "/operstate"), "up");
  EXPECT_EQ(Attr(nd + "/carrier"), "1");
  EXPECT_EQ(Attr(nd + "/mtu"), "1500");
  EXPECT_EQ(Attr(nd + "/type"), "1");
  EXPECT_EQ(Attr(nd + "/address"), "0c:42:a1:00:00:08");
  EXPECT_EQ(Attr(nd + "/ifindex"), "10");
  EXPECT_EQ(Attr(nd + "/device/vendor"), "0x15b3");
}

TEST(FakeNodeTest, RailGpuAndNicShareTheSwitchAndNuma) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  for (int k = 1; k <= 8; ++k) {
    SCOPED_TRACE(k);
    ASSERT_OK_AND_ASSIGN(std::string nic,
                         node.PciFunctionDir(fmt::format("0000:{:02x}:00.0", 0x0a + k)));
    ASSERT_OK_AND_ASSIGN(std::string gpu,
                         node.PciFunctionDir(fmt::format("0000:{:02x}:00.0", 0x1a + k)));
    // endpoint -> downstream port -> switch upstream port: the upstream port is common.
    std::string nic_up = nic.substr(0, nic.rfind('/'));
    nic_up = nic_up.substr(0, nic_up.rfind('/'));
    EXPECT_THAT(gpu, StartsWith(nic_up + "/"));
    EXPECT_EQ(Attr(nic_up + "/class"), "0x060400");
    EXPECT_EQ(Attr(gpu + "/vendor"), "0x10de");
    EXPECT_EQ(Attr(gpu + "/device"), "0x20b5");
    EXPECT_EQ(Attr(gpu + "/class"), "0x030200");
    EXPECT_EQ(Attr(gpu + "/numa_node"), k <= 4 ? "0" : "1");
    EXPECT_EQ(Attr(nic + "/numa_node"), k <= 4 ? "0" : "1");
  }
}

TEST(FakeNodeTest, CharDevicesCarryTheNumbersOfTheirSysfsDevFiles) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    std::string dev = node.dev_root() + "/infiniband/";
    std::string cls = node.sys_root() + "/class/";
    EXPECT_EQ(CharDev(dev + fmt::format("uverbs{}", i)), fmt::format("231:{}", 192 + i));
    EXPECT_EQ(Attr(cls + fmt::format("infiniband_verbs/uverbs{}/dev", i)),
              fmt::format("231:{}", 192 + i));
    EXPECT_EQ(Attr(cls + fmt::format("infiniband_verbs/uverbs{}/ibdev", i)),
              fmt::format("mlx5_{}", i));
    EXPECT_EQ(CharDev(dev + fmt::format("umad{}", i)), fmt::format("231:{}", i));
    EXPECT_EQ(Attr(cls + fmt::format("infiniband_mad/umad{}/dev", i)), fmt::format("231:{}", i));
    EXPECT_EQ(CharDev(dev + fmt::format("issm{}", i)), fmt::format("231:{}", 64 + i));
    EXPECT_EQ(Attr(cls + fmt::format("infiniband_mad/issm{}/port", i)), "1");
  }
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/rdma_cm"), "10:58");
  EXPECT_EQ(Attr(node.sys_root() + "/class/misc/rdma_cm/dev"), "10:58");
  EXPECT_EQ(Link(node.sys_root() + "/class/misc/rdma_cm"), "../../devices/virtual/misc/rdma_cm");
}

TEST(FakeNodeTest, PortAttributesAndGidTable) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  std::string port = node.sys_root() + "/class/infiniband/mlx5_3/ports/1";
  EXPECT_EQ(Attr(port + "/state"), "4: ACTIVE");
  EXPECT_EQ(Attr(port + "/phys_state"), "5: LinkUp");
  EXPECT_EQ(Attr(port + "/link_layer"), "Ethernet");
  ASSERT_OK_AND_ASSIGN(auto gids, ListDir(port + "/gids"));
  EXPECT_EQ(gids.size(), 16u);
  EXPECT_EQ(Attr(port + "/gid_attrs/ndevs/0"), "enp14s0f0np0");
  EXPECT_EQ(Attr(port + "/gid_attrs/types/1"), "RoCE v2");
  EXPECT_EQ(Attr(port + "/gid_attrs/ndevs/2"), "");
  EXPECT_THAT(Attr(port + "/gids/0"), StartsWith("fe80:0000:0000:0000:0c42:a103:0000:"));
}

TEST(FakeNodeTest, EverySymlinkIsRelativeAndResolves) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(DualPortIb(), tmp.path()));
  static std::vector<std::string>* bad = nullptr;
  static int links = 0;
  std::vector<std::string> problems;
  bad = &problems;
  links = 0;
  ::nftw(
      node.sys_root().c_str(),
      [](const char* p, const struct stat*, int type, struct FTW*) -> int {
        if (type != FTW_SL && type != FTW_SLN) return 0;
        ++links;
        std::string target = Link(p);
        if (target.empty() || target[0] == '/') bad->push_back(std::string(p) + " absolute");
        if (type == FTW_SLN) bad->push_back(std::string(p) + " dangling");
        return 0;
      },
      32, FTW_PHYS);
  EXPECT_THAT(problems, ::testing::IsEmpty());
  EXPECT_GT(links, 20);
}

TEST(FakeNodeTest, DualPortIbHasUmadAndIssmPerPortAndIpoibNetdevs) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(DualPortIb(), tmp.path()));
  std::string mad = node.sys_root() + "/class/infiniband_mad/";
  for (int p = 1; p <= 2; ++p) {
    SCOPED_TRACE(p);
    EXPECT_EQ(Attr(mad + fmt::format("umad{}/port", p - 1)), std::to_string(p));
    EXPECT_EQ(Attr(mad + fmt::format("issm{}/port", p - 1)), std::to_string(p));
    EXPECT_EQ(Attr(mad + fmt::format("umad{}/ibdev", p - 1)), "mlx5_0");
    EXPECT_EQ(CharDev(node.dev_root() + fmt::format("/infiniband/issm{}", p - 1)),
              fmt::format("231:{}", 64 + p - 1));
    EXPECT_EQ(Attr(node.sys_root() + fmt::format("/class/net/ib{}/type", p - 1)), "32");
    EXPECT_EQ(
        Attr(node.sys_root() + fmt::format("/class/infiniband/mlx5_0/ports/{}/link_layer", p)),
        "InfiniBand");
  }
}

TEST(FakeNodeTest, VirtualIbdevLivesUnderDevicesVirtualWithoutDeviceLink) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(SoftRoce(), tmp.path()));
  EXPECT_EQ(Link(node.sys_root() + "/class/infiniband/rxe0"),
            "../../devices/virtual/infiniband/rxe0");
  EXPECT_FALSE(IsSymlink(node.sys_root() + "/class/infiniband/rxe0/device"));
  EXPECT_EQ(Attr(node.sys_root() + "/class/infiniband/rxe0/ports/1/gid_attrs/ndevs/0"), "eth0");
  EXPECT_EQ(Link(node.sys_root() + "/class/infiniband_verbs/uverbs0"),
            "../../devices/virtual/infiniband_verbs/uverbs0");
}

TEST(FakeNodeTest, NoRdmaCmPresetHasNeitherSysfsNorDevNode) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(NoRdmaCm(), tmp.path()));
  EXPECT_FALSE(PathExists(node.sys_root() + "/class/misc/rdma_cm"));
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/rdma_cm"), "missing");
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/uverbs0"), "231:192");
}

TEST(FakeNodeTest, DynamicMajorPresetUsesTheGivenNumber) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(DynamicMajor(), tmp.path()));
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/uverbs0"), "511:0");
  EXPECT_EQ(Attr(node.sys_root() + "/class/infiniband_verbs/uverbs0/dev"), "511:0");
}

TEST(FakeNodeTest, RemoveIbDeviceRemovesAllItsEntriesAndKeepsOthers) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  ASSERT_OK_AND_ASSIGN(std::string ib_dir, node.IbDeviceDir("mlx5_2"));
  ASSERT_OK(node.RemoveIbDevice("mlx5_2"));
  std::string s = node.sys_root(), d = node.dev_root();
  EXPECT_FALSE(IsSymlink(s + "/class/infiniband/mlx5_2"));
  EXPECT_FALSE(PathExists(ib_dir));
  EXPECT_FALSE(IsSymlink(s + "/class/infiniband_verbs/uverbs2"));
  EXPECT_FALSE(IsSymlink(s + "/class/infiniband_mad/umad2"));
  EXPECT_FALSE(IsSymlink(s + "/class/infiniband_mad/issm2"));
  EXPECT_EQ(CharDev(d + "/infiniband/uverbs2"), "missing");
  EXPECT_EQ(CharDev(d + "/infiniband/umad2"), "missing");
  EXPECT_EQ(CharDev(d + "/infiniband/issm2"), "missing");
  // The PCI function and its netdev stay, like after `rmmod mlx5_ib`.
  EXPECT_TRUE(PathExists(s + "/class/net/enp13s0f0np0"));
  EXPECT_TRUE(PathExists(s + "/class/infiniband/mlx5_1"));
  EXPECT_EQ(CharDev(d + "/infiniband/uverbs3"), "231:195");
}

TEST(FakeNodeTest, RemoveUnknownIbDeviceIsNotFound) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(PlainNic(), tmp.path()));
  EXPECT_THAT(node.RemoveIbDevice("mlx5_9"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("mlx5_9")));
}

TEST(FakeNodeTest, SetPortStateRewritesStateFiles) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(DualPortIb(), tmp.path()));
  ASSERT_OK(node.SetPortState("mlx5_0", 2, "1: DOWN", "3: Disabled"));
  std::string p = node.sys_root() + "/class/infiniband/mlx5_0/ports/";
  EXPECT_EQ(Attr(p + "2/state"), "1: DOWN");
  EXPECT_EQ(Attr(p + "2/phys_state"), "3: Disabled");
  EXPECT_EQ(Attr(p + "1/state"), "4: ACTIVE");
  EXPECT_THAT(node.SetPortState("mlx5_0", 3, "1: DOWN", "3: Disabled"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no port 3")));
}

TEST(FakeNodeTest, SetNetdevStateRewritesOperstateAndCarrier) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(NoRdmaCm(), tmp.path()));
  ASSERT_OK(node.SetNetdevState("enp11s0f0np0", "down", 0));
  EXPECT_EQ(Attr(node.sys_root() + "/class/net/enp11s0f0np0/operstate"), "down");
  EXPECT_EQ(Attr(node.sys_root() + "/class/net/enp11s0f0np0/carrier"), "0");
  EXPECT_THAT(node.SetNetdevState("nope0", "down", 0),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope0")));
}

TEST(FakeNodeTest, RemoveDevNodeDeletesOnlyThatNode) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(NoRdmaCm(), tmp.path()));
  ASSERT_OK(node.RemoveDevNode("uverbs0"));
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/uverbs0"), "missing");
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/umad0"), "231:0");
  EXPECT_TRUE(PathExists(node.sys_root() + "/class/infiniband_verbs/uverbs0/dev"));
  EXPECT_THAT(node.RemoveDevNode("uverbs0"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(FakeNodeTest, UnbindDriverRemovesDriverLinkAndDriverEntry) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(NoRdmaCm(), tmp.path()));
  ASSERT_OK(node.UnbindDriver("0000:0b:00.0"));
  ASSERT_OK_AND_ASSIGN(std::string fn, node.PciFunctionDir("0000:0b:00.0"));
  EXPECT_FALSE(IsSymlink(fn + "/driver"));
  EXPECT_FALSE(IsSymlink(node.sys_root() + "/bus/pci/drivers/mlx5_core/0000:0b:00.0"));
  EXPECT_TRUE(IsSymlink(node.sys_root() + "/bus/pci/drivers/igb/0000:03:00.0"));
  EXPECT_THAT(node.UnbindDriver("0000:0b:00.0"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no driver bound")));
}

TEST(FakeNodeTest, AddDeviceToExistingTreeTakesLowestFreeNodeIndices) {
  TempDir tmp;
  ASSERT_OK(FakeNode::Build(Walkthrough8Rail(), tmp.path()).status());
  // Reopen as a later test (or another process) would.
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Open(tmp.path()));
  PciFunctionSpec fn;
  fn.address = "0000:c1:00.0";
  fn.numa_node = "1";
  fn.driver = "mlx5_core";
  fn.netdevs.push_back(NetdevSpec{"enp193s0f0np0", "0c:42:a1:00:00:99", 1, 9000, 40, "up", 1});
  ASSERT_OK(node.AddPciFunction(fn));
  IbDeviceSpec ib;
  ib.ibdev = "mlx5_8";
  ib.pci_address = fn.address;
  ib.ports.push_back(IbPortSpec{});
  ASSERT_OK(node.AddIbDevice(ib));
  EXPECT_EQ(Link(node.sys_root() + "/bus/pci/devices/0000:c1:00.0"),
            "../../../devices/pci0000:c1/0000:c1:00.0");
  EXPECT_EQ(Attr(node.sys_root() + "/class/infiniband_verbs/uverbs8/ibdev"), "mlx5_8");
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/uverbs8"), "231:200");
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/umad8"), "231:8");
  EXPECT_EQ(CharDev(node.dev_root() + "/infiniband/issm8"), "231:72");
  // A slot freed by a removal is reused.
  ASSERT_OK(node.RemoveIbDevice("mlx5_3"));
  ib.ibdev = "mlx5_9";
  ASSERT_OK(node.AddIbDevice(ib));
  EXPECT_EQ(Attr(node.sys_root() + "/class/infiniband_verbs/uverbs3/ibdev"), "mlx5_9");
  EXPECT_EQ(Attr(node.sys_root() + "/class/infiniband_mad/umad3/ibdev"), "mlx5_9");
}

TEST(FakeNodeTest, BadSpecsAreInvalidArgument) {
  struct Case {
    std::string name;
    PciFunctionSpec fn;
    std::string message;
  };
  PciFunctionSpec bad_addr;
  bad_addr.address = "0b:00.0";
  PciFunctionSpec orphan;
  orphan.address = "0000:44:00.0";
  orphan.parent = "0000:43:00.0";
  PciFunctionSpec dup;
  dup.address = "0000:03:00.0";
  PciFunctionSpec bad_netdev;
  bad_netdev.address = "0000:45:00.0";
  NetdevSpec slash;
  slash.name = "a/b";
  bad_netdev.netdevs.push_back(slash);
  for (const Case& c : std::vector<Case>{
           {"bad address", bad_addr, "'0b:00.0' is not dddd:bb:dd.f"},
           {"unknown parent", orphan, "parent 0000:43:00.0 of PCI function 0000:44:00.0"},
           {"duplicate", dup, "0000:03:00.0 already exists"},
           {"bad netdev", bad_netdev, "bad netdev name 'a/b'"},
       }) {
    SCOPED_TRACE(c.name);
    TempDir tmp;
    ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(PlainNic(), tmp.path()));
    EXPECT_THAT(node.AddPciFunction(c.fn),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(FakeNodeTest, AddIbDeviceRejectsDuplicatesAndUnknownFunctions) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(NoRdmaCm(), tmp.path()));
  IbDeviceSpec dup;
  dup.ibdev = "mlx5_0";
  EXPECT_THAT(node.AddIbDevice(dup),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mlx5_0 already exists")));
  IbDeviceSpec orphan;
  orphan.ibdev = "mlx5_5";
  orphan.pci_address = "0000:77:00.0";
  EXPECT_THAT(node.AddIbDevice(orphan),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0000:77:00.0")));
}

TEST(FakeNodeTest, OpenOfDirectoryWithoutTreeIsNotFound) {
  TempDir tmp;
  EXPECT_THAT(FakeNode::Open(tmp.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no fake node")));
}

// Runs the binary with `args`; returns the exit code and fills stdout/stderr.
int RunFakenode(const std::vector<std::string>& args, const TempDir& tmp, std::string* out,
                std::string* err) {
  std::string out_path = tmp.Sub("stdout"), err_path = tmp.Sub("stderr");
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    std::string bin = RS_FAKENODE_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  *out = ReadFile(out_path).value_or("");
  *err = ReadFile(err_path).value_or("");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FakeNodeBinaryTest, BadFlagsExitTwoWithMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "missing --preset"},
           {{"--preset", "plain-nic"}, "missing --root"},
           {{"--root", "/tmp/x"}, "missing --preset"},
           {{"--preset"}, "flag --preset needs a value"},
           {{"--preset=", "--root", "/tmp/x"}, "needs a non-empty value"},
           {{"--frobnicate"}, "unknown flag '--frobnicate'"},
           {{"--preset", "nope", "--root", "/tmp/x"}, "unknown preset 'nope'"},
       }) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    TempDir tmp;
    std::string out, err;
    EXPECT_EQ(RunFakenode(c.args, tmp, &out, &err), 2);
    EXPECT_THAT(err, HasSubstr(c.message));
    EXPECT_THAT(err, HasSubstr("usage: rdmashare-fakenode"));
    EXPECT_EQ(out, "");
  }
}

TEST(FakeNodeBinaryTest, WritesPresetAndPrintsRoots) {
  TempDir tmp;
  std::string out, err;
  ASSERT_EQ(RunFakenode({"--preset=walkthrough-8rail", "--root", tmp.Sub("n")}, tmp, &out, &err), 0)
      << err;
  EXPECT_EQ(out, fmt::format("sys_root={0}/n/sys\ndev_root={0}/n/dev\n", tmp.path()));
  EXPECT_EQ(CharDev(tmp.Sub("n/dev/infiniband/uverbs7")), "231:199");
}

}  // namespace
TEST(FakeNodeTest, PointNetdevAtFollowsARealDirectory) {
  TempDir tmp;
  ASSERT_OK_AND_ASSIGN(FakeNode node, FakeNode::Build(Walkthrough8Rail(), tmp.path()));
  std::string real = tmp.Sub("realnet");
  ASSERT_OK(MakeDirs(real));
  ASSERT_OK(WriteFileAtomic(real + "/operstate", "down\n", 0644));
  ASSERT_OK(node.PointNetdevAt("enp11s0f0np0", real));
  ASSERT_OK_AND_ASSIGN(std::string state,
                       ReadAttr(node.sys_root() + "/class/net/enp11s0f0np0/operstate"));
  EXPECT_EQ(state, "down");
  EXPECT_THAT(node.PointNetdevAt("enp11s0f0np0", "relative/dir"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an absolute directory")));
  EXPECT_THAT(node.PointNetdevAt("nosuch0", real), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace rdmashare::fakenode
