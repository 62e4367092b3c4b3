#include "cni/protocol/result.h"

#include <cstdint>

#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

absl::Status Bad(const std::string& what) {
  return CniError(kInvalidNetworkConfig, "result: " + what);
}

absl::Status GetString(const json& obj, const char* key, bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return required ? Bad(fmt::format("\"{}\" is missing", key)) : absl::OkStatus();
  }
  if (!it->is_string()) return Bad(fmt::format("\"{}\" must be a string", key));
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// Non-negative integers only (MTUs, table ids, priorities, scopes): a negative value or one
// beyond `max` would otherwise be truncated into some other value or silently dropped when the
// result is encoded again.
absl::Status GetInt(const json& obj, const char* key, int* out, int64_t max = INT32_MAX) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return Bad(fmt::format("\"{}\" must be an integer", key));
  bool in_range = it->is_number_unsigned() ? it->get<uint64_t>() <= static_cast<uint64_t>(max)
                                           : it->get<int64_t>() >= 0 && it->get<int64_t>() <= max;
  if (!in_range) {
    return Bad(fmt::format("\"{}\" must be an integer from 0 to {}, got {}", key, max, it->dump()));
  }
  *out = static_cast<int>(it->get<int64_t>());
  return absl::OkStatus();
}

absl::Status GetStrings(const json& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return Bad(fmt::format("\"{}\" must be an array of strings", key));
  for (const json& s : *it) {
    if (!s.is_string()) return Bad(fmt::format("\"{}\" must be an array of strings", key));
    out->push_back(s.get<std::string>());
  }
  return absl::OkStatus();
}

const json* GetArray(const json& obj, const char* key, absl::Status* status) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  if (!it->is_array()) {
    *status = Bad(fmt::format("\"{}\" must be an array", key));
    return nullptr;
  }
  return &*it;
}

}  // namespace

ordered_json ResultToJson(const Result& result, const std::string& cni_version) {
  const bool v11 = VersionAtLeast(cni_version, "1.1.0");
  const bool with_ip_version = !VersionAtLeast(cni_version, "1.0.0");
  ordered_json out;
  out["cniVersion"] = cni_version;
  if (!result.interfaces.empty()) {
    ordered_json list = ordered_json::array();
    for (const Interface& i : result.interfaces) {
      ordered_json o;
      o["name"] = i.name;
      if (!i.mac.empty()) o["mac"] = i.mac;
      if (v11 && i.mtu > 0) o["mtu"] = i.mtu;
      if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
      if (v11 && !i.socket_path.empty()) o["socketPath"] = i.socket_path;
      if (v11 && !i.pci_id.empty()) o["pciID"] = i.pci_id;
      list.push_back(std::move(o));
    }
    out["interfaces"] = std::move(list);
  }
  if (!result.ips.empty()) {
    ordered_json list = ordered_json::array();
    for (const IpConfig& ip : result.ips) {
      ordered_json o;
      if (with_ip_version) o["version"] = ip.Family() == 6 ? "6" : "4";
      if (ip.interface.has_value()) o["interface"] = *ip.interface;
      o["address"] = ip.address.ToString();
      if (ip.gateway) o["gateway"] = ip.gateway->ToString();
      list.push_back(std::move(o));
    }
    out["ips"] = std::move(list);
  }
  if (!result.routes.empty()) {
    ordered_json list = ordered_json::array();
    for (const Route& r : result.routes) {
      ordered_json o;
      o["dst"] = r.dst.ToString();
      if (r.gw) o["gw"] = r.gw->ToString();
      if (v11) {
        if (r.mtu > 0) o["mtu"] = r.mtu;
        if (r.advmss > 0) o["advmss"] = r.advmss;
        if (r.priority > 0) o["priority"] = r.priority;
        if (r.table > 0) o["table"] = r.table;
        if (r.scope >= 0) o["scope"] = r.scope;
      }
      list.push_back(std::move(o));
    }
    out["routes"] = std::move(list);
  }
  ordered_json dns = ordered_json::object();
  if (!result.dns.nameservers.empty()) dns["nameservers"] = result.dns.nameservers;
  if (!result.dns.domain.empty()) dns["domain"] = result.dns.domain;
  if (!result.dns.search.empty()) dns["search"] = result.dns.search;
  if (!result.dns.options.empty()) dns["options"] = result.dns.options;
  out["dns"] = std::move(dns);
  return out;
}

