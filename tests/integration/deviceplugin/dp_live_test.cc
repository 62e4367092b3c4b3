// The live device plugin in-process: a Daemon with a FakeEventSource on a fake node, talking to
// the fake kubelet over real gRPC. Each fake-tree mutation is followed by one Trigger(), so the
// exact ListAndWatch sequence kubelet receives is deterministic (no periodic rescan: 1 h).
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/testing/fifo.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "deviceplugin/cdi.h"
#include "deviceplugin/config.h"
#include "deviceplugin/daemon.h"
#include "deviceplugin/metrics_http.h"
#include "deviceplugin/plugin_server.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "rdma/device_events.h"
#include "rdma/device_scanner.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare::testing {
namespace {

using deviceplugin::Daemon;
using deviceplugin::DaemonOptions;
using deviceplugin::MetricsRegistry;
using rdma::FakeEventSource;
using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kGpu1[] = "spidernet.io/shared_cx5_gpu1";
constexpr char kGpu2[] = "spidernet.io/shared_cx5_gpu2";

// The walkthrough config with the periodic rescan pushed out of the way.
std::string LiveConfig(int gpu1_units = 100, const std::string& gpu1_extra = "") {
  std::string entries;
  for (int k = 1; k <= 8; ++k) {
    entries += fmt::format(
        R"({}{{"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu{}", )"
        R"("rdmaHcaMax": {}, "selectors": {{"ifNames": ["enp{}s0f0np0"]}}{}}})",
        k == 1 ? "" : ",", k, k == 1 ? gpu1_units : 100, 10 + k, k == 1 ? gpu1_extra : "");
  }
  return fmt::format(R"({{"periodicUpdateInterval": 3600, "configList": [{}]}})", entries);
}

class DpLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(env_.BuildNode(fakenode::Walkthrough8Rail()));
    ASSERT_OK(env_.StartKubelet());
  }
  void TearDown() override { StopDaemon(); }

  void StartDaemon(const std::string& config_json, const std::string& config_path = "") {
    std::vector<std::string> warnings;
    auto config = deviceplugin::ParseConfig(config_json, &warnings);
    ASSERT_OK(config.status());
    DaemonOptions opts;
    opts.paths = env_.node().paths();
    opts.paths.kubelet_dir = env_.kubelet_dir();
    opts.config = *config;
    opts.config_path = config_path;
    opts.metrics = &registry_;
    opts.heartbeat = &heartbeat_;
    opts.heartbeat_interval = std::chrono::milliseconds(20);
    opts.retry_initial = retry_;
    opts.watcher_fallback_after = watcher_fallback_;
    opts.retry_max = std::max(retry_, opts.retry_max);
    if (!cdi_dir_.empty()) {
      opts.cdi = true;
      opts.cdi_dir = cdi_dir_;
    }
    auto events = std::make_unique<FakeEventSource>();
    events_ = events.get();
    daemon_ = std::make_unique<Daemon>(opts, std::make_unique<rdma::SysfsDeviceScanner>(opts.paths),
                                       std::move(events));
    ASSERT_OK(daemon_->Start());
    thread_ = std::thread([this] { daemon_->Run(); });
  }

  void StopDaemon() {
    if (!daemon_) return;
    daemon_->Stop();
    thread_.join();
    daemon_.reset();
  }

  std::vector<std::string> History(const std::string& resource) {
    std::vector<std::string> out;
    auto st = env_.kubelet().Resource(resource);
    if (!st) return out;
    for (const auto& u : st->history) out.push_back(u.Summary());
    return out;
  }

  // Waits until `resource` has received `n` ListAndWatch updates.
  bool WaitForUpdates(const std::string& resource, size_t n) {
    return env_.kubelet().WaitFor(
        [&](const FakeKubelet& k) {
          auto st = k.Resource(resource);
          return st && st->history.size() >= n;
        },
        std::chrono::seconds(10));
  }

  bool WaitForMetric(const std::string& line) {
    return WaitFor([&] { return registry_.Render().find(line) != std::string::npos; });
  }

  TempDir dir_;
  DpTestEnv env_{dir_.path(), ""};
  MetricsRegistry registry_;
  // Heartbeat on a clock the test moves.
  std::atomic<int64_t> fake_now_s_{1000};
  deviceplugin::Heartbeat heartbeat_{
      std::chrono::seconds(60), [this] {
        return std::chrono::steady_clock::time_point(std::chrono::seconds(fake_now_s_.load()));
      }};
  FakeEventSource* events_ = nullptr;
  std::unique_ptr<Daemon> daemon_;
  std::thread thread_;
  std::ostringstream log_;
  // Non-empty: CDI mode with specs in this directory.
  std::string cdi_dir_;
  // First registration retry delay (the daemon doubles it up to its max).
  std::chrono::milliseconds retry_{100};
  std::chrono::milliseconds watcher_fallback_{30000};
};

