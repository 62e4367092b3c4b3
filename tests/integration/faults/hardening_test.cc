// Hostile CNI input against the real rdmashare-macvlan and rdmashare-ipam binaries: every path
// component that comes from the caller (container id, ifname, network name) is refused when it
// could traverse or overflow, and CNI_NETNS must really be a network namespace. Each case checks
// the CNI code, a message naming the problem, and that nothing was written to the IPAM data
// directory (validation happens before any state changes). A FIFO planted as CNI_NETNS must not
// hang ADD or DEL: every run has a deadline, so a regression fails instead of hanging.
#include <unistd.h>

#include <chrono>
#include <map>
#include <ostream>
#include <string>

#include "common/files.h"
#include "common/testing/fifo.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rdmashare {
namespace {

using json = nlohmann::json;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;

// Deadline of one plugin run: far above a normal run (milliseconds), far below ctest's timeout.
constexpr std::chrono::seconds kRunDeadline{20};
// In env_override values: replaced with the test's temp directory (which holds a FIFO "fifo").
constexpr char kDirToken[] = "{dir}";

struct HostileCase {
  std::string name;
  std::map<std::string, std::string> env_override;  // "" value = remove the variable
  json conf_override;                               // merged into the network config
  int code;
  std::string text;  // expected in msg or details
};

void PrintTo(const HostileCase& c, std::ostream* os) { *os << c.name; }

class HardeningTest : public ::testing::TestWithParam<std::tuple<std::string, HostileCase>> {};

TEST_P(HardeningTest, IsRefusedWithItsCodeAndNothingIsWritten) {
  const auto& [binary, c] = GetParam();
  TempDir dir;
  MakeFifo(dir.Sub("fifo"));
  std::string data = dir.Sub("data");
  json ipam = {{"type", "rdmashare-ipam"},
               {"subnet", "172.16.11.0/24"},
               {"ips", {"172.16.11.10-172.16.11.20"}},
               {"dataDir", data}};
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "rail1"},
               {"type", binary == RS_MACVLAN_BIN ? "rdmashare-macvlan" : "rdmashare-ipam"},
               {"master", "enp11s0f0np0"},
               {"ipam", ipam}};
  if (binary != RS_MACVLAN_BIN) conf.update(ipam);
  if (c.conf_override.is_object()) conf.update(c.conf_override);
  Subprocess::Options o;
  o.argv = {binary};
  o.inherit_env = false;
  o.env = {{"CNI_COMMAND", "ADD"},
           {"CNI_CONTAINERID", "hard1"},
           {"CNI_NETNS", "/proc/self/ns/net"},
           {"CNI_IFNAME", "net1"},
           {"CNI_PATH", "/nonexistent"}};
  for (const auto& [k, v] : c.env_override) {
    if (v.empty()) {
      o.env.erase(k);
    } else if (v.rfind(kDirToken, 0) == 0) {
      o.env[k] = dir.path() + v.substr(std::string(kDirToken).size());
    } else {
      o.env[k] = v;
    }
  }
  o.stdin_data = conf.dump();
  o.work_dir = dir.path();
  auto run = RunProgram(o, kRunDeadline);
  ASSERT_EQ(run.exit_code, 1) << "(-1 or 137: no answer within the deadline) " << run.out
                              << run.err;
  json err = json::parse(run.out, nullptr, false);
  ASSERT_TRUE(err.is_object()) << run.out;
  EXPECT_EQ(err.value("code", 0), c.code) << run.out;
  EXPECT_THAT(err.value("msg", "") + " | " + err.value("details", ""), HasSubstr(c.text));
  EXPECT_FALSE(PathExists(data)) << "the data directory was written";
}

const HostileCase kHostile[] = {
    {"ContainerIdTraversal", {{"CNI_CONTAINERID", "../../etc"}}, {}, 4, "invalid characters"},
    {"ContainerIdTooLong", {{"CNI_CONTAINERID", std::string(2000, 'a')}}, {}, 4, "at most 1024"},
    {"ContainerIdLeadingDot", {{"CNI_CONTAINERID", ".hidden"}}, {}, 4, "invalid characters"},
    {"IfnameDotDot", {{"CNI_IFNAME", ".."}}, {}, 4, "not a valid name"},
    {"IfnameSlash", {{"CNI_IFNAME", "a/b"}}, {}, 4, "contains '/'"},
    {"IfnameTooLong", {{"CNI_IFNAME", "net123456789abcd"}}, {}, 4, "longer than 15 bytes"},
    {"NetworkNameTraversal", {}, {{"name", "../../tmp/x"}}, 7, "is invalid"},
    {"NetworkNameTooLong", {}, {{"name", std::string(300, 'n')}}, 7, "at most 255"},
    {"MissingNetns", {{"CNI_NETNS", ""}}, {}, 4, "CNI_NETNS is required"},
};

