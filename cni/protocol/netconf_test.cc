#include "cni/protocol/netconf.h"

#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni {
namespace {

using ::rdmashare::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseNetConfTest, ParsesAllKnownFields) {
  ASSERT_OK_AND_ASSIGN(NetConf conf, ParseNetConf(R"({
    "cniVersion": "1.0.0", "name": "gpu1-net11", "type": "rdmashare-macvlan",
    "master": "enp11s0f0np0",
    "ipam": {"type": "rdmashare-ipam", "subnet": "172.16.11.0/24"},
    "prevResult": {"cniVersion": "1.0.0", "ips": []},
    "runtimeConfig": {"mac": "02:00:00:00:00:01"},
    "args": {"cni": {"ips": ["172.16.11.9"]}},
    "dns": {"nameservers": ["10.0.0.10"]}})"));
  EXPECT_EQ(conf.cni_version, "1.0.0");
  EXPECT_EQ(conf.name, "gpu1-net11");
  EXPECT_EQ(conf.type, "rdmashare-macvlan");
  EXPECT_EQ(conf.raw["master"], "enp11s0f0np0");
  EXPECT_EQ(conf.ipam["subnet"], "172.16.11.0/24");
  ASSERT_TRUE(conf.prev_result.has_value());
  EXPECT_EQ((*conf.prev_result)["cniVersion"], "1.0.0");
  EXPECT_EQ(conf.runtime_config["mac"], "02:00:00:00:00:01");
  EXPECT_EQ(conf.args["cni"]["ips"][0], "172.16.11.9");
  EXPECT_EQ(conf.dns["nameservers"][0], "10.0.0.10");
}

TEST(ParseNetConfTest, OptionalObjectsDefault) {
  ASSERT_OK_AND_ASSIGN(NetConf conf,
                       ParseNetConf(R"({"cniVersion":"0.3.1","name":"n","type":"t"})"));
  EXPECT_TRUE(conf.ipam.is_null());
  EXPECT_FALSE(conf.prev_result.has_value());
  EXPECT_EQ(conf.runtime_config, nlohmann::json::object());
  EXPECT_EQ(conf.args, nlohmann::json::object());
  EXPECT_TRUE(conf.dns.is_null());
}

