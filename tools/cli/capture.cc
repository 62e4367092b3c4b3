// `rdmashare capture`: copies the RDMA-relevant part of a host's sysfs and /dev/infiniband into a
// fixture directory (declared in cli.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

absl::Status ErrnoStatus(const std::string& op, const std::string& path) {
  int e = errno;
  return absl::InternalError(fmt::format("capture: {} {}: {}", op, path, std::strerror(e)));
}

// True for a PCI address component ("0000:0b:00.0").
bool IsPciAddress(const std::string& s) {
  return s.size() == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.';
}

std::string DirName(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? "" : rel.substr(0, slash);
}

// Copies entries from one sysfs root to another, by path relative to the roots.
class Copier {
 public:
  Copier(std::string src, std::string dst) : src_(std::move(src)), dst_(std::move(dst)) {}

  CaptureStats& stats() { return stats_; }

  // The canonical path of src/rel relative to src ("" when it resolves outside src).
  absl::StatusOr<std::string> Resolve(const std::string& rel) const {
    ASSIGN_OR_RETURN(std::string real, RealPath(JoinPath(src_, rel)));
    if (real == src_) return std::string();
    if (real.compare(0, src_.size() + 1, src_ + "/") != 0) {
      return absl::FailedPreconditionError(
          fmt::format("capture: {} resolves outside {}: {}", rel, src_, real));
    }
    return real.substr(src_.size() + 1);
  }

  bool Exists(const std::string& rel) const {
    struct stat st;
    return ::lstat(JoinPath(src_, rel).c_str(), &st) == 0;
  }

  absl::Status MakeDir(const std::string& rel) { return MakeDirs(JoinPath(dst_, rel)); }

  // Records an entry that is not a regular file, directory or symlink; it is not copied.
  void Refuse(const std::string& rel, mode_t mode) {
    if (done_.insert(rel).second) {
      stats_.refused.push_back(fmt::format("{} ({})", rel, FileTypeName(mode)));
    }
  }

  // Copies a regular file; an unreadable attribute (write-only, or EINVAL like unused GID
  // types) becomes an empty file so directory listings stay the same.
  absl::Status CopyFile(const std::string& rel, mode_t mode) {
    if (done_.count(rel) != 0) return absl::OkStatus();
    // ReadFile opens only a regular file, non-blocking: a FIFO swapped in since the lstat is
    // refused here too.
    absl::StatusOr<std::string> content = ReadFile(JoinPath(src_, rel), 1 << 20);
    struct stat now;
    if (!content.ok() && ::lstat(JoinPath(src_, rel).c_str(), &now) == 0 && !S_ISREG(now.st_mode)) {
      Refuse(rel, now.st_mode);
      return absl::OkStatus();
    }
    done_.insert(rel);
    std::string data = content.ok() ? *content : "";
    if (!content.ok()) ++stats_.skipped;
    std::string path = JoinPath(dst_, rel);
    RETURN_IF_ERROR(MakeDirs(JoinPath(dst_, DirName(rel))));
    // The target tree is new (Capture refuses a non-empty one): nothing may exist at the path.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       (mode & 0777) | 0400));
    if (fd.get() < 0) return ErrnoStatus("create", path);
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus("write", path);
      off += static_cast<size_t>(n);
    }
    ++stats_.files;
    return absl::OkStatus();
  }

  // Recreates a symlink; an absolute target inside src becomes relative.
  absl::Status CopyLink(const std::string& rel) {
    if (!done_.insert(rel).second) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string target, ReadLink(JoinPath(src_, rel)));
    if (!target.empty() && target[0] == '/') {
      if (target.compare(0, src_.size() + 1, src_ + "/") != 0) {
        ++stats_.skipped;
        return absl::OkStatus();
      }
      std::string dir = DirName(rel);
      std::string up;
      if (!dir.empty()) {
        up = "../";
        for (char c : dir) {
          if (c == '/') up += "../";
        }
      }
      target = up + target.substr(src_.size() + 1);
    }
    std::string path = JoinPath(dst_, rel);
    RETURN_IF_ERROR(MakeDirs(JoinPath(dst_, DirName(rel))));
    if (::symlink(target.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      return ErrnoStatus("symlink", path);
    }
    ++stats_.links;
    return absl::OkStatus();
  }

  // Copies whatever `rel` is (file, link, directory tree without following links).
  absl::Status CopyAny(const std::string& rel) {
    struct stat st;
    if (::lstat(JoinPath(src_, rel).c_str(), &st) != 0) return absl::OkStatus();
    if (S_ISLNK(st.st_mode)) return CopyLink(rel);
    if (S_ISREG(st.st_mode)) return CopyFile(rel, st.st_mode);
    if (!S_ISDIR(st.st_mode)) {
      Refuse(rel, st.st_mode);
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(MakeDir(rel));
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(JoinPath(src_, rel)));
    for (const std::string& name : names) RETURN_IF_ERROR(CopyAny(JoinPath(rel, name)));
    return absl::OkStatus();
  }

  // Copies the link `rel` and, when it resolves inside src, the tree it points to.
  absl::StatusOr<std::string> CopyLinkAndTarget(const std::string& rel) {
    RETURN_IF_ERROR(CopyLink(rel));
    absl::StatusOr<std::string> target = Resolve(rel);
    if (!target.ok() || target->empty()) {
      ++stats_.skipped;
      return std::string();
    }
    RETURN_IF_ERROR(CopyAny(*target));
    return *target;
  }

  // Copies the named entries of a directory that exist.
  absl::Status CopyEntries(const std::string& dir, const std::vector<std::string>& names) {
    RETURN_IF_ERROR(MakeDir(dir));
    for (const std::string& name : names) {
      std::string rel = JoinPath(dir, name);
      if (Exists(rel)) RETURN_IF_ERROR(CopyAny(rel));
    }
    return absl::OkStatus();
  }

  // Creates the directory a link points to (so the link resolves in the copy).
  absl::Status MakeLinkTarget(const std::string& link_rel) {
    if (!Exists(link_rel)) return absl::OkStatus();
    absl::StatusOr<std::string> target = Resolve(link_rel);
    if (target.ok() && !target->empty()) return MakeDir(*target);
    return absl::OkStatus();
  }

 private:
  const std::string src_;
  const std::string dst_;
  std::set<std::string> done_;
  CaptureStats stats_;
};

