// rdmashare-dp live benchmark (a program printing figures, not a test). Run from a release
// build: build-release/tests/bench/deviceplugin/dp_live_bench [runs]
//
// 1. Event -> kubelet: from a FakeEventSource trigger (in-process Daemon, walkthrough node, the
//    rail's port state flipped before the trigger) to the fake kubelet holding the new
//    ListAndWatch list; p50/p99 over N runs.
// 2. Real veth -> kubelet: the real rdmashare-dp binary, a fake rail whose netdev is a real veth;
//    from the SIOCSIFFLAGS ioctl taking the veth down (or up) to the fake kubelet holding the new
//    list (kernel rtnetlink event -> rescan -> ListAndWatch); p50/p99 over N runs.
// 3. Full rescan of a 64-HCA fake node (SysfsDeviceScanner::Scan), p50/p99.
// 4. The uevent path alone: raw netlink socket vs libudev's monitor (what rdmashare-dp uses).
// Printed beside the Go k8s-rdma-shared-dev-plugin's behaviour: it only rescans on its timer
// (periodicUpdateInterval, default 60 s), so a change reaches kubelet after ~30 s on average.
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "deviceplugin/config.h"
#include "deviceplugin/daemon.h"
#include "fmt/format.h"
#include "rdma/device_events.h"
#include "rdma/device_scanner.h"
#include "rdma/udev_events.h"
#include "spdlog/spdlog.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kGpu1[] = "spidernet.io/shared_cx5_gpu1";

void Die(const std::string& what) {
  std::fprintf(stderr, "dp_live_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Stats {
  double p50, p99, max;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], v.back()};
}

std::string HourConfig() {
  std::string json = testing::WalkthroughConfigJson();
  std::string from = "\"periodicUpdateInterval\": 300";
  json.replace(json.find(from), from.size(), "\"periodicUpdateInterval\": 3600");
  return json;
}

size_t Updates(const testing::FakeKubelet& k) {
  auto st = k.Resource(kGpu1);
  return st ? st->history.size() : 0;
}

// Waits for update number `n` of gpu1 and returns its receive time.
Clock::time_point WaitUpdate(testing::FakeKubelet& k, size_t n) {
  if (!k.WaitFor([&](const testing::FakeKubelet& kk) { return Updates(kk) >= n; },
                 std::chrono::seconds(10))) {
    Die(fmt::format("update {} never arrived", n));
  }
  return k.Resource(kGpu1)->history[n - 1].received;
}

void FakeEventLatency(int runs) {
  testing::TempDir dir;
  testing::DpTestEnv env(dir.path(), "");
  if (!env.BuildNode(fakenode::Walkthrough8Rail()).ok() || !env.StartKubelet().ok()) Die("setup");
  auto config = deviceplugin::ParseConfig(HourConfig(), nullptr);
  deviceplugin::DaemonOptions opts;
  opts.paths = env.node().paths();
  opts.paths.kubelet_dir = env.kubelet_dir();
  opts.config = *config;
  auto events = std::make_unique<rdma::FakeEventSource>();
  rdma::FakeEventSource* ev = events.get();
  deviceplugin::Daemon daemon(opts, std::make_unique<rdma::SysfsDeviceScanner>(opts.paths),
                              std::move(events));
  if (!daemon.Start().ok()) Die("daemon start");
  std::thread loop([&] { daemon.Run(); });
  if (!env.WaitForResources(testing::WalkthroughResources(), 100)) Die("registration");
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    size_t before = Updates(env.kubelet());
    bool down = i % 2 == 0;
    if (!env.node()
             .SetPortState("mlx5_0", 1, down ? "1: DOWN" : "4: ACTIVE",
                           down ? "3: Disabled" : "5: LinkUp")
             .ok()) {
      Die("port flip");
    }
    auto t0 = Clock::now();
    ev->Trigger("bench");
    auto t1 = WaitUpdate(env.kubelet(), before + 1);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  daemon.Stop();
  loop.join();
  Stats s = Summarize(ms);
  std::printf("1. device event (fake source) -> kubelet has the new list, %d runs\n", runs);
  std::printf("   rdmashare-dp   p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms\n", s.p50, s.p99,
              s.max);
}

// Sets or clears IFF_UP like `ip link set <if> up|down`, without a process in between.
void SetLinkUp(const std::string& ifname, bool up) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), SIOCGIFFLAGS, &ifr) != 0) Die("SIOCGIFFLAGS " + ifname);
  if (up) {
    ifr.ifr_flags |= IFF_UP;
  } else {
    ifr.ifr_flags &= ~IFF_UP;
  }
  if (::ioctl(fd.get(), SIOCSIFFLAGS, &ifr) != 0) Die("SIOCSIFFLAGS " + ifname);
}

