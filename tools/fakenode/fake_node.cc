#include "tools/fakenode/fake_node.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare::fakenode {
namespace {

constexpr uint32_t kIbMajor = 231;
constexpr uint32_t kUverbsMinorBase = 192;
constexpr uint32_t kIssmMinorBase = 64;

absl::Status ErrnoError(const std::string& op, const std::string& path) {
  int err = errno;
  std::string msg = fmt::format("fakenode: {} {}: {}", op, path, std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EPERM || err == EACCES) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes a sysfs attribute (content + "\n"), creating parent directories. No fsync: these are
// test trees, and a build writes thousands of files.
absl::Status WriteAttrFile(const std::string& path, const std::string& content) {
  // Tests plant FIFOs in these trees: refuse anything but a regular file instead of blocking in
  // open(2) until a reader appears (O_NONBLOCK: a FIFO without reader fails with ENXIO).
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("create {}: is {}, not a regular file", path, FileTypeName(st.st_mode)));
  }
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  UniqueFd fd(::open(path.c_str(), kFlags, 0644));
  if (!fd.valid() && errno == ENOENT) {
    RETURN_IF_ERROR(MakeDirs(DirName(path)));
    fd.Reset(::open(path.c_str(), kFlags, 0644));
  }
  if (!fd.valid()) return ErrnoError("create", path);
  std::string data = content + "\n";
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path);
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Replaces an existing attribute of a live tree in one step (temp file + rename), as a sysfs
// read never sees half an update: a scan racing a mutation reads the old or the new value.
absl::Status ReplaceAttrFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".fakenode-tmp";
  RETURN_IF_ERROR(WriteAttrFile(tmp, content));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoError("rename over", path);
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string part = path.substr(pos, next - pos);
    if (!part.empty() && part != ".") out.push_back(part);
    pos = next + 1;
  }
  return out;
}

// Relative path from directory `from_dir` to `target` (both absolute, canonical).
std::string RelativePath(const std::string& from_dir, const std::string& target) {
  std::vector<std::string> from = SplitPath(from_dir), to = SplitPath(target);
  size_t common = 0;
  while (common < from.size() && common < to.size() && from[common] == to[common]) ++common;
  // Like the kernel, name an ancestor target from its parent ("../../../0000:0b:00.0").
  if (common == to.size() && common > 0) --common;
  std::string rel;
  for (size_t i = common; i < from.size(); ++i) rel += "../";
  for (size_t i = common; i < to.size(); ++i) {
    rel += to[i];
    if (i + 1 < to.size()) rel += "/";
  }
  if (rel.empty()) return ".";
  if (rel.back() == '/') rel.pop_back();
  return rel;
}

// Creates `link` -> relative path to `target`, replacing an existing link.
absl::Status RelSymlink(const std::string& target, const std::string& link) {
  RETURN_IF_ERROR(MakeDirs(DirName(link)));
  std::string rel = RelativePath(DirName(link), target);
  ::unlink(link.c_str());
  if (::symlink(rel.c_str(), link.c_str()) != 0) return ErrnoError("symlink", link);
  return absl::OkStatus();
}

absl::Status MakeCharDevice(const std::string& path, DevNumber num) {
  RETURN_IF_ERROR(MakeDirs(DirName(path)));
  ::unlink(path.c_str());
  if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(num.major, num.minor)) != 0) {
    int err = errno;
    absl::Status st = ErrnoError(fmt::format("mknod {}:{}", num.major, num.minor), path);
    if (err == EPERM) {
      return absl::FailedPreconditionError(
          fmt::format("{} (creating character devices needs root / CAP_MKNOD)", st.message()));
    }
    return st;
  }
  return absl::OkStatus();
}

std::string DevText(DevNumber n) { return fmt::format("{}:{}", n.major, n.minor); }

bool IsHex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// "dddd:bb:dd.f" in lower-case hex.
bool ValidPciAddress(const std::string& a) {
  return a.size() == 12 && a[4] == ':' && a[7] == ':' && a[10] == '.' && IsHex(a.substr(0, 4)) &&
         IsHex(a.substr(5, 2)) && IsHex(a.substr(8, 2)) && IsHex(a.substr(11, 1));
}

