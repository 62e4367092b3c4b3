#include "cni/net/netlink.h"

#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <array>
#include <cctype>
#include <cstring>
#include <functional>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::net {
namespace {

struct NlDeleter {
  void operator()(rtnl_link* p) const { rtnl_link_put(p); }
  void operator()(rtnl_addr* p) const { rtnl_addr_put(p); }
  void operator()(rtnl_route* p) const { rtnl_route_put(p); }
  void operator()(rtnl_rule* p) const { rtnl_rule_put(p); }
  void operator()(nl_addr* p) const { nl_addr_put(p); }
  void operator()(nl_cache* p) const { nl_cache_free(p); }
};
template <typename T>
using NlPtr = std::unique_ptr<T, NlDeleter>;

absl::Status NlError(int err, const std::string& what) {
  int code = err < 0 ? -err : err;
  std::string msg = fmt::format("{}: {}", what, nl_geterror(code));
  switch (code) {
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return absl::NotFoundError(msg);
    case NLE_EXIST:
      return absl::AlreadyExistsError(msg);
    case NLE_INVAL:
    case NLE_RANGE:
      return absl::InvalidArgumentError(msg);
    case NLE_PERM:
      return absl::PermissionDeniedError(msg);
    case NLE_BUSY:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

NlPtr<nl_addr> ToNl(const IpAddr& ip, int prefix_len) {
  std::array<uint8_t, 16> bytes = ip.bytes();
  nl_addr* a = nl_addr_build(ip.af(), bytes.data(), static_cast<size_t>(ip.size()));
  if (a != nullptr) nl_addr_set_prefixlen(a, prefix_len);
  return NlPtr<nl_addr>(a);
}

NlPtr<nl_addr> ToNl(const IpPrefix& prefix) { return ToNl(prefix.addr(), prefix.length()); }

// The address and prefix length of `a` (a default route's empty address is all zeros).
std::optional<IpPrefix> FromNl(nl_addr* a, int family_hint) {
  if (a == nullptr) return std::nullopt;
  int af = nl_addr_get_family(a);
  if (af != AF_INET && af != AF_INET6) af = family_hint;
  if (af != AF_INET && af != AF_INET6) return std::nullopt;
  unsigned len = nl_addr_get_len(a);
  if (len > 16) return std::nullopt;
  std::array<uint8_t, 16> bytes{};
  if (len > 0) std::memcpy(bytes.data(), nl_addr_get_binary_addr(a), len);
  return IpPrefix(IpAddr::FromBytes(af == AF_INET ? 4 : 6, bytes.data()),
                  static_cast<int>(nl_addr_get_prefixlen(a)));
}

// The address alone of `a` (gateways, preferred sources).
std::optional<IpAddr> AddrFromNl(nl_addr* a, int family_hint) {
  std::optional<IpPrefix> p = FromNl(a, family_hint);
  if (!p) return std::nullopt;
  return p->addr();
}

// "default", the bare address of a host prefix, else "addr/len".
std::string PrefixText(const IpPrefix& p) {
  return p.IsDefault() ? "default" : p.IsHost() ? p.addr().ToString() : p.ToString();
}

LinkInfo ToLinkInfo(rtnl_link* link) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(link);
  const char* name = rtnl_link_get_name(link);
  info.name = name ? name : "";
  const char* kind = rtnl_link_get_type(link);
  info.kind = kind ? kind : "";
  nl_addr* mac = rtnl_link_get_addr(link);
  if (mac != nullptr && nl_addr_get_len(mac) == 6) {
    const uint8_t* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(mac));
    info.mac = fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3],
                           b[4], b[5]);
  }
  info.mtu = static_cast<int>(rtnl_link_get_mtu(link));
  info.arptype = static_cast<int>(rtnl_link_get_arptype(link));
  unsigned flags = rtnl_link_get_flags(link);
  info.admin_up = (flags & IFF_UP) != 0;
  uint8_t oper = rtnl_link_get_operstate(link);
  info.oper_up = oper == IF_OPER_UP || (oper == IF_OPER_UNKNOWN && (flags & IFF_LOWER_UP) != 0);
  info.parent_index = rtnl_link_get_link(link);
  if (info.kind == "macvlan") {
    char buf[32] = {};
    uint32_t mode = rtnl_link_macvlan_get_mode(link);
    const char* s = rtnl_link_macvlan_mode2str(static_cast<int>(mode), buf, sizeof(buf));
    info.macvlan_mode = s ? s : "";
  }
  return info;
}

