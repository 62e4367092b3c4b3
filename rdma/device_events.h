// Device event sources: what makes rdmashare-dp rescan the node between periodic resyncs.
//
// An EventSource exposes one pollable file descriptor; the daemon polls it with its other fds
// and, when it turns readable, calls Drain() to consume *every* queued event before it scans
// once. Events carry no data the daemon relies on: each one only triggers a reconcile (Scan ->
// diff -> new snapshots), so a lost or coalesced event costs nothing as long as one scan follows.
//
//  * UdevEventSource (rdma/udev_events.h, libudev; what rdmashare-dp uses): libudev's monitor on
//    the "kernel" source with subsystem filters, plus the same rtnetlink link socket.
//  * NetlinkEventSource: the kernel's uevents (NETLINK_KOBJECT_UEVENT, group 1: the "kernel"
//    source; no udevd is needed) for the subsystems infiniband, infiniband_verbs, infiniband_mad,
//    net and pci with the actions add, remove, change, move, bind and unbind, plus rtnetlink
//    RTNLGRP_LINK (RTM_NEWLINK / RTM_DELLINK: operstate and carrier changes raise no uevent).
//  * FakeEventSource: Trigger() from tests, deterministic.
//
// Threading: fd() and Drain() are called by the daemon's event loop thread only;
// FakeEventSource::Trigger may be called from any thread.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace rdmashare::rdma {

// What one Drain() consumed.
struct EventBatch {
  // Relevant events (each alone would have triggered a reconcile).
  int relevant = 0;
  // Events read and ignored (other subsystems, libudev copies, unrelated netlink messages).
  int ignored = 0;
  // The kernel dropped events (ENOBUFS): a reconcile is needed, whatever `relevant` says.
  bool overflow = false;
  // Short descriptions of the first few relevant events, for debug logs
  // ("uevent change@/devices/.../net/eth0 (net)", "link ifindex=7 eth0").
  std::vector<std::string> samples;

  bool needs_reconcile() const { return relevant > 0 || overflow; }
  // Counts one relevant event; keeps its description among the first few samples.
  void Add(std::string what);
};

class EventSource {
 public:
  virtual ~EventSource();
  // Readable (POLLIN) while events are queued. Owned by the source.
  virtual int fd() const = 0;
  // Consumes every queued event without blocking.
  virtual EventBatch Drain() = 0;
};

// Test source: Trigger() queues an event and makes fd() readable.
class FakeEventSource final : public EventSource {
 public:
  FakeEventSource();
  int fd() const override { return fd_.get(); }
  EventBatch Drain() override ABSL_LOCKS_EXCLUDED(mu_);
  // Queues one relevant event described by `what`. Thread-safe.
  void Trigger(const std::string& what) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  UniqueFd fd_;  // eventfd
  absl::Mutex mu_;
  std::vector<std::string> queued_ ABSL_GUARDED_BY(mu_);
};

// The description of a kernel uevent message (as read from a NETLINK_KOBJECT_UEVENT socket:
// "ACTION@DEVPATH\0KEY=VALUE\0...") when it is relevant to RDMA discovery, nullopt otherwise
// (other subsystems or actions, libudev-format messages, malformed input). Pure; for tests.
std::optional<std::string> RelevantUevent(const char* data, size_t len);

// The uevent subsystems RDMA discovery follows.
extern const char* const kUeventSubsystems[5];

// "uevent ACTION@DEVPATH (SUBSYSTEM)" when the subsystem is one of kUeventSubsystems and the
// action one of add, remove, change, move, bind, unbind; nullopt otherwise.
std::optional<std::string> DescribeUevent(std::string_view action, std::string_view devpath,
                                          std::string_view subsystem);

// An rtnetlink socket joined to RTNLGRP_LINK (non-blocking, close-on-exec, 4 MiB receive
// buffer), and the drain of its RTM_NEWLINK / RTM_DELLINK messages into `batch`.
absl::StatusOr<UniqueFd> OpenLinkEventSocket();
void DrainLinkEvents(int fd, EventBatch* batch);
// An epoll fd over `fds` (EPOLLIN), and the clearing of its readiness before the members are
// drained.
absl::StatusOr<UniqueFd> EpollOver(std::initializer_list<int> fds);
void ClearEpoll(int epoll_fd);

// The kernel's uevents read from the raw netlink socket, and rtnetlink link messages (see the
// file comment). The fallback when libudev's monitor cannot be had (rdma/udev_events.h).
class NetlinkEventSource final : public EventSource {
 public:
  // Opens and binds both sockets (non-blocking, close-on-exec, 4 MiB receive buffers) and an
  // epoll fd over them. Unavailable naming the socket when the kernel refuses one (e.g. no
  // permission to join the multicast group).
  static absl::StatusOr<std::unique_ptr<NetlinkEventSource>> Open();

  int fd() const override { return epoll_fd_.get(); }
  EventBatch Drain() override;

 private:
  NetlinkEventSource() = default;
  void DrainUevents(EventBatch* batch);

  UniqueFd uevent_fd_;
  UniqueFd route_fd_;
  UniqueFd epoll_fd_;
};

}  // namespace rdmashare::rdma