bool ValidName(const std::string& n) {
  return !n.empty() && n.size() < 64 && n.find('/') == std::string::npos && n != "." && n != "..";
}

// Lowest N such that no "<prefix>N" exists in `dir` for any prefix (the kernel hands out the
// lowest free minor index, so a re-added device reuses the slot of a removed one).
int LowestFreeIndex(const std::string& dir, const std::vector<std::string>& prefixes) {
  std::set<int> used;
  auto names = ListDir(dir);
  if (names.ok()) {
    for (const std::string& name : *names) {
      for (const std::string& p : prefixes) {
        if (name.size() > p.size() && name.size() < p.size() + 6 &&
            name.compare(0, p.size(), p) == 0) {
          std::string num = name.substr(p.size());
          if (std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            used.insert(std::stoi(num));
          }
        }
      }
    }
  }
  int index = 0;
  while (used.count(index) != 0) ++index;
  return index;
}

// A link-local GID derived from the node GUID; port and index keep the entries distinct.
std::string Gid(const std::string& node_guid, int port, int index) {
  std::string g = node_guid;
  g.erase(std::remove(g.begin(), g.end(), ':'), g.end());
  if (g.size() != 16 || !IsHex(g)) g = "0000000000000000";
  unsigned long low = std::stoul(g.substr(12, 4), nullptr, 16);
  return fmt::format("fe80:0000:0000:0000:{}:{}:{}:{:04x}", g.substr(0, 4), g.substr(4, 4),
                     g.substr(8, 4),
                     (low + static_cast<unsigned long>(port * 256 + index)) & 0xffff);
}

// Removes a directory tree bottom-up without following symlinks.
void RemoveTreeAt(const std::string& root) {
  std::vector<std::string> stack{root};
  std::vector<std::string> order;
  while (!stack.empty()) {
    std::string cur = stack.back();
    stack.pop_back();
    order.push_back(cur);
    struct stat st;
    if (::lstat(cur.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      auto kids = ListDir(cur);
      if (kids.ok()) {
        for (const std::string& k : *kids) stack.push_back(JoinPath(cur, k));
      }
    }
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) ::remove(it->c_str());
}

constexpr char kZeroGid[] = "0000:0000:0000:0000:0000:0000:0000:0000";

}  // namespace

FakeNode::FakeNode(std::string root)
    : root_(std::move(root)),
      sys_root_(JoinPath(root_, "sys")),
      dev_root_(JoinPath(root_, "dev")) {}

HostPaths FakeNode::paths() const {
  HostPaths p;
  p.sys_root = sys_root_;
  p.dev_root = dev_root_;
  p.host_dev_root = dev_root_;
  return p;
}

absl::StatusOr<FakeNode> FakeNode::Build(const NodeSpec& spec, const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("fakenode: empty root directory");
  RETURN_IF_ERROR(MakeDirs(root));
  ASSIGN_OR_RETURN(std::string canonical, RealPath(root));
  FakeNode node(canonical);
  for (const char* dir : {"sys/devices", "sys/class", "sys/bus/pci/devices", "sys/bus/pci/drivers",
                          "dev/infiniband"}) {
    RETURN_IF_ERROR(MakeDirs(JoinPath(canonical, dir)));
  }
  std::set<std::string> seen;
  for (const PciFunctionSpec& fn : spec.pci) {
    if (!seen.insert(fn.address).second) {
      return absl::InvalidArgumentError(
          fmt::format("fakenode: PCI function {} listed twice", fn.address));
    }
    RETURN_IF_ERROR(node.AddPciFunction(fn));
  }
  for (const IbDeviceSpec& dev : spec.ib_devices) RETURN_IF_ERROR(node.AddIbDevice(dev));
  if (spec.rdma_cm) RETURN_IF_ERROR(node.AddRdmaCm(*spec.rdma_cm));
  return node;
}

absl::StatusOr<FakeNode> FakeNode::Open(const std::string& root) {
  auto canonical = RealPath(root);
  if (!canonical.ok() || !PathExists(JoinPath(*canonical, "sys"))) {
    return absl::NotFoundError(fmt::format("fakenode: {} holds no fake node (no sys/)", root));
  }
  return FakeNode(*canonical);
}

