// rdmashare-demo: the README's first command. Builds the walkthrough's simulated 8-rail node in a
// temp dir, runs the real rdmashare-dp against the fake kubelet, prints what kubelet sees and
// one Allocate answer, then stops the daemon cleanly.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "tests/integration/deviceplugin/dp_test_env.h"

namespace rdmashare {
namespace {

std::string Indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

int Main(int argc, char** argv) {
  std::string dp_binary = RDMASHARE_DP_BINARY;
  if (argc > 1) dp_binary = argv[1];
  testing::TempDir dir;
  testing::DpTestEnv env(dir.path(), dp_binary);

  std::cout << "== 1. Simulated node (the walkthrough's GPU server)\n";
  if (absl::Status st = env.BuildNode(fakenode::Walkthrough8Rail()); !st.ok()) {
    std::cerr << "demo: cannot build the simulated node: " << st << "\n";
    return 1;
  }
  std::cout << fmt::format(
      "   sysfs {}\n   /dev  {}\n   8 ConnectX-5 RoCE ports mlx5_0..mlx5_7 = enp11s0f0np0 .. "
      "enp18s0f0np0, one GPU per rail,\n   rails 1-4 on NUMA 0, rails 5-8 on NUMA 1, plus eth0 "
      "(no RDMA)\n\n",
      env.node().sys_root(), env.node().dev_root());

  std::string config = testing::WalkthroughConfigJson();
  if (absl::Status st = env.WriteConfig(config); !st.ok()) {
    std::cerr << "demo: " << st << "\n";
    return 1;
  }
  std::cout << "== 2. config.json (the walkthrough's ConfigMap)\n" << Indent(config, "   ") << "\n";

  if (absl::Status st = env.StartKubelet(); !st.ok()) {
    std::cerr << "demo: cannot start the fake kubelet: " << st << "\n";
    return 1;
  }
  std::cout << "== 3. rdmashare-dp against a fake kubelet at " << env.kubelet_dir() << "\n";
  std::string cmd = dp_binary;
  for (const auto& a : env.StandardFlags()) cmd += " " + a;
  std::cout << "   $ " << cmd << "\n";
  auto t0 = std::chrono::steady_clock::now();
  if (absl::Status st = env.StartDaemon(); !st.ok()) {
    std::cerr << "demo: " << st << "\n";
    return 1;
  }
  if (!env.WaitForResources(testing::WalkthroughResources(), 100, std::chrono::seconds(30))) {
    std::cerr << "demo: kubelet did not see the 8 resources; daemon log:\n"
              << env.daemon()->Stderr();
    return 1;
  }
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cout << fmt::format("   all 8 resources registered and listed {} ms after exec\n\n", ms);

  std::cout << "== 4. What kubelet sees (kubectl get node <node> -o yaml)\n"
            << Indent(testing::FormatNodeView(env.kubelet()), "   ") << "\n";

  const std::string resource = "spidernet.io/shared_cx5_gpu1";
  std::cout << "== 5. A pod asks for " << resource << ": 1 -> Allocate([\"0\"])\n";
  absl::StatusOr<v1beta1::AllocateResponse> resp = env.kubelet().Allocate(resource, {{"0"}});
  if (!resp.ok()) {
    std::cerr << "demo: Allocate failed: " << resp.status() << "\n";
    return 1;
  }
  for (const auto& d : resp->container_responses(0).devices()) {
    std::cout << fmt::format("   device {:<26} host {} ({})\n", d.container_path(), d.host_path(),
                             d.permissions());
  }
  std::cout << "\n== 6. Stop (SIGTERM)\n";
  std::optional<int> code = env.StopDaemon();
  auto left = ListDir(env.kubelet_dir() + "/device-plugins");
  int ours = 0;
  if (left.ok()) {
    for (const auto& n : *left) ours += n.rfind("rdmashare-", 0) == 0 ? 1 : 0;
  }
  std::cout << fmt::format("   rdmashare-dp exited with {}; {} of our sockets left behind\n\n",
                           code ? std::to_string(*code) : "timeout", ours);
  std::cout << "== daemon log\n" << Indent(env.daemon()->Stderr(), "   ");
  return code == 0 && ours == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rdmashare

int main(int argc, char** argv) { return rdmashare::Main(argc, argv); }
