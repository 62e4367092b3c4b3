// RootFlags, PathsFor and Fail (declared in command.h).
#include "tools/cli/command.h"

namespace rdmashare::cli {

const std::vector<FlagSpec>& RootFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"sysfs-root", true, "sysfs root (default /sys)"},
      {"dev-root", true, "device root (default /dev)"},
      {"proc-root", true, "procfs root (default /proc)"},
      {"kubelet-dir", true, "kubelet state directory (default /var/lib/kubelet)"},
  };
  return kFlags;
}

HostPaths PathsFor(const ParsedArgs& args, HostPaths paths) {
  paths.sys_root = args.Get("sysfs-root", paths.sys_root);
  paths.dev_root = args.Get("dev-root", paths.dev_root);
  paths.host_dev_root = paths.dev_root;
  paths.proc_root = args.Get("proc-root", paths.proc_root);
  paths.kubelet_dir = args.Get("kubelet-dir", paths.kubelet_dir);
  return paths;
}

int Fail(std::ostream& err, const std::string& command, const absl::Status& status, int code) {
  err << "rdmashare " << command << ": " << status.message() << "\n";
  return code;
}

}  // namespace rdmashare::cli
