#include "cni/macvlan/plugin.h"

#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "cni/ipam/ipam.h"
#include "cni/macvlan/config.h"
#include "cni/macvlan/routing_plan.h"
#include "cni/net/arp.h"
#include "cni/net/netlink.h"
#include "cni/net/netns.h"
#include "cni/net/rdma_info.h"
#include "cni/net/sysctl.h"
#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "cni/protocol/result.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/flock.h"
#include "common/ip.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::macvlan {
namespace {

using net::LinkInfo;
using net::Netlink;
using net::NetNs;

// Undo stack: actions run in reverse order unless Commit() was called.
class UndoStack {
 public:
  ~UndoStack() {
    if (committed_) return;
    for (auto it = actions_.rbegin(); it != actions_.rend(); ++it) (*it)();
  }
  void Push(std::function<void()> fn) { actions_.push_back(std::move(fn)); }
  void Commit() { committed_ = true; }

 private:
  std::vector<std::function<void()>> actions_;
  bool committed_ = false;
};

// Everything one request needs after parsing.
struct Context {
  const CniRequest* request = nullptr;
  NetConf conf;
  MacvlanConfig config;
  std::map<std::string, std::string> cni_args;
};

absl::StatusOr<Context> Prepare(const CniRequest& request, const HostPaths& paths) {
  Context ctx;
  ctx.request = &request;
  ASSIGN_OR_RETURN(ctx.conf, ParseNetConf(request.stdin_data));
  RETURN_IF_ERROR(ValidateCommandForVersion(request.command, ctx.conf.cni_version));
  ASSIGN_OR_RETURN(ctx.cni_args, ParseCniArgs(request.args));
  ASSIGN_OR_RETURN(ctx.config, ParseMacvlanConfig(ctx.conf, ctx.cni_args, paths.sys_root));
  return ctx;
}

bool InProcessIpam(const Context& ctx) { return ctx.config.ipam_type == ipam::kIpamType; }

ipam::IpamArgs MakeIpamArgs(const Context& ctx) {
  ipam::IpamArgs a;
  a.container_id = ctx.request->container_id;
  a.ifname = ctx.request->ifname;
  a.netns = ctx.request->netns;
  a.network_name = ctx.conf.name;
  a.ipam_conf = ctx.conf.ipam;
  a.runtime_config = ctx.conf.runtime_config;
  a.cni_args = ctx.cni_args;
  a.args = ctx.conf.args;
  return a;
}

absl::Status RequireIpam(const Context& ctx) {
  if (ctx.config.ipam_type.empty()) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network {}: an \"ipam\" section is required", ctx.conf.name));
  }
  return absl::OkStatus();
}

// `reserved` receives the addresses this call reserved (in-process IPAM only).
absl::StatusOr<Result> IpamAddress(const Context& ctx, std::vector<std::string>* reserved) {
  if (InProcessIpam(ctx)) return ipam::IpamAdd(MakeIpamArgs(ctx), reserved);
  return DelegateAdd(ctx.config.ipam_type, *ctx.request, ctx.request->stdin_data);
}

absl::Status IpamRelease(const Context& ctx) {
  if (InProcessIpam(ctx)) return ipam::IpamDel(MakeIpamArgs(ctx));
  CniRequest del = *ctx.request;
  del.command = kCmdDel;
  return DelegateDel(ctx.config.ipam_type, del, ctx.request->stdin_data);
}

// The undo of IpamAddress: releases only what that call reserved, so a repeated ADD of an
// attachment that already holds its lease (a retry racing the first ADD, or one in another
// netns) never frees an address an interface is using. A delegated IPAM plugin cannot say what
// it created: it gets a DEL, as the spec's cleanup (ADDs of one netns are serialised, see
// LockPodNetNs, so no live interface of this attachment exists at that point in that netns).
absl::Status IpamUndo(const Context& ctx, const std::vector<std::string>& reserved) {
  if (InProcessIpam(ctx)) {
    if (reserved.empty()) {
      spdlog::info("undo: container={} ifname={} held its lease before this ADD; kept",
                   ctx.request->container_id, ctx.request->ifname);
      return absl::OkStatus();
    }
    return ipam::IpamRelease(MakeIpamArgs(ctx), reserved);
  }
  return IpamRelease(ctx);
}

// How long an ADD or DEL waits for another one in the same pod netns (an ADD takes milliseconds;
// its worst case is the IPAM lock wait, default 10 s, plus the ARP probes).
constexpr std::chrono::seconds kPodLockTimeout{30};

