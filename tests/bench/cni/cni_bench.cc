// cni_bench: ADD+DEL latency of rdmashare-macvlan + rdmashare-ipam (probes off, and with the
// default probes) against Debian's reference macvlan + host-local on the same master, in the
// same run (interleaved), a walkthrough pod's 8 rails with probes on and off, plus the wall time
// of 64 concurrent ADDs for each. Prints figures; asserts nothing. Our plugin runs
// twice: as configured by default (DEL answers before the kernel finishes tearing the link down)
// and with "deferLinkDelete": false (DEL answers after the link is gone, like the reference).
//
//   cni_bench [iterations=50] [data-dir-parent]
//
// Both IPAMs keep their leases under the same directory (a fresh one below data-dir-parent,
// default /tmp): rdmashare-ipam fsyncs every lease write, host-local does not, so a tmpfs parent
// (/dev/shm) shows the cost of the plugins themselves and a disk parent adds durability.
//
// Runs as root on the rail harness (private netns, nothing of the host is touched).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/cni/rail_harness.h"

namespace {

using rdmashare::cni::testing::PluginRun;
using rdmashare::cni::testing::RailHarness;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Plugin {
  std::string label;
  std::string binary;
  std::string cni_path;
  json conf;
};

std::map<std::string, std::string> Env(const std::string& cmd, const std::string& id,
                                       const std::string& netns, const std::string& path) {
  return {{"CNI_COMMAND", cmd},
          {"CNI_CONTAINERID", id},
          {"CNI_NETNS", netns},
          {"CNI_IFNAME", "net1"},
          {"CNI_PATH", path}};
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// One ADD+DEL; returns ms or -1 on failure (printed).
double AddDel(const RailHarness& h, const Plugin& p, const std::string& id,
              const std::string& pod) {
  auto start = Clock::now();
  PluginRun add = h.Run(p.binary, Env("ADD", id, pod, p.cni_path), p.conf.dump());
  PluginRun del = h.Run(p.binary, Env("DEL", id, pod, p.cni_path), p.conf.dump());
  auto took = Clock::now() - start;
  if (add.exit_code != 0 || del.exit_code != 0) {
    std::fprintf(stderr, "%s failed: %s %s\n", p.label.c_str(), add.stdout_data.c_str(),
                 del.stdout_data.c_str());
    return -1;
  }
  return Ms(took);
}

// 64 concurrent ADDs into distinct pods; returns total wall ms (then DELs them, untimed).
double Concurrent(const RailHarness& h, const Plugin& p, const std::vector<std::string>& pods) {
  std::vector<std::thread> threads;
  std::vector<int> rc(pods.size(), -1);
  auto start = Clock::now();
  for (size_t i = 0; i < pods.size(); ++i) {
    threads.emplace_back([&, i] {
      rc[i] = h.Run(p.binary, Env("ADD", fmt::format("c{}-{}", p.label, i), pods[i], p.cni_path),
                    p.conf.dump())
                  .exit_code;
    });
  }
  for (auto& t : threads) t.join();
  double total = Ms(Clock::now() - start);
  int failed = static_cast<int>(std::count_if(rc.begin(), rc.end(), [](int c) { return c != 0; }));
  if (failed != 0) std::fprintf(stderr, "%s: %d concurrent ADDs failed\n", p.label.c_str(), failed);
  for (size_t i = 0; i < pods.size(); ++i) {
    h.Run(p.binary, Env("DEL", fmt::format("c{}-{}", p.label, i), pods[i], p.cni_path),
          p.conf.dump());
  }
  return total;
}

// Waits (up to 5 s) until the pod netns holds no macvlan link.
void WaitNoMacvlan(const std::string& pod) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    if (RailHarness::Ip(RailHarness::NsName(pod), "-o link show type macvlan").empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::fprintf(stderr, "a deferred link deletion did not finish within 5 s\n");
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 50;
  if (geteuid() != 0) {
    std::fprintf(stderr, "cni_bench needs root (netns, macvlan)\n");
    return 2;
  }
  std::string parent = argc > 2 ? argv[2] : "/tmp";
  char tmpl[256];
  std::snprintf(tmpl, sizeof(tmpl), "%s/cnibench.XXXXXX", parent.c_str());
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "cannot create a directory under %s\n", parent.c_str());
    return 2;
  }
  struct Cleanup {
    std::string path;
    ~Cleanup() { rdmashare::testing::RemoveTree(path); }
  } data{tmpl};
  RailHarness h(8);
  Plugin ours{"rdmashare", RS_MACVLAN_BIN, std::string(RS_IPAM_DIR) + ":/usr/lib/cni",
              json{{"cniVersion", "1.0.0"},
                   {"name", "bench-ours"},
                   {"type", "rdmashare-macvlan"},
                   {"master", RailHarness::RailNic(1)},
                   {"detectGateway", false},
                   {"detectIPConflict", false},
                   {"ipam",
                    {{"type", "rdmashare-ipam"},
                     {"subnet", "172.16.11.0/24"},
                     {"ips", {"172.16.11.10-172.16.11.99"}},
                     {"gateway", "172.16.11.254"},
                     {"dataDir", data.path}}}}};
  Plugin ref{"reference", "/usr/lib/cni/macvlan", "/usr/lib/cni",
             json{{"cniVersion", "1.0.0"},
                  {"name", "bench-ref"},
                  {"type", "macvlan"},
                  {"master", RailHarness::RailNic(1)},
                  {"mode", "bridge"},
                  {"ipam",
                   {{"type", "host-local"},
                    {"subnet", "172.16.11.0/24"},
                    {"rangeStart", "172.16.11.100"},
                    {"rangeEnd", "172.16.11.250"},
                    {"gateway", "172.16.11.254"},
                    {"dataDir", data.path}}}}};

