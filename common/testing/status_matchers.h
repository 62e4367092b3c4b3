// GoogleTest matchers for absl::Status and absl::StatusOr (abseil 20220623 has none).
//
//   EXPECT_THAT(Foo(), IsOk());
//   EXPECT_THAT(Foo(), StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(Foo(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("mlx5_0")));
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace rdmashare::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& st = GetStatus(arg);
  if (!st.ok()) *result_listener << "status is " << st.ToString();
  return st.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status is " << st.ToString();
  return st.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status is " << st.ToString();
  return st.code() == code && ::testing::Matches(message_matcher)(std::string(st.message()));
}

// ASSERT that a StatusOr is ok and move its value into `lhs`.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(RS_TEST_CONCAT_(rs_test_so_, __LINE__), lhs, rexpr)
#define RS_TEST_CONCAT_INNER_(a, b) a##b
#define RS_TEST_CONCAT_(a, b) RS_TEST_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL_(so, lhs, rexpr)                \
  auto so = (rexpr);                                              \
  ASSERT_TRUE(so.ok()) << "status is " << so.status().ToString(); \
  lhs = std::move(so).value()

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::rdmashare::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::rdmashare::testing::IsOk())

}  // namespace rdmashare::testing