// (st_dev, st_ino) of an open file: the identity of a namespace behind an nsfs descriptor.
absl::StatusOr<std::pair<dev_t, ino_t>> FileIdentity(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return CniError(kIoFailure, fmt::format("{}: fstat failed: {}", what, std::strerror(errno)));
  }
  return std::make_pair(st.st_dev, st.st_ino);
}

// True when `ns` is the network namespace the calling thread runs in: the one whose links the
// plugin's host-side netlink socket sees (the thread's, not the process's, as tests run requests
// on threads inside other namespaces). Code 5 when that cannot be determined.
absl::StatusOr<bool> IsOwnNetNs(const NetNs& ns, const std::string& proc_root) {
  const std::string self = JoinPath(proc_root, "thread-self/ns/net");
  UniqueFd own(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!own.valid()) {
    return CniError(kIoFailure,
                    fmt::format("cannot tell whether CNI_NETNS {} is the plugin's own network "
                                "namespace: open {} failed: {}",
                                ns.path(), self, std::strerror(errno)));
  }
  ASSIGN_OR_RETURN(auto mine, FileIdentity(own.get(), self));
  ASSIGN_OR_RETURN(auto theirs, FileIdentity(ns.fd(), "netns " + ns.path()));
  return mine == theirs;
}

// Code 4 when CNI_NETNS is the plugin's own (host) namespace and the config does not allow it:
// the "pod" interface would be created, addressed and routed on the host itself.
absl::Status RefuseHostNetNs(const Context& ctx, const NetNs& ns, const HostPaths& paths) {
  ASSIGN_OR_RETURN(bool own, IsOwnNetNs(ns, paths.proc_root));
  if (!own || ctx.config.allow_host_netns) return absl::OkStatus();
  return CniError(kInvalidEnv,
                  fmt::format("CNI_NETNS {} is the plugin's own (host) network namespace: "
                              "refusing to configure interface {} on the host",
                              ctx.request->netns, ctx.request->ifname),
                  "set \"allowHostNetns\": true in the network config to allow it");
}

// Serialises the ADDs and DELs of one pod network namespace across processes, so a retried ADD
// racing the first one sees the interface the first one made instead of sharing its lease and
// tearing it down in its undo. The lock is a root-only file named after the namespace's identity
// (<run_dir>/netns-locks/<dev>-<ino>.lock), not the namespace file itself, which any local user
// who can read it could flock and so stall the pod. Namespace inode numbers are recycled by the
// kernel, so the number of lock files stays bounded by the peak number of namespaces.
absl::StatusOr<ExclusiveFlock> LockPodNetNs(const NetNs& ns, const HostPaths& paths) {
  ASSIGN_OR_RETURN(auto id, FileIdentity(ns.fd(), "netns " + ns.path()));
  const std::string dir = JoinPath(paths.run_dir, "netns-locks");
  if (auto s = MakeDirs(dir, 0700); !s.ok()) {
    return CniError(kIoFailure,
                    fmt::format("netns {}: lock directory: {}", ns.path(), s.message()));
  }
  const std::string path = JoinPath(dir, fmt::format("{}-{}.lock", id.first, id.second));
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    return CniError(kIoFailure, fmt::format("netns {}: open lock {} failed: {}", ns.path(), path,
                                            std::strerror(errno)));
  }
  auto lock = ExclusiveFlock::Acquire(fd.get(), kPodLockTimeout,
                                      fmt::format("netns {} (lock {})", ns.path(), path));
  if (absl::IsDeadlineExceeded(lock.status())) {
    return CniError(kTryAgainLater, std::string(lock.status().message()),
                    "another ADD or DEL of this pod network namespace is still running");
  }
  if (!lock.ok()) return CniError(kIoFailure, std::string(lock.status().message()));
  return std::move(*lock);
}

// Opens a Netlink bound to `ns` (the socket keeps that namespace after the thread leaves).
absl::StatusOr<std::unique_ptr<Netlink>> NetlinkIn(const NetNs& ns) {
  ASSIGN_OR_RETURN(net::ScopedNetNs scope, net::ScopedNetNs::Enter(ns));
  return Netlink::Open();
}

struct Master {
  LinkInfo link;
  std::optional<net::RdmaFunction> rdma;
};

