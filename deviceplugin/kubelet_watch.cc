#include "deviceplugin/kubelet_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/absl_format.h"
#include "common/files.h"
#include "common/inotify.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr char kKubeletSocketName[] = "kubelet.sock";

}  // namespace

SocketIdentity IdentityOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {0, 0};
  return {st.st_ino, static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

KubeletWatch::KubeletWatch(const std::string& kubelet_dir)
    : device_plugins_dir_(JoinPath(kubelet_dir, "device-plugins")),
      registry_dir_(JoinPath(kubelet_dir, "plugins_registry")),
      kubelet_socket_(JoinPath(device_plugins_dir_, kKubeletSocketName)) {}

absl::Status KubeletWatch::SetUp(bool watch_registry) {
  inotify_fd_.Reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_fd_.valid()) {
    return absl::InternalError(fmt::format("inotify_init1: {}", std::strerror(errno)));
  }
  uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE_SELF;
  if (::inotify_add_watch(inotify_fd_.get(), device_plugins_dir_.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch {}: {}", device_plugins_dir_, std::strerror(errno)));
  }
  if (watch_registry && ::inotify_add_watch(inotify_fd_.get(), registry_dir_.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch {}: {}", registry_dir_, std::strerror(errno)));
  }
  return absl::OkStatus();
}

void KubeletWatch::Drain() {
  DrainInotify(inotify_fd_.get(), [&](const struct inotify_event& ev) {
    if (ev.len > 0) spdlog::debug("kubelet dir event name={} mask={:#x}", ev.name, ev.mask);
    if (ev.mask & IN_DELETE_SELF) {
      spdlog::warn("watched kubelet directory was removed; recreating {}", device_plugins_dir_);
    }
  });
}

void KubeletWatch::RecreateDirIfGone(bool watch_registry) {
  if (PathExists(device_plugins_dir_)) return;
  if (MakeDirs(device_plugins_dir_, 0750).ok()) {
    absl::Status st = SetUp(watch_registry);
    if (!st.ok()) spdlog::error("re-watch failed: {}", st.message());
  }
}

SocketIdentity KubeletWatch::Observe(bool* restarted) {
  *restarted = false;
  const SocketIdentity kubelet = IdentityOf(kubelet_socket_);
  if (kubelet.first != 0 && kubelet != last_kubelet_) {
    if (last_kubelet_.first != 0) {
      spdlog::info("kubelet restarted (new {})", kubelet_socket_);
      *restarted = true;
    }
    last_kubelet_ = kubelet;
  }
  return kubelet;
}

void KubeletWatch::LogWaiting(bool waiting, SocketIdentity kubelet, size_t resources) {
  if (waiting) {
    auto now = std::chrono::steady_clock::now();
    if (!wait_logged_ || now - *wait_logged_ >= kKubeletWaitLogInterval) {
      spdlog::warn(
          "waiting for kubelet: no {} yet ({} resources will register when it appears; is "
          "kubelet running and --kubelet-dir right?)",
          kubelet_socket_, resources);
      wait_logged_ = now;
    }
  } else if (wait_logged_ && kubelet.first != 0) {
    spdlog::info("kubelet appeared: {}", kubelet_socket_);
    wait_logged_.reset();
  }
}

}  // namespace rdmashare::deviceplugin
