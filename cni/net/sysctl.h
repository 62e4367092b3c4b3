// Per-interface network sysctls (/proc/sys/net/ipv{4,6}/conf/<ifname>/<key>).
//
// /proc/sys/net resolves to the network namespace of the thread that opens the file, so call these
// inside the pod's namespace (RunInNetNs). Stateless, thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdmashare::cni::net {

// Writes `value` to <proc_root>/sys/net/<ipv4|ipv6>/conf/<ifname>/<key>. NotFound when the
// interface or key does not exist; InvalidArgument for names containing '/' or "..".
absl::Status SetInterfaceSysctl(const std::string& proc_root, bool ipv6, const std::string& ifname,
                                const std::string& key, const std::string& value);

// Reads the same file (trimmed).
absl::StatusOr<std::string> GetInterfaceSysctl(const std::string& proc_root, bool ipv6,
                                               const std::string& ifname, const std::string& key);

}  // namespace rdmashare::cni::net
