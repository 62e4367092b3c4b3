// Netlink (rtnetlink through libnl-route-3): links, macvlans, addresses, routes and policy rules
// of ONE network namespace, the one the calling thread was in when the Netlink was opened.
//
// A Netlink owns one netlink socket; it is not thread-safe (use one per thread). Errors:
// NotFound for a missing link/route/rule, AlreadyExists when the kernel answers EEXIST,
// InvalidArgument for EINVAL/ERANGE, Internal otherwise; messages name the object and the call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/ip.h"

struct nl_sock;

namespace rdmashare::cni::net {

// What the kernel reports about a link.
struct LinkInfo {
  int index = 0;
  std::string name;
  // rtnl link kind ("macvlan", "veth", ...); empty for physical devices and loopback.
  std::string kind;
  // Hardware address "aa:bb:cc:dd:ee:ff" (lower case).
  std::string mac;
  int mtu = 0;
  // ARPHRD_* of the device (1 = Ethernet, 32 = InfiniBand).
  int arptype = 0;
  // IFF_UP set administratively.
  bool admin_up = false;
  // Operational state is up (IF_OPER_UP, or IF_OPER_UNKNOWN with carrier for virtual links).
  bool oper_up = false;
  // Index of the lower device for stacked links (macvlan master) in ITS namespace; 0 if none.
  int parent_index = 0;
  // For macvlans: "bridge", "private", "vepa", "passthru", "source".
  std::string macvlan_mode;
};

// Parameters of a new macvlan link.
struct MacvlanSpec {
  // Master ifindex in the namespace of the Netlink that creates the link.
  int master_index = 0;
  std::string name;
  std::string mode = "bridge";
  // 0 = inherit the master's MTU.
  int mtu = 0;
  // Empty = kernel-generated.
  std::string mac;
  // Namespace to create the link in (fd); -1 = the Netlink's own namespace.
  int netns_fd = -1;
};

// A route; fields left at their defaults are not set / not compared.
struct Route {
  // Destination network (host bits clear, as the kernel reports it).
  IpPrefix dst;
  std::optional<IpAddr> gateway;
  int ifindex = 0;
  // Routing table (254 = main).
  uint32_t table = 254;
  // RT_SCOPE_UNIVERSE (0) or RT_SCOPE_LINK (253).
  int scope = 0;
  std::optional<IpAddr> pref_src;
  // Route metric (priority); 0 = unset.
  uint32_t metric = 0;
  // RTAX_MTU metric; 0 = unset.
  uint32_t mtu = 0;
  // RTPROT_* (2 = kernel, 3 = boot); only reported by ListRoutes.
  int protocol = 0;

  bool operator==(const Route& o) const {
    return dst == o.dst && gateway == o.gateway && ifindex == o.ifindex && table == o.table &&
           scope == o.scope && pref_src == o.pref_src && metric == o.metric && mtu == o.mtu &&
           protocol == o.protocol;
  }
};

// A policy rule "from <src> lookup <table> priority <priority>".
struct Rule {
  // AF_INET or AF_INET6 (netlink's convention; IpAddr::af()).
  int family = 0;
  // Source prefix; nullopt = from all.
  std::optional<IpPrefix> src;
  uint32_t table = 0;
  uint32_t priority = 0;

  bool operator==(const Rule& o) const {
    return family == o.family && src == o.src && table == o.table && priority == o.priority;
  }
};

// Human-readable forms used in logs and exact checks ("from 172.16.11.10 lookup 100 pref 1000",
// "default via 172.16.11.254 dev 5 table 100").
std::string RuleString(const Rule& rule);
std::string RouteString(const Route& route);

class Netlink {
 public:
  // Opens a rtnetlink socket in the calling thread's current network namespace.
  static absl::StatusOr<std::unique_ptr<Netlink>> Open();
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  absl::StatusOr<LinkInfo> GetLink(const std::string& name);
  absl::StatusOr<LinkInfo> GetLinkByIndex(int index);
  absl::StatusOr<std::vector<LinkInfo>> ListLinks();

  // Creates a macvlan on `spec.master_index`, possibly directly in another namespace.
  absl::Status CreateMacvlan(const MacvlanSpec& spec);
  absl::Status RenameLink(int index, const std::string& new_name);
  absl::Status SetLinkUp(int index, bool up);
  absl::Status SetMtu(int index, int mtu);
  absl::Status SetMac(int index, const std::string& mac);
  absl::Status DeleteLink(int index);

  // Adds an address ("172.16.11.10/24"); IPv6 addresses skip DAD (the conflict check is ours).
  absl::Status AddAddress(int index, const IpPrefix& addr);
  // The addresses of link `index`, each with its prefix length ("172.16.11.10/24").
  absl::StatusOr<std::vector<IpPrefix>> ListAddresses(int index);
  // Removes `addr` (address and prefix length) from link `index`; NotFound when absent.
  absl::Status DeleteAddress(int index, const IpPrefix& addr);

  absl::Status AddRoute(const Route& route);
  absl::Status DeleteRoute(const Route& route);
  // Unicast routes of every table for `family` (AF_INET, AF_INET6 or AF_UNSPEC).
  absl::StatusOr<std::vector<Route>> ListRoutes(int family);

  absl::Status AddRule(const Rule& rule);
  absl::Status DeleteRule(const Rule& rule);
  absl::StatusOr<std::vector<Rule>> ListRules(int family);

  // Name of the interface of the main table's IPv4 default route (NotFound when none).
  absl::StatusOr<std::string> DefaultRouteInterface();

 private:
  explicit Netlink(nl_sock* sock) : sock_(sock) {}
  nl_sock* sock_;
};

// Parses "aa:bb:cc:dd:ee:ff" (any case) into lower case; InvalidArgument otherwise.
absl::StatusOr<std::string> NormalizeMac(const std::string& mac);

}  // namespace rdmashare::cni::net
