// A real CDI consumer: podman 4.3 (runc, cgroupfs) reads the spec our writer generates for a
// resource of a fake 8-rail node and injects its char devices into a container.
//
// The pipeline is the device plugin's own: SysfsDeviceScanner on the fake tree -> ResourcePool
// -> CdiEditsForSnapshot -> CdiSpecWriter. Podman 4.3 has no option for the spec directory (it
// reads /etc/cdi and /var/run/cdi), so every podman command runs in a private mount namespace
// where the test's own spec directory is bind-mounted over /var/run/cdi: the host's specs are
// neither seen nor touched, and parallel runs do not interfere. Podman itself runs with private
// storage, config and runtime wrapper in a TempDir and no network.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "deviceplugin/cdi.h"
#include "deviceplugin/config.h"
#include "deviceplugin/resource_pool.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "tests/support/runc_wrapper.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

using ::rdmashare::testing::kRuncWrapperScript;

// Lists every node under /dev/infiniband as "<path> <major hex>:<minor hex>", then tries to
// open each (no driver is behind the fake numbers: ENXIO/ENODEV when the device cgroup allows
// the node, EPERM when it does not), and does the same for a node it makes itself with a number
// that was not granted (the control).
constexpr char kInspectScript[] = R"sh(
/bin/busybox mkdir -p /tmp
for f in /dev/infiniband/*; do /bin/busybox stat -c '%n %t:%T' "$f"; done
for f in /dev/infiniband/*; do
  /bin/busybox head -c1 "$f" >/dev/null 2>/tmp/err; echo "open $(/bin/busybox cat /tmp/err)"
done
/bin/busybox mknod /tmp/ungranted c 231 250
/bin/busybox head -c1 /tmp/ungranted >/dev/null 2>/tmp/err
echo "control $(/bin/busybox cat /tmp/err)"
)sh";

constexpr char kCliContent[] = "#!/bin/sh\necho rdmashare-cli-stand-in\n";

std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::vector<std::string> Lines(const std::string& text, const std::string& prefix = "") {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.rfind(prefix, 0) == 0) out.push_back(line);
    start = nl + 1;
  }
  return out;
}

class CdiPodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mknod of fake char devices, podman)";
    for (const char* tool : {"podman", "runc", "jq", "unshare"}) {
      if (FindInPath(tool).empty()) {
        GTEST_SKIP() << tool << " is not installed; the podman CDI test cannot run";
      }
    }
    if (!PathExists("/bin/busybox")) GTEST_SKIP() << "/bin/busybox (busybox-static) is missing";
    const std::string d = dir_.path();
    auto node = fakenode::FakeNode::Build(fakenode::Walkthrough8Rail(), d + "/node");
    ASSERT_OK(node.status());
    node_ = std::make_unique<fakenode::FakeNode>(*std::move(node));

    kind_ = fmt::format("cditest.rdmashare.io/rails{}", getpid());
    cli_path_ = d + "/rdmashare-cli";
    WriteTestFile(cli_path_, kCliContent);
    ResourceConfig rc;
    rc.resource_prefix = "cditest.rdmashare.io";
    rc.resource_name = fmt::format("rails{}", getpid());
    rc.rdma_hca_max = 4;
    rc.selectors.vendors = {"15b3"};
    rc.mount_cli = true;
    ASSERT_EQ(rc.FullName(), kind_);
    // Podman runs on this host, so the host's view of the fake /dev is the daemon's.
    pool_ = std::make_unique<ResourcePool>(rc, node_->dev_root(), node_->dev_root(), cli_path_);
    writer_ = std::make_unique<CdiSpecWriter>(d + "/cdi");
    // The mount point must exist on the host; it stays empty there.
    ASSERT_OK(MakeDirs(kCdiDefaultDir));
    ASSERT_OK(MakeDirs(writer_->dir()));

    WriteTestFile(d + "/runc-wrap", kRuncWrapperScript);
    ASSERT_EQ(::chmod((d + "/runc-wrap").c_str(), 0755), 0);
    WriteTestFile(d + "/containers.conf",
                  fmt::format("[engine]\ncgroup_manager = \"cgroupfs\"\n"
                              "events_logger = \"file\"\nruntime = \"rswrap\"\n"
                              "[engine.runtimes]\nrswrap = [\"{}/runc-wrap\"]\n",
                              d));
    ASSERT_OK(MakeDirs(d + "/rootfs/bin"));
    ASSERT_OK(MakeDirs(d + "/tmp"));
    Run({"/bin/cp", "/bin/busybox", d + "/rootfs/bin/busybox"});
    Run({FindInPath("tar"), "-C", d + "/rootfs", "-cf", d + "/img.tar", "."});
    Podman({"import", d + "/img.tar", kImage});
    podman_ready_ = true;
  }

  void TearDown() override {
    if (podman_ready_) {
      Podman({"rm", "-af", "-t", "0"}, /*check=*/false);
      Podman({"system", "reset", "-f"}, /*check=*/false);
    }
  }

  RunResult Run(std::vector<std::string> argv, bool check = true) {
    Subprocess::Options o;
    o.argv = std::move(argv);
    o.work_dir = dir_.path();
    RunResult r = RunProgram(o);
    if (check) {
      EXPECT_EQ(r.exit_code, 0) << o.argv[0] << " " << (o.argv.size() > 1 ? o.argv[1] : "")
                                << " failed:\n"
                                << r.out << r.err;
    }
    return r;
  }

  RunResult Podman(std::vector<std::string> args, bool check = true) {
    const std::string d = dir_.path();
    Subprocess::Options o;
    o.argv = {FindInPath("unshare"),
              "--mount",
              "--propagation",
              "private",
              "/bin/sh",
              "-c",
              "mount --bind \"$0\" /var/run/cdi && exec \"$@\"",
              writer_->dir(),
              FindInPath("podman"),
              "--root",
              d + "/root",
              "--runroot",
              d + "/runroot",
              "--tmpdir",
              d + "/tmp",
              "--storage-driver",
              "vfs"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = {{"CONTAINERS_CONF", d + "/containers.conf"}};
    o.work_dir = d;
    RunResult r = RunProgram(o, std::chrono::seconds(120));
    if (check) {
      EXPECT_EQ(r.exit_code, 0) << "podman " << args[0] << " failed:\n" << r.out << r.err;
    }
    return r;
  }

  // Scans the fake node, updates the pool and writes its spec. Returns whether it wrote.
  bool Publish() {
    rdma::SysfsDeviceScanner scanner(node_->paths());
    auto inventory = scanner.Scan();
    EXPECT_OK(inventory.status());
    if (!inventory.ok()) return false;
    pool_->Update(*inventory);
    snapshot_ = pool_->Current();
    auto wrote = writer_->Write(kind_, CdiEditsForSnapshot(*snapshot_, inventory->rdma_cm));
    EXPECT_OK(wrote.status());
    return wrote.ok() && *wrote;
  }

  // "<container path> <major hex>:<minor hex>" for every node of the current snapshot, sorted.
  std::vector<std::string> ExpectedNodes() const {
    std::vector<std::string> out;
    for (const DeviceNode& n : snapshot_->nodes) {
      struct stat st = {};
      EXPECT_EQ(::stat(n.host_path.c_str(), &st), 0) << n.host_path;
      out.push_back(
          fmt::format("{} {:x}:{:x}", n.container_path, major(st.st_rdev), minor(st.st_rdev)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  RunResult RunContainerWithDevice(const std::string& script) {
    return Podman({"run", "--rm", "--network", "none", "--device", CdiQualifiedName(kind_), kImage,
                   "/bin/busybox", "sh", "-c", script});
  }

  static constexpr char kImage[] = "localhost/rscdibusybox";
  TempDir dir_;
  std::unique_ptr<fakenode::FakeNode> node_;
  std::unique_ptr<ResourcePool> pool_;
  std::unique_ptr<CdiSpecWriter> writer_;
  std::shared_ptr<const PoolSnapshot> snapshot_;
  std::string kind_, cli_path_;
  bool podman_ready_ = false;
};

TEST_F(CdiPodmanTest, ContainerGetsEveryCharDeviceOfTheResourceWithItsNumber) {
  ASSERT_TRUE(Publish());
  std::vector<std::string> expected = ExpectedNodes();
  // 8 HCAs: uverbs0-7, umad0-7 (one port each), and rdma_cm.
  ASSERT_EQ(expected.size(), 17u);
  RunResult r = RunContainerWithDevice(kInspectScript);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out, "/dev/infiniband/"), ElementsAreArray(expected)) << r.out;
  EXPECT_THAT(r.out, HasSubstr("/dev/infiniband/uverbs0 e7:c0\n"));
  EXPECT_THAT(r.out, HasSubstr("/dev/infiniband/rdma_cm a:3a\n"));
  // The device cgroup lets the container open what was granted (the open fails only because no
  // driver serves the fake numbers) and still refuses what was not.
  std::vector<std::string> opens = Lines(r.out, "open ");
  EXPECT_EQ(opens.size(), expected.size());
  for (const std::string& o : opens) EXPECT_THAT(o, HasSubstr("No such device")) << o;
  EXPECT_THAT(r.out, HasSubstr("control head: /tmp/ungranted: Operation not permitted"));
}

TEST_F(CdiPodmanTest, CliIsMountedReadOnly) {
  ASSERT_TRUE(Publish());
  RunResult r = RunContainerWithDevice(
      "/bin/busybox cat /usr/local/bin/rdmashare; "
      "echo x > /usr/local/bin/rdmashare || echo write refused");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(kCliContent));
  EXPECT_THAT(r.out, HasSubstr("write refused"));
  EXPECT_THAT(r.err, HasSubstr("Read-only file system"));
}

TEST_F(CdiPodmanTest, EnvOfTheSpecIsSetInTheContainer) {
  ASSERT_TRUE(Publish());
  CdiContainerEdits edits = CdiEditsForSnapshot(*snapshot_, std::nullopt);
  edits.env = {"RDMASHARE_TEST_IBDEVS=mlx5_0,mlx5_1", "RDMASHARE_TEST_NETDEVS=enp11s0f0np0"};
  ASSERT_OK_AND_ASSIGN(bool wrote, writer_->Write(kind_, edits));
  ASSERT_TRUE(wrote);
  RunResult r = RunContainerWithDevice("/bin/busybox env | /bin/busybox grep ^RDMASHARE_");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ::testing::UnorderedElementsAre("RDMASHARE_TEST_IBDEVS=mlx5_0,mlx5_1",
                                                            "RDMASHARE_TEST_NETDEVS=enp11s0f0np0"));
}

