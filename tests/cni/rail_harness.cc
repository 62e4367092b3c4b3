#include "tests/cni/rail_harness.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "cni/net/netns.h"
#include "cni/protocol/delegate.h"
#include "common/files.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::testing {
namespace {

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}{}x{}", prefix, getpid(), counter++);
}

}  // namespace

std::string RailHarness::RailNic(int k) { return fmt::format("enp{}s0f0np0", 10 + k); }
std::string RailHarness::RailSubnet(int k) { return fmt::format("172.16.{}.0/24", 10 + k); }
std::string RailHarness::RailGateway(int k) { return fmt::format("172.16.{}.254", 10 + k); }

std::string RailHarness::Sh(const std::string& cmd, bool allow_fail) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (!allow_fail && (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)) {
    ADD_FAILURE() << "command failed (" << rc << "): " << cmd << "\n" << out;
  }
  return out;
}

std::string RailHarness::Ip(const std::string& ns_name, const std::string& args) {
  return Sh(fmt::format("ip -n {} {}", ns_name, args));
}

std::string RailHarness::NsName(const std::string& path) { return BaseName(path); }

RailHarness::RailHarness(int rails) : rails_(rails) {
  node_name_ = UniqueName("rsnode");
  gw_name_ = UniqueName("rsgw");
  auto node = net::CreateNamedNetNs(node_name_);
  auto gw = net::CreateNamedNetNs(gw_name_);
  EXPECT_TRUE(node.ok() && gw.ok()) << node.status() << gw.status();
  node_ns_ = node.value_or("");
  gw_ns_ = gw.value_or("");
  std::string script = fmt::format("set -e; ip -n {0} link set lo up; ip -n {1} link set lo up;",
                                   node_name_, gw_name_);
  for (int k = 1; k <= rails_; ++k) {
    script += fmt::format(
        " ip -n {0} link add {2} type veth peer name rail{3} netns {1};"
        " ip -n {1} addr add {4}/24 dev rail{3}; ip -n {1} link set rail{3} up;"
        " ip -n {0} link set {2} up;",
        node_name_, gw_name_, RailNic(k), k, RailGateway(k));
  }
  // The node's own default route (used when "master" is omitted) leaves on rail 1.
  script += fmt::format(
      " ip -n {0} addr add 172.16.11.1/24 dev {1};"
      " ip -n {0} route add default via 172.16.11.254 dev {1}",
      node_name_, RailNic(1));
  Sh(script);
}

RailHarness::~RailHarness() {
  for (const std::string& p : pods_) (void)net::DeleteNamedNetNs(p);
  (void)net::DeleteNamedNetNs(node_ns_);
  (void)net::DeleteNamedNetNs(gw_ns_);
}

std::string RailHarness::AddPod() {
  std::string name = UniqueName("rspod");
  auto path = net::CreateNamedNetNs(name);
  EXPECT_TRUE(path.ok()) << path.status();
  if (!path.ok()) return "";
  pods_.push_back(*path);
  int n = ++pod_counter_;
  std::string host_if = fmt::format("cali{}", n);
  Sh(fmt::format(
      "set -e; ip -n {0} link add {2} type veth peer name eth0 netns {1};"
      " ip -n {0} link set {2} up; ip -n {1} link set lo up; ip -n {1} link set eth0 up;"
      " ip -n {1} addr add 10.233.{3}.{4}/32 dev eth0;"
      " ip -n {1} route add 169.254.1.1 dev eth0 scope link;"
      " ip -n {1} route add default via 169.254.1.1 dev eth0",
      node_name_, name, host_if, n / 250, n % 250 + 1));
  return *path;
}

void RailHarness::RemovePod(const std::string& path) {
  (void)net::DeleteNamedNetNs(path);
  pods_.erase(std::remove(pods_.begin(), pods_.end(), path), pods_.end());
}

PluginRun RailHarness::Run(const std::string& binary, const std::map<std::string, std::string>& env,
                           const std::string& stdin_data) const {
  PluginRun run;
  auto ns = net::NetNs::Open(node_ns_);
  if (!ns.ok()) {
    ADD_FAILURE() << ns.status();
    return run;
  }
  absl::StatusOr<ExecOutput> out = absl::UnknownError("not run");
  absl::Status st = net::RunInNetNs(*ns, [&] {
    out = ExecPlugin(binary, env, stdin_data, std::chrono::seconds(60));
    return absl::OkStatus();
  });
  if (!st.ok() || !out.ok()) {
    ADD_FAILURE() << "exec " << binary << ": " << st << " " << out.status();
    return run;
  }
  run.exit_code = out->exit_code;
  run.stdout_data = out->stdout_data;
  run.json = nlohmann::json::parse(run.stdout_data, nullptr, false);
  if (run.json.is_discarded()) run.json = nullptr;
  return run;
}

void RailHarness::SilenceGateway(int k) {
  Sh(fmt::format("ip -n {} addr flush dev rail{}", gw_name_, k));
}

void RailHarness::SetRailDown(int k) {
  Sh(fmt::format("ip -n {} link set {} down", node_name_, RailNic(k)));
}

void RailHarness::DeleteRail(int k) {
  Sh(fmt::format("ip -n {} link del {}", node_name_, RailNic(k)));
}

}  // namespace rdmashare::cni::testing