// Only the macvlan plugin opens CNI_NETNS (the IPAM plugin never enters it).
const HostileCase kBadNetns[] = {
    {"NetnsIsARegularFile", {{"CNI_NETNS", "/etc/hostname"}}, {}, 3, "not a namespace file"},
    {"NetnsIsAnotherNamespaceType",
     {{"CNI_NETNS", "/proc/self/ns/uts"}},
     {},
     3,
     "not a network namespace"},
    {"NetnsIsADirectory", {{"CNI_NETNS", "/proc/self/ns"}}, {}, 3, "not a namespace file"},
    {"NetnsMissing", {{"CNI_NETNS", "/run/netns/rs-hardening-none"}}, {}, 3, "No such file"},
    {"NetnsIsAFifo", {{"CNI_NETNS", "{dir}/fifo"}}, {}, 3, "not a namespace file (it is a FIFO)"},
    {"NetnsIsACharacterDevice",
     {{"CNI_NETNS", "/dev/null"}},
     {},
     3,
     "not a namespace file (it is a character device)"},
    // The plugin's own namespace (the test runs in the host's): nothing may be configured there.
    {"NetnsIsTheHostsOwn",
     {{"CNI_NETNS", "/proc/self/ns/net"}},
     {},
     4,
     "is the plugin's own (host) network namespace"},
    // Opting in gets past that check (and fails later: the master does not exist here).
    {"HostNetnsAllowedGetsToTheMaster",
     {{"CNI_NETNS", "/proc/self/ns/net"}},
     {{"allowHostNetns", true}, {"master", "rsnomaster0"}},
     101,
     "rsnomaster0"},
};

// DEL must always end: a CNI_NETNS that is no namespace (here a FIFO) means nothing to remove
// there, said on stderr, and DEL succeeds.
TEST(HardeningDelTest, FifoAsNetnsEndsDelPromptlyWithAWarning) {
  TempDir dir;
  MakeFifo(dir.Sub("fifo"));
  json conf = {
      {"cniVersion", "1.0.0"},
      {"name", "rail1"},
      {"type", "rdmashare-macvlan"},
      {"master", "enp11s0f0np0"},
      {"ipam",
       {{"type", "rdmashare-ipam"}, {"subnet", "172.16.11.0/24"}, {"dataDir", dir.Sub("data")}}}};
  Subprocess::Options o;
  o.argv = {RS_MACVLAN_BIN};
  o.inherit_env = false;
  o.env = {{"CNI_COMMAND", "DEL"},
           {"CNI_CONTAINERID", "hard1"},
           {"CNI_NETNS", dir.Sub("fifo")},
           {"CNI_IFNAME", "net1"},
           {"CNI_PATH", "/nonexistent"}};
  o.stdin_data = conf.dump();
  o.work_dir = dir.path();
  auto run = RunProgram(o, kRunDeadline);
  ASSERT_EQ(run.exit_code, 0) << "(-1 or 137: no answer within the deadline) " << run.out
                              << run.err;
  EXPECT_THAT(run.err, HasSubstr(dir.Sub("fifo") + ": not a namespace file (it is a FIFO)"));
}

std::string Name(const ::testing::TestParamInfo<std::tuple<std::string, HostileCase>>& info) {
  std::string bin = BaseName(std::get<0>(info.param)) == "rdmashare-macvlan" ? "Macvlan" : "Ipam";
  return bin + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Input, HardeningTest,
                         ::testing::Combine(::testing::Values(std::string(RS_MACVLAN_BIN),
                                                              std::string(RS_IPAM_BIN)),
                                            ::testing::ValuesIn(kHostile)),
                         Name);
INSTANTIATE_TEST_SUITE_P(Netns, HardeningTest,
                         ::testing::Combine(::testing::Values(std::string(RS_MACVLAN_BIN)),
                                            ::testing::ValuesIn(kBadNetns)),
                         Name);

}  // namespace
}  // namespace rdmashare
