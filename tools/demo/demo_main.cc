// rdmashare-demo: the README's first command. Builds the walkthrough's simulated 8-rail node in a
// temp dir, runs the real rdmashare-dp against the fake kubelet, prints what kubelet sees and
// one Allocate answer, then stops the daemon cleanly.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "deviceplugin/config.h"
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

constexpr char kUsage[] = R"(Usage: rdmashare-demo [flags] [RDMASHARE_DP_BINARY]

Runs the real rdmashare-dp against a built-in fake kubelet and prints what kubelet sees per
resource (as `kubectl get node` shows allocatable) and one Allocate answer, then stops the
daemon with SIGTERM. Everything lives in a temp dir that is removed at the end. Needs root
(mknod of the simulated /dev/infiniband nodes).

Flags:
  --config FILE      your config.json instead of the walkthrough's 8-rail config
  --sysfs-root DIR   a node captured with `rdmashare capture DIR` (use DIR/sys), or any sysfs
                     tree, instead of the simulated walkthrough node
  --dev-root DIR     /dev of that node (default: DIR/../dev next to --sysfs-root, else /dev)
  --dp FILE          the rdmashare-dp binary (default: the one built beside this demo)
  --help             this text
)";

struct DemoFlags {
  std::string dp_binary = RDMASHARE_DP_BINARY;
  std::string config_path;
  std::string sysfs_root;
  std::string dev_root;
  bool help = false;
};

absl::StatusOr<DemoFlags> ParseDemoFlags(const std::vector<std::string>& args) {
  DemoFlags f;
  bool dp_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "-h" || a == "--help" || a == "-help") {
      f.help = true;
      continue;
    }
    if (a.empty() || a[0] != '-') {
      if (dp_given) return absl::InvalidArgumentError(fmt::format("unexpected argument '{}'", a));
      f.dp_binary = a;
      dp_given = true;
      continue;
    }
    std::string name = a.substr(a.rfind('-', 1) + 1), value;
    size_t eq = name.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string* dst = name == "config"       ? &f.config_path
                       : name == "sysfs-root" ? &f.sysfs_root
                       : name == "dev-root"   ? &f.dev_root
                       : name == "dp"         ? &f.dp_binary
                                              : nullptr;
    if (dst == nullptr) {
      return absl::InvalidArgumentError(fmt::format("unknown flag '{}' (see --help)", a));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(fmt::format("flag --{} needs a value", name));
      }
      value = args[++i];
    }
    if (value.empty())
      return absl::InvalidArgumentError(fmt::format("flag --{}: empty value", name));
    *dst = value;
  }
  return f;
}

// Absolute form of a user-given path (the daemon runs in the temp dir).
std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return JoinPath(cwd, path);
}

