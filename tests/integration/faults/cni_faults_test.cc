// Fault injection over real CNI ADD/DEL cycles: the rdmashare-macvlan binary (with in-process
// rdmashare-ipam) runs on the rail harness (real netns, veth, macvlan) and is killed at a named
// failpoint (RDMASHARE_FAILPOINT) or by SIGKILL at a random moment. The runtime model: a failed
// ADD is followed by DEL (the spec requires it), a failed DEL is retried until it succeeds, and
// now and then a pod vanishes without any DEL (its netns is destroyed; only GC can release its
// addresses). At checkpoints GC runs with the live attachments, and at the end every container
// gets a DEL. Invariants: the store holds exactly the live attachments, no address is held twice,
// no stray link/rule/route stays in any pod netns, every DEL converges.
//
// Seeded: RDMASHARE_FAULT_SEED (default: time) and RDMASHARE_FAULT_CYCLES (default 300) override;
// the seed and the tallies are printed. Root only.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cni/net/netns.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cni/rail_harness.h"

namespace rdmashare::cni::testing {
namespace {

using json = nlohmann::json;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;

const std::string kMacvlan = RS_MACVLAN_BIN;
constexpr int kRails = 2;
constexpr int kPods = 4;

const std::vector<std::string> kAddFailpoints = {
    "macvlan.add.after_ipam",
    "macvlan.add.after_link_create",
    "macvlan.add.after_rename",
    "macvlan.add.after_addresses",
    "macvlan.add.after_routes",
    "macvlan.add.after_rules",
    "ipam.add.after_alloc",
    "ipam.store.reserve.after_temp",
    "ipam.store.reserve.after_record",
};
const std::vector<std::string> kDelFailpoints = {
    "macvlan.del.after_links",
    "macvlan.del.after_pod_cleanup",
    "ipam.del.after_release",
    "ipam.store.release.after_sidecar",
};

std::string NetworkName(int k) { return fmt::format("fault{}-rail{}", getpid(), k); }
std::string IfName(int k) { return fmt::format("net{}", k); }

json RailConf(int k, const std::string& data_dir) {
  return json{{"cniVersion", "1.0.0"},
              {"name", NetworkName(k)},
              {"type", "rdmashare-macvlan"},
              {"master", RailHarness::RailNic(k)},
              {"detectGateway", false},
              {"detectIPConflict", false},
              {"ipam",
               {{"type", "rdmashare-ipam"},
                {"subnet", RailHarness::RailSubnet(k)},
                // Small on purpose: leaked addresses would exhaust it.
                {"ips", {fmt::format("172.16.{0}.10-172.16.{0}.29", 10 + k)}},
                {"gateway", RailHarness::RailGateway(k)},
                {"fsync", false},
                {"dataDir", data_dir}}}};
}

struct Fault {
  std::string failpoint;   // armed failpoint, or empty
  int kill_after_us = -1;  // >= 0: SIGKILL after this delay
  bool any() const { return !failpoint.empty() || kill_after_us >= 0; }
};

struct Outcome {
  int exit_code = -1;
  bool died = false;  // killed by the fault (failpoint or SIGKILL) rather than exiting
  json out;
};

class FaultRunner {
 public:
  FaultRunner(const RailHarness& h, std::string work_dir) : h_(h), work_dir_(std::move(work_dir)) {}

