// DpTestEnv: a simulated node (fake sysfs + /dev), a fake kubelet and the real rdmashare-dp
// binary, wired together in one temp dir. Shared by the device plugin's end-to-end tests, the
// demo and the benchmark. One per test; not thread-safe itself (the fake kubelet is).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/testing/subprocess.h"
#include "tests/fakes/kubelet/fake_kubelet.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::testing {

// The walkthrough's resource names, spidernet.io/shared_cx5_gpu1..8.
std::vector<std::string> WalkthroughResources();

// The walkthrough's config.json (periodicUpdateInterval 300, 8 rails, rdmaHcaMax 100).
std::string WalkthroughConfigJson(int rdma_hca_max = 100);

class DpTestEnv {
 public:
  // `root`: an existing empty directory (a TempDir path). `dp_binary`: path of rdmashare-dp.
  DpTestEnv(std::string root, std::string dp_binary);
  ~DpTestEnv();

  // Builds the simulated node from `spec` under <root>/node.
  absl::Status BuildNode(const fakenode::NodeSpec& spec);
  // Writes <root>/config.json.
  absl::Status WriteConfig(const std::string& json);
  // Creates <root>/kubelet/plugins_registry so the daemon picks plugin-watcher mode.
  absl::Status EnablePluginWatcher();
  // Starts the fake kubelet on <root>/kubelet.
  absl::Status StartKubelet(bool plugin_watcher = false);
  // Starts rdmashare-dp with the node's roots, the config and the kubelet dir, plus `extra`.
  absl::Status StartDaemon(const std::vector<std::string>& extra = {});
  // SIGTERM, then waits; returns the exit code (nullopt when it did not exit in `timeout`).
  std::optional<int> StopDaemon(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Runs rdmashare-dp to completion with exactly `args` (for --validate, bad configs, ...).
  RunResult RunDaemonOnce(const std::vector<std::string>& args);
  // The standard flags pointing at this env (config, roots, kubelet dir).
  std::vector<std::string> StandardFlags() const;

  // True once every resource in `resources` is registered, streaming and has `healthy`
  // allocatable units.
  bool WaitForResources(const std::vector<std::string>& resources, int healthy,
                        std::chrono::milliseconds timeout = std::chrono::seconds(20));

  FakeKubelet& kubelet() { return *kubelet_; }
  fakenode::FakeNode& node() { return *node_; }
  Subprocess* daemon() { return daemon_.get(); }
  const std::string& root() const { return root_; }
  std::string kubelet_dir() const { return root_ + "/kubelet"; }
  std::string config_path() const { return root_ + "/config.json"; }

 private:
  std::string root_;
  std::string dp_binary_;
  std::optional<fakenode::FakeNode> node_;
  std::unique_ptr<FakeKubelet> kubelet_;
  std::unique_ptr<Subprocess> daemon_;
};

}  // namespace rdmashare::testing
