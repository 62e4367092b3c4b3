#include "cni/macvlan/config.h"

#include <cctype>

#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "fmt/format.h"

namespace rdmashare::cni::macvlan {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& name, const std::string& field, const std::string& why) {
  return CniError(kInvalidNetworkConfig,
                  fmt::format("network {}: field \"{}\" {}", name, field, why));
}

absl::Status GetString(const json& j, const std::string& key, const std::string& net,
                       std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return Bad(net, key, "must be a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetBool(const json& j, const std::string& key, const std::string& net,
                     std::optional<bool>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return Bad(net, key, "must be true or false");
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status GetInt(const json& j, const std::string& key, const std::string& net, int64_t min,
                    int64_t max, std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return Bad(net, key, "must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < min || v > max)
    return Bad(net, key, fmt::format("must be in [{}, {}], got {}", min, max, v));
  *out = v;
  return absl::OkStatus();
}

bool IsMac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2 ? s[i] != ':' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  // A unicast address: the multicast bit of the first octet must be clear.
  return (std::strtoul(s.substr(0, 2).c_str(), nullptr, 16) & 1) == 0;
}

}  // namespace

absl::StatusOr<MacvlanConfig> ParseMacvlanConfig(const NetConf& conf,
                                                 const std::map<std::string, std::string>& cni_args,
                                                 const std::string& default_sysfs_root) {
  MacvlanConfig c;
  const json& raw = conf.raw;
  const std::string& net = conf.name;
  if (auto s = GetString(raw, "master", net, &c.master); !s.ok()) return s;
  // Empty = the default-route interface; anything else must be a name a link can have.
  if (std::string problem = IfNameProblem(c.master); !c.master.empty() && !problem.empty()) {
    return Bad(net, "master",
               fmt::format("\"{}\" is not a valid interface name: it {}",
                           EscapeForMessage(c.master), problem));
  }
  if (auto s = GetString(raw, "mode", net, &c.mode); !s.ok()) return s;
  if (c.mode.empty()) c.mode = "bridge";
  if (c.mode != "bridge" && c.mode != "private" && c.mode != "vepa" && c.mode != "passthru") {
    return Bad(net, "mode",
               fmt::format("\"{}\" is not one of bridge, private, vepa, passthru", c.mode));
  }
  std::optional<int64_t> v;
  if (auto s = GetInt(raw, "mtu", net, 0, 65535, &v); !s.ok()) return s;
  if (v && *v != 0 && *v < 68) return Bad(net, "mtu", fmt::format("{} is below 68", *v));
  c.mtu = static_cast<int>(v.value_or(0));

  std::string mac_conf, mac_rc;
  if (auto s = GetString(raw, "mac", net, &mac_conf); !s.ok()) return s;
  if (conf.runtime_config.is_object()) {
    if (auto s = GetString(conf.runtime_config, "mac", net, &mac_rc); !s.ok()) return s;
  }
  auto arg = cni_args.find("MAC");
  if (!mac_rc.empty()) {
    c.mac = mac_rc;
  } else if (arg != cni_args.end() && !arg->second.empty()) {
    if (!IsMac(arg->second)) {
      return CniError(kInvalidEnv,
                      fmt::format("CNI_ARGS MAC=\"{}\" is not a unicast MAC address", arg->second));
    }
    c.mac = arg->second;
  } else {
    c.mac = mac_conf;
  }
  if (!c.mac.empty() && !IsMac(c.mac)) {
    return Bad(net, "mac", fmt::format("\"{}\" is not a unicast MAC address", c.mac));
  }

  std::optional<bool> b;
  if (auto s = GetBool(raw, "policyRouting", net, &b); !s.ok()) return s;
  c.policy_routing = b.value_or(true);
  v.reset();
  if (auto s = GetInt(raw, "routeTable", net, 1, 0xffffffffLL, &v); !s.ok()) return s;
  if (v && (*v == 253 || *v == 254 || *v == 255)) {
    return Bad(net, "routeTable", fmt::format("{} is a reserved table (default/main/local)", *v));
  }
  if (v) c.route_table = static_cast<uint32_t>(*v);
  v.reset();
  if (auto s = GetInt(raw, "rulePriority", net, 1, 32765, &v); !s.ok()) return s;
  if (v) c.rule_priority = static_cast<uint32_t>(*v);
  if (auto s = GetBool(raw, "detectGateway", net, &c.detect_gateway); !s.ok()) return s;
  if (auto s = GetBool(raw, "detectIPConflict", net, &c.detect_ip_conflict); !s.ok()) return s;
  v.reset();
  if (auto s = GetInt(raw, "probeCount", net, 1, 10, &v); !s.ok()) return s;
  if (v) c.probe_count = static_cast<int>(*v);
  v.reset();
  if (auto s = GetInt(raw, "probeIntervalMs", net, 10, 1000, &v); !s.ok()) return s;
  if (v) c.probe_interval_ms = static_cast<int>(*v);
  v.reset();
  if (auto s = GetInt(raw, "gatewayTimeoutMs", net, 10, 10000, &v); !s.ok()) return s;
  if (v) c.gateway_timeout_ms = static_cast<int>(*v);
  b.reset();
  if (auto s = GetBool(raw, "deferLinkDelete", net, &b); !s.ok()) return s;
  c.defer_link_delete = b.value_or(true);
  b.reset();
  if (auto s = GetBool(raw, "allowHostNetns", net, &b); !s.ok()) return s;
  c.allow_host_netns = b.value_or(false);
  if (auto s = GetString(raw, "sysfsRoot", net, &c.sysfs_root); !s.ok()) return s;
  if (c.sysfs_root.empty()) c.sysfs_root = default_sysfs_root;
  if (auto s = GetString(raw, "logFile", net, &c.log_file); !s.ok()) return s;
  if (auto s = GetString(raw, "logLevel", net, &c.log_level); !s.ok()) return s;
  if (conf.ipam.is_object()) {
    auto it = conf.ipam.find("type");
    if (it == conf.ipam.end() || !it->is_string() || it->get<std::string>().empty()) {
      return Bad(net, "ipam.type", "must be a non-empty string");
    }
    c.ipam_type = it->get<std::string>();
  } else if (!conf.ipam.is_null()) {
    return Bad(net, "ipam", "must be an object");
  }
  return c;
}

namespace {

std::string HashedLinkName(const char* prefix, const std::string& container_id,
                           const std::string& ifname) {
  // FNV-1a 64-bit: stable across builds and hosts (std::hash is not).
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const std::string& s) {
    for (unsigned char ch : s) {
      h ^= ch;
      h *= 1099511628211ULL;
    }
  };
  mix(container_id);
  mix(std::string(1, '\0'));
  mix(ifname);
  return fmt::format("{}{:012x}", prefix, h & 0xffffffffffffULL);
}

}  // namespace

std::string TempLinkName(const std::string& container_id, const std::string& ifname) {
  return HashedLinkName("rsm", container_id, ifname);
}

std::string DeadLinkName(const std::string& container_id, const std::string& ifname) {
  return HashedLinkName("rsx", container_id, ifname);
}

}  // namespace rdmashare::cni::macvlan