  Outcome Run(const std::string& cmd, const std::string& id, const std::string& netns, int rail,
              const std::string& stdin_data, const Fault& fault) {
    Outcome o;
    Subprocess::Options opts;
    opts.argv = {kMacvlan};
    opts.inherit_env = false;
    opts.env = {{"CNI_COMMAND", cmd},
                {"CNI_CONTAINERID", id},
                {"CNI_IFNAME", IfName(rail)},
                {"CNI_PATH", "/nonexistent"},
                {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    if (!netns.empty()) opts.env["CNI_NETNS"] = netns;
    if (!fault.failpoint.empty()) opts.env[kFailpointEnv] = fault.failpoint;
    opts.stdin_data = stdin_data;
    opts.work_dir = work_dir_;
    auto ns = net::NetNs::Open(h_.node_ns());
    if (!ns.ok()) {
      ADD_FAILURE() << ns.status();
      return o;
    }
    std::string stdout_data;
    absl::Status st = net::RunInNetNs(*ns, [&] {
      Subprocess sp(opts);
      if (!sp.Start()) return absl::InternalError("cannot start " + kMacvlan);
      if (fault.kill_after_us >= 0) {
        // The fault itself: the kill lands at a random point of the plugin's run.
        std::this_thread::sleep_for(std::chrono::microseconds(fault.kill_after_us));
        sp.Signal(SIGKILL);
      }
      auto code = sp.Wait(std::chrono::seconds(30));
      if (!code) return absl::DeadlineExceededError(kMacvlan + " did not finish in 30 s");
      o.exit_code = *code;
      stdout_data = sp.Stdout();
      return absl::OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st;
    o.died = o.exit_code == 128 + SIGKILL;
    o.out = json::parse(stdout_data, nullptr, false);
    return o;
  }

 private:
  const RailHarness& h_;
  std::string work_dir_;
};

// Interface names in a pod netns.
std::set<std::string> Links(const std::string& ns) {
  std::set<std::string> out;
  std::istringstream in(RailHarness::Ip(ns, "-o link show"));
  std::string line;
  while (std::getline(in, line)) {
    // "3: net1@if5: <...>"
    size_t a = line.find(": ");
    if (a == std::string::npos) continue;
    size_t b = line.find_first_of("@:", a + 2);
    out.insert(line.substr(a + 2, b - a - 2));
  }
  return out;
}

// Non-default lines of `ip rule` / routes outside the main and local tables.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// Routes of a policy table; a table the kernel never had (or dropped with its last route) is
// empty, not an error (`ip` exits 2 for it).
std::string RouteTable(const std::string& ns, int table) {
  return RailHarness::Sh(fmt::format("ip -n {} -4 route show table {} 2>/dev/null", ns, table),
                         /*allow_fail=*/true);
}

// IPv4 addresses (without prefix) on the given link of a pod.
std::vector<std::string> Addresses(const std::string& ns, const std::string& link) {
  std::vector<std::string> out;
  for (const std::string& l : Lines(RailHarness::Ip(ns, "-4 -o addr show dev " + link))) {
    std::istringstream in(l);
    std::string tok;
    while (in >> tok) {
      if (tok == "inet" && (in >> tok)) out.push_back(tok.substr(0, tok.find('/')));
    }
  }
  return out;
}

struct Attachment {
  std::string id;
  std::string ip;
};

struct Tally {
  int cycles = 0, adds = 0, dels = 0, faults = 0, failpoint_faults = 0, kill_faults = 0,
      kills_missed = 0, del_retries = 0, vanished_pods = 0, gcs = 0;
  int leaks = 0, lost = 0, duplicates = 0, stray_links = 0, stray_rules = 0, stray_routes = 0;
  int tmp_files = 0;
};

class CniFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (netns, veth, macvlan)";
    if (!FailpointsCompiledIn()) GTEST_SKIP() << "built with RDMASHARE_FAILPOINTS=OFF";
  }
};

TEST_F(CniFaultsTest, AddDelCyclesUnderKillsConvergeWithoutLeaksOrDuplicates) {
  uint64_t seed =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  if (const char* s = std::getenv("RDMASHARE_FAULT_SEED")) seed = std::strtoull(s, nullptr, 10);
  int cycles = 300;
  if (const char* c = std::getenv("RDMASHARE_FAULT_CYCLES")) cycles = std::atoi(c);
  std::printf("fault injection: seed=%llu cycles=%d (RDMASHARE_FAULT_SEED / _CYCLES to replay)\n",
              static_cast<unsigned long long>(seed), cycles);
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  TempDir data, work;
  RailHarness h(kRails);
  FaultRunner runner(h, work.path());
  std::vector<std::string> confs(kRails + 1);
  for (int k = 1; k <= kRails; ++k) confs[k] = RailConf(k, data.path()).dump();
  std::vector<std::string> pods(kPods);
  for (auto& p : pods) p = h.AddPod();
  // live[pod][rail]: the attachment the runtime believes exists.
  std::vector<std::map<int, Attachment>> live(kPods);
  Tally t;
  int generation = 0;

  auto random_fault = [&](const std::vector<std::string>& failpoints) {
    Fault f;
    if (!chance(0.4)) return f;
    if (chance(0.6)) {
      f.failpoint = failpoints[pick(failpoints.size())];
    } else {
      // Spread over a typical run of the plugin (a few ms): most kills land mid-run.
      f.kill_after_us = static_cast<int>(rng() % 4000);
    }
    return f;
  };
  auto count_fault = [&](const Fault& f, const Outcome& o) {
    if (!f.any()) return;
    if (o.died) {
      ++t.faults;
      (f.failpoint.empty() ? t.kill_faults : t.failpoint_faults)++;
    } else if (f.kill_after_us >= 0) {
      ++t.kills_missed;  // the plugin finished before the kill landed
    }
  };
  // DEL until it succeeds (a runtime retries DEL); each try may be faulted again.
  auto converge_del = [&](int p, int k, const std::string& id, bool faults) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      Fault f = faults && attempt == 0 ? random_fault(kDelFailpoints) : Fault{};
      Outcome o = runner.Run("DEL", id, pods[p], k, confs[k], f);
      ++t.dels;
      count_fault(f, o);
      if (o.exit_code == 0) return true;
      EXPECT_TRUE(o.died) << "DEL " << id << " failed without a fault: " << o.out.dump();
      ++t.del_retries;
    }
    ADD_FAILURE() << "DEL of " << id << " did not converge";
    return false;
  };
  auto gc = [&](int k) {
    json conf = RailConf(k, data.path());
    conf["cniVersion"] = "1.1.0";
    json valid = json::array();
    for (int p = 0; p < kPods; ++p) {
      if (auto it = live[p].find(k); it != live[p].end()) {
        valid.push_back({{"containerID", it->second.id}, {"ifname", IfName(k)}});
      }
    }
    conf["cni.dev/valid-attachments"] = valid;
    Outcome o = runner.Run("GC", "", "", k, conf.dump(), Fault{});
    EXPECT_EQ(o.exit_code, 0) << o.out.dump();
    ++t.gcs;
  };
  // Store == live attachments, no address twice, nothing stray in any pod.
  auto verify = [&](const char* when) {
    SCOPED_TRACE(when);
    t.tmp_files = 0;  // temp files present now (the last verify's count is printed)
    std::map<std::string, std::string> address_owner;  // ip -> pod/link
    for (int k = 1; k <= kRails; ++k) {
      std::string dir = JoinPath(data.path(), NetworkName(k));
      std::map<std::string, std::string> records;  // ip -> container id
      for (const std::string& n : ListDir(dir).value_or(std::vector<std::string>{})) {
        if (n.rfind(".tmp-", 0) == 0) ++t.tmp_files;
        if (n.empty() || n[0] == '.' || n == "lock" || n.rfind("last_reserved_ip", 0) == 0) {
          continue;
        }
        std::string content = ReadFile(JoinPath(dir, n)).value_or("");
        records[n] = content.substr(0, content.find("\r\n"));
      }
      for (int p = 0; p < kPods; ++p) {
        auto it = live[p].find(k);
        if (it == live[p].end()) continue;
        auto rec = records.find(it->second.ip);
        if (rec == records.end() || rec->second != it->second.id) {
          ++t.lost;
          ADD_FAILURE() << "live " << it->second.id << " " << it->second.ip << " has no record";
        } else {
          records.erase(rec);
        }
      }
      for (const auto& [ip, id] : records) {
        ++t.leaks;
        ADD_FAILURE() << "leaked record " << NetworkName(k) << "/" << ip << " of " << id;
      }
    }
    for (int p = 0; p < kPods; ++p) {
      std::string ns = RailHarness::NsName(pods[p]);
      std::set<std::string> want = {"lo", "eth0"};
      for (const auto& [k, a] : live[p]) want.insert(IfName(k));
      // DEL with deferLinkDelete answers first and removes the renamed link from a detached
      // child right after: give such deletions a moment before calling anything a leak.
      auto strays = [&] {
        std::vector<std::string> out;
        for (const std::string& l : Links(ns)) {
          if (want.count(l) == 0) out.push_back(l);
        }
        return out;
      };
      ::rdmashare::testing::WaitFor([&] { return strays().empty(); }, std::chrono::seconds(5));
      for (const std::string& l : strays()) {
        ++t.stray_links;
        ADD_FAILURE() << "stray link " << l << " in " << ns;
      }
      for (const auto& [k, a] : live[p]) {
        std::vector<std::string> addrs = Addresses(ns, IfName(k));
        EXPECT_EQ(addrs, std::vector<std::string>{a.ip}) << ns << " " << IfName(k);
        for (const std::string& ip : addrs) {
          auto [it, fresh] = address_owner.emplace(ip, ns + "/" + IfName(k));
          if (!fresh) {
            ++t.duplicates;
            ADD_FAILURE() << ip << " held by " << it->second << " and " << ns;
          }
        }
      }
      std::set<std::string> want_rules = {"0:\tfrom all lookup local",
                                          "32766:\tfrom all lookup main",
                                          "32767:\tfrom all lookup default"};
      for (const auto& [k, a] : live[p]) {
        want_rules.insert(fmt::format("1000:\tfrom {} lookup {}", a.ip, 99 + k));
      }
      for (const std::string& r : Lines(RailHarness::Ip(ns, "-4 rule show"))) {
        if (want_rules.count(r) != 0) continue;
        ++t.stray_rules;
        ADD_FAILURE() << "stray rule '" << r << "' in " << ns;
      }
      for (int k = 1; k <= kRails; ++k) {
        if (live[p].count(k) != 0) continue;
        for (const std::string& r : Lines(RouteTable(ns, 99 + k))) {
          ++t.stray_routes;
          ADD_FAILURE() << "stray route '" << r << "' in table " << 99 + k << " of " << ns;
        }
      }
    }
  };