template <typename T>
std::vector<T*> CacheItems(nl_cache* cache) {
  std::vector<T*> out;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    out.push_back(reinterpret_cast<T*>(o));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> NormalizeMac(const std::string& mac) {
  bool ok = mac.size() == 17;
  std::string out;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    char c = mac[i];
    if (i % 3 == 2) {
      ok = c == ':';
    } else {
      ok = std::isxdigit(static_cast<unsigned char>(c)) != 0;
    }
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (!ok) return absl::InvalidArgumentError(fmt::format("MAC address \"{}\" is not valid", mac));
  return out;
}

std::string RuleString(const Rule& rule) {
  std::string from = !rule.src            ? "all"
                     : rule.src->IsHost() ? rule.src->addr().ToString()
                                          : rule.src->ToString();
  return fmt::format("{}: from {} lookup {}", rule.priority, from, rule.table);
}

std::string RouteString(const Route& r) {
  std::string s = PrefixText(r.dst);
  if (r.gateway) s += " via " + r.gateway->ToString();
  s += fmt::format(" dev {}", r.ifindex);
  if (r.table != RT_TABLE_MAIN) s += fmt::format(" table {}", r.table);
  if (r.scope == RT_SCOPE_LINK) s += " scope link";
  if (r.pref_src) s += " src " + r.pref_src->ToString();
  if (r.metric != 0) s += fmt::format(" metric {}", r.metric);
  if (r.mtu != 0) s += fmt::format(" mtu {}", r.mtu);
  return s;
}

absl::StatusOr<std::unique_ptr<Netlink>> Netlink::Open() {
  nl_sock* sk = nl_socket_alloc();
  if (sk == nullptr) return absl::ResourceExhaustedError("netlink: cannot allocate socket");
  int err = nl_connect(sk, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sk);
    return NlError(err, "netlink: connect");
  }
  // libnl opens with SOCK_CLOEXEC since 3.2.x; keep the fd from leaking into delegated plugins.
  return std::unique_ptr<Netlink>(new Netlink(sk));
}

Netlink::~Netlink() { nl_socket_free(sock_); }

absl::StatusOr<LinkInfo> Netlink::GetLink(const std::string& name) {
  rtnl_link* link = nullptr;
  int err = rtnl_link_get_kernel(sock_, 0, name.c_str(), &link);
  if (err < 0) return NlError(err, fmt::format("link {}: get", name));
  NlPtr<rtnl_link> holder(link);
  return ToLinkInfo(link);
}

absl::StatusOr<LinkInfo> Netlink::GetLinkByIndex(int index) {
  rtnl_link* link = nullptr;
  int err = rtnl_link_get_kernel(sock_, index, nullptr, &link);
  if (err < 0) return NlError(err, fmt::format("link #{}: get", index));
  NlPtr<rtnl_link> holder(link);
  return ToLinkInfo(link);
}

absl::StatusOr<std::vector<LinkInfo>> Netlink::ListLinks() {
  nl_cache* cache = nullptr;
  int err = rtnl_link_alloc_cache(sock_, AF_UNSPEC, &cache);
  if (err < 0) return NlError(err, "links: dump");
  NlPtr<nl_cache> holder(cache);
  std::vector<LinkInfo> out;
  for (rtnl_link* l : CacheItems<rtnl_link>(cache)) out.push_back(ToLinkInfo(l));
  return out;
}

