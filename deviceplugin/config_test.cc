#include "deviceplugin/config.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseConfigTest, RejectsInvalidJson) {
  EXPECT_THAT(ParseConfig("{", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
