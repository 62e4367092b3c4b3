// End-to-end tests of the real rdmashare-dp binary against the fake kubelet on simulated nodes.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

#ifdef RDMASHARE_SANITIZED
constexpr std::chrono::milliseconds kReRegisterBound(5000);
#else
constexpr std::chrono::milliseconds kReRegisterBound(1000);
#endif

class DpE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.BuildNode(fakenode::Walkthrough8Rail()));
    ASSERT_OK(env_.WriteConfig(WalkthroughConfigJson()));
  }

  std::vector<std::string> SocketsIn(const std::string& dir) {
    std::vector<std::string> out;
    auto names = ListDir(dir);
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      if (n.rfind("rdmashare-", 0) == 0) out.push_back(n);
    }
    return out;
  }

  TempDir dir_;
  DpTestEnv env_{dir_.path(), RDMASHARE_DP_BINARY};
};

TEST_F(DpE2eTest, WalkthroughConfigYieldsEightResourcesOfHundredHealthyUnits) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100))
      << FormatNodeView(env_.kubelet()) << env_.daemon()->Stderr();
  EXPECT_EQ(env_.kubelet().Resources(), WalkthroughResources());
  for (int k = 1; k <= 8; ++k) {
    std::string res = fmt::format("spidernet.io/shared_cx5_gpu{}", k);
    std::optional<ResourceState> st = env_.kubelet().Resource(res);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->endpoint,
              fmt::format("{}/device-plugins/rdmashare-spidernet.io_shared_cx5_gpu{}.sock",
                          env_.kubelet_dir(), k));
    EXPECT_FALSE(st->options.pre_start_required());
    EXPECT_FALSE(st->options.get_preferred_allocation_available());
    ASSERT_EQ(st->devices.size(), 100u);
    EXPECT_EQ(st->devices.front().id(), "0");
    EXPECT_EQ(st->devices.back().id(), "99");
    // Rails 1-4 sit on NUMA node 0, rails 5-8 on node 1.
    ASSERT_EQ(st->devices[0].topology().nodes_size(), 1);
    EXPECT_EQ(st->devices[0].topology().nodes(0).id(), k <= 4 ? 0 : 1);
    EXPECT_EQ(env_.kubelet().registration_count(res), 1);
  }
  EXPECT_THAT(env_.kubelet().registration_errors(), ::testing::IsEmpty());
}

TEST_F(DpE2eTest, AllocateInjectsEachRailsOwnNodesAndRdmaCm) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  for (int k = 1; k <= 8; ++k) {
    std::string res = fmt::format("spidernet.io/shared_cx5_gpu{}", k);
    ASSERT_OK_AND_ASSIGN(v1beta1::AllocateResponse resp, env_.kubelet().Allocate(res, {{"7"}}));
    ASSERT_EQ(resp.container_responses_size(), 1);
    std::vector<std::string> got;
    for (const auto& d : resp.container_responses(0).devices()) {
      got.push_back(fmt::format("{} {} {}", d.container_path(), d.host_path(), d.permissions()));
    }
    const std::string dev = env_.node().dev_root();
    int i = k - 1;
    EXPECT_THAT(
        got,
        ElementsAre(fmt::format("/dev/infiniband/uverbs{0} {1}/infiniband/uverbs{0} rw", i, dev),
                    fmt::format("/dev/infiniband/umad{0} {1}/infiniband/umad{0} rw", i, dev),
                    fmt::format("/dev/infiniband/rdma_cm {}/infiniband/rdma_cm rw", dev)))
        << res;
  }
}

TEST_F(DpE2eTest, AllocateOfUnknownIdIsRefused) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  // The fake kubelet refuses unknown IDs itself (kubelet never sends them); a direct check of
  // the plugin's answer is in plugin_service_test. Here: 100 is one past the last unit.
  EXPECT_THAT(env_.kubelet().Allocate("spidernet.io/shared_cx5_gpu1", {{"100"}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(DpE2eTest, HostDevRootBuildsHostPaths) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon({"--host-dev-root", "/dev"}));
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_OK_AND_ASSIGN(v1beta1::AllocateResponse resp,
                       env_.kubelet().Allocate("spidernet.io/shared_cx5_gpu3", {{"0"}}));
  EXPECT_EQ(resp.container_responses(0).devices(0).host_path(), "/dev/infiniband/uverbs2");
}

TEST_F(DpE2eTest, MountCliMountsTheCliReadOnlyForResourcesThatAskForIt) {
  ASSERT_OK(env_.WriteConfig(R"({"configList": [
    {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu1", "rdmaHcaMax": 100,
     "mountCli": true, "selectors": {"ifNames": ["enp11s0f0np0"]}},
    {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu2", "rdmaHcaMax": 100,
     "selectors": {"ifNames": ["enp12s0f0np0"]}}]})"));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon({"--cli-host-path", "/usr/lib/rdmashare/rdmashare"}));
  ASSERT_TRUE(
      env_.WaitForResources({"spidernet.io/shared_cx5_gpu1", "spidernet.io/shared_cx5_gpu2"}, 100));
  ASSERT_OK_AND_ASSIGN(v1beta1::AllocateResponse with,
                       env_.kubelet().Allocate("spidernet.io/shared_cx5_gpu1", {{"0"}}));
  ASSERT_EQ(with.container_responses(0).mounts_size(), 1);
  EXPECT_EQ(with.container_responses(0).mounts(0).container_path(), "/usr/local/bin/rdmashare");
  EXPECT_EQ(with.container_responses(0).mounts(0).host_path(), "/usr/lib/rdmashare/rdmashare");
  EXPECT_TRUE(with.container_responses(0).mounts(0).read_only());
  ASSERT_OK_AND_ASSIGN(v1beta1::AllocateResponse without,
                       env_.kubelet().Allocate("spidernet.io/shared_cx5_gpu2", {{"0"}}));
  EXPECT_EQ(without.container_responses(0).mounts_size(), 0);
}

