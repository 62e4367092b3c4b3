// The rules a device plugin resource name must pass: the Go plugin's (resourceName matches
// ^[a-zA-Z0-9_]+$, it names the socket) and the kubelet's (the device manager's Register refuses
// a resource unless v1helper.IsExtendedResourceName holds: apimachinery IsQualifiedName for the
// name part, IsDNS1123Subdomain for "requests." + prefix, nothing under kubernetes.io). See the
// rule list at the top of config.cc for the sources.
//
// Internal to config parsing (rdmashare::deviceplugin::config_internal). Pure functions:
// thread-safe, no state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "deviceplugin/config_fields.h"

namespace rdmashare::deviceplugin::config_internal {

// Longest resourceName: the name part of a qualified name.
inline constexpr size_t kMaxResourceNameLength = 63;
// Longest resourcePrefix: IsDNS1123Subdomain allows 253 characters for "requests." + prefix.
inline constexpr size_t kMaxResourcePrefixLength = 253 - 9;

// OK when `name` is a valid resourceName: letters, digits and '_', starting and ending with a
// letter or digit, at most kMaxResourceNameLength characters. InvalidArgument naming the entry
// `ctx`, the field and the rule otherwise.
absl::Status ValidateResourceName(const std::string& name, const EntryContext& ctx);

// Why `prefix` is not a DNS-1123 subdomain (lower-case alphanumeric labels with inner '-',
// joined by '.'), or "" when it is one.
std::string Dns1123SubdomainProblem(std::string_view prefix);

// OK when the kubelet would register "<prefix>/<name>": the prefix is not in the reserved
// kubernetes.io namespace, does not start with "requests.", is at most kMaxResourcePrefixLength
// characters and is a DNS-1123 subdomain. InvalidArgument naming the entry `ctx`, the full
// resource name and the rule otherwise.
absl::Status ValidateResourcePrefix(const std::string& prefix, const std::string& name,
                                    const EntryContext& ctx);

}  // namespace rdmashare::deviceplugin::config_internal
