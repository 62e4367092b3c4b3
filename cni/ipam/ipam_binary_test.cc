// Runs the real rdmashare-ipam binary as a runtime would (fork/exec, CNI_* env, stdin), alone,
// under the reference macvlan plugin inside a real netns, in 64 parallel processes and in an
// empty chroot.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/result.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

const std::string kBin = RDMASHARE_IPAM_BIN;

std::string BinDir() { return kBin.substr(0, kBin.rfind('/')); }

struct PluginRun {
  int exit_code = -1;
  std::string out;
  json doc;  // stdout parsed (null when empty / not JSON)
};

PluginRun RunPlugin(const Env& env, const std::string& stdin_data) {
  PluginRun run;
  auto out = ExecPlugin(kBin, env, stdin_data, std::chrono::seconds(30));
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return run;
  run.exit_code = out->exit_code;
  run.out = out->stdout_data;
  run.doc = json::parse(run.out, nullptr, false);
  if (run.doc.is_discarded()) run.doc = json();
  return run;
}

// Runs a command (no shell); returns exit code, stdout in *out.
int RunCmd(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) data.append(buf, n);
  ::close(pipefd[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (out) *out = data;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string Conf(const std::string& version, const std::string& data_dir,
                 const std::string& name = "rail1", const std::string& extra = "") {
  return fmt::format(
      R"({{"cniVersion":"{}","name":"{}","type":"rdmashare-macvlan"{},"ipam":{{"type":"rdmashare-ipam",)"
      R"("subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.100"],"gateway":"172.16.11.254",)"
      R"("routes":[{{"dst":"10.0.0.0/8"}}],"dataDir":"{}"}}}})",
      version, name, extra, data_dir);
}

Env CmdEnv(const std::string& command, const std::string& id, const std::string& ifname = "net1") {
  return {{"CNI_COMMAND", command},
          {"CNI_CONTAINERID", id},
          {"CNI_NETNS", "/var/run/netns/" + id},
          {"CNI_IFNAME", ifname},
          {"CNI_PATH", BinDir()},
          {"CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p-" + id}};
}

std::string WithPrev(const std::string& conf, const json& prev) {
  json doc = json::parse(conf);
  doc["prevResult"] = prev;
  return doc.dump();
}

void ExpectCniError(const PluginRun& run, int code, const std::string& msg) {
  EXPECT_EQ(run.exit_code, 1) << run.out;
  ASSERT_TRUE(run.doc.is_object()) << "stdout: " << run.out;
  EXPECT_EQ(run.doc["code"], code) << run.out;
  EXPECT_THAT(run.doc["msg"].get<std::string>(), HasSubstr(msg));
  EXPECT_TRUE(run.doc.contains("details")) << run.out;
  EXPECT_TRUE(run.doc.contains("cniVersion")) << run.out;
}

class IpamBinaryVersionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(IpamBinaryVersionTest, VersionAnswersCallerVersion) {
  PluginRun run =
      RunPlugin({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":")" + GetParam() + "\"}");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.doc["cniVersion"], GetParam());
  EXPECT_EQ(run.doc["supportedVersions"],
            json::parse(R"(["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"])"));
}

TEST_P(IpamBinaryVersionTest, AddCheckDelInCallerVersion) {
  const std::string v = GetParam();
  TempDir dir;
  std::string conf = Conf(v, dir.path());
  PluginRun add = RunPlugin(CmdEnv("ADD", "ctr1"), conf);
  ASSERT_EQ(add.exit_code, 0) << add.out;
  EXPECT_EQ(add.doc["cniVersion"], v);
  ASSERT_EQ(add.doc["ips"].size(), 1u);
  EXPECT_EQ(add.doc["ips"][0]["address"], "172.16.11.1/24");
  EXPECT_EQ(add.doc["ips"][0]["gateway"], "172.16.11.254");
  EXPECT_EQ(add.doc["ips"][0].contains("version"), !VersionAtLeast(v, "1.0.0")) << add.out;
  EXPECT_EQ(add.doc["routes"][0]["dst"], "10.0.0.0/8");
  EXPECT_TRUE(PathExists(dir.Sub("rail1/172.16.11.1")));

  PluginRun check = RunPlugin(CmdEnv("CHECK", "ctr1"), WithPrev(conf, add.doc));
  if (VersionAtLeast(v, "0.4.0")) {
    EXPECT_EQ(check.exit_code, 0) << check.out;
    EXPECT_EQ(check.out, "");
  } else {
    ExpectCniError(check, kIncompatibleVersion, "does not allow CHECK");
  }

  Env del_env = CmdEnv("DEL", "ctr1");
  del_env.erase("CNI_NETNS");
  PluginRun del = RunPlugin(del_env, WithPrev(conf, add.doc));
  EXPECT_EQ(del.exit_code, 0) << del.out;
  EXPECT_EQ(del.out, "");
  EXPECT_FALSE(PathExists(dir.Sub("rail1/172.16.11.1")));
  PluginRun again = RunPlugin(del_env, conf);
  EXPECT_EQ(again.exit_code, 0) << again.out;
}

TEST_P(IpamBinaryVersionTest, GcAndStatusNeed110) {
  const std::string v = GetParam();
  TempDir dir;
  Env env = {{"CNI_COMMAND", "GC"}, {"CNI_PATH", BinDir()}};
  PluginRun gc = RunPlugin(env, Conf(v, dir.path(), "rail1", R"(,"cni.dev/valid-attachments":[])"));
  env["CNI_COMMAND"] = "STATUS";
  PluginRun status = RunPlugin(env, Conf(v, dir.path()));
  if (v == "1.1.0") {
    EXPECT_EQ(gc.exit_code, 0) << gc.out;
    EXPECT_EQ(status.exit_code, 0) << status.out;
    EXPECT_EQ(status.out, "");
  } else {
    ExpectCniError(gc, kIncompatibleVersion, "does not allow GC");
    ExpectCniError(status, kIncompatibleVersion, "does not allow STATUS");
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, IpamBinaryVersionTest,
                         ::testing::Values("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = "V" + info.param;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

TEST(IpamBinaryTest, VersionWithNothingButCommand) {
  PluginRun run = RunPlugin({{"CNI_COMMAND", "VERSION"}}, "");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.doc["cniVersion"], "1.1.0");
}

TEST(IpamBinaryTest, GcReleasesStaleAttachmentsOfThatNetworkOnly) {
  TempDir dir;
  for (const char* id : {"keep", "stale"}) {
    ASSERT_EQ(RunPlugin(CmdEnv("ADD", id), Conf("1.1.0", dir.path())).exit_code, 0);
  }
  ASSERT_EQ(RunPlugin(CmdEnv("ADD", "other"), Conf("1.1.0", dir.path(), "rail2")).exit_code, 0);
  Env env = {{"CNI_COMMAND", "GC"}, {"CNI_PATH", BinDir()}};
  PluginRun gc = RunPlugin(
      env, Conf("1.1.0", dir.path(), "rail1",
                R"(,"cni.dev/valid-attachments":[{"containerID":"keep","ifname":"net1"}])"));
  ASSERT_EQ(gc.exit_code, 0) << gc.out;
  EXPECT_TRUE(PathExists(dir.Sub("rail1/172.16.11.1")));
  EXPECT_FALSE(PathExists(dir.Sub("rail1/172.16.11.2")));
  EXPECT_TRUE(PathExists(dir.Sub("rail2/172.16.11.1")));
}

TEST(IpamBinaryTest, StatusIs50WhenPoolExhausted) {
  TempDir dir;
  std::string conf = fmt::format(
      R"({{"cniVersion":"1.1.0","name":"tiny","type":"x","ipam":{{"type":"rdmashare-ipam",)"
      R"("subnet":"10.8.0.0/24","ips":["10.8.0.7"],"dataDir":"{}"}}}})",
      dir.path());
  Env env = {{"CNI_COMMAND", "STATUS"}, {"CNI_PATH", BinDir()}};
  EXPECT_EQ(RunPlugin(env, conf).exit_code, 0);
  ASSERT_EQ(RunPlugin(CmdEnv("ADD", "a"), conf).exit_code, 0);
  ExpectCniError(RunPlugin(env, conf), kPluginNotAvailable, "no free address left");
  ExpectCniError(RunPlugin(CmdEnv("ADD", "b"), conf), kPoolExhausted, "network tiny");
}

TEST(IpamBinaryTest, LogsGoToLogFileAndStdoutHoldsOnlyTheResult) {
  TempDir dir;
  json conf = json::parse(Conf("1.0.0", dir.path()));
  conf["ipam"]["logFile"] = dir.Sub("ipam.log");
  conf["ipam"]["logLevel"] = "debug";
  PluginRun add = RunPlugin(CmdEnv("ADD", "logged"), conf.dump());
  ASSERT_EQ(add.exit_code, 0) << add.out;
  ASSERT_TRUE(add.doc.is_object()) << "stdout must be exactly the result: " << add.out;
  ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(dir.Sub("ipam.log")));
  EXPECT_THAT(log, HasSubstr("container logged ifname net1 reserved 172.16.11.1"));
}

struct BadCase {
  std::string name;
  Env env;
  std::string stdin_data;
  int code;
  std::string msg;
};

class IpamBinaryBadInputTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(IpamBinaryBadInputTest, AnswersErrorJsonWithCode) {
  ExpectCniError(RunPlugin(GetParam().env, GetParam().stdin_data), GetParam().code, GetParam().msg);
}

Env Set(Env env, const std::string& k, const std::string& v) {
  if (v.empty()) {
    env.erase(k);
  } else {
    env[k] = v;
  }
  return env;
}

const char kGood[] =
    R"({"cniVersion":"1.0.0","name":"n1","type":"macvlan","ipam":{"type":"rdmashare-ipam","subnet":"10.7.0.0/24","dataDir":"/tmp/rs-never-used"}})";

INSTANTIATE_TEST_SUITE_P(
    Table, IpamBinaryBadInputTest,
    ::testing::Values(
        BadCase{"NoCommand", Set(CmdEnv("ADD", "a"), "CNI_COMMAND", ""), kGood, 4,
                "CNI_COMMAND is not set"},
        BadCase{"UnknownCommand", Set(CmdEnv("ADD", "a"), "CNI_COMMAND", "FOO"), kGood, 4,
                "is unknown"},
        BadCase{"NoContainerId", Set(CmdEnv("ADD", "a"), "CNI_CONTAINERID", ""), kGood, 4,
                "CNI_CONTAINERID"},
        BadCase{"NoNetnsOnAdd", Set(CmdEnv("ADD", "a"), "CNI_NETNS", ""), kGood, 4, "CNI_NETNS"},
        BadCase{"NoIfname", Set(CmdEnv("ADD", "a"), "CNI_IFNAME", ""), kGood, 4, "CNI_IFNAME"},
        BadCase{"IfnameTooLong", Set(CmdEnv("ADD", "a"), "CNI_IFNAME", "a234567890123456"), kGood,
                4, "longer than 15"},
        BadCase{"BadCniArgs", Set(CmdEnv("ADD", "a"), "CNI_ARGS", "novalue"), kGood, 4, "CNI_ARGS"},
        BadCase{"NotJson", CmdEnv("ADD", "a"), "{not json", 6, "not valid JSON"},
        BadCase{"NotObject", CmdEnv("ADD", "a"), "[1,2]", 6, "must be a JSON object"},
        BadCase{"NoName", CmdEnv("ADD", "a"), R"({"cniVersion":"1.0.0","type":"x"})", 7,
                "\"name\" is missing"},
        BadCase{"NoType", CmdEnv("ADD", "a"), R"({"cniVersion":"1.0.0","name":"x"})", 7,
                "\"type\" is missing"},
        BadCase{"NoVersion", CmdEnv("ADD", "a"), R"({"name":"x","type":"x"})", 7,
                "\"cniVersion\" is missing"},
        BadCase{"OldVersion", CmdEnv("ADD", "a"),
                R"({"cniVersion":"0.2.0","name":"x","type":"x","ipam":{}})", 1, "not supported"},
        BadCase{"NoIpam", CmdEnv("ADD", "a"), R"({"cniVersion":"1.0.0","name":"x","type":"x"})", 7,
                "no \"ipam\" object"},
        BadCase{"IpamNotObject", CmdEnv("ADD", "a"),
                R"({"cniVersion":"1.0.0","name":"x","type":"x","ipam":[]})", 7,
                "must be an object"},
        BadCase{
            "MixedForms", CmdEnv("ADD", "a"),
            R"({"cniVersion":"1.0.0","name":"x","type":"x","ipam":{"subnet":"10.0.0.0/24","ranges":[[{"subnet":"10.0.0.0/24"}]]}})",
            7, "use one form"},
        BadCase{
            "HostBits", CmdEnv("ADD", "a"),
            R"({"cniVersion":"1.0.0","name":"x","type":"x","ipam":{"subnet":"172.16.11.0/16"}})", 7,
            "host bits"},
        BadCase{"CheckWithoutPrevResult", CmdEnv("CHECK", "a"), kGood, 7, "prevResult"},
        BadCase{
            "PoolPathTraversal", CmdEnv("ADD", "a"),
            R"({"cniVersion":"1.0.0","name":"x","type":"x","ipam":{"subnet":"10.0.0.0/24","pool":"../../etc"}})",
            7, "\"pool\" '../../etc' is invalid"},
        BadCase{
            "PoolWithSlash", CmdEnv("ADD", "a"),
            R"({"cniVersion":"1.0.0","name":"x","type":"x","ipam":{"subnet":"10.0.0.0/24","pool":"a/b"}})",
            7, "\"pool\" 'a/b' is invalid"},
        BadCase{"NetworkNameTooLong", CmdEnv("ADD", "a"),
                R"({"cniVersion":"1.0.0","name":")" + std::string(201, 'n') +
                    R"(","type":"x","ipam":{"subnet":"10.0.0.0/24"}})",
                7, "is 201 characters long; at most 200"},
        BadCase{"GcWithoutAttachments", Env{{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/x"}},
                R"({"cniVersion":"1.1.0","name":"x","type":"x","ipam":{"subnet":"10.0.0.0/24"}})",
                7, "valid-attachments"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(IpamBinaryTest, DataDirIsCreatedPrivate) {
  TempDir dir;
  std::string data_dir = dir.Sub("var/lib/cni/networks");
  PluginRun add = RunPlugin(CmdEnv("ADD", "ctr1"), Conf("1.0.0", data_dir));
  ASSERT_EQ(add.exit_code, 0) << add.out;
  for (const std::string& path : {data_dir, data_dir + "/rail1"}) {
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << path;
  }
}

TEST(IpamBinaryTest, SixtyFourProcessesGetDistinctAddresses) {
  TempDir dir;
  std::string conf = Conf("1.0.0", dir.path());
  std::vector<std::string> got(64);
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      PluginRun run = RunPlugin(CmdEnv("ADD", "p" + std::to_string(i)), conf);
      if (run.exit_code == 0) got[i] = run.doc["ips"][0]["address"];
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(got.begin(), got.end());
  distinct.erase("");
  EXPECT_EQ(distinct.size(), 64u);
}

TEST(IpamBinaryTest, StaticBinaryAnswersVersionInEmptyChroot) {
  if (::geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  if (!RDMASHARE_TOOLS_STATIC) {
    GTEST_SKIP() << "sanitizer build: the CNI binaries are not linked statically";
  }
  TempDir root;
  ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFile(kBin, 256u << 20));
  ASSERT_OK(WriteFileAtomic(root.Sub("rdmashare-ipam"), bytes, 0755));
  ASSERT_OK_AND_ASSIGN(auto entries, ListDir(root.path()));
  ASSERT_EQ(entries.size(), 1u);  // nothing but the binary: no libc, no loader
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  std::string root_path = root.path();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    int devnull_in[2];
    if (::pipe(devnull_in) != 0) ::_exit(126);
    ::close(devnull_in[1]);
    ::dup2(devnull_in[0], 0);
    if (::chroot(root_path.c_str()) != 0 || ::chdir("/") != 0) ::_exit(125);
    char arg0[] = "/rdmashare-ipam";
    char env0[] = "CNI_COMMAND=VERSION";
    char* argv[] = {arg0, nullptr};
    char* envp[] = {env0, nullptr};
    ::execve(arg0, argv, envp);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  ::close(pipefd[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;
  json doc = json::parse(out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << out;
  EXPECT_EQ(doc["cniVersion"], "1.1.0");
}

// The reference macvlan plugin (Debian's containernetworking-plugins) as the main plugin, with
// rdmashare-ipam as its IPAM, in a real netns on a veth master.
class ReferenceMacvlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for netns and links";
    if (!PathExists("/usr/lib/cni/macvlan")) GTEST_SKIP() << "/usr/lib/cni/macvlan missing";
    ns_ = fmt::format("rsipam{}", ::getpid());
    master_ = fmt::format("rsim{}", ::getpid());
    peer_ = fmt::format("rsip{}", ::getpid());
    ASSERT_EQ(RunCmd({"ip", "netns", "add", ns_}), 0);
    ASSERT_EQ(RunCmd({"ip", "link", "add", master_, "type", "veth", "peer", "name", peer_}), 0);
    ASSERT_EQ(RunCmd({"ip", "link", "set", master_, "up"}), 0);
    ASSERT_EQ(RunCmd({"ip", "link", "set", peer_, "up"}), 0);
    // CNI_PATH holds the reference plugins and ours.
    ASSERT_OK(MakeDirs(bin_.path()));
    ASSERT_EQ(::symlink("/usr/lib/cni/macvlan", bin_.Sub("macvlan").c_str()), 0);
    ASSERT_EQ(::symlink(kBin.c_str(), bin_.Sub("rdmashare-ipam").c_str()), 0);
  }
  void TearDown() override {
    if (!master_.empty()) RunCmd({"ip", "link", "del", master_});
    if (!ns_.empty()) RunCmd({"ip", "netns", "del", ns_});
  }
  Env MacvlanEnv(const std::string& command) {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", "refctr"},
            {"CNI_NETNS", "/var/run/netns/" + ns_},
            {"CNI_IFNAME", "net1"},
            {"CNI_PATH", bin_.path()}};
  }
  std::string Config() {
    return fmt::format(
        R"({{"cniVersion":"1.0.0","name":"refnet","type":"macvlan","master":"{}","mode":"bridge",)"
        R"("ipam":{{"type":"rdmashare-ipam","subnet":"172.31.5.0/24","ips":["172.31.5.10-172.31.5.20"],)"
        R"("gateway":"172.31.5.254","dataDir":"{}"}}}})",
        master_, data_.path());
  }

  std::string ns_, master_, peer_;
  TempDir bin_, data_;
};

TEST_F(ReferenceMacvlanTest, AddCheckDelThroughReferenceMacvlan) {
  auto add = ExecPlugin(bin_.Sub("macvlan"), MacvlanEnv("ADD"), Config());
  ASSERT_TRUE(add.ok()) << add.status();
  ASSERT_EQ(add->exit_code, 0) << add->stdout_data;
  json result = json::parse(add->stdout_data);
  EXPECT_EQ(result["ips"][0]["address"], "172.31.5.10/24");
  EXPECT_EQ(result["ips"][0]["gateway"], "172.31.5.254");
  EXPECT_EQ(result["interfaces"][0]["name"], "net1");
  std::string addr;
  ASSERT_EQ(RunCmd({"ip", "-n", ns_, "-o", "addr", "show", "dev", "net1"}, &addr), 0);
  EXPECT_THAT(addr, HasSubstr("inet 172.31.5.10/24"));
  EXPECT_TRUE(PathExists(data_.Sub("refnet/172.31.5.10")));

  json with_prev = json::parse(Config());
  with_prev["prevResult"] = result;
  auto check = ExecPlugin(bin_.Sub("macvlan"), MacvlanEnv("CHECK"), with_prev.dump());
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->exit_code, 0) << check->stdout_data;

  auto del = ExecPlugin(bin_.Sub("macvlan"), MacvlanEnv("DEL"), with_prev.dump());
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->exit_code, 0) << del->stdout_data;
  EXPECT_FALSE(PathExists(data_.Sub("refnet/172.31.5.10")));
  EXPECT_NE(RunCmd({"ip", "-n", ns_, "link", "show", "net1"}), 0);
}

}  // namespace
}  // namespace rdmashare::cni::ipam
