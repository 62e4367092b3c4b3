// rdmashare-dp benchmark (a program printing figures, not a test). Run from a release build:
//   tools/bench.sh   (or build-release/tests/bench/deviceplugin/dp_bench)
//
// 1. Allocate latency of the real DevicePluginService (walkthrough rail, 100 units) against a
//    no-op unary gRPC call of the same method on the same kind of unix socket, same run.
// 2. From exec of rdmashare-dp to all 8 walkthrough resources listed by the fake kubelet.
// 3. VmRSS of rdmashare-dp once 8 resources x 1000 units are registered.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "deviceplugin/plugin_server.h"
#include "deviceplugin/test_inventory.h"
#include "fmt/format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare {
namespace {

using Clock = std::chrono::steady_clock;

// Same service, Allocate answers an empty response: the baseline cost of one unary call.
class NoopPlugin final : public v1beta1::DevicePlugin::Service {
  grpc::Status Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest*,
                        v1beta1::AllocateResponse*) override {
    return grpc::Status::OK;
  }
};

struct Stats {
  double p50_us, p99_us, mean_us;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], sum / v.size()};
}

std::vector<double> TimeAllocate(const std::string& socket, int n) {
  auto stub = v1beta1::DevicePlugin::NewStub(
      grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()));
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("0");
  std::vector<double> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    v1beta1::AllocateResponse resp;
    grpc::ClientContext ctx;
    auto t0 = Clock::now();
    grpc::Status st = stub->Allocate(&ctx, req, &resp);
    auto t1 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "Allocate failed: %s\n", st.error_message().c_str());
      std::exit(1);
    }
    out.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  return out;
}

void AllocateLatency() {
  testing::TempDir dir;
  deviceplugin::ResourceConfig rc;
  rc.resource_prefix = "spidernet.io";
  rc.resource_name = "shared_cx5_gpu1";
  rc.rdma_hca_max = 100;
  rc.selectors.if_names = {"enp11s0f0np0"};
  deviceplugin::ResourcePool pool(rc, "/dev", "/dev");
  rdma::NodeInventory inv;
  inv.devices = {deviceplugin::testing::TestHca(0, "enp11s0f0np0", 0)};
  inv.rdma_cm = deviceplugin::testing::TestRdmaCm();
  pool.Update(inv);
  deviceplugin::PluginServer server(&pool, dir.Sub("dp.sock"), false, nullptr);
  if (!server.Start().ok()) std::exit(1);

  NoopPlugin noop;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + dir.Sub("noop.sock"), grpc::InsecureServerCredentials());
  builder.RegisterService(&noop);
  auto noop_server = builder.BuildAndStart();

  const int kWarm = 500, kN = 5000;
  TimeAllocate(dir.Sub("dp.sock"), kWarm);
  TimeAllocate(dir.Sub("noop.sock"), kWarm);
  // Interleave rounds so both see the same machine conditions.
  std::vector<double> ours, base;
  for (int round = 0; round < 5; ++round) {
    auto a = TimeAllocate(dir.Sub("dp.sock"), kN / 5);
    auto b = TimeAllocate(dir.Sub("noop.sock"), kN / 5);
    ours.insert(ours.end(), a.begin(), a.end());
    base.insert(base.end(), b.begin(), b.end());
  }
  Stats s = Summarize(ours), b = Summarize(base);
  std::printf("1. Allocate latency over a unix socket, %d calls each (goal: ratio <= 1.3)\n", kN);
  std::printf("   %-34s %10s %10s %10s\n", "", "p50 us", "p99 us", "mean us");
  std::printf("   %-34s %10.1f %10.1f %10.1f\n", "rdmashare-dp Allocate (3 nodes)", s.p50_us,
              s.p99_us, s.mean_us);
  std::printf("   %-34s %10.1f %10.1f %10.1f\n", "baseline: no-op unary Allocate", b.p50_us,
              b.p99_us, b.mean_us);
  std::printf("   %-34s %10.2f %10.2f %10.2f\n\n", "ratio", s.p50_us / b.p50_us,
              s.p99_us / b.p99_us, s.mean_us / b.mean_us);
  noop_server->Shutdown();
  server.Stop();
}

void StartupTime(const std::string& dp_binary) {
  const int kRuns = 15;
  std::vector<double> ms;
  for (int i = 0; i < kRuns; ++i) {
    testing::TempDir dir;
    testing::DpTestEnv env(dir.path(), dp_binary);
    if (!env.BuildNode(fakenode::Walkthrough8Rail()).ok() ||
        !env.WriteConfig(testing::WalkthroughConfigJson()).ok() || !env.StartKubelet().ok()) {
      std::fprintf(stderr, "setup failed\n");
      std::exit(1);
    }
    auto t0 = Clock::now();
    if (!env.StartDaemon({"--log-level", "warn"}).ok() ||
        !env.WaitForResources(testing::WalkthroughResources(), 100, std::chrono::seconds(30))) {
      std::fprintf(stderr, "daemon did not come up\n");
      std::exit(1);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    env.StopDaemon();
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "2. exec of rdmashare-dp -> 8 resources listed by the fake kubelet, %d runs "
      "(goal: median <= 50 ms)\n",
      kRuns);
  std::printf("   min %.1f ms   median %.1f ms   max %.1f ms\n\n", ms.front(), ms[ms.size() / 2],
              ms.back());
}

void Footprint(const std::string& dp_binary) {
  testing::TempDir dir;
  testing::DpTestEnv env(dir.path(), dp_binary);
  if (!env.BuildNode(fakenode::Walkthrough8Rail()).ok() ||
      !env.WriteConfig(testing::WalkthroughConfigJson(1000)).ok() || !env.StartKubelet().ok() ||
      !env.StartDaemon({"--log-level", "warn"}).ok() ||
      !env.WaitForResources(testing::WalkthroughResources(), 1000, std::chrono::seconds(30))) {
    std::fprintf(stderr, "footprint setup failed\n");
    std::exit(1);
  }
  // Let a few Allocate calls go through too, as in a running node.
  for (const auto& r : testing::WalkthroughResources()) (void)env.kubelet().Allocate(r, {{"1"}});
  auto status = ReadFile(fmt::format("/proc/{}/status", env.daemon()->pid()));
  std::string rss = "?", threads = "?";
  if (status.ok()) {
    for (const std::string key : {"VmRSS:", "Threads:"}) {
      size_t p = status->find(key);
      if (p == std::string::npos) continue;
      size_t e = status->find('\n', p);
      std::string v = status->substr(p + key.size(), e - p - key.size());
      v.erase(0, v.find_first_not_of(" \t"));
      (key == "VmRSS:" ? rss : threads) = v;
    }
  }
  std::printf("3. rdmashare-dp with 8 resources x 1000 units registered (goal: VmRSS <= 20 MiB)\n");
  std::printf("   VmRSS %s   threads %s\n", rss.c_str(), threads.c_str());
  env.StopDaemon();
}

}  // namespace
}  // namespace rdmashare

int main(int argc, char** argv) {
  std::string dp = argc > 1 ? argv[1] : RDMASHARE_DP_BINARY;
  std::printf("rdmashare-dp benchmark (binary %s)\n\n", dp.c_str());
  rdmashare::AllocateLatency();
  rdmashare::StartupTime(dp);
  rdmashare::Footprint(dp);
  return 0;
}