// Resolves and vets the master in the host namespace.
absl::StatusOr<Master> FindMaster(Netlink& host, const MacvlanConfig& config) {
  std::string name = config.master;
  if (name.empty()) {
    auto def = host.DefaultRouteInterface();
    if (!def.ok()) {
      return CniError(kMasterMissing,
                      "no \"master\" configured and the host has no IPv4 default route to take "
                      "it from",
                      std::string(def.status().message()));
    }
    name = *def;
  }
  Master m;
  auto link = host.GetLink(name);
  if (!link.ok()) {
    if (absl::IsNotFound(link.status())) {
      return CniError(kMasterMissing, fmt::format("master {} does not exist on the host", name),
                      std::string(link.status().message()));
    }
    return AnnotateCni(link.status(), "master " + name);
  }
  m.link = *link;
  if (m.link.arptype != ARPHRD_ETHER) {
    return CniError(kMasterNotRoce,
                    fmt::format("master {} is not an Ethernet device (ARPHRD {}): macvlan needs "
                                "RoCE (Ethernet link layer), not InfiniBand",
                                name, m.link.arptype));
  }
  auto rdma = net::FindRdmaFunction(config.sysfs_root, name);
  if (!rdma.ok()) return AnnotateCni(rdma.status(), "master " + name + ": RDMA lookup");
  m.rdma = *rdma;
  if (m.rdma && m.rdma->link_layer == "InfiniBand") {
    return CniError(kMasterNotRoce,
                    fmt::format("master {}: RDMA device {} port {} has link layer InfiniBand: "
                                "macvlan needs RoCE (Ethernet link layer)",
                                name, m.rdma->ibdev, m.rdma->port));
  }
  return m;
}

absl::StatusOr<NetNs> OpenPodNetNs(const std::string& path) {
  auto ns = NetNs::Open(path);
  if (!ns.ok()) {
    // The message says why (missing, not a namespace file, another namespace type).
    return CniError(kUnknownContainer, std::string(ns.status().message()),
                    "CNI_NETNS must name a network namespace (/var/run/netns/<name>, "
                    "/proc/<pid>/ns/net)");
  }
  return ns;
}

bool DetectGateway(const MacvlanConfig& c, bool has_gateway) {
  return c.detect_gateway.value_or(has_gateway) && has_gateway;
}
bool DetectConflict(const MacvlanConfig& c, bool has_gateway) {
  return c.detect_ip_conflict.value_or(has_gateway);
}

// ---------------------------------------------------------------------------------------- ADD

