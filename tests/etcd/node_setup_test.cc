// manifests/etcd/node-setup: its DaemonSet script, run as written (HOST_DIR / SECRET_DIR pointed
// at temp dirs), writes the node name rdmashare-ipam then reads, and installs the Secret's etcd
// TLS files privately.
#include <sys/stat.h>

#include <csignal>
#include <string>
#include <vector>

#include "cni/ipam/config.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WaitFor;
using ::rdmashare::testing::WriteTestFile;

const std::string kManifest = std::string(RS_MANIFESTS_DIR) + "/etcd/node-setup/daemonset.yaml";

// The literal block after `- |` in the container's command (the script), de-indented.
std::string Script() {
  auto text = ReadFile(kManifest);
  EXPECT_TRUE(text.ok()) << text.status();
  if (!text.ok()) return "";
  std::string out;
  size_t indent = std::string::npos;
  bool in_block = false;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t eol = text->find('\n', pos);
    if (eol == std::string::npos) eol = text->size();
    std::string line = text->substr(pos, eol - pos);
    pos = eol + 1;
    size_t lead = line.find_first_not_of(' ');
    if (!in_block) {
      in_block = lead != std::string::npos && line.compare(lead, std::string::npos, "- |") == 0;
      continue;
    }
    if (lead == std::string::npos) {
      out += "\n";
      continue;
    }
    if (indent == std::string::npos) indent = lead;
    if (lead < indent) break;
    out += line.substr(indent) + "\n";
  }
  return out;
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

class NodeSetupScriptTest : public ::testing::Test {
 protected:
  // Starts the script; true once it wrote the node name.
  bool Start(const std::string& node_name) {
    Subprocess::Options o;
    o.argv = {"/bin/sh", "-c", Script()};
    o.env = {{"NODE_NAME", node_name},
             {"HOST_DIR", dir_.Sub("host/etc/rdmashare")},
             {"SECRET_DIR", dir_.Sub("secret")}};
    proc_ = std::make_unique<Subprocess>(o);
    if (!proc_->Start()) return false;
    return WaitFor([&] { return PathExists(dir_.Sub("host/etc/rdmashare/nodename")); },
                   std::chrono::seconds(10));
  }
  void TearDown() override {
    if (proc_ && proc_->running()) {
      proc_->Signal(SIGTERM);
      proc_->Wait(std::chrono::seconds(5));
    }
  }
  TempDir dir_;
  std::unique_ptr<Subprocess> proc_;
};

TEST_F(NodeSetupScriptTest, ScriptIsFoundInTheManifest) {
  std::string script = Script();
  EXPECT_THAT(script, ::testing::HasSubstr("NODE_NAME"));
  EXPECT_THAT(script, ::testing::HasSubstr("while :; do"));
}

TEST_F(NodeSetupScriptTest, NodeNameIsWhatRdmashareIpamReads) {
  ASSERT_TRUE(Start("gpu-worker-07.example")) << proc_->Stderr();
  IpamConfig conf;
  conf.node_name_file = dir_.Sub("host/etc/rdmashare/nodename");
  ASSERT_OK_AND_ASSIGN(std::string node, ResolveNodeName(conf));
  EXPECT_EQ(node, "gpu-worker-07.example");
  EXPECT_EQ(Mode(conf.node_name_file), 0644u);
  EXPECT_FALSE(PathExists(dir_.Sub("host/etc/rdmashare/etcd")));  // no Secret, no TLS dir
}

TEST_F(NodeSetupScriptTest, SecretTlsFilesAreInstalledPrivately) {
  WriteTestFile(dir_.Sub("secret/ca.crt"), "CA PEM\n");
  WriteTestFile(dir_.Sub("secret/tls.crt"), "CERT PEM\n");
  WriteTestFile(dir_.Sub("secret/tls.key"), "KEY PEM\n");
  ASSERT_TRUE(Start("n1")) << proc_->Stderr();
  std::string etcd = dir_.Sub("host/etc/rdmashare/etcd");
  EXPECT_EQ(Mode(etcd), 0700u);
  for (const char* f : {"ca.crt", "tls.crt", "tls.key"}) {
    std::string path = JoinPath(etcd, f);
    EXPECT_EQ(Mode(path), 0600u) << path;
    EXPECT_EQ(*ReadFile(path), *ReadFile(dir_.Sub(std::string("secret/") + f))) << path;
  }
}

TEST_F(NodeSetupScriptTest, EmptyNodeNameFails) {
  Subprocess::Options o;
  o.argv = {"/bin/sh", "-c", Script()};
  o.env = {{"NODE_NAME", ""},
           {"HOST_DIR", dir_.Sub("host/etc/rdmashare")},
           {"SECRET_DIR", dir_.Sub("secret")}};
  auto r = ::rdmashare::testing::RunProgram(o, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("NODE_NAME is empty"));
  EXPECT_FALSE(PathExists(dir_.Sub("host/etc/rdmashare/nodename")));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
