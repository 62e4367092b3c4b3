// Status propagation macros for absl::Status / absl::StatusOr.
//
// Header-only; no state. Debian 12 ships abseil 20220623, which has no status macros of its own.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/absl_format.h"

#define RS_STATUS_CONCAT_INNER_(a, b) a##b
#define RS_STATUS_CONCAT_(a, b) RS_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function when not ok.
#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    ::absl::Status rs_status_ = (expr);      \
    if (!rs_status_.ok()) return rs_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, else moves the value
// into `lhs` (which may be a declaration such as `auto x`).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(RS_STATUS_CONCAT_(rs_statusor_, __LINE__), lhs, rexpr)

// NOLINTBEGIN(bugprone-macro-parentheses): `statusor` is a name being declared and `lhs` may be a
// declaration; neither can be parenthesized.
#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                           \
  if (!statusor.ok()) return statusor.status();      \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)