  // The same plugin answering DEL only after the link is gone (the kernel's unregister path
  // waits for an RCU barrier), to show what deferring that wait is worth.
  Plugin ours_sync = ours;
  ours_sync.label = "rdmashare-sync";
  ours_sync.conf["deferLinkDelete"] = false;

  // The defaults: conflict probe (3 x 25 ms) and gateway check, at once, before the address
  // goes on.
  Plugin ours_probes = ours;
  ours_probes.label = "rdmashare-probes";
  ours_probes.conf.erase("detectGateway");
  ours_probes.conf.erase("detectIPConflict");

  std::string pod = h.AddPod();
  // Warm-up (page cache, first exec).
  AddDel(h, ours, "warm", pod);
  WaitNoMacvlan(pod);
  AddDel(h, ours_sync, "warms", pod);
  AddDel(h, ref, "warm", pod);
  AddDel(h, ours_probes, "warmp", pod);
  WaitNoMacvlan(pod);
  std::vector<double> t_ours, t_sync, t_ref, t_probes;
  for (int i = 0; i < iterations; ++i) {
    // Interleaved so all see the same machine load.
    double a = AddDel(h, ours, fmt::format("o{}", i), pod);
    // Untimed: let the deferred link deletion finish so it does not overlap the next run.
    WaitNoMacvlan(pod);
    double b = AddDel(h, ref, fmt::format("r{}", i), pod);
    double c = AddDel(h, ours_sync, fmt::format("s{}", i), pod);
    double d = AddDel(h, ours_probes, fmt::format("p{}", i), pod);
    WaitNoMacvlan(pod);
    if (a >= 0) t_ours.push_back(a);
    if (b >= 0) t_ref.push_back(b);
    if (c >= 0) t_sync.push_back(c);
    if (d >= 0) t_probes.push_back(d);
  }
  if (t_ours.empty() || t_ref.empty() || t_sync.empty() || t_probes.empty()) return 1;
  double mo = Percentile(t_ours, 0.5), mr = Percentile(t_ref, 0.5);
  std::printf("ADD+DEL latency, %d iterations each (ms), master %s, probes off, leases in %s\n",
              iterations, RailHarness::RailNic(1).c_str(), parent.c_str());
  std::printf("  %-38s median %7.2f  p99 %7.2f  min %7.2f\n", "rdmashare-macvlan + rdmashare-ipam",
              mo, Percentile(t_ours, 0.99), Percentile(t_ours, 0.0));
  std::printf("  %-38s median %7.2f  p99 %7.2f  min %7.2f\n", "  same, \"deferLinkDelete\": false",
              Percentile(t_sync, 0.5), Percentile(t_sync, 0.99), Percentile(t_sync, 0.0));
  std::printf("  %-38s median %7.2f  p99 %7.2f  min %7.2f\n", "reference macvlan + host-local", mr,
              Percentile(t_ref, 0.99), Percentile(t_ref, 0.0));
  std::printf(
      "  median ratio ours/reference: %.3f (goal <= 0.5); with deferLinkDelete false: %.3f\n",
      mo / mr, Percentile(t_sync, 0.5) / mr);
  std::printf("  %-38s median %7.2f  p99 %7.2f  min %7.2f  (goal median <= 120)\n",
              "rdmashare, probes on (defaults)", Percentile(t_probes, 0.5),
              Percentile(t_probes, 0.99), Percentile(t_probes, 0.0));