// One mutation of rail 1 (mlx5_0, 0000:0b:00.0, enp11s0f0np0) and how to undo it.
struct Mutation {
  std::string name;
  std::function<absl::Status(fakenode::FakeNode&)> apply;
  std::function<absl::Status(fakenode::FakeNode&)> undo;
};

absl::Status Mknod(const std::string& path, int major_num, int minor_num) {
  if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(major_num, minor_num)) != 0) {
    return absl::InternalError("mknod " + path);
  }
  return absl::OkStatus();
}

class LiveMutationTest : public DpLiveTest, public ::testing::WithParamInterface<Mutation> {};

TEST_P(LiveMutationTest, ExactListAndWatchSequenceAndRecovery) {
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_THAT(History(kGpu1), ElementsAre("100 healthy"));

  ASSERT_OK(GetParam().apply(env_.node()));
  events_->Trigger("mutation");
  ASSERT_TRUE(WaitForUpdates(kGpu1, 2));
  ASSERT_OK(GetParam().undo(env_.node()));
  events_->Trigger("undo");
  ASSERT_TRUE(WaitForUpdates(kGpu1, 3));
  // A last no-op event, then a change on rail 2: once rail 2's update arrived, the no-op rescan
  // has run too and must not have sent rail 1 anything.
  events_->Trigger("nothing changed");
  ASSERT_OK(env_.node().SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("rail 2");
  ASSERT_TRUE(WaitForUpdates(kGpu2, 2));
  EXPECT_THAT(History(kGpu1), ElementsAre("100 healthy", "100 unhealthy", "100 healthy"));
  EXPECT_THAT(History(kGpu2), ElementsAre("100 healthy", "100 unhealthy"));
  for (int k = 3; k <= 8; ++k) {
    EXPECT_THAT(History(fmt::format("spidernet.io/shared_cx5_gpu{}", k)),
                ElementsAre("100 healthy"))
        << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rail1, LiveMutationTest,
    ::testing::Values(
        Mutation{"PortDown",
                 [](fakenode::FakeNode& n) {
                   return n.SetPortState("mlx5_0", 1, "1: DOWN", "3: Disabled");
                 },
                 [](fakenode::FakeNode& n) {
                   return n.SetPortState("mlx5_0", 1, "4: ACTIVE", "5: LinkUp");
                 }},
        Mutation{"NetdevOperstateDown",
                 [](fakenode::FakeNode& n) { return n.SetNetdevState("enp11s0f0np0", "down", 0); },
                 [](fakenode::FakeNode& n) { return n.SetNetdevState("enp11s0f0np0", "up", 1); }},
        Mutation{"CharNodeRemoved",
                 [](fakenode::FakeNode& n) { return n.RemoveDevNode("uverbs0"); },
                 [](fakenode::FakeNode& n) {
                   return Mknod(n.dev_root() + "/infiniband/uverbs0", 231, 192);
                 }},
        Mutation{"DriverUnbound",
                 [](fakenode::FakeNode& n) { return n.UnbindDriver("0000:0b:00.0"); },
                 [](fakenode::FakeNode& n) -> absl::Status {
                   auto dir = n.PciFunctionDir("0000:0b:00.0");
                   if (!dir.ok()) return dir.status();
                   std::string target = n.sys_root() + "/bus/pci/drivers/mlx5_core";
                   if (::symlink(target.c_str(), (*dir + "/driver").c_str()) != 0) {
                     return absl::InternalError("symlink driver");
                   }
                   return absl::OkStatus();
                 }},
        // Losing the only HCA keeps the 100 units, Unhealthy; the HCA coming back heals them.
        Mutation{"IbdevRemovedAndReAdded",
                 [](fakenode::FakeNode& n) { return n.RemoveIbDevice("mlx5_0"); },
                 [](fakenode::FakeNode& n) {
                   return n.AddIbDevice(fakenode::Walkthrough8Rail().ib_devices[0]);
                 }}),
    [](const ::testing::TestParamInfo<Mutation>& info) { return info.param.name; });

TEST_F(DpLiveTest, HealthPolicyAllNeedsEveryHca) {
  std::string config = R"({"periodicUpdateInterval": 3600, "configList": [
      {"resourcePrefix": "x.io", "resourceName": "any", "rdmaHcaMax": 4,
       "selectors": {"ifNames": ["enp11s0f0np0", "enp12s0f0np0"]}},
      {"resourcePrefix": "x.io", "resourceName": "all", "rdmaHcaMax": 4, "healthPolicy": "all",
       "selectors": {"ifNames": ["enp11s0f0np0", "enp12s0f0np0"]}}]})";
  StartDaemon(config);
  ASSERT_TRUE(env_.WaitForResources({"x.io/any", "x.io/all"}, 4));
  ASSERT_OK(env_.node().SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("port");
  ASSERT_TRUE(WaitForUpdates("x.io/all", 2));
  ASSERT_OK(env_.node().SetPortState("mlx5_0", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("port");
  ASSERT_TRUE(WaitForUpdates("x.io/any", 2));
  EXPECT_THAT(History("x.io/all"), ElementsAre("4 healthy", "4 unhealthy"));
  EXPECT_THAT(History("x.io/any"), ElementsAre("4 healthy", "4 unhealthy"));
}

TEST_F(DpLiveTest, TopologyCarriesTheNumaNodeUnlessTurnedOff) {
  StartDaemon(LiveConfig(100, R"(, "topology": false)"));
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  auto gpu1 = env_.kubelet().Resource(kGpu1);
  auto gpu2 = env_.kubelet().Resource(kGpu2);
  auto gpu5 = env_.kubelet().Resource("spidernet.io/shared_cx5_gpu5");
  EXPECT_TRUE(gpu1->history.back().numa.empty());
  EXPECT_THAT(gpu2->history.back().numa, ElementsAre(0));
  EXPECT_THAT(gpu5->history.back().numa, ElementsAre(1));
}

TEST_F(DpLiveTest, AllocateSetsIbdevAndNetdevEnvironment) {
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_OK_AND_ASSIGN(auto resp, env_.kubelet().Allocate(kGpu2, {{"7"}}));
  const auto& envs = resp.container_responses(0).envs();
  ASSERT_EQ(envs.count("RDMASHARE_SHARED_CX5_GPU2_IBDEVS"), 1u);
  EXPECT_EQ(envs.at("RDMASHARE_SHARED_CX5_GPU2_IBDEVS"), "mlx5_1");
  EXPECT_EQ(envs.at("RDMASHARE_SHARED_CX5_GPU2_NETDEVS"), "enp12s0f0np0");
  EXPECT_EQ(resp.container_responses(0).cdi_devices_size(), 0);
}

// A client that opens ListAndWatch and never reads must not hold up discovery or other streams.
TEST_F(DpLiveTest, ListAndWatchReaderThatNeverReadsBlocksNothing) {
  // 5000 units make each message ~100 KB: a few unread ones fill the stream's window.
  StartDaemon(LiveConfig(5000));
  ASSERT_TRUE(env_.WaitForResources({kGpu2}, 100));
  std::string socket =
      env_.kubelet_dir() + "/device-plugins/" + "rdmashare-spidernet.io_shared_cx5_gpu1.sock";
  auto stub = v1beta1::DevicePlugin::NewStub(
      grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext stuck_ctx;
  v1beta1::Empty empty;
  auto stuck = stub->ListAndWatch(&stuck_ctx, empty);  // never read
  // 21 flips, ending DOWN: kubelet's own stream of rail 1 must deliver that change although
  // another stream of the same resource is stuck. (How many intermediate states it sees depends
  // on how the rescans coalesce the flips.)
  for (int i = 0; i < 21; ++i) {
    ASSERT_OK(
        env_.node().SetPortState("mlx5_0", 1, i % 2 == 0 ? "1: DOWN" : "4: ACTIVE", "5: LinkUp"));
    events_->Trigger("flip");
  }
  ASSERT_OK(env_.node().SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("rail 2");
  ASSERT_TRUE(WaitForUpdates(kGpu2, 2));
  EXPECT_THAT(History(kGpu2), ElementsAre("100 healthy", "100 unhealthy"));
  // Kubelet's own stream of rail 1 ends on the last state (DOWN after 21 flips).
  ASSERT_TRUE(env_.kubelet().WaitFor([&](const FakeKubelet& k) {
    auto st = k.Resource(kGpu1);
    return st && !st->history.empty() && st->history.back().Summary() == "5000 unhealthy";
  }));
  stuck_ctx.TryCancel();
}

// The ConfigMap layout: dir/..<ts>/config.json, dir/..data -> ..<ts>, dir/config.json ->
// ..data/config.json; an update swaps ..data atomically.
class ConfigMapDir {
 public:
  explicit ConfigMapDir(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Publish(const std::string& json) {
    std::string version = fmt::format("..2026_{:02d}", ++n_);
    if (absl::Status st = MakeDirs(dir_ + "/" + version); !st.ok()) return st;
    if (absl::Status st = WriteFileAtomic(dir_ + "/" + version + "/config.json", json, 0644);
        !st.ok()) {
      return st;
    }
    std::string tmp = dir_ + "/..data_tmp";
    ::unlink(tmp.c_str());
    if (::symlink(version.c_str(), tmp.c_str()) != 0) return absl::InternalError("symlink");
    if (::rename(tmp.c_str(), (dir_ + "/..data").c_str()) != 0) {
      return absl::InternalError("rename");
    }
    std::string link = dir_ + "/config.json";
    struct stat st;
    if (::lstat(link.c_str(), &st) != 0 && ::symlink("..data/config.json", link.c_str()) != 0) {
      return absl::InternalError("symlink config.json");
    }
    return absl::OkStatus();
  }
  std::string config_path() const { return dir_ + "/config.json"; }

 private:
  std::string dir_;
  int n_ = 0;
};

std::string TwoRails(const std::string& second) {
  return fmt::format(R"({{"periodicUpdateInterval": 3600, "configList": [
      {{"resourcePrefix": "x.io", "resourceName": "keep", "rdmaHcaMax": 3,
        "selectors": {{"ifNames": ["enp11s0f0np0"]}}}},
      {{"resourcePrefix": "x.io", "resourceName": "{}", "rdmaHcaMax": 3,
        "selectors": {{"ifNames": ["enp12s0f0np0"]}}}}]}})",
                     second);
}

TEST_F(DpLiveTest, ConfigMapSwapAppliesADiffAndKeepsUnchangedStreams) {
  ConfigMapDir cm(dir_.Sub("cm"));
  ASSERT_OK(MakeDirs(dir_.Sub("cm")));
  ASSERT_OK(cm.Publish(TwoRails("old")));
  StartDaemon(TwoRails("old"), cm.config_path());
  ASSERT_TRUE(env_.WaitForResources({"x.io/keep", "x.io/old"}, 3));
  ASSERT_OK(cm.Publish(TwoRails("new")));
  ASSERT_TRUE(env_.WaitForResources({"x.io/keep", "x.io/new"}, 3));
  ASSERT_TRUE(env_.kubelet().WaitFor([](const FakeKubelet& k) {
    auto st = k.Resource("x.io/old");
    return st && !st->stream_connected;
  }));
  // The unchanged resource kept its registration and its one stream.
  EXPECT_EQ(env_.kubelet().registration_count("x.io/keep"), 1);
  EXPECT_THAT(History("x.io/keep"), ElementsAre("3 healthy"));
  EXPECT_TRUE(env_.kubelet().Resource("x.io/keep")->stream_connected);
  EXPECT_FALSE(PathExists(env_.kubelet_dir() + "/device-plugins/rdmashare-x.io_old.sock"));
  EXPECT_TRUE(WaitForMetric("rdmashare_dp_config_reloads_total 1"));
}

TEST_F(DpLiveTest, ChangedResourceRestartsWithItsNewSettings) {
  ConfigMapDir cm(dir_.Sub("cm"));
  ASSERT_OK(MakeDirs(dir_.Sub("cm")));
  ASSERT_OK(cm.Publish(TwoRails("other")));
  StartDaemon(TwoRails("other"), cm.config_path());
  ASSERT_TRUE(env_.WaitForResources({"x.io/keep", "x.io/other"}, 3));
  std::string bigger = TwoRails("other");
  const std::string from = "\"rdmaHcaMax\": 3";
  bigger.replace(bigger.rfind(from), from.size(), "\"rdmaHcaMax\": 9");
  ASSERT_OK(cm.Publish(bigger));
  ASSERT_TRUE(env_.WaitForResources({"x.io/other"}, 9)) << FormatNodeView(env_.kubelet());
  EXPECT_EQ(env_.kubelet().registration_count("x.io/other"), 2);
  EXPECT_EQ(env_.kubelet().registration_count("x.io/keep"), 1);
  EXPECT_THAT(History("x.io/keep"), ElementsAre("3 healthy"));
}

TEST_F(DpLiveTest, InvalidConfigIsRejectedAndTheRunningOneStays) {
  ConfigMapDir cm(dir_.Sub("cm"));
  ASSERT_OK(MakeDirs(dir_.Sub("cm")));
  ASSERT_OK(cm.Publish(TwoRails("old")));
  StartDaemon(TwoRails("old"), cm.config_path());
  ASSERT_TRUE(env_.WaitForResources({"x.io/keep", "x.io/old"}, 3));
  ASSERT_OK(cm.Publish(R"({"configList": [{"resourceName": "bad", "rdmaHcaMax": -1}]})"));
  ASSERT_TRUE(WaitForMetric("rdmashare_dp_config_reload_failures_total 1"));
  ASSERT_OK(cm.Publish("{not json"));
  ASSERT_TRUE(WaitForMetric("rdmashare_dp_config_reload_failures_total 2"));
  EXPECT_THAT(registry_.Render(), HasSubstr("rdmashare_dp_config_reloads_total 0"));
  EXPECT_TRUE(env_.WaitForResources({"x.io/keep", "x.io/old"}, 3));
  EXPECT_EQ(env_.kubelet().registration_count("x.io/old"), 1);
  EXPECT_THAT(env_.kubelet().Resources(), ElementsAre("x.io/keep", "x.io/old"));
}

TEST_F(DpLiveTest, MetricsDescribeResourcesHealthAndRegistrations) {
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  ASSERT_OK(daemon_->Ready());
  ASSERT_OK(env_.node().SetPortState("mlx5_0", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("port");
  ASSERT_TRUE(WaitForUpdates(kGpu1, 2));
  std::string text = registry_.Render();
  EXPECT_THAT(text,
              HasSubstr("rdmashare_dp_devices{resource=\"spidernet.io/shared_cx5_gpu1\"} 100"));
  EXPECT_THAT(
      text,
      HasSubstr("rdmashare_dp_resource_healthy{resource=\"spidernet.io/shared_cx5_gpu1\"} 0"));
  EXPECT_THAT(
      text,
      HasSubstr("rdmashare_dp_resource_healthy{resource=\"spidernet.io/shared_cx5_gpu2\"} 1"));
  EXPECT_THAT(
      text,
      HasSubstr("rdmashare_dp_registrations_total{resource=\"spidernet.io/shared_cx5_gpu8\"} 1"));
  EXPECT_THAT(text, HasSubstr("rdmashare_dp_device_events_total 1"));
  EXPECT_THAT(text, HasSubstr("rdmashare_dp_scans_total 2"));
  EXPECT_THAT(text, HasSubstr("# TYPE rdmashare_dp_scan_duration_seconds gauge"));
}

TEST_F(DpLiveTest, MissingKubeletIsSaidOnceThenItsArrival) {
  // The ring buffer sink locks on read too: the daemon thread logs while the test reads.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
  auto logs = [&] {
    std::string all;
    for (const std::string& line : sink->last_formatted()) all += line;
    return all;
  };
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  env_.kubelet().Stop();
  retry_ = std::chrono::milliseconds(5);
  StartDaemon(LiveConfig());
  const std::string waiting = "waiting for kubelet: no " + env_.kubelet_dir() +
                              "/device-plugins/kubelet.sock yet (8 resources will register";
  EXPECT_TRUE(WaitFor([&] { return logs().find(waiting) != std::string::npos; }));
  // Registration counters exist (at 0) before the first registration.
  EXPECT_TRUE(WaitForMetric(
      "rdmashare_dp_registrations_total{resource=\"spidernet.io/shared_cx5_gpu1\"} 0\n"));
  // More rescans and retries while kubelet stays away: still said once.
  for (int i = 0; i < 3; ++i) {
    events_->Trigger("poke");
    EXPECT_TRUE(WaitForMetric(fmt::format("rdmashare_dp_scans_total {}\n", i + 2)));
  }
  ASSERT_OK(env_.kubelet().Start());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_TRUE(WaitFor([&] { return logs().find("kubelet appeared") != std::string::npos; }));
  std::string text = logs();
  spdlog::set_default_logger(old);
  size_t first = text.find(waiting);
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find(waiting, first + 1), std::string::npos) << text;
}

TEST_F(DpLiveTest, RoceCountersOfEachResourcesPortsAreInMetrics) {
  ASSERT_OK(env_.node().AddPortCounter("mlx5_0", 1, "np_cnp_sent", 17).status());
  ASSERT_OK(env_.node().AddPortCounter("mlx5_7", 1, "port_rcv_data", 256).status());
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  std::string text = registry_.Render();
  EXPECT_THAT(text, HasSubstr("rdmashare_rdma_hw_counter_total{resource=\"spidernet.io/"
                              "shared_cx5_gpu1\",ibdev=\"mlx5_0\",port=\"1\",netdev=\""
                              "enp11s0f0np0\",counter=\"np_cnp_sent\"} 17\n"));
  EXPECT_THAT(text, HasSubstr("rdmashare_rdma_port_data_bytes_total{resource=\"spidernet.io/"
                              "shared_cx5_gpu8\",ibdev=\"mlx5_7\",port=\"1\",netdev=\""
                              "enp18s0f0np0\",direction=\"rx\"} 1024\n"));
}

// plugins_registry/ exists (a DaemonSet's DirectoryOrCreate made it) but this kubelet does
// not watch it: after watcher_fallback_after the daemon registers on kubelet.sock instead.
TEST_F(DpLiveTest, UnwatchedPluginRegistryFallsBackToKubeletSock) {
  ASSERT_OK(env_.EnablePluginWatcher());  // the directory only; the kubelet serves kubelet.sock
  watcher_fallback_ = std::chrono::milliseconds(300);
  retry_ = std::chrono::milliseconds(20);
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  for (const std::string& r : WalkthroughResources()) {
    std::optional<ResourceState> st = env_.kubelet().Resource(r);
    ASSERT_TRUE(st.has_value()) << r;
    EXPECT_EQ(st->endpoint.find(env_.kubelet_dir() + "/device-plugins/rdmashare-"), 0u)
        << st->endpoint;
  }
  EXPECT_TRUE(WaitFor([&] { return daemon_->Ready().ok(); }));
}

TEST_F(DpLiveTest, ReadyOnlyOnceEveryResourceIsRegistered) {
  env_.kubelet().Stop();
  StartDaemon(LiveConfig());
  EXPECT_THAT(daemon_->Ready(), StatusIs(absl::StatusCode::kUnavailable,
                                         HasSubstr("is not registered with kubelet")));
  ASSERT_OK(env_.kubelet().Start());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_TRUE(WaitFor([&] { return daemon_->Ready().ok(); }));
}

TEST_F(DpLiveTest, GidTableTooSmallForThePodsIsWarnedAbout) {
  // Rail 1's port has 16 GID entries (2 used): 14 free hold 3 pods of 4 entries each, so 100
  // pods do not fit; rail 2 with 3 pods does.
  std::string config = R"({"periodicUpdateInterval": 3600, "configList": [
      {"resourcePrefix": "x.io", "resourceName": "big", "rdmaHcaMax": 100,
       "selectors": {"ifNames": ["enp11s0f0np0"]}},
      {"resourcePrefix": "x.io", "resourceName": "small", "rdmaHcaMax": 3,
       "selectors": {"ifNames": ["enp12s0f0np0"]}}]})";
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  StartDaemon(config);
  spdlog::set_default_logger(old);
  std::string logs = log_.str();
  // The same sentence as `rdmashare doctor` (rdma::DescribeGidRoom).
  EXPECT_THAT(logs, HasSubstr("ibdev=mlx5_0 port=1: resources x.io/big can place 100 pods; 14 of "
                              "16 GID entries free (2 used): room for 3 pods (4 entries each: "
                              "RoCE v1+v2 of the pod's IPv4 and IPv6 link-local addresses); pods "
                              "beyond 3 will fail to get a RoCE GID"));
  EXPECT_THAT(logs, ::testing::Not(HasSubstr("ibdev=mlx5_1")));
}