absl::StatusOr<std::string> FakeNode::PciFunctionDir(const std::string& pci_address) const {
  std::string link = JoinPath(sys_root_, "bus/pci/devices/" + pci_address);
  auto dir = RealPath(link);
  if (!dir.ok()) {
    return absl::NotFoundError(fmt::format("fakenode: no PCI function {}", pci_address));
  }
  return *dir;
}

absl::StatusOr<std::string> FakeNode::IbDeviceDir(const std::string& ibdev) const {
  auto dir = RealPath(JoinPath(sys_root_, "class/infiniband/" + ibdev));
  if (!dir.ok()) return absl::NotFoundError(fmt::format("fakenode: no ibdev {}", ibdev));
  return *dir;
}

absl::Status FakeNode::AddPciFunction(const PciFunctionSpec& fn) {
  if (!ValidPciAddress(fn.address)) {
    return absl::InvalidArgumentError(
        fmt::format("fakenode: PCI address '{}' is not dddd:bb:dd.f", fn.address));
  }
  if (PathExists(JoinPath(sys_root_, "bus/pci/devices/" + fn.address))) {
    return absl::InvalidArgumentError(
        fmt::format("fakenode: PCI function {} already exists", fn.address));
  }
  std::string dir;
  if (fn.parent.empty()) {
    dir = JoinPath(sys_root_, fmt::format("devices/pci{}/{}", fn.address.substr(0, 7), fn.address));
  } else {
    auto parent = PciFunctionDir(fn.parent);
    if (!parent.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("fakenode: parent {} of PCI function {} does not exist (list parents first)",
                      fn.parent, fn.address));
    }
    dir = JoinPath(*parent, fn.address);
  }
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(dir, "vendor"), fn.vendor));
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(dir, "device"), fn.device));
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(dir, "class"), fn.pci_class));
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(dir, "numa_node"), fn.numa_node));
  RETURN_IF_ERROR(RelSymlink(JoinPath(sys_root_, "bus/pci"), JoinPath(dir, "subsystem")));
  RETURN_IF_ERROR(RelSymlink(dir, JoinPath(sys_root_, "bus/pci/devices/" + fn.address)));
  if (!fn.driver.empty()) {
    if (!ValidName(fn.driver)) {
      return absl::InvalidArgumentError(fmt::format("fakenode: bad driver name '{}'", fn.driver));
    }
    std::string drv_dir = JoinPath(sys_root_, "bus/pci/drivers/" + fn.driver);
    RETURN_IF_ERROR(MakeDirs(drv_dir));
    RETURN_IF_ERROR(RelSymlink(drv_dir, JoinPath(dir, "driver")));
    RETURN_IF_ERROR(RelSymlink(dir, JoinPath(drv_dir, fn.address)));
  }
  for (const NetdevSpec& nd : fn.netdevs) {
    if (!ValidName(nd.name)) {
      return absl::InvalidArgumentError(fmt::format("fakenode: bad netdev name '{}'", nd.name));
    }
    std::string class_link = JoinPath(sys_root_, "class/net/" + nd.name);
    struct stat st;
    if (::lstat(class_link.c_str(), &st) == 0) {
      return absl::InvalidArgumentError(fmt::format("fakenode: netdev {} already exists", nd.name));
    }
    std::string nd_dir = JoinPath(dir, "net/" + nd.name);
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "operstate"), nd.operstate));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "carrier"), std::to_string(nd.carrier)));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "mtu"), std::to_string(nd.mtu)));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "address"), nd.address));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "type"), std::to_string(nd.type)));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(nd_dir, "ifindex"), std::to_string(nd.ifindex)));
    RETURN_IF_ERROR(RelSymlink(dir, JoinPath(nd_dir, "device")));
    RETURN_IF_ERROR(RelSymlink(JoinPath(sys_root_, "class/net"), JoinPath(nd_dir, "subsystem")));
    RETURN_IF_ERROR(RelSymlink(nd_dir, class_link));
  }
  return absl::OkStatus();
}