std::string EncodeResult(const Result& result, const std::string& cni_version) {
  return ResultToJson(result, cni_version).dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<Dns> ParseDns(const json& obj) {
  Dns dns;
  if (obj.is_null()) return dns;
  if (!obj.is_object()) return Bad("\"dns\" must be an object");
  RETURN_IF_ERROR(GetStrings(obj, "nameservers", &dns.nameservers));
  RETURN_IF_ERROR(GetString(obj, "domain", false, &dns.domain));
  RETURN_IF_ERROR(GetStrings(obj, "search", &dns.search));
  RETURN_IF_ERROR(GetStrings(obj, "options", &dns.options));
  return dns;
}

absl::StatusOr<Result> ParseResult(const json& obj) {
  if (!obj.is_object()) return Bad("must be a JSON object");
  Result result;
  absl::Status st;
  if (const json* list = GetArray(obj, "interfaces", &st)) {
    for (const json& item : *list) {
      if (!item.is_object()) return Bad("every interface must be an object");
      Interface i;
      RETURN_IF_ERROR(GetString(item, "name", true, &i.name));
      RETURN_IF_ERROR(GetString(item, "mac", false, &i.mac));
      RETURN_IF_ERROR(GetInt(item, "mtu", &i.mtu));
      RETURN_IF_ERROR(GetString(item, "sandbox", false, &i.sandbox));
      RETURN_IF_ERROR(GetString(item, "pciID", false, &i.pci_id));
      RETURN_IF_ERROR(GetString(item, "socketPath", false, &i.socket_path));
      result.interfaces.push_back(std::move(i));
    }
  }
  RETURN_IF_ERROR(st);
  if (const json* list = GetArray(obj, "ips", &st)) {
    for (const json& item : *list) {
      if (!item.is_object()) return Bad("every ips[] entry must be an object");
      IpConfig ip;
      std::string address;
      RETURN_IF_ERROR(GetString(item, "address", true, &address));
      absl::StatusOr<IpPrefix> parsed = IpPrefix::Parse(address);
      if (!parsed.ok()) return Bad(fmt::format("ips[].address '{}' is not a CIDR", address));
      ip.address = *parsed;
      const int family = ip.address.family();
      std::string gateway;
      RETURN_IF_ERROR(GetString(item, "gateway", false, &gateway));
      if (!gateway.empty()) {
        absl::StatusOr<IpAddr> gw = IpAddr::Parse(gateway);
        if (!gw.ok() || gw->family() != family) {
          return Bad(fmt::format("ips[].gateway '{}' is not an IPv{} address", gateway, family));
        }
        ip.gateway = *gw;
      }
      std::string version;
      RETURN_IF_ERROR(GetString(item, "version", false, &version));
      if (!version.empty() && version != std::to_string(family)) {
        return Bad(fmt::format("ips[].version '{}' does not match address {}", version, address));
      }
      auto idx = item.find("interface");
      if (idx != item.end() && !idx->is_null()) {
        if (!idx->is_number_integer()) return Bad("ips[].interface must be an integer");
        // Read as 64 bits: a huge index must not wrap into a valid one.
        int64_t v = idx->is_number_unsigned() && idx->get<uint64_t>() > INT64_MAX
                        ? -1
                        : idx->get<int64_t>();
        if (v < 0 || static_cast<uint64_t>(v) >= result.interfaces.size()) {
          return Bad(fmt::format("ips[].interface {} is out of range ({} interfaces)", idx->dump(),
                                 result.interfaces.size()));
        }
        ip.interface = static_cast<int>(v);
      }
      result.ips.push_back(ip);
    }
  }
  RETURN_IF_ERROR(st);
  if (const json* list = GetArray(obj, "routes", &st)) {
    for (const json& item : *list) {
      if (!item.is_object()) return Bad("every routes[] entry must be an object");
      Route r;
      std::string dst;
      RETURN_IF_ERROR(GetString(item, "dst", true, &dst));
      absl::StatusOr<IpPrefix> parsed = IpPrefix::Parse(dst);
      if (!parsed.ok()) return Bad(fmt::format("routes[].dst '{}' is not a CIDR", dst));
      r.dst = *parsed;
      std::string gw;
      RETURN_IF_ERROR(GetString(item, "gw", false, &gw));
      if (!gw.empty()) {
        absl::StatusOr<IpAddr> next_hop = IpAddr::Parse(gw);
        if (!next_hop.ok()) return Bad(fmt::format("routes[].gw '{}' is not an address", gw));
        r.gw = *next_hop;
      }
      RETURN_IF_ERROR(GetInt(item, "mtu", &r.mtu));
      RETURN_IF_ERROR(GetInt(item, "advmss", &r.advmss));
      RETURN_IF_ERROR(GetInt(item, "priority", &r.priority));
      RETURN_IF_ERROR(GetInt(item, "table", &r.table));
      RETURN_IF_ERROR(GetInt(item, "scope", &r.scope, 255));
      result.routes.push_back(r);
    }
  }
  RETURN_IF_ERROR(st);
  auto dns = obj.find("dns");
  if (dns != obj.end()) {
    auto parsed = ParseDns(*dns);
    if (!parsed.ok()) return parsed.status();
    result.dns = std::move(*parsed);
  }
  return result;
}

}  // namespace rdmashare::cni
