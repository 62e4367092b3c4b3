#include "deviceplugin/resource_name.h"

#include <cctype>

#include "fmt/format.h"

namespace rdmashare::deviceplugin::config_internal {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

absl::Status ValidateResourceName(const std::string& name, const EntryContext& ctx) {
  if (name.empty()) return ctx.Error("resourceName", "empty (required)");
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_') {
      return ctx.Error("resourceName",
                       fmt::format("{} has {} at offset {}; only letters, digits and '_' are "
                                   "allowed (Go plugin rule)",
                                   Quote(name), Quote(std::string(1, c)), i));
    }
  }
  if (name.size() > kMaxResourceNameLength) {
    return ctx.Error("resourceName", fmt::format("{} characters long; kubelet allows at most {}",
                                                 name.size(), kMaxResourceNameLength));
  }
  if (!IsAlnum(name.front()) || !IsAlnum(name.back())) {
    return ctx.Error("resourceName", fmt::format("{} must start and end with a letter or digit "
                                                 "(kubelet qualified-name rule)",
                                                 Quote(name)));
  }
  return absl::OkStatus();
}

std::string Dns1123SubdomainProblem(std::string_view prefix) {
  size_t label_start = 0;
  for (size_t i = 0; i <= prefix.size(); ++i) {
    if (i < prefix.size() && prefix[i] != '.') {
      char c = prefix[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        if (c >= 'A' && c <= 'Z') return fmt::format("has upper-case '{}' at offset {}", c, i);
        return fmt::format("has {} at offset {}", Quote(std::string(1, c)), i);
      }
      continue;
    }
    std::string_view label = prefix.substr(label_start, i - label_start);
    if (label.empty()) return fmt::format("has an empty label at offset {}", label_start);
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("has label {} starting or ending with '-'", Quote(label));
    }
    label_start = i + 1;
  }
  return "";
}

absl::Status ValidateResourcePrefix(const std::string& prefix, const std::string& name,
                                    const EntryContext& ctx) {
  std::string full = fmt::format("{}/{}", prefix, name);
  constexpr std::string_view kReserved = "kubernetes.io";
  if (prefix.size() >= kReserved.size() &&
      prefix.compare(prefix.size() - kReserved.size(), kReserved.size(), kReserved) == 0) {
    return ctx.Error("resourcePrefix",
                     fmt::format("{} is in the reserved kubernetes.io namespace; kubelet refuses "
                                 "to register {}",
                                 Quote(prefix), Quote(full)));
  }
  if (prefix.rfind("requests.", 0) == 0) {
    return ctx.Error("resourcePrefix", fmt::format("{} starts with the reserved quota prefix "
                                                   "\"requests.\"; kubelet refuses to register {}",
                                                   Quote(prefix), Quote(full)));
  }
  if (prefix.size() > kMaxResourcePrefixLength) {
    return ctx.Error("resourcePrefix", fmt::format("{} characters long; kubelet allows at most {}",
                                                   prefix.size(), kMaxResourcePrefixLength));
  }
  std::string problem = Dns1123SubdomainProblem(prefix);
  if (!problem.empty()) {
    return ctx.Error("resourcePrefix",
                     fmt::format("{} is not a lower-case DNS subdomain ({}); kubelet refuses to "
                                 "register {} (use e.g. \"example.com\")",
                                 Quote(prefix), problem, Quote(full)));
  }
  return absl::OkStatus();
}

}  // namespace rdmashare::deviceplugin::config_internal