absl::Status FakeNode::AddIbDevice(const IbDeviceSpec& dev) {
  if (!ValidName(dev.ibdev)) {
    return absl::InvalidArgumentError(fmt::format("fakenode: bad ibdev name '{}'", dev.ibdev));
  }
  std::string class_link = JoinPath(sys_root_, "class/infiniband/" + dev.ibdev);
  struct stat st;
  if (::lstat(class_link.c_str(), &st) == 0) {
    return absl::InvalidArgumentError(fmt::format("fakenode: ibdev {} already exists", dev.ibdev));
  }
  // Parent of the infiniband*/ directories: the PCI function, or devices/virtual.
  std::string parent;
  if (dev.pci_address.empty()) {
    parent = JoinPath(sys_root_, "devices/virtual");
  } else {
    auto fn = PciFunctionDir(dev.pci_address);
    if (!fn.ok()) {
      return absl::InvalidArgumentError(fmt::format(
          "fakenode: ibdev {}: PCI function {} does not exist", dev.ibdev, dev.pci_address));
    }
    parent = *fn;
  }
  std::string ib_dir = JoinPath(parent, "infiniband/" + dev.ibdev);
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(ib_dir, "node_guid"), dev.node_guid));
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(ib_dir, "sys_image_guid"), dev.node_guid));
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(ib_dir, "node_type"), "1: CA"));
  if (!dev.pci_address.empty()) RETURN_IF_ERROR(RelSymlink(parent, JoinPath(ib_dir, "device")));
  RETURN_IF_ERROR(
      RelSymlink(JoinPath(sys_root_, "class/infiniband"), JoinPath(ib_dir, "subsystem")));
  for (const IbPortSpec& port : dev.ports) {
    if (port.number < 1) {
      return absl::InvalidArgumentError(
          fmt::format("fakenode: ibdev {}: bad port number {}", dev.ibdev, port.number));
    }
    std::string pdir = JoinPath(ib_dir, fmt::format("ports/{}", port.number));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "state"), port.state));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "phys_state"), port.phys_state));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "link_layer"), port.link_layer));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "rate"), "100 Gb/sec (4X EDR)"));
    RETURN_IF_ERROR(MakeDirs(JoinPath(pdir, "gids")));
    RETURN_IF_ERROR(MakeDirs(JoinPath(pdir, "gid_attrs/types")));
    RETURN_IF_ERROR(MakeDirs(JoinPath(pdir, "gid_attrs/ndevs")));
    size_t populated = std::max<size_t>(1, port.gid_ndevs.size());
    bool roce = port.link_layer == "Ethernet";
    for (int i = 0; i < port.gid_table_size; ++i) {
      bool used = static_cast<size_t>(i) < populated;
      std::string idx = std::to_string(i);
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "gids/" + idx),
                                    used ? Gid(dev.node_guid, port.number, i) : kZeroGid));
      std::string type;
      if (used) type = roce && i % 2 == 1 ? "RoCE v2" : "IB/RoCE v1";
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "gid_attrs/types/" + idx), type));
      std::string ndev = static_cast<size_t>(i) < port.gid_ndevs.size() ? port.gid_ndevs[i] : "";
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "gid_attrs/ndevs/" + idx), ndev));
    }
    // Port counters (every RDMA port) and, on RoCE ports, the mlx5 hardware counters that
    // RoCE operators watch, all starting at 0 (AddPortCounter moves them).
    RETURN_IF_ERROR(MakeDirs(JoinPath(pdir, "counters")));
    for (const char* c : {"port_xmit_data", "port_rcv_data", "port_xmit_packets",
                          "port_rcv_packets", "port_rcv_errors", "symbol_error", "link_downed"}) {
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, std::string("counters/") + c), "0"));
    }
    if (roce) {
      RETURN_IF_ERROR(MakeDirs(JoinPath(pdir, "hw_counters")));
      for (const char* c :
           {"np_cnp_sent", "rp_cnp_handled", "np_ecn_marked_roce_packets", "rp_cnp_ignored",
            "out_of_sequence", "packet_seq_err", "local_ack_timeout_err", "rx_icrc_encapsulated",
            "duplicate_request", "rnr_nak_retry_err", "implied_nak_seq_err", "roce_adp_retrans"}) {
        RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, std::string("hw_counters/") + c), "0"));
      }
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(pdir, "hw_counters/lifespan"), "10"));
    }
  }
  RETURN_IF_ERROR(RelSymlink(ib_dir, class_link));

  if (dev.uverbs) {
    std::string verbs_class = JoinPath(sys_root_, "class/infiniband_verbs");
    RETURN_IF_ERROR(MakeDirs(verbs_class));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(verbs_class, "abi_version"), "6"));
    int index = LowestFreeIndex(verbs_class, {"uverbs"});
    DevNumber num = dev.uverbs_dev.value_or(
        DevNumber{kIbMajor, kUverbsMinorBase + static_cast<uint32_t>(index)});
    std::string name = fmt::format("uverbs{}", index);
    std::string vdir = JoinPath(parent, "infiniband_verbs/" + name);
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(vdir, "ibdev"), dev.ibdev));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(vdir, "dev"), DevText(num)));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(vdir, "abi_version"), "1"));
    if (!dev.pci_address.empty()) RETURN_IF_ERROR(RelSymlink(parent, JoinPath(vdir, "device")));
    RETURN_IF_ERROR(RelSymlink(verbs_class, JoinPath(vdir, "subsystem")));
    RETURN_IF_ERROR(RelSymlink(vdir, JoinPath(verbs_class, name)));
    RETURN_IF_ERROR(MakeCharDevice(JoinPath(dev_root_, "infiniband/" + name), num));
  }

  std::string mad_class = JoinPath(sys_root_, "class/infiniband_mad");
  for (const IbPortSpec& port : dev.ports) {
    if (!port.mad) continue;
    RETURN_IF_ERROR(MakeDirs(mad_class));
    RETURN_IF_ERROR(WriteAttrFile(JoinPath(mad_class, "abi_version"), "5"));
    uint32_t index = static_cast<uint32_t>(LowestFreeIndex(mad_class, {"umad", "issm"}));
    for (bool issm : {false, true}) {
      std::string name = fmt::format("{}{}", issm ? "issm" : "umad", index);
      DevNumber num{kIbMajor, issm ? kIssmMinorBase + index : index};
      std::string mdir = JoinPath(parent, "infiniband_mad/" + name);
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(mdir, "ibdev"), dev.ibdev));
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(mdir, "port"), std::to_string(port.number)));
      RETURN_IF_ERROR(WriteAttrFile(JoinPath(mdir, "dev"), DevText(num)));
      if (!dev.pci_address.empty()) {
        RETURN_IF_ERROR(RelSymlink(parent, JoinPath(mdir, "device")));
      }
      RETURN_IF_ERROR(RelSymlink(mad_class, JoinPath(mdir, "subsystem")));
      RETURN_IF_ERROR(RelSymlink(mdir, JoinPath(mad_class, name)));
      RETURN_IF_ERROR(MakeCharDevice(JoinPath(dev_root_, "infiniband/" + name), num));
    }
  }
  return absl::OkStatus();
}