absl::Status Netlink::CreateMacvlan(const MacvlanSpec& spec) {
  int mode = rtnl_link_macvlan_str2mode(spec.mode.c_str());
  if (mode < 0 || spec.mode == "source") {
    return absl::InvalidArgumentError(
        fmt::format("macvlan {}: mode \"{}\" is not one of bridge, private, vepa, passthru",
                    spec.name, spec.mode));
  }
  NlPtr<rtnl_link> link(rtnl_link_macvlan_alloc());
  if (!link) return absl::ResourceExhaustedError("macvlan: cannot allocate link object");
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_set_link(link.get(), spec.master_index);
  int err = rtnl_link_macvlan_set_mode(link.get(), static_cast<uint32_t>(mode));
  if (err < 0) return NlError(err, fmt::format("macvlan {}: set mode", spec.name));
  if (spec.mtu > 0) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(spec.mtu));
  if (!spec.mac.empty()) {
    ASSIGN_OR_RETURN(std::string mac, NormalizeMac(spec.mac));
    nl_addr* a = nullptr;
    err = nl_addr_parse(mac.c_str(), AF_LLC, &a);
    if (err < 0) return NlError(err, fmt::format("macvlan {}: mac {}", spec.name, spec.mac));
    NlPtr<nl_addr> ah(a);
    rtnl_link_set_addr(link.get(), a);
  }
  if (spec.netns_fd >= 0) rtnl_link_set_ns_fd(link.get(), spec.netns_fd);
  err = rtnl_link_add(sock_, link.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0) {
    return NlError(err,
                   fmt::format("macvlan {} on master #{}: create", spec.name, spec.master_index));
  }
  return absl::OkStatus();
}

namespace {
absl::Status ChangeLink(nl_sock* sk, int index, const std::string& what,
                        const std::function<void(rtnl_link*)>& edit) {
  rtnl_link* orig = nullptr;
  int err = rtnl_link_get_kernel(sk, index, nullptr, &orig);
  if (err < 0) return NlError(err, fmt::format("link #{}: {}", index, what));
  NlPtr<rtnl_link> oh(orig);
  NlPtr<rtnl_link> change(rtnl_link_alloc());
  edit(change.get());
  err = rtnl_link_change(sk, orig, change.get(), 0);
  if (err < 0) {
    const char* n = rtnl_link_get_name(orig);
    return NlError(err, fmt::format("link {}: {}", n ? n : "?", what));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status Netlink::RenameLink(int index, const std::string& new_name) {
  return ChangeLink(sock_, index, "rename to " + new_name,
                    [&](rtnl_link* c) { rtnl_link_set_name(c, new_name.c_str()); });
}

absl::Status Netlink::SetLinkUp(int index, bool up) {
  return ChangeLink(sock_, index, up ? "set up" : "set down", [&](rtnl_link* c) {
    if (up) {
      rtnl_link_set_flags(c, IFF_UP);
    } else {
      rtnl_link_unset_flags(c, IFF_UP);
    }
  });
}

absl::Status Netlink::SetMtu(int index, int mtu) {
  return ChangeLink(sock_, index, fmt::format("set mtu {}", mtu),
                    [&](rtnl_link* c) { rtnl_link_set_mtu(c, static_cast<unsigned>(mtu)); });
}

absl::Status Netlink::SetMac(int index, const std::string& mac) {
  ASSIGN_OR_RETURN(std::string norm, NormalizeMac(mac));
  nl_addr* a = nullptr;
  int err = nl_addr_parse(norm.c_str(), AF_LLC, &a);
  if (err < 0) return NlError(err, "mac " + mac);
  NlPtr<nl_addr> ah(a);
  return ChangeLink(sock_, index, "set mac " + norm,
                    [&](rtnl_link* c) { rtnl_link_set_addr(c, a); });
}

absl::Status Netlink::DeleteLink(int index) {
  NlPtr<rtnl_link> link(rtnl_link_alloc());
  rtnl_link_set_ifindex(link.get(), index);
  int err = rtnl_link_delete(sock_, link.get());
  if (err < 0) return NlError(err, fmt::format("link #{}: delete", index));
  return absl::OkStatus();
}

absl::Status Netlink::AddAddress(int index, const IpPrefix& ip) {
  NlPtr<rtnl_addr> addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), index);
  NlPtr<nl_addr> local = ToNl(ip);
  int err = rtnl_addr_set_local(addr.get(), local.get());
  if (err < 0) return NlError(err, "address " + ip.ToString());
  if (ip.addr().is_v4() && ip.length() < 31) {
    NlPtr<nl_addr> b = ToNl(ip.Last(), 32);
    rtnl_addr_set_broadcast(addr.get(), b.get());
  }
  if (!ip.addr().is_v4()) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  err = rtnl_addr_add(sock_, addr.get(), NLM_F_EXCL);
  if (err < 0)
    return NlError(err, fmt::format("address {} on link #{}: add", ip.ToString(), index));
  return absl::OkStatus();
}

absl::Status Netlink::DeleteAddress(int index, const IpPrefix& ip) {
  NlPtr<rtnl_addr> addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), index);
  NlPtr<nl_addr> local = ToNl(ip);
  int err = rtnl_addr_set_local(addr.get(), local.get());
  if (err < 0) return NlError(err, "address " + ip.ToString());
  err = rtnl_addr_delete(sock_, addr.get(), 0);
  if (err < 0)
    return NlError(err, fmt::format("address {} on link #{}: delete", ip.ToString(), index));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<IpPrefix>> Netlink::ListAddresses(int index) {
  nl_cache* cache = nullptr;
  int err = rtnl_addr_alloc_cache(sock_, &cache);
  if (err < 0) return NlError(err, "addresses: dump");
  NlPtr<nl_cache> holder(cache);
  std::vector<IpPrefix> out;
  for (rtnl_addr* a : CacheItems<rtnl_addr>(cache)) {
    if (rtnl_addr_get_ifindex(a) != index) continue;
    auto ip = FromNl(rtnl_addr_get_local(a), rtnl_addr_get_family(a));
    if (!ip) continue;
    out.emplace_back(ip->addr(), static_cast<int>(rtnl_addr_get_prefixlen(a)));
  }
  return out;
}

