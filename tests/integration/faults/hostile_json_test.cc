// Deep and huge JSON against the real CNI binaries and `rdmashare pool`: about 1 MB of stdin
// nested hundreds of thousands of levels under runtimeConfig, prevResult, ipam, args or a
// conflist's plugin used to crash rdmashare-ipam and rdmashare-macvlan with SIGSEGV (a
// recursive copy of the parsed value), on ADD and DEL alike, so a pod's DEL could never
// succeed. Each case: exit 1, the CNI error JSON with code 6 naming the depth or the size, and
// no write to the IPAM data directory.
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/files.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rdmashare {
namespace {

using json = nlohmann::json;
using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;

// `value` nested `depth` levels deep, alternating objects and arrays.
std::string Deep(size_t depth) {
  std::string open, close;
  for (size_t i = 0; i < depth; ++i) {
    if (i % 2 == 0) {
      open += R"({"k":)";
      close += "}";
    } else {
      open += "[";
      close += "]";
    }
  }
  std::reverse(close.begin(), close.end());
  return open + "1" + close;
}

// A valid network config for `binary`, with `key`'s value replaced by a 300k-level document
// (the raw text is spliced in: building it as a json value would itself recurse).
std::string HostileConf(const std::string& binary, const std::string& data_dir,
                        const std::string& key) {
  json ipam = {{"type", "rdmashare-ipam"},
               {"subnet", "172.16.11.0/24"},
               {"ips", {"172.16.11.10-172.16.11.20"}},
               {"dataDir", data_dir}};
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "rail1"},
               {"type", binary == RS_MACVLAN_BIN ? "rdmashare-macvlan" : "rdmashare-ipam"},
               {"master", "enp11s0f0np0"},
               {"ipam", ipam}};
  if (binary != RS_MACVLAN_BIN) conf.update(ipam);
  conf[key] = "@DEEP@";
  std::string text = conf.dump();
  text.replace(text.find("\"@DEEP@\""), 8, Deep(300000));
  return text;
}

RunResult RunPlugin(const std::string& binary, const std::string& command,
                    const std::string& stdin_data, const TempDir& dir) {
  Subprocess::Options o;
  o.argv = {binary};
  o.inherit_env = false;
  o.env = {{"CNI_COMMAND", command},
           {"CNI_CONTAINERID", "deep1"},
           {"CNI_NETNS", "/proc/self/ns/net"},
           {"CNI_IFNAME", "net1"},
           {"CNI_PATH", "/nonexistent"}};
  o.stdin_data = stdin_data;
  o.work_dir = dir.path();
  return RunProgram(o, std::chrono::seconds(30));
}

class DeepJsonTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string, std::string>> {};

TEST_P(DeepJsonTest, IsCode6NamingTheDepthAndWritesNothing) {
  const auto& [binary, command, key] = GetParam();
  TempDir dir;
  std::string data = dir.Sub("data");
  std::string in = HostileConf(binary, data, key);
  ASSERT_GT(in.size(), 1000000u);
  RunResult r = RunPlugin(binary, command, in, dir);
  ASSERT_EQ(r.exit_code, 1) << "exit " << r.exit_code << " (139 = SIGSEGV) "
                            << r.out.substr(0, 300);
  json err = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(err.is_object()) << r.out.substr(0, 300);
  EXPECT_EQ(err.value("code", 0), 6) << r.out;
  EXPECT_THAT(err.value("msg", ""), HasSubstr("JSON nested deeper than 64 levels"));
  EXPECT_FALSE(PathExists(data)) << "the data directory was written";
}

INSTANTIATE_TEST_SUITE_P(Binaries, DeepJsonTest,
                         ::testing::Combine(::testing::Values(RS_MACVLAN_BIN, RS_IPAM_BIN),
                                            ::testing::Values("ADD", "DEL", "CHECK"),
                                            ::testing::Values("runtimeConfig", "prevResult", "ipam",
                                                              "args")),
                         [](const auto& info) {
                           std::string b =
                               std::get<0>(info.param) == RS_MACVLAN_BIN ? "Macvlan" : "Ipam";
                           return b + std::get<1>(info.param) + "_" + std::get<2>(info.param);
                         });

TEST(HugeStdinTest, IsRefusedAtTheCapWithoutReadingItAll) {
  TempDir dir;
  // 100 MB of whitespace around a valid config.
  std::string in(100u << 20, ' ');
  in += R"({"cniVersion":"1.0.0","name":"rail1","type":"rdmashare-ipam"})";
  for (const std::string binary : {RS_MACVLAN_BIN, RS_IPAM_BIN}) {
    auto start = std::chrono::steady_clock::now();
    RunResult r = RunPlugin(binary, "ADD", in, dir);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.exit_code, 1) << binary << " " << r.out;
    json err = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(err.is_object()) << r.out;
    EXPECT_EQ(err.value("code", 0), 6);
    EXPECT_THAT(err.value("msg", ""), HasSubstr("stdin: more than 4194304 bytes"));
    EXPECT_LT(took, std::chrono::seconds(10)) << binary;
  }
}

// Under the 1 MiB file cap (a bigger file is refused by size), deep enough to crash a recursive
// copy.
TEST(PoolDeepConfTest, DeepConfigOrConflistIsAClearError) {
  TempDir dir;
  for (const std::string& text : {
           std::string(R"({"cniVersion":"1.0.0","name":"n","plugins":[)") + Deep(150000) + "]}",
           std::string(R"({"kind":"NetworkAttachmentDefinition","spec":{"config":)") +
               json(std::string(R"({"name":"n","ipam":)") + Deep(150000) + "}").dump() + "}}",
       }) {
    std::string path = dir.Sub("deep.json");
    ASSERT_TRUE(WriteFileAtomic(path, text).ok());
    Subprocess::Options o;
    o.argv = {RS_CLI_BIN, "pool", "list", "--conf", path};
    o.work_dir = dir.path();
    RunResult r = RunProgram(o, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err.substr(0, 300);
    EXPECT_THAT(r.err, HasSubstr("JSON nested deeper than 64 levels"));
  }
}

// Every binary answers --help (and --version) on stdout with exit 0, without reading stdin.
TEST(PluginHelpTest, BothPluginsAnswerHelpAndVersion) {
  TempDir dir;
  for (const std::string binary : {RS_MACVLAN_BIN, RS_IPAM_BIN}) {
    std::string name = binary.substr(binary.rfind('/') + 1);
    Subprocess::Options o;
    o.argv = {binary, "--help"};
    o.inherit_env = false;
    o.work_dir = dir.path();
    RunResult help = RunProgram(o, std::chrono::seconds(10));
    EXPECT_EQ(help.exit_code, 0) << name;
    EXPECT_THAT(help.out, HasSubstr(name + ": "));
    EXPECT_THAT(help.out, HasSubstr("CNI_COMMAND"));
    o.argv = {binary, "--version"};
    RunResult version = RunProgram(o, std::chrono::seconds(10));
    EXPECT_EQ(version.exit_code, 0) << name;
    EXPECT_THAT(version.out, HasSubstr(name + " 0.1.0 (CNI 1.1.0)"));
  }
}

}  // namespace
}  // namespace rdmashare