absl::Status FakeNode::AddRdmaCm(DevNumber number) {
  std::string dir = JoinPath(sys_root_, "devices/virtual/misc/rdma_cm");
  RETURN_IF_ERROR(WriteAttrFile(JoinPath(dir, "dev"), DevText(number)));
  RETURN_IF_ERROR(RelSymlink(JoinPath(sys_root_, "class/misc"), JoinPath(dir, "subsystem")));
  RETURN_IF_ERROR(RelSymlink(dir, JoinPath(sys_root_, "class/misc/rdma_cm")));
  return MakeCharDevice(JoinPath(dev_root_, "infiniband/rdma_cm"), number);
}

absl::Status FakeNode::RemoveIbDevice(const std::string& ibdev) {
  ASSIGN_OR_RETURN(std::string ib_dir, IbDeviceDir(ibdev));
  for (const char* cls : {"class/infiniband_verbs", "class/infiniband_mad"}) {
    std::string class_dir = JoinPath(sys_root_, cls);
    auto names = ListDir(class_dir);
    if (!names.ok()) continue;
    for (const std::string& name : *names) {
      std::string link = JoinPath(class_dir, name);
      auto owner = ReadAttr(JoinPath(link, "ibdev"));
      if (!owner.ok() || *owner != ibdev) continue;
      auto dir = RealPath(link);
      if (dir.ok()) RemoveTreeAt(*dir);
      ::unlink(link.c_str());
      ::unlink(JoinPath(dev_root_, "infiniband/" + name).c_str());
    }
  }
  RemoveTreeAt(ib_dir);
  ::unlink(JoinPath(sys_root_, "class/infiniband/" + ibdev).c_str());
  return absl::OkStatus();
}