namespace {
NlPtr<rtnl_route> BuildRoute(const Route& r) {
  NlPtr<rtnl_route> route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.dst.addr().af()));
  NlPtr<nl_addr> dst = ToNl(r.dst);
  rtnl_route_set_dst(route.get(), dst.get());
  rtnl_route_set_table(route.get(), r.table);
  rtnl_route_set_scope(route.get(), static_cast<uint8_t>(r.scope));
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  if (r.metric != 0) rtnl_route_set_priority(route.get(), r.metric);
  if (r.mtu != 0) rtnl_route_set_metric(route.get(), RTAX_MTU, r.mtu);
  if (r.pref_src) {
    NlPtr<nl_addr> src = ToNl(*r.pref_src, r.pref_src->bits());
    rtnl_route_set_pref_src(route.get(), src.get());
  }
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, r.ifindex);
  if (r.gateway) {
    NlPtr<nl_addr> gw = ToNl(*r.gateway, r.gateway->bits());
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  rtnl_route_add_nexthop(route.get(), nh);
  return route;
}
}  // namespace

absl::Status Netlink::AddRoute(const Route& r) {
  NlPtr<rtnl_route> route = BuildRoute(r);
  int err = rtnl_route_add(sock_, route.get(), NLM_F_EXCL);
  if (err < 0) return NlError(err, "route " + RouteString(r) + ": add");
  return absl::OkStatus();
}