void Ip(const std::vector<std::string>& args) {
  testing::Subprocess::Options o;
  o.argv = {"/usr/sbin/ip"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  testing::RunProgram(o, std::chrono::seconds(10));
}

void VethLatency(const std::string& dp_binary, int runs) {
  const std::string a = fmt::format("rsbn{}a", ::getpid() % 100000);
  const std::string b = fmt::format("rsbn{}b", ::getpid() % 100000);
  Ip({"link", "del", a});
  Ip({"link", "add", a, "type", "veth", "peer", "name", b});
  Ip({"link", "set", b, "up"});
  SetLinkUp(a, true);
  testing::TempDir dir;
  testing::DpTestEnv env(dir.path(), dp_binary);
  if (!env.BuildNode(fakenode::Walkthrough8Rail()).ok()) Die("node");
  auto real = RealPath("/sys/class/net/" + a);
  if (!real.ok() || !env.node().PointNetdevAt("enp11s0f0np0", *real).ok()) Die("veth link");
  if (!env.WriteConfig(HourConfig()).ok() || !env.StartKubelet().ok() ||
      !env.StartDaemon({"--log-level", "warn"}).ok()) {
    Die("daemon");
  }
  if (!env.WaitForResources(testing::WalkthroughResources(), 100)) Die("registration (veth)");
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    size_t before = Updates(env.kubelet());
    auto t0 = Clock::now();
    SetLinkUp(a, i % 2 == 1);
    auto t1 = WaitUpdate(env.kubelet(), before + 1);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  env.StopDaemon();
  Ip({"link", "del", a});
  Stats s = Summarize(ms);
  std::printf("2. real veth down/up (ioctl) -> kubelet has the new list, %d runs\n", runs);
  std::printf("   rdmashare-dp   p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms\n", s.p50, s.p99,
              s.max);
}

// The uevent path alone, per source: from write("change") to a veth's uevent file returning to
// the source's Drain() reporting it (poll + drain), raw netlink socket vs libudev's monitor.
// Both sources are open at once; each run measures one of them (alternating), then empties both.
void UeventSourceLatency(int runs) {
  const std::string a = fmt::format("rsbu{}a", ::getpid() % 100000);
  Ip({"link", "del", a});
  Ip({"link", "add", a, "type", "veth", "peer", "name",
      fmt::format("rsbu{}b", ::getpid() % 100000)});
  auto netlink = rdma::NetlinkEventSource::Open();
  auto udev = rdma::UdevEventSource::Open();
  if (!netlink.ok() || !udev.ok()) Die("cannot open both event sources");
  rdma::EventSource* sources[2] = {netlink->get(), udev->get()};
  auto readable = [](int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  };
  auto empty = [&] {
    for (rdma::EventSource* src : sources) {
      while (readable(src->fd(), 20)) (void)src->Drain();
    }
  };
  std::vector<double> ms[2];
  const std::string path = "/sys/class/net/" + a + "/uevent";
  for (int i = 0; i < 2 * runs; ++i) {
    empty();
    rdma::EventSource* src = sources[i % 2];
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), "change", 6) != 6) Die("write " + path);
    auto t0 = Clock::now();
    bool seen = false;
    while (!seen && readable(src->fd(), 2000)) seen = src->Drain().relevant > 0;
    if (!seen) Die("no uevent seen");
    ms[i % 2].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  Ip({"link", "del", a});
  Stats n = Summarize(ms[0]), u = Summarize(ms[1]);
  std::printf("4. uevent -> Drain (net 'change' on a veth), %d runs each\n", runs);
  std::printf("   raw netlink socket   p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", n.p50, n.p99,
              n.max);
  std::printf("   libudev monitor      p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n\n", u.p50, u.p99,
              u.max);
}

fakenode::NodeSpec SixtyFourHcas() {
  fakenode::NodeSpec spec;
  spec.rdma_cm = fakenode::DevNumber{10, 58};
  for (int k = 0; k < 64; ++k) {
    fakenode::PciFunctionSpec nic;
    nic.address = fmt::format("0000:{:02x}:00.0", 0x20 + k);
    nic.numa_node = k < 32 ? "0" : "1";
    nic.driver = "mlx5_core";
    fakenode::NetdevSpec nd;
    nd.name = fmt::format("enp{}s0f0np0", 0x20 + k);
    nd.address = fmt::format("0c:42:a1:00:01:{:02x}", k);
    nd.ifindex = 10 + k;
    nic.netdevs.push_back(nd);
    spec.pci.push_back(nic);
    fakenode::IbDeviceSpec ib;
    ib.ibdev = fmt::format("mlx5_{}", k);
    ib.pci_address = nic.address;
    fakenode::IbPortSpec port;
    port.gid_table_size = 255;  // a real mlx5 RoCE port
    port.gid_ndevs = {nd.name, nd.name};
    ib.ports.push_back(port);
    spec.ib_devices.push_back(ib);
  }
  return spec;
}

void RescanCost(int runs) {
  testing::TempDir dir;
  auto t0 = Clock::now();
  auto node = fakenode::FakeNode::Build(SixtyFourHcas(), dir.path());
  if (!node.ok()) Die(std::string(node.status().message()));
  double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
  rdma::SysfsDeviceScanner scanner(node->paths());
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto s0 = Clock::now();
    auto inv = scanner.Scan();
    if (!inv.ok() || inv->devices.size() != 64) Die("scan of 64 HCAs");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
  }
  Stats s = Summarize(ms);
  std::printf("3. full rescan, 64 HCAs x 1 port x 255 GIDs (fake tree built in %.1f s), %d runs\n",
              build_s, runs);
  std::printf("   Scan()         p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms\n", s.p50, s.p99,
              s.max);
}

}  // namespace
}  // namespace rdmashare

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  std::string dp = argc > 2 ? argv[2] : RDMASHARE_DP_BINARY;
  spdlog::set_level(spdlog::level::err);
  std::printf("rdmashare-dp live benchmark (binary %s), goal p50 <= 20 ms\n\n", dp.c_str());
  rdmashare::FakeEventLatency(runs);
  rdmashare::VethLatency(dp, runs);
  std::printf(
      "   Go k8s-rdma-shared-dev-plugin: no events, periodic rescan only (default 60 s): a\n"
      "   change reaches kubelet after U(0, 60 s): expected ~30 s, p99 ~59.4 s\n\n");
  rdmashare::RescanCost(50);
  rdmashare::UeventSourceLatency(runs);
  return 0;
}
