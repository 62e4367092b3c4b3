// The real rdmashare-dp binary, live: real kernel events (a veth behind a fake netdev), the
// metrics endpoint over real HTTP, socket modes, kubelet restarts, SIGKILL, hostile trees, CDI.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/loopback_http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kGpu1[] = "spidernet.io/shared_cx5_gpu1";

std::string Config(int interval_s, int units = 100) {
  std::string json = WalkthroughConfigJson(units);
  std::string from = "\"periodicUpdateInterval\": 300";
  json.replace(json.find(from), from.size(),
               fmt::format("\"periodicUpdateInterval\": {}", interval_s));
  return json;
}

RunResult Ip(const std::vector<std::string>& args) {
  Subprocess::Options o;
  o.argv = {"/usr/sbin/ip"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return RunProgram(o, std::chrono::seconds(10));
}

using ::rdmashare::testing::FreeLoopbackPort;
using ::rdmashare::testing::LoopbackHttpGet;

class DpLiveE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(env_.BuildNode(fakenode::Walkthrough8Rail())); }

  std::vector<std::string> OurSockets() {
    std::vector<std::string> out;
    auto names = ListDir(env_.kubelet_dir() + "/device-plugins");
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      if (n.rfind("rdmashare-", 0) == 0) out.push_back(n);
    }
    return out;
  }

  TempDir dir_;
  DpTestEnv env_{dir_.path(), RDMASHARE_DP_BINARY};
};

// A fake rail whose netdev is a real veth: `ip link set <veth> down` reaches kubelet as an
// Unhealthy update through rtnetlink, with the periodic rescan an hour away.
TEST_F(DpLiveE2eTest, RealVethDownMakesTheRailUnhealthyWithoutWaitingForTheRescan) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a veth pair";
  const std::string a = fmt::format("rsdp{}a", ::getpid() % 100000);
  const std::string b = fmt::format("rsdp{}b", ::getpid() % 100000);
  (void)Ip({"link", "del", a});
  ASSERT_EQ(Ip({"link", "add", a, "type", "veth", "peer", "name", b}).exit_code, 0);
  struct Cleanup {
    std::string name;
    ~Cleanup() { (void)Ip({"link", "del", name}); }
  } cleanup{a};
  ASSERT_EQ(Ip({"link", "set", b, "up"}).exit_code, 0);
  ASSERT_EQ(Ip({"link", "set", a, "up"}).exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::string real, RealPath("/sys/class/net/" + a));
  ASSERT_OK(env_.node().PointNetdevAt("enp11s0f0np0", real));
  ASSERT_TRUE(WaitFor([&] {
    auto s = ReadAttr("/sys/class/net/" + a + "/operstate");
    return s.ok() && *s == "up";
  }));
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << env_.daemon()->Stderr();

  ASSERT_EQ(Ip({"link", "set", a, "down"}).exit_code, 0);
  ASSERT_TRUE(env_.kubelet().WaitFor(
      [](const FakeKubelet& k) {
        auto st = k.Resource(kGpu1);
        return st && st->allocatable() == 0 && st->capacity() == 100;
      },
      std::chrono::seconds(10)))
      << FormatNodeView(env_.kubelet()) << env_.daemon()->Stderr();
  EXPECT_THAT(env_.daemon()->Stderr(), HasSubstr(fmt::format("operstate=down")));
  ASSERT_EQ(Ip({"link", "set", a, "up"}).exit_code, 0);
  ASSERT_TRUE(env_.WaitForResources({kGpu1}, 100, std::chrono::seconds(10)))
      << env_.daemon()->Stderr();
  std::vector<std::string> seq;
  std::optional<ResourceState> gpu1 = env_.kubelet().Resource(kGpu1);
  ASSERT_TRUE(gpu1.has_value());
  for (const auto& u : gpu1->history) seq.push_back(u.Summary());
  EXPECT_THAT(seq, ::testing::ElementsAre("100 healthy", "100 unhealthy", "100 healthy"));
}

