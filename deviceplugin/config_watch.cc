#include "deviceplugin/config_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "common/absl_format.h"
#include "common/files.h"
#include "common/inotify.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

// ConfigMap volumes: kubelet swaps this symlink to publish a new version.
constexpr char kConfigMapDataLink[] = "..data";

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

ConfigDiff DiffConfig(const std::vector<const ResourceConfig*>& running, const PluginConfig& next) {
  ConfigDiff diff;
  std::map<std::string, const ResourceConfig*> wanted;
  for (const ResourceConfig& rc : next.resources) {
    wanted[rc.FullName()] = &rc;
    diff.wanted.insert(rc.FullName());
  }
  for (const ResourceConfig* rc : running) {
    const std::string name = rc->FullName();
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      diff.removed.insert(name);
    } else if (*it->second == *rc) {
      diff.kept.insert(name);
    } else {
      diff.changed.insert(name);
    }
  }
  for (const ResourceConfig& rc : next.resources) {
    if (diff.kept.count(rc.FullName()) == 0) diff.to_start.push_back(&rc);
  }
  return diff;
}

ConfigWatch::ConfigWatch(std::string config_path) : config_path_(std::move(config_path)) {}

void ConfigWatch::Prime() {
  if (config_path_.empty()) return;
  auto text = ReadFile(config_path_);
  if (text.ok()) config_text_ = *text;
}

absl::Status ConfigWatch::SetUp() {
  if (config_path_.empty()) return absl::OkStatus();
  inotify_fd_.Reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify_fd_.valid()) {
    return absl::InternalError(fmt::format("inotify_init1: {}", std::strerror(errno)));
  }
  const std::string dir = DirOf(config_path_);
  uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB;
  if (::inotify_add_watch(inotify_fd_.get(), dir.c_str(), mask) < 0) {
    return absl::InternalError(
        fmt::format("inotify watch config directory {}: {}", dir, std::strerror(errno)));
  }
  spdlog::info("watching {} for config changes", dir);
  return absl::OkStatus();
}

bool ConfigWatch::Drain() {
  const std::string base = BaseName(config_path_);
  bool relevant = false;
  DrainInotify(inotify_fd_.get(), [&](const struct inotify_event& ev) {
    if (ev.len > 0) {
      std::string name = ev.name;
      if (name == base || name == kConfigMapDataLink) relevant = true;
    }
    if (ev.mask & IN_Q_OVERFLOW) relevant = true;
  });
  return relevant;
}

ConfigWatch::Load ConfigWatch::Reload() {
  Load out;
  absl::StatusOr<std::string> text = ReadFile(config_path_);
  if (!text.ok()) {
    spdlog::warn("config {} unreadable, keeping the running config: {}", config_path_,
                 text.status().message());
    out.kind = Load::Kind::kUnreadable;
    return out;
  }
  if (*text == config_text_) return out;
  std::vector<std::string> warnings;
  absl::StatusOr<PluginConfig> config = ParseConfig(*text, &warnings);
  for (const std::string& w : warnings) spdlog::warn("config {}: {}", config_path_, w);
  config_text_ = *text;
  if (!config.ok()) {
    spdlog::error("config {} rejected, keeping the running config: {}", config_path_,
                  config.status().message());
    out.kind = Load::Kind::kInvalid;
    out.status = config.status();
    return out;
  }
  out.kind = Load::Kind::kChanged;
  out.config = std::move(*config);
  return out;
}

}  // namespace rdmashare::deviceplugin