int Main(int argc, char** argv) {
  absl::StatusOr<DemoFlags> flags = ParseDemoFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::cerr << "rdmashare-demo: " << flags.status().message() << "\n";
    return 2;
  }
  if (flags->help) {
    std::cout << kUsage;
    return 0;
  }
  const std::string dp_binary = flags->dp_binary;
  testing::TempDir dir;
  testing::DpTestEnv env(dir.path(), dp_binary);
  std::vector<std::string> extra_flags;

  if (flags->sysfs_root.empty()) {
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
  } else {
    std::string sys = Absolute(flags->sysfs_root);
    std::string dev = Absolute(flags->dev_root);
    if (dev.empty()) {
      std::string parent = sys;
      while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
      parent = parent.substr(0, std::max<size_t>(1, parent.rfind('/')));
      std::string sibling = JoinPath(parent, "dev");
      dev = PathExists(JoinPath(sibling, "infiniband")) ? sibling : "/dev";
    }
    if (!PathExists(JoinPath(sys, "class"))) {
      std::cerr << "rdmashare-demo: --sysfs-root " << sys << ": no class/ directory there\n";
      return 1;
    }
    std::cout << fmt::format("== 1. Node from --sysfs-root\n   sysfs {}\n   /dev  {}\n\n", sys,
                             dev);
    extra_flags = {"--sysfs-root", sys, "--dev-root", dev};
  }

  std::string config = testing::WalkthroughConfigJson();
  if (!flags->config_path.empty()) {
    absl::StatusOr<std::string> text = ReadFile(flags->config_path);
    if (!text.ok()) {
      std::cerr << "rdmashare-demo: --config: " << text.status().message() << "\n";
      return 1;
    }
    config = *text;
  }
  std::vector<std::string> warnings;
  absl::StatusOr<deviceplugin::PluginConfig> parsed = deviceplugin::ParseConfig(config, &warnings);
  if (!parsed.ok()) {
    std::cerr << "rdmashare-demo: config "
              << (flags->config_path.empty() ? "(built-in)" : flags->config_path) << ": "
              << parsed.status().message() << "\n";
    return 1;
  }
  std::vector<std::string> resources;
  for (const deviceplugin::ResourceConfig& rc : parsed->resources)
    resources.push_back(rc.FullName());
  if (absl::Status st = env.WriteConfig(config); !st.ok()) {
    std::cerr << "demo: " << st << "\n";
    return 1;
  }
  std::cout << fmt::format("== 2. config.json ({})\n", flags->config_path.empty()
                                                           ? "the walkthrough's ConfigMap"
                                                           : flags->config_path)
            << Indent(config, "   ") << "\n";

  if (absl::Status st = env.StartKubelet(); !st.ok()) {
    std::cerr << "demo: cannot start the fake kubelet: " << st << "\n";
    return 1;
  }
  std::cout << "== 3. rdmashare-dp against a fake kubelet at " << env.kubelet_dir() << "\n";
  std::string cmd = dp_binary;
  for (const auto& a : env.StandardFlags()) cmd += " " + a;
  for (const auto& a : extra_flags) cmd += " " + a;
  std::cout << "   $ " << cmd << "\n";
  auto t0 = std::chrono::steady_clock::now();
  if (absl::Status st = env.StartDaemon(extra_flags); !st.ok()) {
    std::cerr << "demo: " << st << "\n";
    return 1;
  }
  // Registered and streaming, whatever the health: a user's node may have fewer healthy units.
  bool listed = env.kubelet().WaitFor(
      [&](const testing::FakeKubelet& k) {
        for (const std::string& r : resources) {
          std::optional<testing::ResourceState> st = k.Resource(r);
          // Connected and the first ListAndWatch answer received.
          if (!st || !st->stream_connected || st->history.empty()) return false;
        }
        return true;
      },
      std::chrono::seconds(30));
  if (!listed) {
    std::cerr << fmt::format("demo: kubelet did not see the {} resources; daemon log:\n",
                             resources.size())
              << env.daemon()->Stderr();
    env.StopDaemon();
    return 1;
  }
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cout << fmt::format("   all {} resources registered and listed {} ms after exec\n\n",
                           resources.size(), ms);

  std::cout << "== 4. What kubelet sees (kubectl get node <node> -o yaml)\n"
            << Indent(testing::FormatNodeView(env.kubelet()), "   ") << "\n";

  const std::string resource = resources.empty() ? "" : resources.front();
  std::optional<testing::ResourceState> first = env.kubelet().Resource(resource);
  bool allocated = true;
  if (first && !first->devices.empty()) {
    const std::string unit = first->devices.front().id();
    std::cout << fmt::format("== 5. A pod asks for {}: 1 -> Allocate([\"{}\"])\n", resource, unit);
    absl::StatusOr<v1beta1::AllocateResponse> resp = env.kubelet().Allocate(resource, {{unit}});
    if (!resp.ok()) {
      std::cerr << "demo: Allocate failed: " << resp.status() << "\n";
      allocated = false;
    } else {
      for (const auto& d : resp->container_responses(0).devices()) {
        std::cout << fmt::format("   device {:<26} host {} ({})\n", d.container_path(),
                                 d.host_path(), d.permissions());
      }
      for (const auto& [k, v] : resp->container_responses(0).envs()) {
        std::cout << fmt::format("   env    {}={}\n", k, v);
      }
    }
  } else {
    std::cout << "== 5. No unit to allocate (the first resource lists none)\n";
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
  return code == 0 && ours == 0 && allocated ? 0 : 1;
}

}  // namespace
}  // namespace rdmashare

int main(int argc, char** argv) { return rdmashare::Main(argc, argv); }
