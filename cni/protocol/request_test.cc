#include "cni/protocol/request.h"

#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni {
namespace {

using ::rdmashare::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

Env AddEnv() {
  return {{"CNI_COMMAND", "ADD"},        {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/p"}, {"CNI_IFNAME", "net1"},
          {"CNI_PATH", "/opt/cni/bin"},  {"CNI_ARGS", "K8S_POD_NAME=a;K8S_POD_NAMESPACE=b"}};
}

TEST(ParseRequestTest, AddWithAllVariables) {
  ASSERT_OK_AND_ASSIGN(CniRequest req, ParseRequest(AddEnv(), "{}"));
  EXPECT_EQ(req.command, "ADD");
  EXPECT_EQ(req.container_id, "abc123");
  EXPECT_EQ(req.netns, "/run/netns/p");
  EXPECT_EQ(req.ifname, "net1");
  EXPECT_EQ(req.path, "/opt/cni/bin");
  EXPECT_EQ(req.args, "K8S_POD_NAME=a;K8S_POD_NAMESPACE=b");
  EXPECT_EQ(req.stdin_data, "{}");
}

TEST(ParseRequestTest, DelWithoutNetnsIsAccepted) {
  Env env = AddEnv();
  env["CNI_COMMAND"] = "DEL";
  env.erase("CNI_NETNS");
  ASSERT_OK_AND_ASSIGN(CniRequest req, ParseRequest(env, ""));
  EXPECT_EQ(req.netns, "");
}

TEST(ParseRequestTest, VersionNeedsNothingElseAndReadsNothingElse) {
  Env env = {{"CNI_COMMAND", "VERSION"}, {"CNI_IFNAME", "has/slash"}, {"CNI_ARGS", "garbage"}};
  ASSERT_OK_AND_ASSIGN(CniRequest req, ParseRequest(env, ""));
  EXPECT_EQ(req.command, "VERSION");
  EXPECT_EQ(req.ifname, "");
  EXPECT_EQ(req.args, "");
}

TEST(ParseRequestTest, GcAndStatusNeedOnlyPath) {
  for (const char* cmd : {"GC", "STATUS"}) {
    Env env = {{"CNI_COMMAND", cmd}, {"CNI_PATH", "/opt/cni/bin"}, {"CNI_IFNAME", "bad/name"}};
    ASSERT_OK_AND_ASSIGN(CniRequest req, ParseRequest(env, ""));
    EXPECT_EQ(req.path, "/opt/cni/bin");
    EXPECT_EQ(req.ifname, "") << cmd;
  }
}

struct BadEnvCase {
  std::string name;
  Env env;
  std::string message;
};

class BadEnvTest : public ::testing::TestWithParam<BadEnvCase> {};

TEST_P(BadEnvTest, RejectedWithCode4) {
  auto req = ParseRequest(GetParam().env, "{}");
  ASSERT_FALSE(req.ok());
  EXPECT_EQ(CniCode(req.status()), kInvalidEnv) << req.status();
  EXPECT_THAT(std::string(req.status().message()), HasSubstr(GetParam().message));
}

Env With(Env env, const std::string& k, const std::string& v) {
  env[k] = v;
  return env;
}
Env Without(Env env, const std::string& k) {
  env.erase(k);
  return env;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadEnvTest,
    ::testing::Values(
        BadEnvCase{"MissingCommand", Without(AddEnv(), "CNI_COMMAND"), "CNI_COMMAND is not set"},
        BadEnvCase{"EmptyCommand", With(AddEnv(), "CNI_COMMAND", ""), "CNI_COMMAND is not set"},
        BadEnvCase{"UnknownCommand", With(AddEnv(), "CNI_COMMAND", "UPDATE"),
                   "CNI_COMMAND 'UPDATE' is unknown"},
        BadEnvCase{"LowercaseCommand", With(AddEnv(), "CNI_COMMAND", "add"), "is unknown"},
        BadEnvCase{"MissingContainerId", Without(AddEnv(), "CNI_CONTAINERID"),
                   "CNI_CONTAINERID is required for ADD"},
        BadEnvCase{"ContainerIdWithSlash", With(AddEnv(), "CNI_CONTAINERID", "../etc"),
                   "invalid characters"},
        BadEnvCase{"ContainerIdStartsWithDash", With(AddEnv(), "CNI_CONTAINERID", "-abc"),
                   "invalid characters"},
        BadEnvCase{"ContainerIdWithSpace", With(AddEnv(), "CNI_CONTAINERID", "a b"),
                   "invalid characters"},
        BadEnvCase{"ContainerIdTooLong",
                   With(AddEnv(), "CNI_CONTAINERID", std::string(kMaxContainerIdLength + 1, 'a')),
                   "CNI_CONTAINERID is 1025 bytes long (at most 1024)"},
        BadEnvCase{"ContainerIdDotDot", With(AddEnv(), "CNI_CONTAINERID", ".."),
                   "invalid characters"},
        BadEnvCase{"MissingNetnsOnAdd", Without(AddEnv(), "CNI_NETNS"),
                   "CNI_NETNS is required for ADD"},
        BadEnvCase{"MissingNetnsOnCheck",
                   Without(With(AddEnv(), "CNI_COMMAND", "CHECK"), "CNI_NETNS"),
                   "CNI_NETNS is required for CHECK"},
        BadEnvCase{"MissingIfname", Without(AddEnv(), "CNI_IFNAME"),
                   "CNI_IFNAME is required for ADD"},
        BadEnvCase{"MissingIfnameOnDel",
                   Without(With(AddEnv(), "CNI_COMMAND", "DEL"), "CNI_IFNAME"),
                   "CNI_IFNAME is required for DEL"},
        BadEnvCase{"IfnameTooLong", With(AddEnv(), "CNI_IFNAME", "abcdefghijklmnop"),
                   "longer than 15 bytes"},
        BadEnvCase{"IfnameWithSlash", With(AddEnv(), "CNI_IFNAME", "net/1"), "contains '/'"},
        BadEnvCase{"IfnameWithColon", With(AddEnv(), "CNI_IFNAME", "net:1"), "contains ':'"},
        BadEnvCase{"IfnameWithPercentD", With(AddEnv(), "CNI_IFNAME", "eth0%d"),
                   "CNI_IFNAME 'eth0%d' contains '%'"},
        BadEnvCase{"IfnameNotUtf8", With(AddEnv(), "CNI_IFNAME", "net\xff"),
                   "CNI_IFNAME 'net\\xff' contains byte 0xff at offset 3"},
        BadEnvCase{"IfnameValidUtf8ButNotAscii", With(AddEnv(), "CNI_IFNAME", "n\xc3\xa9t1"),
                   "contains byte 0xc3 at offset 1: only printable ASCII"},
        BadEnvCase{"IfnameLatin1NoBreakSpace",
                   With(AddEnv(), "CNI_IFNAME",
                        "net\xa0"
                        "1"),
                   "contains byte 0xa0 at offset 3"},
        BadEnvCase{"IfnameControlCharacter", With(AddEnv(), "CNI_IFNAME", "net\x1b[1"),
                   "'net\\x1b[1' contains byte 0x1b at offset 3"},
        BadEnvCase{"IfnameDelCharacter", With(AddEnv(), "CNI_IFNAME", "net\x7f"),
                   "contains byte 0x7f at offset 3"},
        BadEnvCase{"IfnameWithTab", With(AddEnv(), "CNI_IFNAME", "net\t1"),
                   "contains whitespace (byte 0x09 at offset 3)"},
        BadEnvCase{"IfnameWithSpace", With(AddEnv(), "CNI_IFNAME", "net 1"), "whitespace"},
        BadEnvCase{"IfnameDot", With(AddEnv(), "CNI_IFNAME", "."), "not a valid name"},
        BadEnvCase{"IfnameDotDot", With(AddEnv(), "CNI_IFNAME", ".."), "not a valid name"},
        BadEnvCase{"MissingPath", Without(AddEnv(), "CNI_PATH"), "CNI_PATH is required for ADD"},
        BadEnvCase{"GcWithoutPath", Env{{"CNI_COMMAND", "GC"}}, "CNI_PATH is required for GC"},
        BadEnvCase{"StatusWithoutPath", Env{{"CNI_COMMAND", "STATUS"}},
                   "CNI_PATH is required for STATUS"},
        BadEnvCase{"ArgsWithoutEquals", With(AddEnv(), "CNI_ARGS", "IgnoreUnknown"),
                   "CNI_ARGS: pair 'IgnoreUnknown' has no '='"},
        BadEnvCase{"ArgsEmptyKey", With(AddEnv(), "CNI_ARGS", "=1"), "empty key"},
        BadEnvCase{"ArgsDuplicateKey", With(AddEnv(), "CNI_ARGS", "IP=1;IP=2"),
                   "key 'IP' is given twice"}),
    [](const ::testing::TestParamInfo<BadEnvCase>& info) { return info.param.name; });

TEST(ValidateIfNameTest, AcceptsFifteenBytes) {
  EXPECT_THAT(ValidateIfName("abcdefghijklmno"), IsOk());
  EXPECT_THAT(ValidateIfName("net1"), IsOk());
}

TEST(ValidateIfNameTest, AcceptsEveryPrintableAsciiCharacterTheKernelAccepts) {
  for (char c = 0x21; c < 0x7f; ++c) {
    if (c == '/' || c == ':' || c == '%') continue;
    EXPECT_THAT(ValidateIfName(std::string("n") + c), IsOk()) << c;
  }
}

TEST(EscapeForMessageTest, KeepsPrintableAsciiAndEscapesEveryOtherByte) {
  EXPECT_EQ(EscapeForMessage("net1"), "net1");
  EXPECT_EQ(EscapeForMessage(std::string("a\0b\xff\\", 5)), "a\\x00b\\xff\\x5c");
}

TEST(ValidateContainerIdTest, AcceptsSpecCharacters) {
  EXPECT_THAT(ValidateContainerId("a1_b.c-d"), IsOk());
  EXPECT_THAT(ValidateContainerId("0"), IsOk());
}

TEST(ValidateContainerIdTest, AcceptsTheLongestAllowedId) {
  EXPECT_THAT(ValidateContainerId(std::string(kMaxContainerIdLength, 'f')), IsOk());
}

TEST(ParseCniArgsTest, ParsesPairs) {
  ASSERT_OK_AND_ASSIGN(auto args, ParseCniArgs("IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=p"));
  EXPECT_EQ(args.size(), 3u);
  EXPECT_EQ(args["IP"], "10.0.0.5");
  EXPECT_EQ(args["IgnoreUnknown"], "1");
}

TEST(ParseCniArgsTest, EmptyAndSeparatorOnlyGiveEmptyMap) {
  ASSERT_OK_AND_ASSIGN(auto a, ParseCniArgs(""));
  EXPECT_TRUE(a.empty());
  ASSERT_OK_AND_ASSIGN(auto b, ParseCniArgs(";;"));
  EXPECT_TRUE(b.empty());
}

TEST(ParseCniArgsTest, ValueMayBeEmptyOrContainEquals) {
  ASSERT_OK_AND_ASSIGN(auto args, ParseCniArgs("A=;B=x=y;"));
  EXPECT_EQ(args["A"], "");
  EXPECT_EQ(args["B"], "x=y");
}

TEST(CniRequestTest, PathDirsSplitsAndDropsEmpty) {
  CniRequest req;
  req.path = "/opt/cni/bin::/usr/lib/cni:";
  EXPECT_THAT(req.PathDirs(), ElementsAre("/opt/cni/bin", "/usr/lib/cni"));
}

TEST(EnvironToMapTest, SplitsOnFirstEquals) {
  char a[] = "CNI_ARGS=A=1;B=2";
  char b[] = "NOEQUALS";
  char c[] = "EMPTY=";
  char* envp[] = {a, b, c, nullptr};
  Env env = EnvironToMap(envp);
  EXPECT_EQ(env.size(), 2u);
  EXPECT_EQ(env["CNI_ARGS"], "A=1;B=2");
  EXPECT_EQ(env["EMPTY"], "");
}

}  // namespace
}  // namespace rdmashare::cni
