// Test helpers for the rdmashare CLI tests: a fake node in a temp dir (sysfs, /dev, /proc,
// kubelet dir) and an in-process RunCli call with captured output.
//
// Test-only; one TestNode per test, not shared across threads.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "tools/cli/cli.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::cli::testing {

// A fake node with <tmp>/node/{sys,dev}, <tmp>/proc/modules and <tmp>/kubelet/device-plugins.
class TestNode {
 public:
  explicit TestNode(const fakenode::NodeSpec& spec, bool kubelet = true) {
    absl::StatusOr<fakenode::FakeNode> node = fakenode::FakeNode::Build(spec, dir_.Sub("node"));
    if (!node.ok()) {
      ADD_FAILURE() << "FakeNode::Build: " << node.status().message();
      return;
    }
    node_ = std::make_unique<fakenode::FakeNode>(*node);
    paths_ = node_->paths();
    paths_.proc_root = dir_.Sub("proc");
    paths_.kubelet_dir = dir_.Sub("kubelet");
    rdmashare::testing::WriteTestFile(JoinPath(paths_.proc_root, "modules"),
                                      "mlx5_ib 475136 0 - Live 0x0000000000000000\n");
    if (kubelet) MakeKubeletSocket();
  }

  // Binds a unix socket at <kubelet>/device-plugins/kubelet.sock (left in place, as a running
  // kubelet's is).
  void MakeKubeletSocket() const {
    std::string dir = JoinPath(paths_.kubelet_dir, "device-plugins");
    ASSERT_TRUE(MakeDirs(dir).ok());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = JoinPath(dir, "kubelet.sock");
    ASSERT_LT(path.size(), sizeof(addr.sun_path)) << path;
    std::copy(path.begin(), path.end(), addr.sun_path);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    ::close(fd);
    ASSERT_EQ(rc, 0) << path;
  }

  fakenode::FakeNode& node() { return *node_; }
  const HostPaths& paths() const { return paths_; }
  const rdmashare::testing::TempDir& dir() const { return dir_; }
  // The root flags pointing every command at this node.
  std::vector<std::string> RootFlags() const {
    return {"--sysfs-root", paths_.sys_root,  "--dev-root",    paths_.dev_root,
            "--proc-root",  paths_.proc_root, "--kubelet-dir", paths_.kubelet_dir};
  }
  // Writes a file under the node's sysfs.
  void WriteSys(const std::string& rel, const std::string& content) const {
    rdmashare::testing::WriteTestFile(JoinPath(paths_.sys_root, rel), content + "\n");
  }

 private:
  rdmashare::testing::TempDir dir_;
  std::unique_ptr<fakenode::FakeNode> node_;
  HostPaths paths_;
};

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs RunCli in-process with `env` (paths come from the flags in `args`).
inline CliRun RunInProcess(const std::vector<std::string>& args, const Environment& env) {
  std::ostringstream out, err;
  CliRun r;
  r.code = RunCli(args, env, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// `args` followed by `more`.
inline std::vector<std::string> Concat(std::vector<std::string> args,
                                       const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

}  // namespace rdmashare::cli::testing