absl::Status Netlink::DeleteRoute(const Route& r) {
  NlPtr<rtnl_route> route = BuildRoute(r);
  int err = rtnl_route_delete(sock_, route.get(), 0);
  if (err < 0) return NlError(err, "route " + RouteString(r) + ": delete");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Route>> Netlink::ListRoutes(int family) {
  nl_cache* cache = nullptr;
  int err = rtnl_route_alloc_cache(sock_, family, 0, &cache);
  if (err < 0) return NlError(err, "routes: dump");
  NlPtr<nl_cache> holder(cache);
  std::vector<Route> out;
  for (rtnl_route* r : CacheItems<rtnl_route>(cache)) {
    if (rtnl_route_get_type(r) != RTN_UNICAST) continue;
    int fam = rtnl_route_get_family(r);
    Route route;
    auto dst = FromNl(rtnl_route_get_dst(r), fam);
    if (!dst) continue;
    route.dst = *dst;
    route.table = rtnl_route_get_table(r);
    route.scope = rtnl_route_get_scope(r);
    route.metric = rtnl_route_get_priority(r);
    route.protocol = rtnl_route_get_protocol(r);
    uint32_t mtu = 0;
    if (rtnl_route_get_metric(r, RTAX_MTU, &mtu) == 0) route.mtu = mtu;
    route.pref_src = AddrFromNl(rtnl_route_get_pref_src(r), fam);
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      route.ifindex = rtnl_route_nh_get_ifindex(nh);
      route.gateway = AddrFromNl(rtnl_route_nh_get_gateway(nh), fam);
    }
    out.push_back(route);
  }
  return out;
}

namespace {
NlPtr<rtnl_rule> BuildRule(const Rule& r) {
  NlPtr<rtnl_rule> rule(rtnl_rule_alloc());
  rtnl_rule_set_family(rule.get(), r.family);
  if (r.src) {
    NlPtr<nl_addr> src = ToNl(*r.src);
    rtnl_rule_set_src(rule.get(), src.get());
  }
  rtnl_rule_set_table(rule.get(), r.table);
  rtnl_rule_set_prio(rule.get(), r.priority);
  rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
  return rule;
}
}  // namespace

absl::Status Netlink::AddRule(const Rule& r) {
  NlPtr<rtnl_rule> rule = BuildRule(r);
  int err = rtnl_rule_add(sock_, rule.get(), NLM_F_EXCL);
  if (err < 0) return NlError(err, "rule " + RuleString(r) + ": add");
  return absl::OkStatus();
}

absl::Status Netlink::DeleteRule(const Rule& r) {
  NlPtr<rtnl_rule> rule = BuildRule(r);
  int err = rtnl_rule_delete(sock_, rule.get(), 0);
  if (err < 0) return NlError(err, "rule " + RuleString(r) + ": delete");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Rule>> Netlink::ListRules(int family) {
  nl_cache* cache = nullptr;
  int err = rtnl_rule_alloc_cache(sock_, family, &cache);
  if (err < 0) return NlError(err, "rules: dump");
  NlPtr<nl_cache> holder(cache);
  std::vector<Rule> out;
  for (rtnl_rule* r : CacheItems<rtnl_rule>(cache)) {
    if (rtnl_rule_get_action(r) != FR_ACT_TO_TBL) continue;
    Rule rule;
    rule.family = rtnl_rule_get_family(r);
    rule.src = FromNl(rtnl_rule_get_src(r), rule.family);
    if (rule.src && rule.src->length() == 0) rule.src.reset();
    rule.table = rtnl_rule_get_table(r);
    rule.priority = rtnl_rule_get_prio(r);
    out.push_back(rule);
  }
  return out;
}

absl::StatusOr<std::string> Netlink::DefaultRouteInterface() {
  ASSIGN_OR_RETURN(std::vector<Route> routes, ListRoutes(AF_INET));
  for (const Route& r : routes) {
    if (r.table == RT_TABLE_MAIN && r.dst.IsDefault() && r.ifindex > 0) {
      ASSIGN_OR_RETURN(LinkInfo link, GetLinkByIndex(r.ifindex));
      return link.name;
    }
  }
  return absl::NotFoundError("no IPv4 default route in the main table");
}

}  // namespace rdmashare::cni::net