absl::StatusOr<std::string> Add(const CniRequest& req, const HostPaths& paths) {
  ASSIGN_OR_RETURN(Context ctx, Prepare(req, paths));
  RETURN_IF_ERROR(RequireIpam(ctx));
  ASSIGN_OR_RETURN(std::optional<uint32_t> table, PolicyTable(ctx.config, req.ifname));
  ASSIGN_OR_RETURN(NetNs pod_ns, OpenPodNetNs(req.netns));
  RETURN_IF_ERROR(RefuseHostNetNs(ctx, pod_ns, paths));
  ASSIGN_OR_RETURN(ExclusiveFlock pod_lock, LockPodNetNs(pod_ns, paths));
  auto host_or = Netlink::Open();
  if (!host_or.ok()) return AnnotateCni(host_or.status(), "host netlink");
  Netlink& host = **host_or;
  ASSIGN_OR_RETURN(Master master, FindMaster(host, ctx.config));
  if (ctx.config.mtu > master.link.mtu) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network {}: mtu {} exceeds the MTU {} of master {}", ctx.conf.name,
                                ctx.config.mtu, master.link.mtu, master.link.name));
  }
  auto pod_or = NetlinkIn(pod_ns);
  if (!pod_or.ok()) return AnnotateCni(pod_or.status(), "netns " + req.netns + ": netlink");
  Netlink& pod = **pod_or;

  // A duplicate ADD must fail before anything (IPAM included) is touched.
  if (pod.GetLink(req.ifname).ok()) {
    return CniError(kIfnameInUse,
                    fmt::format("interface {} already exists in netns {}", req.ifname, req.netns));
  }
  const std::string temp = TempLinkName(req.container_id, req.ifname);
  if (auto stale = pod.GetLink(temp); stale.ok()) {
    // Left behind by a crash mid-ADD of this very (container, ifname).
    spdlog::warn("removing stale temporary link {} in netns {}", temp, req.netns);
    (void)pod.DeleteLink(stale->index);
  }

  // Declared before the undo stack, whose destructor runs the undos that read it.
  std::vector<std::string> reserved;
  UndoStack undo;
  ASSIGN_OR_RETURN(Result result, IpamAddress(ctx, &reserved));
  undo.Push([&ctx, &reserved] {
    if (auto s = IpamUndo(ctx, reserved); !s.ok()) {
      spdlog::error("undo: IPAM release: {}", s.ToString());
    }
  });
  RDMASHARE_FAILPOINT("macvlan.add.after_ipam");
  if (result.ips.empty()) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network {}: IPAM returned no address", ctx.conf.name));
  }

  net::MacvlanSpec spec;
  spec.master_index = master.link.index;
  spec.name = temp;
  spec.mode = ctx.config.mode;
  spec.mtu = ctx.config.mtu;
  spec.mac = ctx.config.mac;
  spec.netns_fd = pod_ns.fd();
  if (auto s = host.CreateMacvlan(spec); !s.ok()) {
    return AnnotateCni(
        s, fmt::format("interface {}: create macvlan on {}", req.ifname, master.link.name));
  }
  RDMASHARE_FAILPOINT("macvlan.add.after_link_create");
  auto created = pod.GetLink(temp);
  if (!created.ok()) return AnnotateCni(created.status(), "interface " + req.ifname);
  const int ifindex = created->index;
  undo.Push([&pod, ifindex] { (void)pod.DeleteLink(ifindex); });
  if (auto s = pod.RenameLink(ifindex, req.ifname); !s.ok()) {
    return AnnotateCni(s, fmt::format("interface {}: rename from {}", req.ifname, temp));
  }
  RDMASHARE_FAILPOINT("macvlan.add.after_rename");
  // Typed by IPAM (in-process) or by ParseResult (a delegated plugin's output): nothing to parse.
  const std::vector<IpConfig>& ips = result.ips;
  // Without any probe there is nothing to wait for on an address-less link: the addresses go on
  // first and the kernel announces them itself when the link comes up (arp_notify=1), which
  // saves an AF_PACKET socket (its close waits for an RCU grace period).
  bool probing = false;
  for (const IpConfig& c : ips) {
    if (c.address.addr().is_v4() &&
        (DetectConflict(ctx.config, c.gateway.has_value()) ||
         (c.gateway && c.gateway->is_v4() && DetectGateway(ctx.config, true)))) {
      probing = true;
    }
  }
  // Sysctls before the link carries addresses: replies must already leave on their own rail.
  {
    auto scope = net::ScopedNetNs::Enter(pod_ns);
    if (!scope.ok()) return AnnotateCni(scope.status(), "netns " + req.netns);
    for (const auto& [key, value] :
         std::vector<std::pair<std::string, std::string>>{{"arp_ignore", "1"},
                                                          {"arp_announce", "2"},
                                                          {"rp_filter", "2"},
                                                          {"arp_notify", probing ? "0" : "1"}}) {
      if (auto s = net::SetInterfaceSysctl(paths.proc_root, false, req.ifname, key, value);
          !s.ok()) {
        return AnnotateCni(s, "interface " + req.ifname);
      }
    }
  }
  if (!probing) {
    for (const IpConfig& c : ips) {
      if (auto s = pod.AddAddress(ifindex, c.address); !s.ok()) {
        return AnnotateCni(s, "interface " + req.ifname);
      }
    }
  }
  if (auto s = pod.SetLinkUp(ifindex, true); !s.ok()) {
    return AnnotateCni(s, "interface " + req.ifname + ": set up");
  }
  ASSIGN_OR_RETURN(LinkInfo link, pod.GetLinkByIndex(ifindex));
  net::ProbeOptions probe;
  probe.count = ctx.config.probe_count;
  probe.interval = std::chrono::milliseconds(ctx.config.probe_interval_ms);

  std::vector<std::string> announced;  // by the probe itself
  if (probing) {
    // The conflict probe and the gateway check run at once (one window, not their sum), before
    // the address is configured: a conflict leaves nothing to undo on the link.
    auto scope = net::ScopedNetNs::Enter(pod_ns);
    if (!scope.ok()) return AnnotateCni(scope.status(), "netns " + req.netns);
    const auto gateway_budget = std::chrono::milliseconds(ctx.config.gateway_timeout_ms);
    for (const IpConfig& c : ips) {
      const IpPrefix& ip = c.address;
      const std::optional<IpAddr>& gw = c.gateway;
      if (!ip.addr().is_v4()) continue;
      const bool conflict = DetectConflict(ctx.config, gw.has_value());
      const bool gateway = gw && gw->is_v4() && DetectGateway(ctx.config, true);
      if (!conflict && !gateway) continue;
      net::ProbeOptions window = probe;
      if (!conflict) window.count = 0;
      // One announcement once the address is known to be free (arp_notify is off while
      // probing), from the probe's own socket.
      auto out = net::ProbeAddressAndGateway(ifindex, link.mac, ip.addr(),
                                             gateway ? gw : std::optional<IpAddr>(), window,
                                             gateway_budget, /*announcements=*/1);
      if (!out.ok()) return AnnotateCni(out.status(), "interface " + req.ifname);
      if (out->conflict_mac) {
        if (InProcessIpam(ctx)) {
          if (auto s = ipam::IpamQuarantine(MakeIpamArgs(ctx), ip.addr().ToString()); !s.ok()) {
            spdlog::error("quarantine of {} failed: {}", ip.addr().ToString(), s.ToString());
          }
        }
        return CniError(kAddressConflict,
                        fmt::format("interface {}: address {} is already in use on the rail "
                                    "(answered by {}); the address is quarantined",
                                    req.ifname, ip.addr().ToString(), *out->conflict_mac),
                        "RFC 5227 ARP probe conflict");
      }
      announced.push_back(ip.addr().ToString());
      if (gateway && !out->gateway_mac) {
        return CniError(kGatewayUnreachable,
                        fmt::format("interface {}: gateway {} of address {} did not answer ARP "
                                    "within {} ms",
                                    req.ifname, gw->ToString(), ip.addr().ToString(),
                                    ctx.config.gateway_timeout_ms),
                        "gateway detection (detectGateway) failed");
      }
    }
  }
  if (probing) {
    for (const IpConfig& c : ips) {
      if (auto s = pod.AddAddress(ifindex, c.address); !s.ok()) {
        return AnnotateCni(s, "interface " + req.ifname);
      }
    }
    auto scope = net::ScopedNetNs::Enter(pod_ns);
    if (!scope.ok()) return AnnotateCni(scope.status(), "netns " + req.netns);
    for (const IpConfig& c : ips) {
      const IpPrefix& ip = c.address;
      if (!ip.addr().is_v4() ||
          std::count(announced.begin(), announced.end(), ip.addr().ToString()) > 0) {
        continue;
      }
      if (auto s = net::AnnounceAddress(ifindex, link.mac, ip.addr()); !s.ok()) {
        spdlog::warn("interface {}: gratuitous ARP for {} failed: {}", req.ifname,
                     ip.addr().ToString(), s.ToString());
      }
    }
  }
  RDMASHARE_FAILPOINT("macvlan.add.after_addresses");
  const RoutingPlan plan =
      PlanRouting(result.ips, result.routes, ifindex, table, ctx.config.rule_priority);
  for (const net::Route& r : plan.routes) {
    if (auto s = pod.AddRoute(r); !s.ok() && !absl::IsAlreadyExists(s)) {
      return AnnotateCni(s, "interface " + req.ifname);
    }
  }
  RDMASHARE_FAILPOINT("macvlan.add.after_routes");
  for (const net::Rule& r : plan.rules) {
    if (auto s = pod.AddRule(r); !s.ok()) return AnnotateCni(s, "interface " + req.ifname);
    undo.Push([&pod, r] { (void)pod.DeleteRule(r); });
  }
  RDMASHARE_FAILPOINT("macvlan.add.after_rules");

  Interface iface;
  iface.name = req.ifname;
  iface.mac = link.mac;
  iface.mtu = link.mtu;
  iface.sandbox = req.netns;
  if (master.rdma) iface.pci_id = master.rdma->pci_address;
  result.interfaces = {iface};
  for (IpConfig& c : result.ips) c.interface = 0;
  undo.Commit();
  spdlog::info("ADD container={} ifname={} master={} table={} ips={}", req.container_id, req.ifname,
               master.link.name, table ? std::to_string(*table) : "none",
               result.ips.front().address.ToString());
  return EncodeResult(result, ctx.conf.cni_version);
}

