#include "cni/protocol/error.h"

#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {
namespace {

constexpr char kCodeUrl[] = "type.rdmashare.io/cni.code";
constexpr char kDetailsUrl[] = "type.rdmashare.io/cni.details";

absl::StatusCode AbslCodeFor(int cni_code) {
  switch (cni_code) {
    case kIncompatibleVersion:
    case kUnsupportedField:
      return absl::StatusCode::kUnimplemented;
    case kUnknownContainer:
      return absl::StatusCode::kNotFound;
    case kInvalidEnv:
    case kDecodeFailure:
    case kInvalidNetworkConfig:
      return absl::StatusCode::kInvalidArgument;
    case kTryAgainLater:
    case kPluginNotAvailable:
    case kPluginNotAvailableLimitedConn:
      return absl::StatusCode::kUnavailable;
    case kPoolExhausted:
      return absl::StatusCode::kResourceExhausted;
    case kMasterMissing:
      return absl::StatusCode::kNotFound;
    case kIfnameInUse:
    case kAddressInUse:
      return absl::StatusCode::kAlreadyExists;
    case kMasterNotRoce:
      return absl::StatusCode::kFailedPrecondition;
    case kStoreCorrupt:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::optional<int> PayloadCode(const absl::Status& status) {
  auto cord = status.GetPayload(kCodeUrl);
  if (!cord.has_value()) return std::nullopt;
  std::string text(*cord);
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || v <= 0) return std::nullopt;
  return static_cast<int>(v);
}

}  // namespace

absl::Status CniError(int code, const std::string& msg, const std::string& details) {
  absl::Status status(AbslCodeFor(code), msg);
  status.SetPayload(kCodeUrl, absl::Cord(std::to_string(code)));
  if (!details.empty()) status.SetPayload(kDetailsUrl, absl::Cord(details));
  return status;
}

int CniCode(const absl::Status& status) {
  if (status.ok()) return 0;
  if (std::optional<int> code = PayloadCode(status)) return *code;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kInvalidNetworkConfig;
    case absl::StatusCode::kNotFound:
      return kUnknownContainer;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return kTryAgainLater;
    case absl::StatusCode::kResourceExhausted:
      return kPoolExhausted;
    case absl::StatusCode::kUnimplemented:
      return kUnsupportedField;
    default:
      return kIoFailure;
  }
}

std::string CniDetails(const absl::Status& status) {
  auto cord = status.GetPayload(kDetailsUrl);
  return cord.has_value() ? std::string(*cord) : std::string();
}

absl::Status AnnotateCni(const absl::Status& status, const std::string& context) {
  if (status.ok()) return status;
  return CniError(CniCode(status), context + ": " + std::string(status.message()),
                  CniDetails(status));
}

std::string EncodeError(const absl::Status& status, const std::string& cni_version) {
  nlohmann::ordered_json out;
  out["cniVersion"] = cni_version;
  if (status.ok()) {
    out["code"] = kIoFailure;
    out["msg"] = "internal error: OK status reported as error";
    out["details"] = "";
  } else {
    out["code"] = CniCode(status);
    out["msg"] = std::string(status.message());
    out["details"] = CniDetails(status);
  }
  // Replace invalid UTF-8 (messages may quote untrusted input) instead of throwing.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace rdmashare::cni