TEST_F(CdiPodmanTest, NextContainerSeesTheRewrittenSpecAfterAnHcaIsRemoved) {
  ASSERT_TRUE(Publish());
  EXPECT_FALSE(Publish()) << "an unchanged pool must not rewrite its spec";
  ASSERT_OK(node_->RemoveIbDevice("mlx5_7"));
  ASSERT_TRUE(Publish());
  std::vector<std::string> expected = ExpectedNodes();
  ASSERT_EQ(expected.size(), 15u);
  RunResult r = RunContainerWithDevice(
      "for f in /dev/infiniband/*; do /bin/busybox stat -c '%n %t:%T' \"$f\"; done");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out, "/dev/infiniband/"), ElementsAreArray(expected)) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("uverbs7")));
}

TEST_F(CdiPodmanTest, ContainerWithoutTheDeviceGetsNoRdmaNodes) {
  ASSERT_TRUE(Publish());
  RunResult r = Podman({"run", "--rm", "--network", "none", kImage, "/bin/busybox", "sh", "-c",
                        "/bin/busybox ls /dev/infiniband 2>&1 || echo absent"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("absent"));
}

TEST_F(CdiPodmanTest, UnknownCdiDeviceIsRefusedByPodman) {
  ASSERT_TRUE(Publish());
  RunResult r = Podman({"run", "--rm", "--network", "none", "--device", kind_ + "=nosuchdevice",
                        kImage, "/bin/busybox", "true"},
                       /*check=*/false);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("nosuchdevice"));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
