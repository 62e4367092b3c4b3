// Drives the real `rdmashare` binary: help, version, usage errors and exit codes of the commands
// on fake nodes.
#include <unistd.h>

#include <chrono>

#include "common/files.h"
#include "common/testing/fifo.h"
#include "common/testing/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::Concat;
using ::rdmashare::cli::testing::TestNode;
using ::rdmashare::testing::RunResult;
using ::testing::HasSubstr;

RunResult RunCliBinary(const std::vector<std::string>& args, const std::string& work_dir = "/tmp") {
  rdmashare::testing::Subprocess::Options opts;
  opts.argv = Concat({RS_CLI_BIN}, args);
  opts.work_dir = work_dir;
  return rdmashare::testing::RunProgram(opts);
}

TEST(BinaryTest, VersionPrintsTheProjectVersion) {
  RunResult r = RunCliBinary({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "rdmashare " RDMASHARE_VERSION "\n");
}

TEST(BinaryTest, HelpListsEveryCommand) {
  RunResult r = RunCliBinary({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"doctor", "devices", "rails", "gid", "capture", "--sysfs-root"}) {
    EXPECT_THAT(r.out, HasSubstr(cmd));
  }
}

TEST(BinaryTest, EachCommandHasHelp) {
  for (const char* cmd : {"doctor", "devices", "rails", "gid", "capture"}) {
    RunResult r = RunCliBinary({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_THAT(r.out, HasSubstr(std::string("usage: rdmashare ") + cmd)) << cmd;
  }
}

TEST(BinaryTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{}, "usage: rdmashare"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"doctor", "--colour"}, "unknown flag --colour"},
      {{"devices", "--config"}, "flag --config needs a value"},
      {{"doctor", "--json=yes"}, "flag --json takes no value"},
      {{"doctor", "extra"}, "unexpected argument \"extra\""},
      {{"capture"}, "expected 1 argument(s) (DIR), got 0"},
      {{"rails", "--resource-template", "gpu{x}"}, "unsupported expression {x}"},
  };
  for (const Case& c : cases) {
    RunResult r = RunCliBinary(c.args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.error)) << ::testing::PrintToString(c.args);
  }
}

TEST(BinaryTest, DoctorExitsZeroOnTheWalkthroughNodeWithWarnings) {
  TestNode node(fakenode::Walkthrough8Rail());
  RunResult r = RunCliBinary(Concat({"doctor"}, node.RootFlags()), node.dir().path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 failed"));
  EXPECT_THAT(r.out, HasSubstr("warn  gpudirect"));
}

TEST(BinaryTest, DoctorExitsOneOnAnInfiniBandNode) {
  TestNode node(fakenode::DualPortIb());
  RunResult r = RunCliBinary(Concat({"doctor"}, node.RootFlags()), node.dir().path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL  link-layer"));
  EXPECT_THAT(r.out, HasSubstr("fix: switch the port to Ethernet"));
}

TEST(BinaryTest, DoctorJsonExitsOneOnANodeMissingPieces) {
  TestNode node(fakenode::NoRdmaCm());
  ASSERT_TRUE(node.node().SetPortState("mlx5_0", 1, "1: DOWN", "3: Disabled").ok());
  RunResult r = RunCliBinary(Concat({"doctor", "--json"}, node.RootFlags()), node.dir().path());
  EXPECT_EQ(r.exit_code, 1);
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["ok"], false);
  int fails = 0;
  for (const auto& c : j["checks"]) fails += c["level"] == "fail";
  EXPECT_EQ(fails, 2) << r.out;
}

// The real binary against the running host's own /sys: doctor asks the statically linked
// libibverbs. Build and CI machines have no RDMA subsystem: libibverbs then lists nothing, says
// nothing on stderr, and doctor reports that its checks use sysfs only.
TEST(BinaryTest, DoctorOnThisHostAsksLibibverbs) {
  absl::StatusOr<std::vector<std::string>> ibdevs = ListDir("/sys/class/infiniband");
  if (ibdevs.ok() && !ibdevs->empty()) GTEST_SKIP() << "this host has RDMA devices";
  rdmashare::testing::TempDir dir;
  RunResult r = RunCliBinary({"doctor", "--json", "--kubelet-dir", dir.path()}, dir.path());
  EXPECT_EQ(r.err, "");
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  std::vector<nlohmann::json> verbs;
  for (const nlohmann::json& c : j["checks"]) {
    if (c["check"] == "verbs") verbs.push_back(c);
  }
  ASSERT_EQ(verbs.size(), 1u) << r.out;
  EXPECT_EQ(verbs[0]["subject"], "node");
  EXPECT_EQ(verbs[0]["level"], "ok");
  EXPECT_EQ(verbs[0]["detail"], "no verbs devices (libibverbs found none): checks use sysfs only");
}

TEST(BinaryTest, CapturedNodeWorksWithEveryReadingCommand) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string dir = node.dir().Sub("cap");
  RunResult cap = RunCliBinary(Concat({"capture", dir}, node.RootFlags()), node.dir().path());
  ASSERT_EQ(cap.exit_code, 0) << cap.err;
  EXPECT_THAT(cap.out, HasSubstr("--sysfs-root " + dir + "/sys"));
  std::vector<std::string> roots = {
      "--sysfs-root", dir + "/sys",           "--dev-root",    dir + "/dev",
      "--proc-root",  node.paths().proc_root, "--kubelet-dir", node.paths().kubelet_dir};
  RunResult devices = RunCliBinary(Concat({"devices"}, roots), node.dir().path());
  EXPECT_EQ(devices.exit_code, 0) << devices.err;
  EXPECT_THAT(devices.out, HasSubstr("enp18s0f0np0"));
  RunResult doctor = RunCliBinary(Concat({"doctor"}, roots), node.dir().path());
  EXPECT_EQ(doctor.exit_code, 0) << doctor.out;
  RunResult rails = RunCliBinary(Concat({"rails", "--format", "json"}, roots), node.dir().path());
  EXPECT_EQ(rails.exit_code, 0) << rails.err;
  EXPECT_THAT(rails.err, HasSubstr("rail 8: GPU 0000:22:00.0 <-> mlx5_7"));
#ifdef RS_DP_BIN
  rdmashare::testing::Subprocess::Options opts;
  std::string config = node.dir().Sub("config.json");
  RunResult gen =
      RunCliBinary(Concat({"rails", "--output", "dp-config", "--format", "json"}, roots));
  rdmashare::testing::WriteTestFile(config, gen.out);
  opts.argv = {RS_DP_BIN,      "--validate", "--config",   config,
               "--sysfs-root", dir + "/sys", "--dev-root", dir + "/dev"};
  opts.work_dir = node.dir().path();
  RunResult dp = rdmashare::testing::RunProgram(opts);
  EXPECT_EQ(dp.exit_code, 0) << dp.out << dp.err;
  EXPECT_THAT(dp.out, HasSubstr("spidernet.io/shared_cx5_gpu8: 100 units"));
#endif
}