// Losing umad0 changes what rail 1's containers get (its CDI spec) but not what kubelet sees:
// the spec is rewritten, no ListAndWatch update is sent.
TEST_F(DpLiveTest, CdiSpecIsRewrittenOnChangeWithoutAListAndWatchUpdate) {
  cdi_dir_ = dir_.Sub("cdi");
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  const std::string spec = cdi_dir_ + "/" + deviceplugin::CdiSpecFileName(kGpu1);
  ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(spec));
  EXPECT_THAT(before, HasSubstr("\"/dev/infiniband/umad0\""));
  EXPECT_THAT(before, HasSubstr("\"cdiVersion\": \"0.5.0\""));
  ASSERT_OK(env_.node().RemoveDevNode("umad0"));
  events_->Trigger("umad0 gone");
  ASSERT_TRUE(WaitFor([&] {
    auto now = ReadFile(spec);
    return now.ok() && now->find("umad0") == std::string::npos;
  }));
  ASSERT_OK_AND_ASSIGN(std::string after, ReadFile(spec));
  EXPECT_THAT(after, HasSubstr("\"/dev/infiniband/uverbs0\""));
  // Fence: a rail 2 change after it; by then rail 1 must still have its single update.
  ASSERT_OK(env_.node().SetPortState("mlx5_1", 1, "1: DOWN", "3: Disabled"));
  events_->Trigger("rail 2");
  ASSERT_TRUE(WaitForUpdates(kGpu2, 2));
  EXPECT_THAT(History(kGpu1), ElementsAre("100 healthy"));
}