TEST_F(DpE2eTest, KubeletRestartIsFollowedByReRegistrationWithinOneSecond) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(env_.kubelet().Restart());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100, kReRegisterBound))
      << FormatNodeView(env_.kubelet()) << env_.daemon()->Stderr();
  auto took = std::chrono::steady_clock::now() - t0;
  for (const std::string& r : WalkthroughResources()) {
    EXPECT_EQ(env_.kubelet().registration_count(r), 2) << r;
  }
  EXPECT_LT(took, kReRegisterBound);
  // The sockets were re-created under the same names.
  EXPECT_EQ(SocketsIn(env_.kubelet_dir() + "/device-plugins").size(), 8u);
}

TEST_F(DpE2eTest, SurvivesManyKubeletRestartsInARow) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(env_.kubelet().Restart());
    ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << "restart " << i;
  }
  EXPECT_TRUE(env_.daemon()->running());
}

TEST_F(DpE2eTest, KubeletAbsentAtStartIsWaitedFor) {
  ASSERT_OK(env_.StartDaemon());
  // The daemon serves its sockets even without kubelet, and keeps running.
  ASSERT_TRUE(WaitFor([&] {
    return SocketsIn(env_.kubelet_dir() + "/device-plugins").size() == 8;
  })) << env_.daemon()->Stderr();
  EXPECT_TRUE(env_.daemon()->running());
  ASSERT_OK(env_.StartKubelet());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << env_.daemon()->Stderr();
}

TEST_F(DpE2eTest, StaleKubeletSocketIsRetriedUntilKubeletAnswers) {
  // kubelet.sock exists but nobody listens (kubelet crashed): Register fails, the daemon retries
  // with backoff and registers once a kubelet is back.
  ASSERT_OK(MakeDirs(env_.kubelet_dir() + "/device-plugins"));
  {
    // A socket file left by a dead kubelet: bound once, never listening now.
    std::string path = env_.kubelet_dir() + "/device-plugins/kubelet.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(
      WaitFor([&] { return env_.daemon()->Stderr().find("register") != std::string::npos; }));
  EXPECT_TRUE(env_.daemon()->running());
  ASSERT_OK(env_.StartKubelet());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100)) << env_.daemon()->Stderr();
}

TEST_F(DpE2eTest, DeletedPluginSocketIsRecreatedAndReRegistered) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  std::string sock =
      env_.kubelet_dir() + "/device-plugins/rdmashare-spidernet.io_shared_cx5_gpu4.sock";
  ASSERT_EQ(::unlink(sock.c_str()), 0);
  ASSERT_TRUE(env_.kubelet().WaitFor([](const FakeKubelet& k) {
    return k.registration_count("spidernet.io/shared_cx5_gpu4") == 2 &&
           k.Resource("spidernet.io/shared_cx5_gpu4")->stream_connected;
  })) << env_.daemon()->Stderr();
  EXPECT_TRUE(PathExists(sock));
  EXPECT_EQ(env_.kubelet().registration_count("spidernet.io/shared_cx5_gpu1"), 1);
}

