#include "rdma/udev_events.h"

#include <fcntl.h>
#include <libudev.h>

#include <cerrno>
#include <cstring>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

constexpr int kRecvBuffer = 4 << 20;

absl::Status UdevError(const std::string& what, int err) {
  return absl::UnavailableError(
      fmt::format("device events: libudev {}: {}", what, std::strerror(err < 0 ? -err : err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<UdevEventSource>> UdevEventSource::Open() {
  std::unique_ptr<UdevEventSource> src(new UdevEventSource());
  src->udev_ = udev_new();
  if (src->udev_ == nullptr) return UdevError("udev_new", errno);
  src->monitor_ = udev_monitor_new_from_netlink(src->udev_, "kernel");
  if (src->monitor_ == nullptr) return UdevError("udev_monitor_new_from_netlink(kernel)", errno);
  for (const char* subsystem : kUeventSubsystems) {
    int rc = udev_monitor_filter_add_match_subsystem_devtype(src->monitor_, subsystem, nullptr);
    if (rc < 0) return UdevError(fmt::format("filter on subsystem {}", subsystem), rc);
  }
  // Needs CAP_NET_ADMIN beyond the default limit; a smaller buffer only risks ENOBUFS, which
  // Drain turns into a rescan.
  (void)udev_monitor_set_receive_buffer_size(src->monitor_, kRecvBuffer);
  if (int rc = udev_monitor_enable_receiving(src->monitor_); rc < 0) {
    return UdevError("enable_receiving", rc);
  }
  int ufd = udev_monitor_get_fd(src->monitor_);
  if (ufd < 0) return UdevError("get_fd", ufd);
  // Drain reads until nothing is left: the socket must not block.
  int flags = ::fcntl(ufd, F_GETFL);
  if (flags < 0 || ::fcntl(ufd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return UdevError("O_NONBLOCK on the monitor socket", errno);
  }
  ASSIGN_OR_RETURN(src->route_fd_, OpenLinkEventSocket());
  ASSIGN_OR_RETURN(src->epoll_fd_, EpollOver({ufd, src->route_fd_.get()}));
  return src;
}

UdevEventSource::~UdevEventSource() {
  if (monitor_ != nullptr) udev_monitor_unref(monitor_);
  if (udev_ != nullptr) udev_unref(udev_);
}

EventBatch UdevEventSource::Drain() {
  EventBatch batch;
  ClearEpoll(epoll_fd_.get());
  DrainUdev(&batch);
  DrainLinkEvents(route_fd_.get(), &batch);
  return batch;
}

void UdevEventSource::DrainUdev(EventBatch* batch) {
  for (;;) {
    errno = 0;
    struct udev_device* dev = udev_monitor_receive_device(monitor_);
    if (dev == nullptr) {
      // The queue overflowed: events were lost, a rescan catches up.
      if (errno == ENOBUFS) {
        batch->overflow = true;
        continue;
      }
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained (or a malformed message libudev dropped)
    }
    const char* action = udev_device_get_action(dev);
    const char* devpath = udev_device_get_devpath(dev);
    const char* subsystem = udev_device_get_subsystem(dev);
    std::optional<std::string> what =
        DescribeUevent(action ? action : "", devpath ? devpath : "", subsystem ? subsystem : "");
    if (what) {
      batch->Add(std::move(*what));
    } else {
      ++batch->ignored;
    }
    udev_device_unref(dev);
  }
}

}  // namespace rdmashare::rdma
