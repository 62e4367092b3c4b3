#include "rdma/device_events.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

constexpr size_t kMaxSamples = 4;
constexpr int kRecvBuffer = 4 << 20;

bool IsRelevantSubsystem(std::string_view s) {
  return s == "infiniband" || s == "infiniband_verbs" || s == "infiniband_mad" || s == "net" ||
         s == "pci";
}

bool IsRelevantAction(std::string_view a) {
  return a == "add" || a == "remove" || a == "change" || a == "move" || a == "bind" ||
         a == "unbind";
}

absl::Status SocketError(const std::string& what) {
  return absl::UnavailableError(fmt::format("device events: {}: {}", what, std::strerror(errno)));
}

}  // namespace

const char* const kUeventSubsystems[] = {"infiniband", "infiniband_verbs", "infiniband_mad", "net",
                                         "pci"};

void EventBatch::Add(std::string what) {
  ++relevant;
  if (samples.size() < kMaxSamples) samples.push_back(std::move(what));
}

std::optional<std::string> DescribeUevent(std::string_view action, std::string_view devpath,
                                          std::string_view subsystem) {
  if (!IsRelevantSubsystem(subsystem) || !IsRelevantAction(action)) return std::nullopt;
  return fmt::format("uevent {}@{} ({})", action, devpath, subsystem);
}

EventSource::~EventSource() = default;

FakeEventSource::FakeEventSource() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void FakeEventSource::Trigger(const std::string& what) {
  {
    absl::MutexLock lock(&mu_);
    queued_.push_back(what);
  }
  uint64_t one = 1;
  ssize_t n = ::write(fd_.get(), &one, sizeof(one));
  (void)n;
}

EventBatch FakeEventSource::Drain() {
  uint64_t v;
  ssize_t n = ::read(fd_.get(), &v, sizeof(v));
  (void)n;
  EventBatch batch;
  absl::MutexLock lock(&mu_);
  for (std::string& what : queued_) batch.Add(std::move(what));
  queued_.clear();
  return batch;
}

std::optional<std::string> RelevantUevent(const char* data, size_t len) {
  std::string_view msg(data, len);
  // The header "ACTION@DEVPATH" is followed by NUL-separated KEY=VALUE pairs. libudev's copies
  // start with "libudev\0" and are not ours to read (group 2, but be safe).
  size_t header_end = msg.find('\0');
  if (header_end == std::string_view::npos) return std::nullopt;
  std::string_view header = msg.substr(0, header_end);
  if (header.find('@') == std::string_view::npos) return std::nullopt;
  std::string_view action, devpath, subsystem;
  size_t pos = header_end + 1;
  while (pos < msg.size()) {
    size_t end = msg.find('\0', pos);
    if (end == std::string_view::npos) end = msg.size();
    std::string_view kv = msg.substr(pos, end - pos);
    if (kv.rfind("ACTION=", 0) == 0) action = kv.substr(7);
    if (kv.rfind("DEVPATH=", 0) == 0) devpath = kv.substr(8);
    if (kv.rfind("SUBSYSTEM=", 0) == 0) subsystem = kv.substr(10);
    pos = end + 1;
  }
  return DescribeUevent(action, devpath, subsystem);
}

absl::StatusOr<std::unique_ptr<NetlinkEventSource>> NetlinkEventSource::Open() {
  std::unique_ptr<NetlinkEventSource> src(new NetlinkEventSource());
  src->uevent_fd_.Reset(
      ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT));
  if (!src->uevent_fd_.valid()) return SocketError("socket(NETLINK_KOBJECT_UEVENT)");
  // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to what the limits allow.
  if (::setsockopt(src->uevent_fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &kRecvBuffer,
                   sizeof(kRecvBuffer)) != 0) {
    ::setsockopt(src->uevent_fd_.get(), SOL_SOCKET, SO_RCVBUF, &kRecvBuffer, sizeof(kRecvBuffer));
  }
  struct sockaddr_nl addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = 1;  // the kernel's own uevents
  if (::bind(src->uevent_fd_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return SocketError("bind NETLINK_KOBJECT_UEVENT group 1");
  }

  ASSIGN_OR_RETURN(src->route_fd_, OpenLinkEventSocket());

  ASSIGN_OR_RETURN(src->epoll_fd_, EpollOver({src->uevent_fd_.get(), src->route_fd_.get()}));
  return src;
}

absl::StatusOr<UniqueFd> OpenLinkEventSocket() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd.valid()) return SocketError("socket(NETLINK_ROUTE)");
  // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to what the limits allow.
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &kRecvBuffer, sizeof(kRecvBuffer)) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kRecvBuffer, sizeof(kRecvBuffer));
  }
  struct sockaddr_nl addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return SocketError("bind NETLINK_ROUTE RTNLGRP_LINK");
  }
  return fd;
}

absl::StatusOr<UniqueFd> EpollOver(std::initializer_list<int> fds) {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return SocketError("epoll_create1");
  for (int fd : fds) {
    struct epoll_event ev;
    std::memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return SocketError("epoll_ctl");
  }
  return ep;
}

void ClearEpoll(int epoll_fd) {
  // Level-triggered: the epoll fd stays readable while a member has data; the callers empty
  // every member right after.
  struct epoll_event evs[4];
  (void)::epoll_wait(epoll_fd, evs, 4, 0);
}

EventBatch NetlinkEventSource::Drain() {
  EventBatch batch;
  ClearEpoll(epoll_fd_.get());
  DrainUevents(&batch);
  DrainLinkEvents(route_fd_.get(), &batch);
  return batch;
}

void NetlinkEventSource::DrainUevents(EventBatch* batch) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(uevent_fd_.get(), buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        batch->overflow = true;
        continue;
      }
      return;  // EAGAIN: drained
    }
    if (auto what = RelevantUevent(buf, static_cast<size_t>(n))) {
      batch->Add(std::move(*what));
    } else {
      ++batch->ignored;
    }
  }
}

void DrainLinkEvents(int fd, EventBatch* batch) {
  alignas(struct nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        batch->overflow = true;
        continue;
      }
      return;
    }
    int len = static_cast<int>(n);
    // NLMSG_OK compares the u32 nlmsg_len with the int length (clang: -Wsign-compare).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
#pragma GCC diagnostic pop
      if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) {
        ++batch->ignored;
        continue;
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
        ++batch->ignored;
        continue;
      }
      auto* ifi = static_cast<struct ifinfomsg*>(NLMSG_DATA(h));
      std::string name;
      int alen = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type == IFLA_IFNAME) {
          const char* p = static_cast<const char*>(RTA_DATA(a));
          name.assign(p, strnlen(p, RTA_PAYLOAD(a)));
        }
      }
      batch->Add(fmt::format("link {} ifindex={} {}", h->nlmsg_type == RTM_NEWLINK ? "new" : "del",
                             ifi->ifi_index, name));
    }
  }
}

}  // namespace rdmashare::rdma