// ---------------------------------------------------------------------------------------- DEL

// Removes this (container, ifname)'s macvlan and its policy rules from the pod netns. With
// deferLinkDelete and a non-null `deferred`, the link is renamed to DeadLinkName and stripped of
// its addresses instead, and its deletion is set in `deferred` (run after the reply): the
// kernel's unregister path waits for an RCU barrier (~20 ms) that nothing pod-visible depends on.
absl::Status CleanupPod(const Context& ctx, const NetNs& ns, DeferredWork* deferred) {
  const CniRequest& req = *ctx.request;
  auto pod_or = NetlinkIn(ns);
  if (!pod_or.ok()) return AnnotateCni(pod_or.status(), "netns " + req.netns);
  std::shared_ptr<Netlink> pod_nl(std::move(*pod_or));
  Netlink& pod = *pod_nl;
  std::set<IpPrefix> addrs;
  const std::string dead = DeadLinkName(req.container_id, req.ifname);
  std::optional<int> delete_later;  // at most one: only CNI_IFNAME itself is deferred
  // A leftover renamed link means an earlier DEL died after stripping its addresses (it keeps
  // only link-local ones): its address set no longer says which rules were its own.
  bool addrs_unknown = false;
  // A leftover of an earlier deferred DEL first, so the name is free for this one.
  for (const std::string& name : {dead, req.ifname, TempLinkName(req.container_id, req.ifname)}) {
    auto link = pod.GetLink(name);
    if (!link.ok()) continue;
    if (link->kind != "macvlan") {
      spdlog::warn("DEL: {} in netns {} is a {} link, not ours; left alone", name, req.netns,
                   link->kind.empty() ? "physical" : link->kind);
      continue;
    }
    if (name == dead) addrs_unknown = true;
    std::vector<IpPrefix> own;
    if (auto a = pod.ListAddresses(link->index); a.ok()) own = *a;
    addrs.insert(own.begin(), own.end());
    if (deferred != nullptr && ctx.config.defer_link_delete && name == req.ifname &&
        pod.RenameLink(link->index, dead).ok()) {
      for (const IpPrefix& ip : own) {
        // fe80::/10 goes with the link; only routable addresses must leave now.
        if (!ip.addr().is_v4() && ip.addr().IsLinkLocalUnicast()) continue;
        if (auto s = pod.DeleteAddress(link->index, ip); !s.ok() && !absl::IsNotFound(s)) {
          spdlog::warn("DEL: {}: {}", dead, s.ToString());
        }
      }
      delete_later = link->index;
      continue;
    }
    if (auto s = pod.DeleteLink(link->index); !s.ok() && !absl::IsNotFound(s)) {
      return AnnotateCni(s, "interface " + name);
    }
  }
  if (delete_later) {
    *deferred = [pod_nl, index = *delete_later, netns = req.netns] {
      if (auto s = pod_nl->DeleteLink(index); !s.ok() && !absl::IsNotFound(s)) {
        spdlog::error("deferred delete of link #{} in netns {}: {}", index, netns, s.ToString());
      }
    };
  }
  RDMASHARE_FAILPOINT("macvlan.del.after_links");
  if (!ctx.config.policy_routing) return absl::OkStatus();
  auto table = ResolveRouteTable(ctx.config, req.ifname);
  if (!table.ok()) return absl::OkStatus();
  auto rules = pod.ListRules(AF_UNSPEC);
  if (!rules.ok()) return AnnotateCni(rules.status(), "netns " + req.netns);
  for (const net::Rule& r : OwnRules(*rules, *table, addrs, addrs_unknown)) {
    (void)pod.DeleteRule(r);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Del(const CniRequest& req, const HostPaths& paths,
                                DeferredWork* deferred) {
  ASSIGN_OR_RETURN(Context ctx, Prepare(req, paths));
  // The pod side: only in a pod netns that still exists and is not the host's (unless allowed),
  // under the netns lock that ADD takes too. A host netns refused here was refused at ADD as
  // well, so nothing of ours is there; the IPAM release below still runs, as for a netns that is
  // gone, so the DEL succeeds and the runtime stops retrying it.
  std::optional<NetNs> pod_ns;
  if (!req.netns.empty()) {
    auto ns = NetNs::Open(req.netns);
    if (!ns.ok()) {
      spdlog::log(absl::IsNotFound(ns.status()) ? spdlog::level::info : spdlog::level::warn,
                  "DEL: netns {} is gone or unusable ({}); nothing to remove there", req.netns,
                  ns.status().message());
    } else {
      ASSIGN_OR_RETURN(bool own, IsOwnNetNs(*ns, paths.proc_root));
      if (own && !ctx.config.allow_host_netns) {
        spdlog::warn(
            "DEL: CNI_NETNS {} is the plugin's own (host) network namespace and "
            "allowHostNetns is not set: no link or rule is touched there",
            req.netns);
      } else {
        pod_ns.emplace(std::move(*ns));
      }
    }
  }
  std::optional<ExclusiveFlock> pod_lock;
  if (pod_ns) {
    ASSIGN_OR_RETURN(ExclusiveFlock lock, LockPodNetNs(*pod_ns, paths));
    pod_lock.emplace(std::move(lock));
  }
  absl::Status pod_status = pod_ns ? CleanupPod(ctx, *pod_ns, deferred) : absl::OkStatus();
  RDMASHARE_FAILPOINT("macvlan.del.after_pod_cleanup");
  absl::Status ipam_status = ctx.config.ipam_type.empty() ? absl::OkStatus() : IpamRelease(ctx);
  RETURN_IF_ERROR(pod_status);
  RETURN_IF_ERROR(ipam_status);
  spdlog::info("DEL container={} ifname={}", req.container_id, req.ifname);
  return std::string();
}

// -------------------------------------------------------------------------------------- CHECK

absl::Status CheckFailed(const std::string& what) { return CniError(kIoFailure, "CHECK: " + what); }

absl::StatusOr<std::string> Check(const CniRequest& req, const HostPaths& paths) {
  ASSIGN_OR_RETURN(Context ctx, Prepare(req, paths));
  RETURN_IF_ERROR(RequireIpam(ctx));
  if (!ctx.conf.prev_result) {
    return CniError(kInvalidNetworkConfig, "CHECK: prevResult is required");
  }
  ASSIGN_OR_RETURN(Result prev, ParseResult(*ctx.conf.prev_result));
  if (InProcessIpam(ctx)) {
    RETURN_IF_ERROR(ipam::IpamCheck(MakeIpamArgs(ctx), prev));
  } else {
    RETURN_IF_ERROR(DelegateCheck(ctx.config.ipam_type, req, req.stdin_data));
  }
  ASSIGN_OR_RETURN(NetNs pod_ns, OpenPodNetNs(req.netns));
  RETURN_IF_ERROR(RefuseHostNetNs(ctx, pod_ns, paths));
  auto host_or = Netlink::Open();
  if (!host_or.ok()) return AnnotateCni(host_or.status(), "host netlink");
  ASSIGN_OR_RETURN(Master master, FindMaster(**host_or, ctx.config));
  if (master.rdma && master.rdma->port_state != "ACTIVE") {
    return CheckFailed(fmt::format("master {}: RDMA device {} port {} is {}, not ACTIVE",
                                   master.link.name, master.rdma->ibdev, master.rdma->port,
                                   master.rdma->port_state));
  }
  auto pod_or = NetlinkIn(pod_ns);
  if (!pod_or.ok()) return AnnotateCni(pod_or.status(), "netns " + req.netns);
  Netlink& pod = **pod_or;
  auto link = pod.GetLink(req.ifname);
  if (!link.ok()) {
    return CheckFailed(fmt::format("interface {} not found in netns {}", req.ifname, req.netns));
  }
  if (link->kind != "macvlan") {
    return CheckFailed(fmt::format("interface {} is a {} link, not macvlan", req.ifname,
                                   link->kind.empty() ? "physical" : link->kind));
  }
  if (link->macvlan_mode != ctx.config.mode) {
    return CheckFailed(fmt::format("interface {} has mode {}, config says {}", req.ifname,
                                   link->macvlan_mode, ctx.config.mode));
  }
  if (link->parent_index != master.link.index) {
    return CheckFailed(
        fmt::format("interface {} is not on master {}", req.ifname, master.link.name));
  }
  std::optional<int> prev_index;
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    if (prev.interfaces[i].name == req.ifname) prev_index = static_cast<int>(i);
  }
  if (!prev_index) {
    return CheckFailed(fmt::format("prevResult has no interface {}", req.ifname));
  }
  const Interface& pi = prev.interfaces[*prev_index];
  if (!pi.mac.empty() && pi.mac != link->mac) {
    return CheckFailed(
        fmt::format("interface {} has MAC {}, prevResult says {}", req.ifname, link->mac, pi.mac));
  }
  if (!link->admin_up) return CheckFailed(fmt::format("interface {} is down", req.ifname));
  ASSIGN_OR_RETURN(std::vector<IpPrefix> have, pod.ListAddresses(link->index));
  Result mine;
  for (const IpConfig& c : prev.ips) {
    if (c.interface && *c.interface != *prev_index) continue;
    const IpPrefix& want = c.address;
    if (std::find(have.begin(), have.end(), want) == have.end()) {
      return CheckFailed(fmt::format("interface {} lacks address {}", req.ifname, want.ToString()));
    }
    mine.ips.push_back(c);
  }
  mine.routes = prev.routes;
  ASSIGN_OR_RETURN(std::optional<uint32_t> table, PolicyTable(ctx.config, req.ifname));
  const RoutingPlan plan =
      PlanRouting(mine.ips, mine.routes, link->index, table, ctx.config.rule_priority);
  ASSIGN_OR_RETURN(std::vector<net::Route> routes, pod.ListRoutes(AF_UNSPEC));
  for (const net::Route& want : plan.routes) {
    bool found = std::any_of(routes.begin(), routes.end(), [&](const net::Route& r) {
      return r.dst == want.dst && r.table == want.table && r.ifindex == want.ifindex &&
             r.gateway == want.gateway;
    });
    if (!found) {
      return CheckFailed(
          fmt::format("interface {}: route {} is missing", req.ifname, net::RouteString(want)));
    }
  }
  ASSIGN_OR_RETURN(std::vector<net::Rule> rules, pod.ListRules(AF_UNSPEC));
  for (const net::Rule& want : plan.rules) {
    if (std::find(rules.begin(), rules.end(), want) == rules.end()) {
      return CheckFailed(
          fmt::format("interface {}: rule {} is missing", req.ifname, net::RuleString(want)));
    }
  }
  return std::string();
}

// ------------------------------------------------------------------------------- STATUS / GC

absl::StatusOr<std::string> Status(const CniRequest& req, const HostPaths& paths) {
  ASSIGN_OR_RETURN(Context ctx, Prepare(req, paths));
  auto host_or = Netlink::Open();
  if (!host_or.ok()) return CniError(kPluginNotAvailable, "host netlink unavailable");
  auto master = FindMaster(**host_or, ctx.config);
  if (!master.ok()) {
    return CniError(kPluginNotAvailable, std::string(master.status().message()),
                    CniDetails(master.status()));
  }
  if (!master->link.admin_up || !master->link.oper_up) {
    return CniError(kPluginNotAvailable, fmt::format("master {} is down", master->link.name));
  }
  if (master->rdma && master->rdma->port_state != "ACTIVE") {
    return CniError(kPluginNotAvailable,
                    fmt::format("master {}: RDMA device {} port {} is {}", master->link.name,
                                master->rdma->ibdev, master->rdma->port, master->rdma->port_state));
  }
  if (InProcessIpam(ctx)) {
    RETURN_IF_ERROR(ipam::IpamStatus(MakeIpamArgs(ctx)));
  } else if (!ctx.config.ipam_type.empty()) {
    auto out = DelegateCommand(ctx.config.ipam_type, kCmdStatus, req, req.stdin_data);
    if (!out.ok()) return out.status();
  }
  return std::string();
}

absl::StatusOr<std::string> Gc(const CniRequest& req, const HostPaths& paths) {
  ASSIGN_OR_RETURN(Context ctx, Prepare(req, paths));
  RETURN_IF_ERROR(RequireIpam(ctx));
  if (InProcessIpam(ctx)) {
    ASSIGN_OR_RETURN(std::vector<Attachment> valid, ParseValidAttachments(ctx.conf));
    RETURN_IF_ERROR(ipam::IpamGc(MakeIpamArgs(ctx), valid));
  } else {
    auto out = DelegateCommand(ctx.config.ipam_type, kCmdGc, req, req.stdin_data);
    if (!out.ok()) return out.status();
  }
  return std::string();
}

}  // namespace

