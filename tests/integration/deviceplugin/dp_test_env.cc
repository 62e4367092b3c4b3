#include "tests/integration/deviceplugin/dp_test_env.h"

#include <signal.h>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::testing {

std::vector<std::string> WalkthroughResources() {
  std::vector<std::string> out;
  for (int k = 1; k <= 8; ++k) out.push_back(fmt::format("spidernet.io/shared_cx5_gpu{}", k));
  return out;
}

std::string WalkthroughConfigJson(int rdma_hca_max) {
  std::string entries;
  for (int k = 1; k <= 8; ++k) {
    entries +=
        fmt::format(R"({}{{"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu{}", )"
                    R"("rdmaHcaMax": {}, "selectors": {{"ifNames": ["enp{}s0f0np0"]}}}})",
                    k == 1 ? "" : ",\n    ", k, rdma_hca_max, 10 + k);
  }
  return fmt::format(
      "{{\n  \"periodicUpdateInterval\": 300,\n  \"configList\": [\n    {}\n  ]\n}}\n", entries);
}

DpTestEnv::DpTestEnv(std::string root, std::string dp_binary)
    : root_(std::move(root)), dp_binary_(std::move(dp_binary)) {}

DpTestEnv::~DpTestEnv() {
  if (daemon_ && daemon_->running()) StopDaemon(std::chrono::seconds(5));
  daemon_.reset();
  kubelet_.reset();
}

absl::Status DpTestEnv::BuildNode(const fakenode::NodeSpec& spec) {
  ASSIGN_OR_RETURN(fakenode::FakeNode node, fakenode::FakeNode::Build(spec, root_ + "/node"));
  node_.emplace(std::move(node));
  return absl::OkStatus();
}

absl::Status DpTestEnv::WriteConfig(const std::string& json) {
  return WriteFileAtomic(config_path(), json, 0644);
}

absl::Status DpTestEnv::EnablePluginWatcher() {
  return MakeDirs(kubelet_dir() + "/plugins_registry");
}

absl::Status DpTestEnv::StartKubelet(bool plugin_watcher) {
  FakeKubeletOptions opts;
  opts.kubelet_dir = kubelet_dir();
  opts.plugin_watcher = plugin_watcher;
  kubelet_ = std::make_unique<FakeKubelet>(opts);
  return kubelet_->Start();
}

std::vector<std::string> DpTestEnv::StandardFlags() const {
  std::vector<std::string> args = {"--config",    config_path(), "--kubelet-dir",
                                   kubelet_dir(), "--log-level", "debug"};
  if (node_) {
    args.insert(args.end(), {"--sysfs-root", node_->sys_root(), "--dev-root", node_->dev_root()});
  }
  return args;
}

absl::Status DpTestEnv::StartDaemon(const std::vector<std::string>& extra) {
  Subprocess::Options opts;
  opts.argv = {dp_binary_};
  for (const auto& a : StandardFlags()) opts.argv.push_back(a);
  for (const auto& a : extra) opts.argv.push_back(a);
  opts.work_dir = root_;
  daemon_ = std::make_unique<Subprocess>(opts);
  if (!daemon_->Start()) return absl::InternalError("cannot start " + dp_binary_);
  return absl::OkStatus();
}

std::optional<int> DpTestEnv::StopDaemon(std::chrono::milliseconds timeout) {
  if (!daemon_) return std::nullopt;
  daemon_->Signal(SIGTERM);
  return daemon_->Wait(timeout);
}

RunResult DpTestEnv::RunDaemonOnce(const std::vector<std::string>& args) {
  Subprocess::Options opts;
  opts.argv = {dp_binary_};
  for (const auto& a : args) opts.argv.push_back(a);
  opts.work_dir = root_;
  return RunProgram(opts, std::chrono::seconds(30));
}

bool DpTestEnv::WaitForResources(const std::vector<std::string>& resources, int healthy,
                                 std::chrono::milliseconds timeout) {
  return kubelet_->WaitFor(
      [&](const FakeKubelet& k) {
        for (const std::string& r : resources) {
          std::optional<ResourceState> st = k.Resource(r);
          if (!st || !st->stream_connected || st->allocatable() != healthy ||
              st->capacity() != healthy) {
            return false;
          }
        }
        return true;
      },
      timeout);
}

}  // namespace rdmashare::testing