// A directory at gpu1's spec path and a FIFO at gpu2's (anyone with write access to the CDI
// directory can plant them): the daemon starts promptly, logs each, serves the other six, is not
// ready while naming the cause, and serves both once the entries are gone and a rescan ran.
TEST_F(DpLiveTest, ConflictingCdiEntriesCostOnlyTheirResources) {
  cdi_dir_ = dir_.Sub("cdi");
  ASSERT_OK(MakeDirs(cdi_dir_));
  const std::string gpu1_spec = cdi_dir_ + "/" + deviceplugin::CdiSpecFileName(kGpu1);
  const std::string gpu2_spec = cdi_dir_ + "/" + deviceplugin::CdiSpecFileName(kGpu2);
  ASSERT_OK(MakeDirs(gpu1_spec));
  MakeFifo(gpu2_spec);
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  const bool prompt = FinishesWithin([&] { StartDaemon(LiveConfig()); }, {gpu2_spec});
  spdlog::set_default_logger(old);
  ASSERT_TRUE(prompt) << "daemon start blocked on the FIFO";
  ASSERT_NE(daemon_, nullptr);
  std::vector<std::string> others;
  for (int k = 3; k <= 8; ++k) others.push_back(fmt::format("spidernet.io/shared_cx5_gpu{}", k));
  ASSERT_TRUE(env_.WaitForResources(others, 100));
  EXPECT_THAT(env_.kubelet().Resources(), ::testing::ElementsAreArray(others));
  const std::string logs = log_.str();
  EXPECT_THAT(logs,
              HasSubstr(fmt::format("resource={} not served: CDI spec for kind {}: open {}: is a "
                                    "directory, not a regular file",
                                    kGpu1, kGpu1, gpu1_spec)));
  EXPECT_THAT(logs,
              HasSubstr(fmt::format("resource={} not served: CDI spec for kind {}: open {}: is a "
                                    "FIFO, not a regular file",
                                    kGpu2, kGpu2, gpu2_spec)));
  EXPECT_THAT(daemon_->Ready(), StatusIs(absl::StatusCode::kUnavailable,
                                         HasSubstr("resource " + std::string(kGpu1) +
                                                   " is not served: CDI spec for kind")));
  EXPECT_TRUE(WaitForMetric(
      "rdmashare_dp_resource_registered{resource=\"spidernet.io/shared_cx5_gpu1\"} 0"));

  ASSERT_EQ(::rmdir(gpu1_spec.c_str()), 0);
  ASSERT_EQ(::unlink(gpu2_spec.c_str()), 0);
  events_->Trigger("operator removed the conflicting entries");
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_TRUE(WaitFor([&] { return daemon_->Ready().ok(); })) << daemon_->Ready();
  ASSERT_OK_AND_ASSIGN(std::string spec, ReadFile(gpu1_spec));
  EXPECT_THAT(spec, HasSubstr("\"kind\": \"spidernet.io/shared_cx5_gpu1\""));
}

// The idle event loop (periodic rescan an hour away) still beats within its interval, so
// /healthz stays OK; a clock jump past max_age fails it until the next beat.
TEST_F(DpLiveTest, IdleEventLoopKeepsBeatingTheHeartbeat) {
  StartDaemon(LiveConfig());
  ASSERT_TRUE(env_.WaitForResources(WalkthroughResources(), 100));
  EXPECT_OK(heartbeat_.Check());
  for (int i = 0; i < 3; ++i) {
    fake_now_s_ += 3600;
    ASSERT_TRUE(WaitFor([&] { return heartbeat_.Check().ok(); })) << heartbeat_.Check();
  }
}

}  // namespace
}  // namespace rdmashare::testing
