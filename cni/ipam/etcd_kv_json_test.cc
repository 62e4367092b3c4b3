// The etcd v3 gateway JSON: decoding of untrusted range answers and prefix range ends.
#include "cni/ipam/etcd_kv_json.h"

#include <string>

#include "cni/protocol/error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using ::testing::SizeIs;

// Range answers come from the network: every malformed one is code 5 naming the problem.
TEST(ParseEtcdRangeResponseTest, MalformedAnswersAreCode5NamingTheProblem) {
  struct Case {
    std::string body, message;
  };
  const Case cases[] = {
      {"", "etcd: range answer is not a JSON object"},
      {"[1,2]", "etcd: range answer is not a JSON object"},
      {R"({"kvs": {"key": "YQ=="}})", "etcd: range answer has a non-array kvs"},
      {R"({"kvs": [7]})", "etcd: answer has a non-object kv"},
      {R"({"kvs": [{"key": "!!!", "value": "YQ=="}]})", "etcd: answer has a malformed base64 key"},
      {R"({"kvs": [{"key": "YQ==", "value": 5}]})", "etcd: answer has a malformed base64 value"},
  };
  for (const Case& c : cases) {
    auto kvs = ParseEtcdRangeResponse(c.body);
    ASSERT_FALSE(kvs.ok()) << c.body;
    EXPECT_EQ(CniCode(kvs.status()), kIoFailure) << c.body;
    EXPECT_EQ(kvs.status().message(), c.message) << c.body;
  }
}

TEST(ParseEtcdRangeResponseTest, DecodesKeysValuesAndRevisions) {
  auto kvs = ParseEtcdRangeResponse(
      R"({"header": {"revision": "9"}, "kvs": [{"key": "YQ==", "value": "Yg==",)"
      R"( "create_revision": "5", "mod_revision": "7"}]})");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_THAT(*kvs, SizeIs(1));
  EXPECT_EQ((*kvs)[0].key, "a");
  EXPECT_EQ((*kvs)[0].value, "b");
  EXPECT_EQ((*kvs)[0].create_revision, 5);
  EXPECT_EQ((*kvs)[0].mod_revision, 7);
  auto none = ParseEtcdRangeResponse(R"({"header": {"revision": "9"}})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(PrefixRangeEndTest, IncrementsLastByte) {
  EXPECT_EQ(PrefixRangeEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
}

}  // namespace
}  // namespace rdmashare::cni::ipam