TEST_F(DpE2eTest, PluginWatcherModeRegistersThroughGetInfo) {
  ASSERT_OK(env_.EnablePluginWatcher());
  ASSERT_OK(env_.StartKubelet(/*plugin_watcher=*/true));
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100))
      << FormatNodeView(env_.kubelet()) << env_.daemon()->Stderr();
  EXPECT_EQ(SocketsIn(env_.kubelet_dir() + "/plugins_registry").size(), 8u);
  EXPECT_TRUE(SocketsIn(env_.kubelet_dir() + "/device-plugins").empty());
  std::optional<ResourceState> st = env_.kubelet().Resource("spidernet.io/shared_cx5_gpu2");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->endpoint,
            env_.kubelet_dir() + "/plugins_registry/rdmashare-spidernet.io_shared_cx5_gpu2.sock");
  ASSERT_OK_AND_ASSIGN(v1beta1::AllocateResponse resp,
                       env_.kubelet().Allocate("spidernet.io/shared_cx5_gpu2", {{"1"}}));
  EXPECT_EQ(resp.container_responses(0).devices(0).container_path(), "/dev/infiniband/uverbs1");
}

TEST_F(DpE2eTest, PluginWatcherRejectionIsAnsweredByRecreatingTheSocket) {
  ASSERT_OK(env_.EnablePluginWatcher());
  ASSERT_OK(env_.StartKubelet(/*plugin_watcher=*/true));
  env_.kubelet().RejectNext("spidernet.io/shared_cx5_gpu5", "simulated rejection");
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100))
      << FormatNodeView(env_.kubelet()) << env_.daemon()->Stderr();
  EXPECT_GE(env_.kubelet().registration_count("spidernet.io/shared_cx5_gpu5"), 2);
  EXPECT_THAT(env_.kubelet().registration_errors(),
              ::testing::Contains(HasSubstr("simulated rejection")));
  EXPECT_THAT(env_.daemon()->Stderr(), HasSubstr("rejected"));
}

TEST_F(DpE2eTest, SigtermRemovesOurSocketsAndExitsZero) {
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  std::optional<int> code = env_.StopDaemon();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << env_.daemon()->Stderr();
  EXPECT_TRUE(SocketsIn(env_.kubelet_dir() + "/device-plugins").empty());
  EXPECT_TRUE(PathExists(env_.kubelet_dir() + "/device-plugins/kubelet.sock"));
}

TEST_F(DpE2eTest, ResourceMatchingNothingRegistersWithZeroUnits) {
  ASSERT_OK(env_.WriteConfig(R"({"configList": [
    {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu1", "rdmaHcaMax": 100,
     "selectors": {"ifNames": ["enp11s0f0np0"]}},
    {"resourcePrefix": "spidernet.io", "resourceName": "missing_rail", "rdmaHcaMax": 100,
     "selectors": {"ifNames": ["enp99s0f0np0"]}}]})"));
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources({"spidernet.io/shared_cx5_gpu1"}, 100));
  ASSERT_TRUE(env_.WaitForResources({"spidernet.io/missing_rail"}, 0));
  EXPECT_THAT(env_.daemon()->Stderr(),
              HasSubstr("spidernet.io/missing_rail: selectors matched no RDMA device"));
}

TEST_F(DpE2eTest, ValidateReportsWhatEachResourceSelects) {
  ASSERT_OK(env_.WriteConfig(R"({"configList": [
    {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu1", "rdmaHcaMax": 100,
     "selectors": {"ifNames": ["enp11s0f0np0"]}},
    {"resourceName": "all_mlx", "rdmaHcaMax": 10, "selectors": {"vendors": ["15b3"]}},
    {"resourcePrefix": "spidernet.io", "resourceName": "missing_rail", "rdmaHcaMax": 100,
     "selectors": {"ifNames": ["enp99s0f0np0"]}}]})"));
  std::vector<std::string> args = env_.StandardFlags();
  args.push_back("--validate");
  RunResult r = env_.RunDaemonOnce(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid (3 resources"));
  EXPECT_THAT(r.out, HasSubstr("spidernet.io/shared_cx5_gpu1: 100 units"));
  EXPECT_THAT(r.out, HasSubstr("mlx5_0 pci=0000:0b:00.0 netdev=enp11s0f0np0 numa=0"));
  EXPECT_THAT(r.out, HasSubstr("rdma/all_mlx: 10 units"));
  EXPECT_THAT(r.out, HasSubstr("mlx5_7 pci=0000:12:00.0 netdev=enp18s0f0np0 numa=1"));
  EXPECT_THAT(r.out, HasSubstr("spidernet.io/missing_rail: matches no RDMA device"));
  // --validate never touches kubelet.
  EXPECT_FALSE(PathExists(env_.kubelet_dir() + "/device-plugins"));
}

struct BadConfigCase {
  std::string name;
  std::string json;
  std::string message;
};

void PrintTo(const BadConfigCase& c, std::ostream* os) { *os << c.name; }

class DpBadConfigTest : public DpE2eTest, public ::testing::WithParamInterface<BadConfigCase> {};

TEST_P(DpBadConfigTest, InvalidConfigExitsOneWithAClearError) {
  ASSERT_OK(env_.WriteConfig(GetParam().json));
  RunResult r = env_.RunDaemonOnce(env_.StandardFlags());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("invalid config " + env_.config_path()));
  EXPECT_THAT(r.err, HasSubstr(GetParam().message));
  // Nothing was registered or created for kubelet.
  EXPECT_FALSE(PathExists(env_.kubelet_dir() + "/device-plugins"));
}