// A FIFO planted in the sysfs root where an attribute should be (anyone who can write the tree
// fed to --sysfs-root): no command may block on it; each ends within the deadline and says so.
TEST(BinaryTest, FifoInTheSysfsRootBlocksNoCommand) {
  TestNode node(fakenode::Walkthrough8Rail());
  const std::string fifo = JoinPath(node.paths().sys_root, "class/infiniband/mlx5_0/ports/1/state");
  ASSERT_EQ(::unlink(fifo.c_str()), 0);
  rdmashare::testing::MakeFifo(fifo);
  const std::string config = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(
      config,
      R"({"configList": [{"resourceName": "r", "selectors": {"drivers": ["mlx5_core"]}}]})");
  struct Command {
    std::vector<std::string> argv;
    std::string expected;  // on stdout or stderr
  };
  std::vector<Command> commands = {
      {Concat({RS_CLI_BIN, "devices"}, node.RootFlags()), "is a FIFO, not a regular file"},
      {Concat({RS_CLI_BIN, "doctor"}, node.RootFlags()), "is a FIFO, not a regular file"},
      {Concat({RS_CLI_BIN, "capture", node.dir().Sub("cap")}, node.RootFlags()),
       "/infiniband/mlx5_0/ports/1/state (a FIFO): not a regular file, directory or symlink; "
       "not copied"},
#ifdef RS_DP_BIN
      {{RS_DP_BIN, "--validate", "--config", config, "--sysfs-root", node.paths().sys_root,
        "--dev-root", node.paths().dev_root},
       "is a FIFO, not a regular file"},
#endif
  };
  for (const Command& c : commands) {
    rdmashare::testing::Subprocess::Options opts;
    opts.argv = c.argv;
    opts.work_dir = node.dir().path();
    RunResult r = rdmashare::testing::RunProgram(opts, std::chrono::seconds(20));
    const std::string what = ::testing::PrintToString(c.argv);
    EXPECT_GE(r.exit_code, 0) << what << ": no answer within 20 s";
    EXPECT_LT(r.exit_code, 128) << what << ": killed";
    EXPECT_THAT(r.out + r.err, HasSubstr(c.expected)) << what << "\n" << r.out << r.err;
  }
}

}  // namespace
}  // namespace rdmashare::cli
