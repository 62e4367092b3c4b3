#include "cni/protocol/error.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {
namespace {

using ::testing::HasSubstr;

TEST(CniErrorTest, CarriesCodeMessageAndDetails) {
  absl::Status st = CniError(kPoolExhausted, "pool empty", "10.0.0.0/24");
  EXPECT_EQ(CniCode(st), 100);
  EXPECT_EQ(st.message(), "pool empty");
  EXPECT_EQ(CniDetails(st), "10.0.0.0/24");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
}

TEST(CniErrorTest, DetailsEmptyWhenNotGiven) {
  EXPECT_EQ(CniDetails(CniError(kInvalidEnv, "x")), "");
  EXPECT_EQ(CniDetails(absl::InternalError("y")), "");
}

TEST(CniErrorTest, AbslCodeFollowsCniCode) {
  struct Case {
    int cni;
    absl::StatusCode absl;
  };
  for (const Case& c : {Case{kIncompatibleVersion, absl::StatusCode::kUnimplemented},
                        Case{kUnknownContainer, absl::StatusCode::kNotFound},
                        Case{kInvalidEnv, absl::StatusCode::kInvalidArgument},
                        Case{kDecodeFailure, absl::StatusCode::kInvalidArgument},
                        Case{kInvalidNetworkConfig, absl::StatusCode::kInvalidArgument},
                        Case{kTryAgainLater, absl::StatusCode::kUnavailable},
                        Case{kPluginNotAvailable, absl::StatusCode::kUnavailable},
                        Case{kMasterMissing, absl::StatusCode::kNotFound},
                        Case{kAddressInUse, absl::StatusCode::kAlreadyExists},
                        Case{kStoreCorrupt, absl::StatusCode::kDataLoss}}) {
    absl::Status st = CniError(c.cni, "m");
    EXPECT_EQ(st.code(), c.absl) << "cni code " << c.cni;
    EXPECT_EQ(CniCode(st), c.cni);
  }
}

TEST(CniCodeTest, DerivedFromAbslCodeWithoutPayload) {
  struct Case {
    absl::Status status;
    int code;
  };
  const Case cases[] = {
      {absl::OkStatus(), 0},
      {absl::InvalidArgumentError("a"), 7},
      {absl::OutOfRangeError("a"), 7},
      {absl::NotFoundError("a"), 3},
      {absl::UnavailableError("a"), 11},
      {absl::DeadlineExceededError("a"), 11},
      {absl::AbortedError("a"), 11},
      {absl::ResourceExhaustedError("a"), 100},
      {absl::UnimplementedError("a"), 2},
      {absl::FailedPreconditionError("a"), 5},
      {absl::InternalError("a"), 5},
      {absl::PermissionDeniedError("a"), 5},
      {absl::UnknownError("a"), 5},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CniCode(c.status), c.code) << c.status.ToString();
    EXPECT_NE(CniCode(c.status), 999);
  }
}

TEST(AnnotateCniTest, PrependsContextAndKeepsCodeAndDetails) {
  absl::Status st = AnnotateCni(CniError(kMasterMissing, "no link", "enp11s0f0np0"), "ADD net1");
  EXPECT_EQ(CniCode(st), kMasterMissing);
  EXPECT_EQ(st.message(), "ADD net1: no link");
  EXPECT_EQ(CniDetails(st), "enp11s0f0np0");
  EXPECT_EQ(CniCode(AnnotateCni(absl::NotFoundError("gone"), "DEL")), kUnknownContainer);
  EXPECT_OK(AnnotateCni(absl::OkStatus(), "x"));
}

TEST(EncodeErrorTest, ProducesSpecObjectWithDetailsAlwaysPresent) {
  EXPECT_EQ(EncodeError(CniError(kInvalidNetworkConfig, "bad subnet"), "1.0.0"),
            R"({"cniVersion":"1.0.0","code":7,"msg":"bad subnet","details":""})");
  EXPECT_EQ(EncodeError(CniError(kTryAgainLater, "conflict", "net1 10.0.0.5"), "0.4.0"),
            R"({"cniVersion":"0.4.0","code":11,"msg":"conflict","details":"net1 10.0.0.5"})");
}

TEST(EncodeErrorTest, PlainStatusGetsDerivedCode) {
  auto doc = nlohmann::json::parse(EncodeError(absl::NotFoundError("netns gone"), "1.1.0"));
  EXPECT_EQ(doc["code"], 3);
  EXPECT_EQ(doc["msg"], "netns gone");
  EXPECT_EQ(doc["details"], "");
}

TEST(EncodeErrorTest, OkStatusNeverEncodesCodeZero) {
  auto doc = nlohmann::json::parse(EncodeError(absl::OkStatus(), "1.1.0"));
  EXPECT_EQ(doc["code"], 5);
  EXPECT_THAT(doc["msg"].get<std::string>(), HasSubstr("OK status"));
}

TEST(EncodeErrorTest, InvalidUtf8InMessageIsReplacedNotThrown) {
  std::string out = EncodeError(CniError(kInvalidEnv, "bad \xff name"), "1.0.0");
  auto doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["code"], 4);
}

}  // namespace
}  // namespace rdmashare::cni