TEST(ParseNetConfTest, AcceptsEverySupportedVersion) {
  for (const char* v : kSupportedVersions) {
    std::string in = std::string(R"({"cniVersion":")") + v + R"(","name":"n","type":"t"})";
    EXPECT_THAT(ParseNetConf(in), IsOk()) << v;
  }
}

struct BadConfCase {
  std::string name;
  std::string stdin_data;
  int code;
  std::string message;
};

class BadNetConfTest : public ::testing::TestWithParam<BadConfCase> {};

TEST_P(BadNetConfTest, RejectedWithExpectedCode) {
  auto conf = ParseNetConf(GetParam().stdin_data);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(CniCode(conf.status()), GetParam().code) << conf.status();
  EXPECT_THAT(std::string(conf.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadNetConfTest,
    ::testing::Values(
        BadConfCase{"Empty", "", 6, "not valid JSON"},
        BadConfCase{"NotJson", "cniVersion: 1.0.0", 6, "not valid JSON"},
        BadConfCase{"TruncatedJson", R"({"cniVersion":"1.0.0",)", 6, "not valid JSON"},
        BadConfCase{"Array", R"(["cniVersion"])", 6, "must be a JSON object, got array"},
        BadConfCase{"String", R"("x")", 6, "must be a JSON object, got string"},
        BadConfCase{"MissingVersion", R"({"name":"n","type":"t"})", 7, "\"cniVersion\" is missing"},
        BadConfCase{"VersionNotString", R"({"cniVersion":1,"name":"n","type":"t"})", 7,
                    "\"cniVersion\" must be a non-empty string"},
        BadConfCase{"UnsupportedVersion", R"({"cniVersion":"0.2.0","name":"n","type":"t"})", 1,
                    "cniVersion 0.2.0 is not supported"},
        BadConfCase{"FutureVersion", R"({"cniVersion":"2.0.0","name":"n","type":"t"})", 1,
                    "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"},
        BadConfCase{"MissingName", R"({"cniVersion":"1.0.0","type":"t"})", 7,
                    "\"name\" is missing"},
        BadConfCase{"EmptyName", R"({"cniVersion":"1.0.0","name":"","type":"t"})", 7,
                    "\"name\" must be a non-empty string"},
        BadConfCase{"NameTraversal", R"({"cniVersion":"1.0.0","name":"../etc","type":"t"})", 7,
                    "name '../etc' is invalid"},
        BadConfCase{
            "NameTooLong",
            R"({"cniVersion":"1.0.0","name":")" + std::string(256, 'n') + R"(","type":"t"})", 7,
            "name is 256 bytes long (at most 255)"},
        BadConfCase{"NameWithSlash", R"({"cniVersion":"1.0.0","name":"a/b","type":"t"})", 7,
                    "is invalid"},
        BadConfCase{"MissingType", R"({"cniVersion":"1.0.0","name":"n"})", 7,
                    "\"type\" is missing"},
        BadConfCase{"TypeNotString", R"({"cniVersion":"1.0.0","name":"n","type":[]})", 7,
                    "\"type\" must be a non-empty string"},
        BadConfCase{"IpamNotObject", R"({"cniVersion":"1.0.0","name":"n","type":"t","ipam":"x"})",
                    7, "\"ipam\" must be an object, got string"},
        BadConfCase{"PrevResultNotObject",
                    R"({"cniVersion":"1.0.0","name":"n","type":"t","prevResult":[]})", 7,
                    "\"prevResult\" must be an object"},
        BadConfCase{"RuntimeConfigNotObject",
                    R"({"cniVersion":"1.0.0","name":"n","type":"t","runtimeConfig":3})", 7,
                    "\"runtimeConfig\" must be an object"},
        BadConfCase{"ArgsNotObject",
                    R"({"cniVersion":"1.0.0","name":"n","type":"t","args":"IP=1"})", 7,
                    "\"args\" must be an object"},
        BadConfCase{"DnsNotObject", R"({"cniVersion":"1.0.0","name":"n","type":"t","dns":true})", 7,
                    "\"dns\" must be an object"}),
    [](const ::testing::TestParamInfo<BadConfCase>& info) { return info.param.name; });

TEST(VersionTest, VersionAtLeastComparesNumerically) {
  EXPECT_TRUE(VersionAtLeast("0.4.0", "0.3.1"));
  EXPECT_TRUE(VersionAtLeast("1.0.0", "1.0.0"));
  EXPECT_TRUE(VersionAtLeast("1.10.0", "1.9.0"));
  EXPECT_FALSE(VersionAtLeast("0.3.1", "0.4.0"));
  EXPECT_FALSE(VersionAtLeast("1.0.0", "1.1.0"));
}

TEST(VersionTest, SupportedVersions) {
  EXPECT_TRUE(IsSupportedVersion("0.3.0"));
  EXPECT_TRUE(IsSupportedVersion("1.1.0"));
  EXPECT_FALSE(IsSupportedVersion("0.2.0"));
  EXPECT_FALSE(IsSupportedVersion("1.0"));
}

TEST(ValidateCommandForVersionTest, CheckNeeds040GcAndStatusNeed110) {
  struct Case {
    const char* command;
    const char* version;
    bool ok;
  };
  for (const Case& c :
       {Case{"CHECK", "0.3.1", false}, Case{"CHECK", "0.4.0", true}, Case{"GC", "1.0.0", false},
        Case{"GC", "1.1.0", true}, Case{"STATUS", "0.4.0", false}, Case{"STATUS", "1.1.0", true},
        Case{"ADD", "0.3.0", true}, Case{"DEL", "0.3.0", true}}) {
    absl::Status st = ValidateCommandForVersion(c.command, c.version);
    EXPECT_EQ(st.ok(), c.ok) << c.command << " " << c.version;
    if (!c.ok) {
      EXPECT_EQ(CniCode(st), kIncompatibleVersion);
      EXPECT_THAT(std::string(st.message()), HasSubstr(c.command));
    }
  }
}

TEST(EncodeVersionInfoTest, EchoesSupportedCallerVersion) {
  EXPECT_EQ(
      EncodeVersionInfo("0.4.0"),
      R"({"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
}

TEST(EncodeVersionInfoTest, UnknownVersionAnswersLatest) {
  EXPECT_EQ(
      EncodeVersionInfo("9.9.9"),
      R"({"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})");
}

TEST(VersionFromStdinTest, LenientOnAnyInput) {
  EXPECT_EQ(VersionFromStdin(R"({"cniVersion":"0.3.1"})"), "0.3.1");
  EXPECT_EQ(VersionFromStdin(""), "1.1.0");
  EXPECT_EQ(VersionFromStdin("not json"), "1.1.0");
  EXPECT_EQ(VersionFromStdin(R"({"cniVersion":"0.1.0"})"), "1.1.0");
  EXPECT_EQ(VersionFromStdin(R"({"cniVersion":5})"), "1.1.0");
}

NetConf GcConf(const std::string& extra) {
  auto conf = ParseNetConf(R"({"cniVersion":"1.1.0","name":"n","type":"t")" + extra + "}");
  EXPECT_TRUE(conf.ok()) << conf.status();
  return *conf;
}

TEST(ParseValidAttachmentsTest, ReadsValidAttachments) {
  ASSERT_OK_AND_ASSIGN(
      auto list,
      ParseValidAttachments(GcConf(
          R"(,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"net1"},{"containerID":"b","ifname":"net2"}])")));
  EXPECT_THAT(list, ElementsAre(Attachment{"a", "net1"}, Attachment{"b", "net2"}));
}

TEST(ParseValidAttachmentsTest, AcceptsOlderAttachmentsKey) {
  ASSERT_OK_AND_ASSIGN(
      auto list, ParseValidAttachments(
                     GcConf(R"(,"cni.dev/attachments":[{"containerID":"a","ifname":"eth0"}])")));
  EXPECT_THAT(list, ElementsAre(Attachment{"a", "eth0"}));
}

TEST(ParseValidAttachmentsTest, EmptyArrayIsValid) {
  ASSERT_OK_AND_ASSIGN(auto list,
                       ParseValidAttachments(GcConf(R"(,"cni.dev/valid-attachments":[])")));
  EXPECT_TRUE(list.empty());
}

TEST(ParseValidAttachmentsTest, MalformedIsCode7) {
  struct Case {
    std::string extra, message;
  };
  for (const Case& c :
       {Case{"", "is missing"}, Case{R"(,"cni.dev/valid-attachments":{})", "must be an array"},
        Case{R"(,"cni.dev/valid-attachments":["a"])", "must be an object"},
        Case{R"(,"cni.dev/valid-attachments":[{"containerID":"a"}])", "needs string"}}) {
    auto list = ParseValidAttachments(GcConf(c.extra));
    ASSERT_FALSE(list.ok()) << c.extra;
    EXPECT_EQ(CniCode(list.status()), kInvalidNetworkConfig);
    EXPECT_THAT(std::string(list.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace rdmashare::cni