  // A walkthrough pod: 8 rail ADDs then 8 DELs (Multus runs them one after the other), probes
  // on (defaults) and off.
  {
    std::string pod8 = h.AddPod();
    auto rail_conf = [&](const Plugin& base, int k) {
      json c = base.conf;
      c["name"] = fmt::format("{}-rail{}", base.label, k);
      c["master"] = RailHarness::RailNic(k);
      c["ipam"]["subnet"] = fmt::format("172.16.{}.0/24", 10 + k);
      c["ipam"]["ips"] = json::array({fmt::format("172.16.{0}.10-172.16.{0}.99", 10 + k)});
      c["ipam"]["gateway"] = RailHarness::RailGateway(k);
      return c;
    };
    auto pod_cycle = [&](const Plugin& base, const std::string& id) -> double {
      auto start = Clock::now();
      for (int op = 0; op < 2; ++op) {
        for (int k = 1; k <= 8; ++k) {
          auto env = Env(op == 0 ? "ADD" : "DEL", id, pod8, base.cni_path);
          env["CNI_IFNAME"] = fmt::format("net{}", k);
          PluginRun r = h.Run(base.binary, env, rail_conf(base, k).dump());
          if (r.exit_code != 0) {
            std::fprintf(stderr, "%s rail %d: %s\n", base.label.c_str(), k, r.stdout_data.c_str());
            return -1;
          }
        }
      }
      double ms = Ms(Clock::now() - start);
      WaitNoMacvlan(pod8);
      return ms;
    };
    std::vector<double> off8, on8;
    int pods = std::max(5, iterations / 5);
    for (int i = 0; i < pods; ++i) {
      double a = pod_cycle(ours, fmt::format("pod-off{}", i));
      double b = pod_cycle(ours_probes, fmt::format("pod-on{}", i));
      if (a >= 0) off8.push_back(a);
      if (b >= 0) on8.push_back(b);
    }
    if (!off8.empty() && !on8.empty()) {
      std::printf("8-rail pod, 8 ADDs + 8 DELs, %d pods each (ms)\n", pods);
      std::printf("  %-38s median %7.2f  p99 %7.2f\n", "probes off", Percentile(off8, 0.5),
                  Percentile(off8, 0.99));
      std::printf("  %-38s median %7.2f  p99 %7.2f  (%.1f ms per rail for the probes)\n",
                  "probes on (defaults)", Percentile(on8, 0.5), Percentile(on8, 0.99),
                  (Percentile(on8, 0.5) - Percentile(off8, 0.5)) / 8);
    }
  }

  std::vector<std::string> pods;
  for (int i = 0; i < 64; ++i) pods.push_back(h.AddPod());
  double co = Concurrent(h, ours, pods);
  for (const std::string& p : pods) WaitNoMacvlan(p);
  double cr = Concurrent(h, ref, pods);
  std::printf("64 concurrent ADDs, one pool, wall time (ms)\n");
  std::printf("  %-38s %8.1f\n", "rdmashare-macvlan + rdmashare-ipam", co);
  std::printf("  %-38s %8.1f\n", "reference macvlan + host-local", cr);
  std::printf("  ratio ours/reference: %.3f\n", co / cr);
  return 0;
}
