// UdevEventSource: rdmashare-dp's production device event source. libudev's monitor on the
// "kernel" source (the kernel's own uevents; no udevd needed, as in a container) with filters
// for the subsystems RDMA discovery follows (kUeventSubsystems; for the kernel source libudev
// applies them in user space, so other subsystems wake the loop but cause no rescan), plus the
// rtnetlink link socket (operstate and carrier changes raise no uevent).
//
// Lives in its own library (rs_rdma_udev): libudev is shared-only in Debian, and rs_rdma must
// stay linkable into the static CNI plugins and CLI.
//
// Threading: fd() and Drain() are called by one thread (the daemon's event loop).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "rdma/device_events.h"

struct udev;
struct udev_monitor;

namespace rdmashare::rdma {

class UdevEventSource final : public EventSource {
 public:
  // Unavailable naming the step when libudev or the kernel refuse (e.g. no permission to join
  // the uevent multicast group).
  static absl::StatusOr<std::unique_ptr<UdevEventSource>> Open();
  ~UdevEventSource() override;

  int fd() const override { return epoll_fd_.get(); }
  EventBatch Drain() override;

 private:
  UdevEventSource() = default;
  void DrainUdev(EventBatch* batch);

  struct udev* udev_ = nullptr;
  struct udev_monitor* monitor_ = nullptr;
  UniqueFd route_fd_;
  UniqueFd epoll_fd_;
};

}  // namespace rdmashare::rdma
