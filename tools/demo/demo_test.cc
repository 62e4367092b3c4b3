// The README's first command as a user runs it: rdmashare-demo's flags, a user's own config and
// a node given as a sysfs tree (what `rdmashare capture` makes).
#include <string>

#include "common/files.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

RunResult Demo(const TempDir& dir, std::vector<std::string> args) {
  Subprocess::Options opts;
  opts.argv = {RDMASHARE_DEMO_BINARY};
  opts.argv.insert(opts.argv.end(), args.begin(), args.end());
  opts.work_dir = dir.path();
  opts.cwd = dir.path();
  return RunProgram(opts, std::chrono::seconds(60));
}

TEST(DemoTest, HelpDescribesEveryFlag) {
  TempDir dir;
  RunResult r = Demo(dir, {"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* flag : {"--config FILE", "--sysfs-root DIR", "--dev-root DIR", "--dp FILE"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("== 1.")));  // nothing was run
}

TEST(DemoTest, UsageErrorsExitTwoNamingTheFlag) {
  TempDir dir;
  RunResult bogus = Demo(dir, {"--bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_THAT(bogus.err, HasSubstr("unknown flag '--bogus'"));
  RunResult missing = Demo(dir, {"--config"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("flag --config needs a value"));
}

TEST(DemoTest, RunsAUsersConfigOnACapturedNode) {
  TempDir dir;
  auto node = fakenode::FakeNode::Build(fakenode::Walkthrough8Rail(), dir.Sub("cap"));
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("my.json"),
                              R"({"configList": [{"resourceName": "rails_a", )"
                              R"("resourcePrefix": "example.com", "rdmaHcaMax": 4, )"
                              R"("selectors": {"ifNames": ["enp11s0f0np0", "enp12s0f0np0"]}}]})")
                  .ok());
  // Relative paths, as a user types them; the dev root is found next to sys/.
  RunResult r = Demo(dir, {"--config", "my.json", "--sysfs-root", "cap/sys"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/dev  " + dir.Sub("cap/dev")));
  EXPECT_THAT(r.out, HasSubstr("example.com/rails_a: \"4\""));
  EXPECT_THAT(r.out, HasSubstr("host " + dir.Sub("cap/dev/infiniband/uverbs1")));
  EXPECT_THAT(r.out, HasSubstr("RDMASHARE_RAILS_A_NETDEVS=enp11s0f0np0,enp12s0f0np0"));
  EXPECT_THAT(r.out, Not(HasSubstr("spidernet.io")));
}

TEST(DemoTest, BadConfigOrNodeFailsWithTheReason) {
  TempDir dir;
  ASSERT_TRUE(
      WriteFileAtomic(dir.Sub("bad.json"), R"({"configList": [{"resourceName": ""}]})").ok());
  RunResult bad = Demo(dir, {"--config", "bad.json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("rdmashare-demo: config bad.json: "));
  RunResult nonode = Demo(dir, {"--sysfs-root", dir.Sub("nothing")});
  EXPECT_EQ(nonode.exit_code, 1);
  EXPECT_THAT(nonode.err, HasSubstr("no class/ directory there"));
}

}  // namespace
}  // namespace rdmashare
