// A real CNI client: podman 4.3 (CNI backend, runc) starts a container on a rail network whose
// 1.0.0 conflist uses rdmashare-macvlan with "routeTable"; the container gets its macvlan and
// address, and removing the container releases the address. Podman runs inside the harness's
// node netns (nsenter --net) with isolated storage and config, so nothing of the host is used.
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cni/rail_harness.h"
#include "tests/support/runc_wrapper.h"

namespace rdmashare::cni::testing {
namespace {

using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

using ::rdmashare::testing::kRuncWrapperScript;

class PodmanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (std::system("command -v podman >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "podman is not installed; the podman CNI client test cannot run";
    }
    h_ = std::make_unique<RailHarness>(1);
    network_ = fmt::format("rsrail{}", getpid());
    const std::string d = dir_.path();
    WriteTestFile(d + "/runc-wrap", kRuncWrapperScript);
    RailHarness::Sh(fmt::format(
        "set -e; chmod +x {0}/runc-wrap; mkdir -p {0}/plugins {0}/conf {0}/data {0}/tmp "
        "{0}/rootfs/bin; cp {1} {2}/rdmashare-ipam {0}/plugins/; cp /bin/busybox "
        "{0}/rootfs/bin/; tar -C {0}/rootfs -cf {0}/img.tar .",
        d, RS_MACVLAN_BIN, RS_IPAM_DIR));
    WriteTestFile(d + "/containers.conf",
                  fmt::format("[network]\nnetwork_backend = \"cni\"\n"
                              "cni_plugin_dirs = [\"{0}/plugins\"]\n"
                              "network_config_dir = \"{0}/conf\"\n"
                              "[engine]\ncgroup_manager = \"cgroupfs\"\n"
                              "events_logger = \"file\"\nruntime = \"rswrap\"\n"
                              "[engine.runtimes]\nrswrap = [\"{0}/runc-wrap\"]\n",
                              d));
    WriteTestFile(d + "/conf/" + network_ + ".conflist",
                  fmt::format(R"({{"cniVersion":"1.0.0","name":"{0}","plugins":[{{
              "type":"rdmashare-macvlan","master":"enp11s0f0np0","routeTable":100,
              "ipam":{{"type":"rdmashare-ipam","subnet":"172.16.11.0/24",
                      "ips":["172.16.11.10-172.16.11.200"],"gateway":"172.16.11.254",
                      "dataDir":"{1}/data"}}}}]}})",
                              network_, d));
    podman_ = fmt::format(
        "CONTAINERS_CONF={0}/containers.conf nsenter --net={1} podman --root {0}/root "
        "--runroot {0}/runroot --tmpdir {0}/tmp --storage-driver vfs",
        d, h_->node_ns());
    RailHarness::Sh(podman_ + " import " + d + "/img.tar localhost/rsbusybox >/dev/null");
  }
  void TearDown() override {
    if (!podman_.empty()) {
      RailHarness::Sh(podman_ + " rm -af -t 0 >/dev/null 2>&1", true);
      RailHarness::Sh(podman_ + " system reset -f >/dev/null 2>&1", true);
    }
  }
  std::vector<std::string> Leases() {
    auto names = ListDir(dir_.path() + "/data/" + network_);
    std::vector<std::string> out;
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      if (n.rfind("172.", 0) == 0) out.push_back(n);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<RailHarness> h_;
  std::string network_, podman_;
};

TEST_F(PodmanTest, ContainerGetsItsMacvlanAndRemovalReleasesTheAddress) {
  RailHarness::Sh(
      fmt::format("{} run -d --name rsc1 --network {} localhost/rsbusybox "
                  "/bin/busybox sleep 600",
                  podman_, network_));
  std::string addr = RailHarness::Sh(podman_ + " exec rsc1 /bin/busybox ip -4 addr show eth0");
  EXPECT_THAT(addr, HasSubstr("inet 172.16.11.10/24"));
  // busybox ip has no -d: look at the link kind from outside, through the sandbox netns.
  std::string sandbox =
      RailHarness::Sh(podman_ + " inspect -f '{{.NetworkSettings.SandboxKey}}' rsc1 | tr -d '\\n'");
  ASSERT_FALSE(sandbox.empty());
  std::string link = RailHarness::Sh("nsenter --net=" + sandbox + " ip -d link show eth0");
  EXPECT_THAT(link, HasSubstr("macvlan mode bridge"));
  EXPECT_THAT(RailHarness::Sh(podman_ + " exec rsc1 /bin/busybox ip rule"),
              HasSubstr("from 172.16.11.10 lookup 100"));
  EXPECT_THAT(RailHarness::Sh(podman_ + " exec rsc1 /bin/busybox ip route show table 100"),
              HasSubstr("default via 172.16.11.254 dev eth0"));
  RailHarness::Sh(podman_ + " exec rsc1 /bin/busybox ping -c1 -W2 172.16.11.254 >/dev/null");
  EXPECT_THAT(Leases(), ::testing::ElementsAre("172.16.11.10"));
  RailHarness::Sh(podman_ + " rm -f -t 0 rsc1 >/dev/null");
  EXPECT_TRUE(Leases().empty());
}

}  // namespace
}  // namespace rdmashare::cni::testing