absl::Status FakeNode::SetPortState(const std::string& ibdev, int port, const std::string& state,
                                    const std::string& phys_state) {
  ASSIGN_OR_RETURN(std::string ib_dir, IbDeviceDir(ibdev));
  std::string pdir = JoinPath(ib_dir, fmt::format("ports/{}", port));
  if (!PathExists(pdir)) {
    return absl::NotFoundError(fmt::format("fakenode: ibdev {} has no port {}", ibdev, port));
  }
  RETURN_IF_ERROR(ReplaceAttrFile(JoinPath(pdir, "state"), state));
  return ReplaceAttrFile(JoinPath(pdir, "phys_state"), phys_state);
}

absl::StatusOr<uint64_t> FakeNode::AddPortCounter(const std::string& ibdev, int port,
                                                  const std::string& name, uint64_t delta) {
  ASSIGN_OR_RETURN(std::string ib_dir, IbDeviceDir(ibdev));
  std::string path;
  for (const char* group : {"counters/", "hw_counters/"}) {
    std::string p = JoinPath(ib_dir, fmt::format("ports/{}/{}{}", port, group, name));
    if (PathExists(p)) path = p;
  }
  if (path.empty()) {
    return absl::NotFoundError(
        fmt::format("fakenode: ibdev {} port {} has no counter {}", ibdev, port, name));
  }
  ASSIGN_OR_RETURN(int64_t value, ReadIntAttr(path));
  uint64_t next = static_cast<uint64_t>(value) + delta;
  RETURN_IF_ERROR(ReplaceAttrFile(path, std::to_string(next)));
  return next;
}

absl::Status FakeNode::SetNetdevState(const std::string& ifname, const std::string& operstate,
                                      int carrier) {
  auto dir = RealPath(JoinPath(sys_root_, "class/net/" + ifname));
  if (!dir.ok()) return absl::NotFoundError(fmt::format("fakenode: no netdev {}", ifname));
  RETURN_IF_ERROR(ReplaceAttrFile(JoinPath(*dir, "operstate"), operstate));
  return ReplaceAttrFile(JoinPath(*dir, "carrier"), std::to_string(carrier));
}

absl::Status FakeNode::PointNetdevAt(const std::string& ifname, const std::string& target_dir) {
  if (!ValidName(ifname)) {
    return absl::InvalidArgumentError(fmt::format("fakenode: bad netdev name '{}'", ifname));
  }
  struct stat st;
  if (target_dir.empty() || target_dir[0] != '/' || ::stat(target_dir.c_str(), &st) != 0 ||
      !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        fmt::format("fakenode: netdev target '{}' is not an absolute directory", target_dir));
  }
  std::string link = JoinPath(sys_root_, "class/net/" + ifname);
  struct stat lst;
  if (::lstat(link.c_str(), &lst) != 0) return ErrnoError("lstat", link);
  std::string tmp = link + ".tmp";
  ::unlink(tmp.c_str());
  if (::symlink(target_dir.c_str(), tmp.c_str()) != 0) return ErrnoError("symlink", tmp);
  if (::rename(tmp.c_str(), link.c_str()) != 0) return ErrnoError("rename", link);
  return absl::OkStatus();
}

absl::Status FakeNode::RemoveDevNode(const std::string& name) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(fmt::format("fakenode: bad node name '{}'", name));
  }
  std::string path = JoinPath(dev_root_, "infiniband/" + name);
  if (::unlink(path.c_str()) != 0) return ErrnoError("unlink", path);
  return absl::OkStatus();
}

absl::Status FakeNode::UnbindDriver(const std::string& pci_address) {
  ASSIGN_OR_RETURN(std::string dir, PciFunctionDir(pci_address));
  std::string link = JoinPath(dir, "driver");
  auto target = ReadLink(link);
  if (!target.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("fakenode: PCI function {} has no driver bound", pci_address));
  }
  std::string driver = BaseName(*target);
  if (::unlink(link.c_str()) != 0) return ErrnoError("unlink", link);
  std::string drv_entry = JoinPath(sys_root_, "bus/pci/drivers/" + driver + "/" + pci_address);
  if (::unlink(drv_entry.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", drv_entry);
  return absl::OkStatus();
}

}  // namespace rdmashare::fakenode