  auto started = std::chrono::steady_clock::now();
  for (int c = 0; c < cycles; ++c) {
    ++t.cycles;
    int p = static_cast<int>(pick(kPods));
    int k = 1 + static_cast<int>(pick(kRails));
    if (chance(0.02)) {
      // The pod vanishes without any DEL (runtime crash, node reboot): only GC can clean up.
      h.RemovePod(pods[p]);
      pods[p] = h.AddPod();
      live[p].clear();
      ++t.vanished_pods;
    } else if (live[p].count(k) != 0) {
      if (converge_del(p, k, live[p][k].id, true)) live[p].erase(k);
    } else {
      std::string id = fmt::format("fault{}c{}", getpid(), ++generation);
      Fault f = random_fault(kAddFailpoints);
      Outcome o = runner.Run("ADD", id, pods[p], k, confs[k], f);
      ++t.adds;
      count_fault(f, o);
      if (o.exit_code == 0) {
        ASSERT_TRUE(o.out.is_object() && o.out.contains("ips")) << o.out.dump();
        std::string cidr = o.out["ips"][0]["address"];
        live[p][k] = Attachment{id, cidr.substr(0, cidr.find('/'))};
      } else {
        ASSERT_TRUE(o.died) << "ADD " << id << " failed without a fault: " << o.out.dump();
        converge_del(p, k, id, false);
      }
    }
    if ((c + 1) % 100 == 0) {
      for (int k2 = 1; k2 <= kRails; ++k2) gc(k2);
      verify("checkpoint");
      if (::testing::Test::HasFailure()) break;
    }
  }
  for (int k = 1; k <= kRails; ++k) gc(k);
  verify("after the final GC");
  for (int p = 0; p < kPods; ++p) {
    for (auto it = live[p].begin(); it != live[p].end();) {
      if (converge_del(p, it->first, it->second.id, false)) {
        it = live[p].erase(it);
      } else {
        ++it;
      }
    }
  }
  verify("after DEL of every container");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "fault injection: seed=%llu cycles=%d adds=%d dels=%d faults=%d (failpoint %d, sigkill %d; "
      "%d kills landed after exit) del_retries=%d vanished_pods=%d gcs=%d | leaks=%d lost=%d "
      "duplicates=%d stray_links=%d stray_rules=%d stray_routes=%d | tmp_files_left=%d | "
      "%.1f s\n",
      static_cast<unsigned long long>(seed), t.cycles, t.adds, t.dels, t.faults, t.failpoint_faults,
      t.kill_faults, t.kills_missed, t.del_retries, t.vanished_pods, t.gcs, t.leaks, t.lost,
      t.duplicates, t.stray_links, t.stray_rules, t.stray_routes, t.tmp_files, secs);
  EXPECT_GT(t.faults, cycles / 10) << "too few faults landed for the test to mean anything";
  EXPECT_EQ(t.leaks + t.lost + t.duplicates + t.stray_links + t.stray_rules + t.stray_routes, 0);
}

// Regression (found by the cycle test, seed 20261129 at 3000 cycles): a DEL that died after
// renaming and stripping the pod interface but before removing its policy rule left the rule
// behind for good, because the retried DEL took the leftover's link-local address for the
// interface's address set and kept every rule "from" anything else.
TEST_F(CniFaultsTest, DelKilledBetweenLinkAndRuleCleanupLeavesNoRuleAfterRetry) {
  TempDir data, work;
  RailHarness h(1);
  FaultRunner runner(h, work.path());
  std::string conf = RailConf(1, data.path()).dump();
  std::string pod = h.AddPod();
  std::string ns = RailHarness::NsName(pod);
  const std::string id = fmt::format("fault{}regr", getpid());
  Outcome add = runner.Run("ADD", id, pod, 1, conf, Fault{});
  ASSERT_EQ(add.exit_code, 0) << add.out.dump();
  std::string cidr = add.out["ips"][0]["address"];
  std::string rule = fmt::format("1000:\tfrom {} lookup 100", cidr.substr(0, cidr.find('/')));
  ASSERT_THAT(Lines(RailHarness::Ip(ns, "-4 rule show")), ::testing::Contains(rule));

  Outcome killed = runner.Run("DEL", id, pod, 1, conf, Fault{"macvlan.del.after_links"});
  ASSERT_TRUE(killed.died) << killed.exit_code;
  // The failpoint sits between the two steps: the interface is gone, its rule is not.
  EXPECT_EQ(Links(ns).count(IfName(1)), 0u);
  ASSERT_THAT(Lines(RailHarness::Ip(ns, "-4 rule show")), ::testing::Contains(rule));

  Outcome retry = runner.Run("DEL", id, pod, 1, conf, Fault{});
  ASSERT_EQ(retry.exit_code, 0) << retry.out.dump();
  EXPECT_THAT(Lines(RailHarness::Ip(ns, "-4 rule show")),
              ::testing::ElementsAre("0:\tfrom all lookup local", "32766:\tfrom all lookup main",
                                     "32767:\tfrom all lookup default"));
  EXPECT_TRUE(::rdmashare::testing::WaitFor(
      [&] {
        return Links(ns) == std::set<std::string>{"lo", "eth0"};
      },
      std::chrono::seconds(5)))
      << "links left in " << ns;
  EXPECT_EQ(RouteTable(ns, 100), "");
}

// The record content (container id) of every address of a network in the local store.
std::map<std::string, std::string> Records(const std::string& data_dir, const std::string& net) {
  std::map<std::string, std::string> out;
  std::string dir = JoinPath(data_dir, net);
  for (const std::string& n : ListDir(dir).value_or(std::vector<std::string>{})) {
    if (n.empty() || n[0] == '.' || n == "lock" || n.rfind("last_reserved_ip", 0) == 0) continue;
    std::string content = ReadFile(JoinPath(dir, n)).value_or("");
    out[n] = content.substr(0, content.find("\r\n"));
  }
  return out;
}

// Two ADDs of one (container, ifname) in one pod netns at the same moment (a runtime retrying an
// ADD it believes lost). At most one may configure the interface, and whichever does, the
// address on it must stay reserved for that container: the loser's undo must not release a
// reservation the winner is using. Many rounds (bounded in time), each ended by a DEL.
TEST_F(CniFaultsTest, RacingAddsOfOneInterfaceLeaveTheLiveAddressReserved) {
  TempDir data, work;
  RailHarness h(1);
  const std::string conf = RailConf(1, data.path()).dump();
  const std::string pod = h.AddPod();
  const std::string ns = RailHarness::NsName(pod);
  auto node = net::NetNs::Open(h.node_ns());
  ASSERT_TRUE(node.ok()) << node.status();
  auto env = [&](const std::string& cmd, const std::string& id) {
    return std::map<std::string, std::string>{{"CNI_COMMAND", cmd},
                                              {"CNI_CONTAINERID", id},
                                              {"CNI_IFNAME", IfName(1)},
                                              {"CNI_NETNS", pod},
                                              {"CNI_PATH", "/nonexistent"}};
  };
  int rounds = 0, both_failed = 0, one_won = 0, both_won = 0, unreserved = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (; rounds < 150 && std::chrono::steady_clock::now() < deadline; ++rounds) {
    const std::string id = fmt::format("race{}r{}", getpid(), rounds);
    std::vector<int> codes;
    absl::Status st = net::RunInNetNs(*node, [&] {
      std::vector<std::unique_ptr<Subprocess>> adds;
      for (int i = 0; i < 2; ++i) {
        Subprocess::Options o;
        o.argv = {kMacvlan};
        o.inherit_env = false;
        o.env = env("ADD", id);
        o.stdin_data = conf;
        o.work_dir = work.path();
        adds.push_back(std::make_unique<Subprocess>(o));
      }
      // Started back to back: both pass the "interface exists?" check before either creates it.
      for (auto& a : adds) {
        if (!a->Start()) return absl::InternalError("cannot start " + kMacvlan);
      }
      for (auto& a : adds) {
        auto code = a->Wait(std::chrono::seconds(60));
        if (!code) return absl::DeadlineExceededError(kMacvlan + " did not finish in 60 s");
        codes.push_back(*code);
      }
      return absl::OkStatus();
    });
    ASSERT_TRUE(st.ok()) << st;
    int wins = static_cast<int>(std::count(codes.begin(), codes.end(), 0));
    (wins == 0 ? both_failed : wins == 1 ? one_won : both_won)++;
    EXPECT_LE(wins, 1) << "round " << rounds << ": both ADDs succeeded";
    std::vector<std::string> on_link =
        Links(ns).count(IfName(1)) != 0 ? Addresses(ns, IfName(1)) : std::vector<std::string>{};
    std::map<std::string, std::string> records = Records(data.path(), NetworkName(1));
    for (const std::string& ip : on_link) {
      auto it = records.find(ip);
      if (it == records.end() || it->second != id) {
        ++unreserved;
        ADD_FAILURE() << "round " << rounds << ": " << IfName(1) << " is up with " << ip
                      << " but the store holds it for "
                      << (it == records.end() ? std::string("nobody") : it->second);
      }
    }
    if (wins == 1) {
      EXPECT_EQ(on_link.size(), 1u) << "round " << rounds;
    }
    // The runtime's DEL after the round (it ends the attachment whichever ADD won).
    Outcome del = FaultRunner(h, work.path()).Run("DEL", id, pod, 1, conf, Fault{});
    ASSERT_EQ(del.exit_code, 0) << del.out.dump();
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("racing ADDs: rounds=%d one_won=%d both_failed=%d both_won=%d unreserved=%d\n",
              rounds, one_won, both_failed, both_won, unreserved);
  EXPECT_GT(one_won, 0) << "no round configured the interface: the race was never exercised";
  EXPECT_EQ(Records(data.path(), NetworkName(1)).size(), 0u) << "an address leaked";
}

}  // namespace
}  // namespace rdmashare::cni::testing