const std::vector<std::string>& PciAttrs() {
  static const std::vector<std::string> kAttrs = {
      "vendor",        "device",           "class",  "numa_node", "subsystem_vendor", "revision",
      "local_cpulist", "subsystem_device", "driver", "subsystem"};
  return kAttrs;
}

// Copies a PCI function's attributes, its bus/pci/devices link and its upstream bridges.
absl::Status CopyPciFunction(Copier& c, const std::string& fn_rel) {
  std::string rel = fn_rel;
  while (!rel.empty() && IsPciAddress(BaseName(rel))) {
    RETURN_IF_ERROR(c.CopyEntries(rel, PciAttrs()));
    RETURN_IF_ERROR(c.MakeLinkTarget(JoinPath(rel, "driver")));
    RETURN_IF_ERROR(c.MakeLinkTarget(JoinPath(rel, "subsystem")));
    std::string bus_link = "bus/pci/devices/" + BaseName(rel);
    if (c.Exists(bus_link)) RETURN_IF_ERROR(c.CopyLink(bus_link));
    rel = DirName(rel);
  }
  return absl::OkStatus();
}

absl::Status CopyNetdev(Copier& c, const std::string& ifname) {
  std::string link = "class/net/" + ifname;
  if (!c.Exists(link)) return absl::OkStatus();
  RETURN_IF_ERROR(c.CopyLink(link));
  absl::StatusOr<std::string> dir = c.Resolve(link);
  if (!dir.ok() || dir->empty()) return absl::OkStatus();
  return c.CopyEntries(
      *dir, {"operstate", "carrier", "mtu", "address", "type", "ifindex", "addr_len", "dev_id",
             "dev_port", "flags", "broadcast", "device", "subsystem"});
}

}  // namespace

