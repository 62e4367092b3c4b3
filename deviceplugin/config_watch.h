// ConfigWatch: the daemon's view of its config file. It watches the file's directory with
// inotify (a ConfigMap volume publishes a new version by swapping its "..data" symlink, so the
// file itself is never written), reads and parses the file when it changed, and diffs a new
// config against the running resources: which keep their servers, which changed (restart with
// the new settings), which are gone, and which are to start.
//
// Ownership: owns its inotify descriptor (O_CLOEXEC) and the text of the config last read.
// Threading: the daemon's event loop only. DiffConfig is pure.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/unique_fd.h"
#include "deviceplugin/config.h"

namespace rdmashare::deviceplugin {

// A new config against the running resources.
struct ConfigDiff {
  // Names of running resources whose config is the same / differs / is no longer wanted.
  std::set<std::string> kept, changed, removed;
  // Resources of the new config that are not kept, in config order (the changed ones included).
  std::vector<const ResourceConfig*> to_start;
  // Full names of every resource of the new config.
  std::set<std::string> wanted;
};

// Diffs `next` (its pointers stay valid while `next` does) against the configs of the running
// resources.
ConfigDiff DiffConfig(const std::vector<const ResourceConfig*>& running, const PluginConfig& next);

class ConfigWatch {
 public:
  // `config_path` empty: no file, no watch, nothing ever changes.
  explicit ConfigWatch(std::string config_path);

  // Remembers the file's current text as the running config's (a read error leaves it empty).
  void Prime();
  // Watches the file's directory (no-op without a file).
  absl::Status SetUp();
  // The inotify descriptor to poll for POLLIN (-1 without a watch).
  int fd() const { return inotify_fd_.get(); }
  // Reads the pending events; true when one concerns the file, ConfigMap's ..data, or the queue
  // overflowed.
  bool Drain();

  // The outcome of reading the file again.
  struct Load {
    enum class Kind {
      kUnchanged,   // same text as the running config
      kUnreadable,  // mid-swap or deleted (logged); the next event retries
      kInvalid,     // rejected (logged); `status` says why
      kChanged,     // `config` is the new config
    };
    Kind kind = Kind::kUnchanged;
    absl::Status status;
    PluginConfig config;
  };
  // Reads and parses the file when its text changed (parse warnings are logged). An invalid text
  // becomes the one compared against next time, so it is reported once.
  Load Reload();

  const std::string& path() const { return config_path_; }

 private:
  const std::string config_path_;
  std::string config_text_;
  UniqueFd inotify_fd_;
};

}  // namespace rdmashare::deviceplugin