absl::StatusOr<std::string> MacvlanPlugin::Run(const CniRequest& request) {
  if (request.command == kCmdVersion) {
    return EncodeVersionInfo(VersionFromStdin(request.stdin_data));
  }
  if (request.command == kCmdAdd) return Add(request, paths_);
  if (request.command == kCmdDel) return Del(request, paths_, &deferred_);
  if (request.command == kCmdCheck) return Check(request, paths_);
  if (request.command == kCmdStatus) return Status(request, paths_);
  if (request.command == kCmdGc) return Gc(request, paths_);
  return CniError(kInvalidEnv, fmt::format("CNI_COMMAND \"{}\" is not supported", request.command));
}

PluginOutput RunMacvlan(const std::map<std::string, std::string>& env, std::string stdin_data,
                        const HostPaths& paths) {
  std::string version = VersionFromStdin(stdin_data);
  PluginOutput out;
  auto request = ParseRequest(env, std::move(stdin_data));
  MacvlanPlugin plugin(paths);
  absl::StatusOr<std::string> result = request.ok() ? plugin.Run(*request) : request.status();
  out.after_reply = plugin.TakeDeferred();
  if (result.ok()) {
    out.stdout_data = *result;
    return out;
  }
  spdlog::error("{} failed: {}", request.ok() ? request->command : "request",
                result.status().ToString());
  out.stdout_data = EncodeError(result.status(), version);
  out.exit_code = 1;
  return out;
}

}  // namespace rdmashare::cni::macvlan
