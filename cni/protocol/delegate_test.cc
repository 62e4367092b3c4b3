#include "cni/protocol/delegate.h"

#include <sys/stat.h>
#include <unistd.h>

#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni {
namespace {

using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

void WriteScript(const std::string& path, const std::string& body) {
  WriteTestFile(path, "#!/bin/sh\n" + body);
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
}

CniRequest Request(const std::string& path) {
  CniRequest req;
  req.command = "ADD";
  req.container_id = "ctr1";
  req.netns = "/var/run/netns/x";
  req.ifname = "net1";
  req.args = "IP=10.0.0.5";
  req.path = path;
  return req;
}

TEST(FindPluginTest, SearchesCniPathInOrder) {
  TempDir a, b;
  WriteScript(b.Sub("myipam"), "exit 0\n");
  ASSERT_OK_AND_ASSIGN(std::string found,
                       FindPlugin("myipam", a.path() + "::" + b.path() + ":/nonexistent"));
  EXPECT_EQ(found, b.Sub("myipam"));
}

TEST(FindPluginTest, NonExecutableFileIsSkipped) {
  TempDir a;
  WriteTestFile(a.Sub("plain"), "not a program");
  auto found = FindPlugin("plain", a.path());
  EXPECT_EQ(CniCode(found.status()), kInvalidNetworkConfig);
}

TEST(FindPluginTest, MissingPluginIsCode7NamingTypeAndPath) {
  auto found = FindPlugin("nope", "/nonexistent1:/nonexistent2");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(CniCode(found.status()), kInvalidNetworkConfig);
  EXPECT_THAT(std::string(found.status().message()),
              HasSubstr("plugin 'nope' not found in CNI_PATH '/nonexistent1:/nonexistent2'"));
}

TEST(FindPluginTest, TypeWithPathComponentsIsRejected) {
  for (const char* type : {"../bin/sh", "/bin/sh", "..", ".", ""}) {
    auto found = FindPlugin(type, "/usr/lib/cni");
    EXPECT_EQ(CniCode(found.status()), kInvalidNetworkConfig) << type;
  }
}

TEST(ExecPluginTest, PassesExactlyTheGivenEnvironmentAndStdin) {
  TempDir dir;
  WriteScript(dir.Sub("p"), "echo \"CMD=$CNI_COMMAND IF=$CNI_IFNAME HOME=$HOME\"; cat\n");
  ASSERT_OK_AND_ASSIGN(ExecOutput out,
                       ExecPlugin(dir.Sub("p"), DelegateEnv(Request(dir.path()), "DEL"),
                                  R"({"cniVersion":"1.0.0"})"));
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_EQ(out.stdout_data, "CMD=DEL IF=net1 HOME=\n{\"cniVersion\":\"1.0.0\"}");
}

TEST(ExecPluginTest, LargeStdinAndStdoutDoNotDeadlock) {
  TempDir dir;
  WriteScript(dir.Sub("cat"), "exec cat\n");
  std::string big(1 << 20, 'x');
  ASSERT_OK_AND_ASSIGN(ExecOutput out, ExecPlugin(dir.Sub("cat"), {}, big));
  EXPECT_EQ(out.stdout_data.size(), big.size());
}

TEST(ExecPluginTest, PluginThatIgnoresStdinDoesNotKillUsWithSigpipe) {
  TempDir dir;
  WriteScript(dir.Sub("quick"), "exec echo done\n");
  std::string big(1 << 20, 'x');
  ASSERT_OK_AND_ASSIGN(ExecOutput out, ExecPlugin(dir.Sub("quick"), {}, big));
  EXPECT_EQ(out.stdout_data, "done\n");
  EXPECT_EQ(out.exit_code, 0);
}

TEST(ExecPluginTest, ReportsExitCode) {
  TempDir dir;
  WriteScript(dir.Sub("f"), "exit 3\n");
  ASSERT_OK_AND_ASSIGN(ExecOutput out, ExecPlugin(dir.Sub("f"), {}, ""));
  EXPECT_EQ(out.exit_code, 3);
}

TEST(ExecPluginTest, TimeoutKillsPluginWithCode11) {
  TempDir dir;
  WriteScript(dir.Sub("slow"), "exec sleep 30\n");
  auto start = std::chrono::steady_clock::now();
  auto out = ExecPlugin(dir.Sub("slow"), {}, "", std::chrono::milliseconds(200));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCode(out.status()), kTryAgainLater);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("did not finish within 200 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(DelegateEnvTest, OverridesCommandAndOmitsEmpty) {
  CniRequest req = Request("/opt/cni/bin");
  req.netns = "";
  auto env = DelegateEnv(req, "CHECK");
  EXPECT_EQ(env["CNI_COMMAND"], "CHECK");
  EXPECT_EQ(env["CNI_CONTAINERID"], "ctr1");
  EXPECT_EQ(env["CNI_IFNAME"], "net1");
  EXPECT_EQ(env["CNI_ARGS"], "IP=10.0.0.5");
  EXPECT_EQ(env["CNI_PATH"], "/opt/cni/bin");
  EXPECT_EQ(env.count("CNI_NETNS"), 0u);
}

TEST(DelegateCommandTest, PluginErrorJsonBecomesCniError) {
  TempDir dir;
  WriteScript(dir.Sub("failing"),
              "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"busy\",\"details\":\"d1\"}'\n"
              "exit 1\n");
  auto out = DelegateCommand("failing", "ADD", Request(dir.path()), "{}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCode(out.status()), 11);
  EXPECT_EQ(out.status().message(), "failing ADD: busy");
  EXPECT_EQ(CniDetails(out.status()), "d1");
}

TEST(DelegateCommandTest, FailureWithoutErrorJsonIsCode5) {
  TempDir dir;
  WriteScript(dir.Sub("crash"), "echo garbage; exit 2\n");
  auto out = DelegateCommand("crash", "DEL", Request(dir.path()), "{}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(CniCode(out.status()), kIoFailure);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("exited with status 2"));
  EXPECT_THAT(CniDetails(out.status()), HasSubstr("garbage"));
}

TEST(DelegateAddTest, NonResultOutputIsCode6) {
  TempDir dir;
  WriteScript(dir.Sub("junk"), "echo not-json\n");
  auto out = DelegateAdd("junk", Request(dir.path()), "{}");
  EXPECT_EQ(CniCode(out.status()), kDecodeFailure);
}

// The reference host-local IPAM, executed exactly as a runtime would.
TEST(DelegateAddTest, ReferenceHostLocalAddAndDel) {
  if (!PathExists("/usr/lib/cni/host-local")) GTEST_SKIP() << "/usr/lib/cni/host-local missing";
  TempDir data;
  std::string conf = fmt::format(
      R"({{"cniVersion":"1.0.0","name":"deleg{}","type":"macvlan","ipam":{{"type":"host-local",)"
      R"("dataDir":"{}","ranges":[[{{"subnet":"10.77.0.0/24","rangeStart":"10.77.0.20"}}]]}}}})",
      ::getpid(), data.path());
  CniRequest req = Request("/usr/lib/cni");
  req.args = "";
  ASSERT_OK_AND_ASSIGN(Result r, DelegateAdd("host-local", req, conf));
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].address.ToString(), "10.77.0.20/24");
  ASSERT_TRUE(r.ips[0].gateway.has_value());
  EXPECT_EQ(r.ips[0].gateway->ToString(), "10.77.0.1");
  std::string lease = data.Sub(fmt::format("deleg{}/10.77.0.20", ::getpid()));
  EXPECT_TRUE(PathExists(lease));
  EXPECT_OK(DelegateDel("host-local", req, conf));
  EXPECT_FALSE(PathExists(lease));
}

TEST(DelegateAddTest, ReferenceHostLocalErrorKeepsItsCode) {
  if (!PathExists("/usr/lib/cni/host-local")) GTEST_SKIP() << "/usr/lib/cni/host-local missing";
  CniRequest req = Request("/usr/lib/cni");
  req.args = "";
  auto r = DelegateAdd("host-local", req, R"({"cniVersion":"9.9.9","name":"x","type":"t"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kIncompatibleVersion) << r.status();
}

}  // namespace
}  // namespace rdmashare::cni
