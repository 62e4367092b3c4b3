// Result: the success answer of ADD (and the prevResult of DEL/CHECK), for every cniVersion.
//
// EncodeResult writes exactly the shape of the requested version:
//  - 0.3.0/0.3.1/0.4.0: ips[] carry "version" ("4"/"6"); interfaces {name, mac, sandbox};
//    routes {dst, gw}.
//  - 1.0.0: as 0.4.0 without ips[].version.
//  - 1.1.0: interfaces also carry mtu, socketPath, pciID; routes also mtu, advmss, priority,
//    table, scope.
// Empty optional fields are omitted; "dns" is always present (possibly {}), like the reference
// plugins. Addresses, gateways and route destinations are typed (common/ip.h): ParseResult
// validates them once where the JSON comes in (prevResult, a delegated IPAM plugin's stdout) and
// EncodeResult writes their canonical text. Plain values and stateless functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/ip.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {

struct Interface {
  std::string name;
  std::string mac;
  // 0 = unset (1.1.0 only).
  int mtu = 0;
  // Netns path for interfaces inside the container; empty for host interfaces.
  std::string sandbox;
  // PCI address of the RDMA function backing the interface (1.1.0 only), e.g. "0000:0b:00.0".
  std::string pci_id;
  // vhost-user / DPDK socket path (1.1.0 only).
  std::string socket_path;

  bool operator==(const Interface& o) const {
    return name == o.name && mac == o.mac && mtu == o.mtu && sandbox == o.sandbox &&
           pci_id == o.pci_id && socket_path == o.socket_path;
  }
};

struct IpConfig {
  // Address with its subnet's prefix length ("172.16.11.10/24", "fd00::5/64").
  IpPrefix address;
  // Gateway, of the address's family; nullopt = none.
  std::optional<IpAddr> gateway;
  // Index into Result::interfaces.
  std::optional<int> interface;

  // 4 or 6, from the address.
  int Family() const { return address.family(); }

  bool operator==(const IpConfig& o) const {
    return address == o.address && gateway == o.gateway && interface == o.interface;
  }
};

struct Route {
  // Destination ("10.96.0.0/12"; kept as written, host bits included).
  IpPrefix dst;
  // Next hop; nullopt = the interface's default gateway / on-link.
  std::optional<IpAddr> gw;
  // 1.1.0 only; 0 = unset.
  int mtu = 0;
  int advmss = 0;
  int priority = 0;
  int table = 0;
  // 1.1.0 only; -1 = unset (0 = universe is a valid scope).
  int scope = -1;

  bool operator==(const Route& o) const {
    return dst == o.dst && gw == o.gw && mtu == o.mtu && advmss == o.advmss &&
           priority == o.priority && table == o.table && scope == o.scope;
  }
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;

  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
  bool operator==(const Dns& o) const {
    return nameservers == o.nameservers && domain == o.domain && search == o.search &&
           options == o.options;
  }
};

struct Result {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;

  bool operator==(const Result& o) const {
    return interfaces == o.interfaces && ips == o.ips && routes == o.routes && dns == o.dns;
  }
};

// Encodes `result` as the JSON object of `cni_version` (see the header comment).
nlohmann::ordered_json ResultToJson(const Result& result, const std::string& cni_version);

// ResultToJson(...).dump().
std::string EncodeResult(const Result& result, const std::string& cni_version);

// Parses a result object of any supported version (prevResult, or a delegated plugin's
// stdout). ips[].version is accepted and checked against the address when present. Ill-typed
// fields, addresses that are not CIDRs, or an interface index out of range are code 7.
absl::StatusOr<Result> ParseResult(const nlohmann::json& json);

// Parses a DNS object ({nameservers, domain, search, options}); code 7 when ill-typed.
absl::StatusOr<Dns> ParseDns(const nlohmann::json& json);

}  // namespace rdmashare::cni
