#include "common/json.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

std::string Nested(size_t depth, const std::string& open = "[", const std::string& close = "]") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(ParseJsonBoundedTest, DepthAtTheCapIsAcceptedOneMoreIsNot) {
  JsonLimits limits;
  limits.max_depth = 8;
  EXPECT_TRUE(ParseJsonBounded(Nested(8), "doc", limits).ok());
  EXPECT_THAT(ParseJsonBounded(Nested(9), "doc", limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("doc: JSON nested deeper than 8 levels")));
  std::string objects;
  for (int i = 0; i < 9; ++i) objects += R"({"a":)";
  objects += "1" + std::string(9, '}');
  EXPECT_THAT(ParseJsonBounded(objects, "doc", limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nested deeper than 8")));
}

TEST(ParseJsonBoundedTest, DeepDocumentOfAMegabyteIsRefusedWithoutBuildingIt) {
  // 500k levels: building and copying such a value recursively crashes; the SAX pass stops at
  // level 65.
  std::string deep = R"({"cniVersion":"1.0.0","runtimeConfig":)" + Nested(500000) + "}";
  EXPECT_THAT(ParseJsonBounded(deep, "stdin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("stdin: JSON nested deeper than 64 levels")));
}

TEST(ParseJsonBoundedTest, BracketsInsideStringsDoNotCount) {
  JsonLimits limits;
  limits.max_depth = 2;
  ASSERT_OK_AND_ASSIGN(nlohmann::json j,
                       ParseJsonBounded(R"({"a": ["[[[[{{{{", "]]]]"]})", "doc", limits));
  EXPECT_EQ(j["a"][0], "[[[[{{{{");
}

TEST(ParseJsonBoundedTest, SizeCapIsChecked) {
  JsonLimits limits;
  limits.max_bytes = 10;
  EXPECT_TRUE(ParseJsonBounded(R"({"a":12})", "f", limits).ok());
  EXPECT_THAT(ParseJsonBounded(R"({"a":123456})", "conf.json", limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("conf.json: 12 bytes, more than the 10 allowed")));
}

TEST(ParseJsonBoundedTest, MalformedInputGivesTheParsersMessage) {
  EXPECT_THAT(ParseJsonBounded(R"({"a": tru})", "stdin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("stdin: not valid JSON: parse error at line 1, column")));
  EXPECT_THAT(ParseJsonBounded("", "stdin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stdin: not valid JSON")));
  EXPECT_THAT(ParseJsonBounded(R"({"a":1} trailing)", "stdin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
}

TEST(ParseJsonBoundedTest, ScalarsAndOrdinaryDocumentsParse) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json j, ParseJsonBounded(R"({"x":[1,2,{"y":null}]})", "d"));
  EXPECT_EQ(j["x"][2]["y"], nullptr);
  ASSERT_OK_AND_ASSIGN(nlohmann::json s, ParseJsonBounded(R"("text")", "d"));
  EXPECT_EQ(s, "text");
}

}  // namespace
}  // namespace rdmashare