TEST_F(DpLiveE2eTest, MetricsHealthzAndReadyzOverHttp) {
  const int port = FreeLoopbackPort();
  ASSERT_NE(port, 0);
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartDaemon({"--metrics-addr", fmt::format("127.0.0.1:{}", port)}));
  // No kubelet yet: alive but not ready.
  ASSERT_TRUE(WaitFor([&] {
    return LoopbackHttpGet(port, "/healthz").find(" 200 ") != std::string::npos;
  })) << env_.daemon()->Stderr();
  EXPECT_THAT(LoopbackHttpGet(port, "/readyz"), StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(LoopbackHttpGet(port, "/readyz"), HasSubstr("is not registered with kubelet"));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_TRUE(
      WaitFor([&] { return LoopbackHttpGet(port, "/readyz").find(" 200 ") != std::string::npos; }));
  ASSERT_OK(env_.kubelet().Allocate(kGpu1, {{"3"}}).status());
  std::string metrics = LoopbackHttpGet(port, "/metrics");
  EXPECT_THAT(metrics, StartsWith("HTTP/1.1 200"));
  for (int k = 1; k <= 8; ++k) {
    std::string r = fmt::format("spidernet.io/shared_cx5_gpu{}", k);
    EXPECT_THAT(metrics, HasSubstr(fmt::format("rdmashare_dp_devices{{resource=\"{}\"}} 100", r)));
    EXPECT_THAT(metrics,
                HasSubstr(fmt::format("rdmashare_dp_resource_healthy{{resource=\"{}\"}} 1", r)));
    EXPECT_THAT(metrics,
                HasSubstr(fmt::format("rdmashare_dp_registrations_total{{resource=\"{}\"}} 1", r)));
  }
  EXPECT_THAT(metrics, HasSubstr("rdmashare_dp_allocate_total{resource=\"" + std::string(kGpu1) +
                                 "\",result=\"ok\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("rdmashare_dp_kubelet_restarts_total 0"));
  ASSERT_OK(env_.kubelet().Restart());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_TRUE(WaitFor([&] {
    return LoopbackHttpGet(port, "/metrics").find("rdmashare_dp_kubelet_restarts_total 1") !=
           std::string::npos;
  }));
}

TEST_F(DpLiveE2eTest, PluginSocketsAreOwnerOnly) {
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_EQ(OurSockets().size(), 8u);
  for (const std::string& s : OurSockets()) {
    struct stat st;
    ASSERT_EQ(::stat((env_.kubelet_dir() + "/device-plugins/" + s).c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << s;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << s;
  }
}

TEST_F(DpLiveE2eTest, HundredKubeletRestartsInARowAreEachFollowedByReRegistration) {
  ASSERT_OK(env_.WriteConfig(R"({"periodicUpdateInterval": 3600, "configList": [
      {"resourcePrefix": "x.io", "resourceName": "r", "rdmaHcaMax": 2,
       "selectors": {"ifNames": ["enp11s0f0np0"]}}]})"));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon({"--log-level", "warn"}));
  ASSERT_TRUE(env_.WaitForResources({"x.io/r"}, 2));
  for (int i = 1; i <= 100; ++i) {
    ASSERT_OK(env_.kubelet().Restart());
    ASSERT_TRUE(env_.kubelet().WaitFor([&](const FakeKubelet& k) {
      auto st = k.Resource("x.io/r");
      return k.registration_count("x.io/r") == i + 1 && st && st->stream_connected &&
             st->allocatable() == 2;
    })) << "restart "
        << i << "\n"
        << env_.daemon()->Stderr();
  }
  EXPECT_TRUE(env_.daemon()->running());
}

TEST_F(DpLiveE2eTest, SigkillThenRestartRegistersAgain) {
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  env_.daemon()->Signal(SIGKILL);
  ASSERT_TRUE(env_.daemon()->Wait(std::chrono::seconds(5)).has_value());
  // Stale sockets stay behind; kubelet sees the streams end.
  EXPECT_EQ(OurSockets().size(), 8u);
  ASSERT_TRUE(env_.kubelet().WaitFor([](const FakeKubelet& k) {
    auto st = k.Resource(kGpu1);
    return st && !st->stream_connected;
  }));
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << env_.daemon()->Stderr();
  for (const std::string& r : WalkthroughResources()) {
    EXPECT_EQ(env_.kubelet().registration_count(r), 2) << r;
  }
}

// Hostile tree: rail 1's uverbs0 is a symlink to a node outside <dev-root>/infiniband, and
// rail 2's sysfs claims uverbs1 is 1:1 (/dev/mem) with a matching node. Neither is ever
// injected; every path Allocate returns is a real char device under <dev-root>/infiniband.
TEST_F(DpLiveE2eTest, AllocateNeverReturnsAPathOutsideTheInfinibandDir) {
  const std::string ib = env_.node().dev_root() + "/infiniband/";
  ASSERT_EQ(::rename((ib + "uverbs0").c_str(), (env_.node().dev_root() + "/moved0").c_str()), 0);
  ASSERT_EQ(::symlink("../moved0", (ib + "uverbs0").c_str()), 0);
  ASSERT_OK(WriteFileAtomic(env_.node().sys_root() + "/class/infiniband_verbs/uverbs1/dev", "1:1\n",
                            0644));
  ASSERT_EQ(::unlink((ib + "uverbs1").c_str()), 0);
  ASSERT_EQ(::mknod((ib + "uverbs1").c_str(), S_IFCHR | 0600, makedev(1, 1)), 0);
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  // Rails 1 and 2 have no usable HCA: 100 units, all Unhealthy.
  ASSERT_TRUE(env_.kubelet().WaitFor([](const FakeKubelet& k) {
    for (int r = 1; r <= 2; ++r) {
      auto st = k.Resource(fmt::format("spidernet.io/shared_cx5_gpu{}", r));
      if (!st || st->capacity() != 100 || st->allocatable() != 0) return false;
    }
    return true;
  })) << FormatNodeView(env_.kubelet())
      << env_.daemon()->Stderr();
  EXPECT_THAT(env_.daemon()->Stderr(), HasSubstr("is a symlink; not used"));
  EXPECT_THAT(env_.daemon()->Stderr(), HasSubstr("1:1 is not an RDMA device's"));
  for (int r = 3; r <= 8; ++r) {
    std::string res = fmt::format("spidernet.io/shared_cx5_gpu{}", r);
    ASSERT_TRUE(env_.WaitForResources({res}, 100));
    ASSERT_OK_AND_ASSIGN(auto resp, env_.kubelet().Allocate(res, {{"0"}}));
    for (const auto& spec : resp.container_responses(0).devices()) {
      EXPECT_THAT(spec.host_path(), StartsWith(ib)) << res;
      EXPECT_EQ(spec.host_path().find(".."), std::string::npos) << spec.host_path();
      struct stat st;
      ASSERT_EQ(::lstat(spec.host_path().c_str(), &st), 0) << spec.host_path();
      EXPECT_TRUE(S_ISCHR(st.st_mode)) << spec.host_path();
      EXPECT_NE(major(st.st_rdev), 1u) << spec.host_path();
    }
  }
}

TEST_F(DpLiveE2eTest, CdiModeAllocatesCdiDevicesAndWritesSpecs) {
  const std::string cdi = dir_.Sub("cdi");
  ASSERT_OK(MakeDirs(cdi));
  // A foreign spec and a stale spec of ours from an older config.
  ASSERT_OK(WriteFileAtomic(cdi + "/vendor-gpu.json", "{}", 0644));
  ASSERT_OK(WriteFileAtomic(cdi + "/rdmashare-spidernet.io_gone.json", "{}", 0644));
  ASSERT_OK(env_.WriteConfig(Config(3600)));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon({"-use-cdi", "--cdi-dir", cdi}));
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << env_.daemon()->Stderr();
  ASSERT_OK_AND_ASSIGN(auto resp, env_.kubelet().Allocate(kGpu1, {{"1"}}));
  const auto& c = resp.container_responses(0);
  EXPECT_EQ(c.devices_size(), 0);
  ASSERT_EQ(c.cdi_devices_size(), 1);
  EXPECT_EQ(c.cdi_devices(0).name(), "spidernet.io/shared_cx5_gpu1=all");
  bool annotated = false;
  for (const auto& [k, v] : c.annotations()) {
    if (k.rfind("cdi.k8s.io/", 0) == 0 && v == "spidernet.io/shared_cx5_gpu1=all") annotated = true;
  }
  EXPECT_TRUE(annotated);
  EXPECT_EQ(c.envs().at("RDMASHARE_SHARED_CX5_GPU1_IBDEVS"), "mlx5_0");
  auto names = ListDir(cdi);
  ASSERT_OK(names.status());
  int ours = 0;
  for (const auto& n : *names) ours += n.rfind("rdmashare-", 0) == 0 ? 1 : 0;
  EXPECT_EQ(ours, 8);
  EXPECT_TRUE(PathExists(cdi + "/vendor-gpu.json"));
  EXPECT_FALSE(PathExists(cdi + "/rdmashare-spidernet.io_gone.json"));
}

}  // namespace
}  // namespace rdmashare::testing