absl::StatusOr<CaptureStats> Capture(const HostPaths& paths, const std::string& dir) {
  if (PathExists(dir)) {
    ASSIGN_OR_RETURN(std::vector<std::string> existing, ListDir(dir));
    if (!existing.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("capture: {} is not empty (choose a new directory)", dir));
    }
  }
  ASSIGN_OR_RETURN(std::string src, RealPath(paths.sys_root));
  std::string sys_dst = JoinPath(dir, "sys");
  RETURN_IF_ERROR(MakeDirs(sys_dst));
  Copier c(src, sys_dst);

  std::set<std::string> pci_functions;
  std::set<std::string> netdevs;
  for (const char* cls : {"infiniband", "infiniband_verbs", "infiniband_mad"}) {
    std::string class_rel = std::string("class/") + cls;
    absl::StatusOr<std::vector<std::string>> names = ListDir(JoinPath(src, class_rel));
    if (!names.ok()) continue;
    RETURN_IF_ERROR(c.MakeDir(class_rel));
    for (const std::string& name : *names) {
      std::string rel = JoinPath(class_rel, name);
      struct stat st;
      if (::lstat(JoinPath(src, rel).c_str(), &st) != 0) continue;
      if (!S_ISLNK(st.st_mode)) {
        RETURN_IF_ERROR(c.CopyAny(rel));
        continue;
      }
      ASSIGN_OR_RETURN(std::string target, c.CopyLinkAndTarget(rel));
      if (std::string(cls) != "infiniband" || target.empty()) continue;
      absl::StatusOr<std::string> fn = c.Resolve(JoinPath(target, "device"));
      if (fn.ok() && IsPciAddress(BaseName(*fn))) {
        pci_functions.insert(*fn);
        absl::StatusOr<std::vector<std::string>> nets = ListDir(JoinPath(src, *fn + "/net"));
        if (nets.ok()) netdevs.insert(nets->begin(), nets->end());
      }
      // GID netdevs (RoCE over a netdev of another device, e.g. Soft-RoCE).
      absl::StatusOr<std::vector<std::string>> ports = ListDir(JoinPath(src, target + "/ports"));
      for (const std::string& port : ports.ok() ? *ports : std::vector<std::string>{}) {
        std::string ndev_dir =
            JoinPath(src, absl::StrCat(target, "/ports/", port, "/gid_attrs/ndevs"));
        absl::StatusOr<std::vector<std::string>> idx = ListDir(ndev_dir);
        for (const std::string& i : idx.ok() ? *idx : std::vector<std::string>{}) {
          absl::StatusOr<std::string> ndev = ReadAttr(JoinPath(ndev_dir, i));
          if (ndev.ok() && !ndev->empty()) netdevs.insert(*ndev);
        }
      }
    }
  }
  if (c.Exists("class/misc/rdma_cm")) {
    RETURN_IF_ERROR(c.CopyLinkAndTarget("class/misc/rdma_cm").status());
  }

  // GPUs, for `rails`.
  absl::StatusOr<std::vector<std::string>> all_pci = ListDir(JoinPath(src, "bus/pci/devices"));
  for (const std::string& f : all_pci.ok() ? *all_pci : std::vector<std::string>{}) {
    std::string rel = "bus/pci/devices/" + f;
    absl::StatusOr<std::string> vendor = ReadAttr(JoinPath(src, rel + "/vendor"));
    absl::StatusOr<std::string> cls = ReadAttr(JoinPath(src, rel + "/class"));
    if (!vendor.ok() || !cls.ok() || *vendor != "0x10de") continue;
    if (cls->rfind("0x0300", 0) != 0 && cls->rfind("0x0302", 0) != 0) continue;
    absl::StatusOr<std::string> fn = c.Resolve(rel);
    if (fn.ok() && !fn->empty()) pci_functions.insert(*fn);
  }
  for (const std::string& fn : pci_functions) RETURN_IF_ERROR(CopyPciFunction(c, fn));
  for (const std::string& ifname : netdevs) RETURN_IF_ERROR(CopyNetdev(c, ifname));
  CaptureStats stats = c.stats();

  // Character devices, with the numbers the source's /dev holds.
  rdma::SysfsDeviceScanner scanner(paths);
  ASSIGN_OR_RETURN(rdma::NodeInventory inv, scanner.Scan());
  std::vector<rdma::CharDevice> nodes;
  for (const rdma::RdmaDevice& d : inv.devices) {
    if (d.uverbs) nodes.push_back(*d.uverbs);
    for (const rdma::RdmaPort& p : d.ports) {
      if (p.umad) nodes.push_back(*p.umad);
      if (p.issm) nodes.push_back(*p.issm);
    }
  }
  if (inv.rdma_cm) nodes.push_back(*inv.rdma_cm);
  std::string dev_dir = JoinPath(dir, "dev/infiniband");
  RETURN_IF_ERROR(MakeDirs(dev_dir));
  std::string listing;
  for (const rdma::CharDevice& node : nodes) {
    struct stat st;
    if (::stat(node.dev_path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    listing += fmt::format("{} {}:{}\n", node.name, major(st.st_rdev), minor(st.st_rdev));
    ++stats.listed;
    std::string path = JoinPath(dev_dir, node.name);
    if (::mknod(path.c_str(), S_IFCHR | (st.st_mode & 0777), st.st_rdev) == 0) {
      ++stats.dev_nodes;
    } else if (errno != EPERM) {
      return ErrnoStatus("mknod", path);
    }
  }
  RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "dev-numbers.txt"), listing));
  return stats;
}

// ---------------------------------------------------------------------------------------------
// The `capture` command: flags and glue.

namespace {

int RunCapture(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  const std::string& dir = p.positional.front();
  absl::StatusOr<CaptureStats> stats = Capture(paths, dir);
  if (!stats.ok()) return Fail(err, "capture", stats.status(), kExitFailure);
  out << fmt::format(
      "captured {} files, {} links, {} device nodes into {} ({} unreadable attributes kept "
      "empty)\nuse: --sysfs-root {}/sys --dev-root {}/dev\n",
      stats->files, stats->links, stats->dev_nodes, dir, stats->skipped, dir, dir);
  if (stats->files == 0) {
    err << fmt::format("warning: no RDMA devices or GPUs under {}: the capture is empty\n",
                       paths.sys_root);
  }
  for (const std::string& r : stats->refused) {
    err << fmt::format("warning: {}/{}: not a regular file, directory or symlink; not copied\n",
                       paths.sys_root, r);
  }
  if (stats->dev_nodes < stats->listed) {
    out << fmt::format("device numbers listed in {}/dev-numbers.txt (mknod needs root)\n", dir);
  }
  return kExitOk;
}

}  // namespace

const Command& CaptureCommand() {
  static const Command kCommand = {
      {"capture",
       "DIR",
       "copy this host's RDMA sysfs and /dev/infiniband numbers into DIR (a test fixture)",
       {},
       1},
      RunCapture};
  return kCommand;
}

}  // namespace rdmashare::cli