INSTANTIATE_TEST_SUITE_P(
    Configs, DpBadConfigTest,
    ::testing::Values(
        BadConfigCase{"NotJson", "{", "not valid JSON"},
        BadConfigCase{"NoConfigList", R"({"periodicUpdateInterval": 60})", "configList: missing"},
        BadConfigCase{"EmptyConfigList", R"({"configList": []})", "configList: empty"},
        BadConfigCase{"MissingName",
                      R"({"configList": [{"rdmaHcaMax": 1, "selectors": {"ifNames": ["a"]}}]})",
                      "configList[0]: resourceName: missing"},
        BadConfigCase{"NegativeMax",
                      R"({"configList": [{"resourceName": "r", "rdmaHcaMax": -1,
                          "selectors": {"ifNames": ["a"]}}]})",
                      "configList[0] (resourceName \"r\"): rdmaHcaMax: -1 is out of range"},
        BadConfigCase{"HugeMax",
                      R"({"configList": [{"resourceName": "r", "rdmaHcaMax": 10001,
                          "selectors": {"ifNames": ["a"]}}]})",
                      "rdmaHcaMax: 10001 is out of range 0..10000"},
        BadConfigCase{"BadName",
                      R"({"configList": [{"resourceName": "bad name!", "rdmaHcaMax": 1,
                          "selectors": {"ifNames": ["a"]}}]})",
                      "resourceName"},
        BadConfigCase{"KubernetesIoPrefix",
                      R"({"configList": [{"resourceName": "r", "resourcePrefix": "kubernetes.io",
                          "rdmaHcaMax": 1, "selectors": {"ifNames": ["a"]}}]})",
                      "resourcePrefix"},
        BadConfigCase{"NoSelectors", R"({"configList": [{"resourceName": "r", "rdmaHcaMax": 1}]})",
                      "no selectors and no devices"},
        BadConfigCase{"DuplicateNames",
                      R"({"configList": [
                          {"resourceName": "r", "rdmaHcaMax": 1, "selectors": {"ifNames": ["a"]}},
                          {"resourceName": "r", "rdmaHcaMax": 1, "selectors": {"ifNames": ["b"]}}]})",
                      "configList[1]"},
        BadConfigCase{"BadVendor",
                      R"({"configList": [{"resourceName": "r", "rdmaHcaMax": 1,
                          "selectors": {"vendors": ["mellanox"]}}]})",
                      "vendors"},
        BadConfigCase{"BadLinkType",
                      R"({"configList": [{"resourceName": "r", "rdmaHcaMax": 1,
                          "selectors": {"linkTypes": ["token-ring"]}}]})",
                      "linkTypes"},
        BadConfigCase{"NegativeInterval",
                      R"({"periodicUpdateInterval": -5, "configList": [{"resourceName": "r",
                          "rdmaHcaMax": 1, "selectors": {"ifNames": ["a"]}}]})",
                      "periodicUpdateInterval"}),
    [](const ::testing::TestParamInfo<BadConfigCase>& info) { return info.param.name; });

TEST_F(DpE2eTest, MissingConfigFileExitsOneNamingThePath) {
  std::vector<std::string> args = env_.StandardFlags();
  args[1] = dir_.Sub("nope.json");
  RunResult r = env_.RunDaemonOnce(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read config"));
  EXPECT_THAT(r.err, HasSubstr(dir_.Sub("nope.json")));
}

TEST_F(DpE2eTest, BadFlagsExitTwoAndVersionPrints) {
  RunResult bad = env_.RunDaemonOnce({"--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("unknown flag '--no-such-flag'"));
  RunResult level = env_.RunDaemonOnce({"--log-level", "loud"});
  EXPECT_EQ(level.exit_code, 2);
  EXPECT_THAT(level.err, HasSubstr("unknown level 'loud'"));
  RunResult ver = env_.RunDaemonOnce({"--version"});
  EXPECT_EQ(ver.exit_code, 0);
  EXPECT_THAT(ver.out, HasSubstr("rdmashare-dp "));
}

TEST_F(DpE2eTest, WarnsWhenTheKernelHasNoRdmaNetlink) {
  // This machine's kernel has no RDMA subsystem: the daemon warns and continues.
  ASSERT_OK(env_.StartKubelet());
  ASSERT_OK(env_.StartDaemon());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_THAT(env_.daemon()->Stderr(), HasSubstr("RDMA netns mode"));
}

}  // namespace
}  // namespace rdmashare::testing
