#include "rdma/device_scanner.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::rdma {

DeviceScanner::~DeviceScanner() = default;

namespace {

// A uverbs/umad/issm entry of class/infiniband_{verbs,mad}.
struct NodeEntry {
  std::string name;       // "umad0"
  std::string sysfs_dir;  // class/infiniband_mad/umad0 (a symlink; attributes read through it)
  std::string port_text;  // "1" (mad entries only)
};

bool IsHexDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool IsDecimal(const std::string& s) {
  return !s.empty() && s.size() < 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "dddd:bb:dd.f".
bool IsPciAddress(const std::string& a) {
  return a.size() == 12 && a[4] == ':' && a[7] == ':' && a[10] == '.' &&
         IsHexDigits(a.substr(0, 4)) && IsHexDigits(a.substr(5, 2)) &&
         IsHexDigits(a.substr(8, 2)) && IsHexDigits(a.substr(11, 1));
}

// Reads a "0x"-prefixed hex id of `digits` digits; returns it lower-case without "0x".
absl::StatusOr<std::string> ReadHexId(const std::string& path, size_t digits) {
  ASSIGN_OR_RETURN(std::string text, ReadAttr(path));
  if (text.size() != digits + 2 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X') ||
      !IsHexDigits(text.substr(2))) {
    return absl::InvalidArgumentError(
        fmt::format("read {}: '{}' is not a 0x-prefixed {}-digit hex id", path, text, digits));
  }
  return Lower(text.substr(2));
}

// "4: ACTIVE" -> "ACTIVE".
absl::StatusOr<std::string> ReadPrefixedState(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadAttr(path));
  size_t colon = text.find(": ");
  if (colon == std::string::npos || !IsDecimal(text.substr(0, colon)) || colon + 2 >= text.size()) {
    return absl::InvalidArgumentError(
        fmt::format("read {}: '{}' is not '<number>: <name>'", path, text));
  }
  return text.substr(colon + 2);
}

absl::StatusOr<LinkLayer> ReadLinkLayer(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadAttr(path));
  if (text == "Ethernet") return LinkLayer::kEthernet;
  if (text == "InfiniBand") return LinkLayer::kInfiniBand;
  if (text == "Unknown") return LinkLayer::kUnknown;
  return absl::InvalidArgumentError(
      fmt::format("read {}: '{}' is not a link layer (Ethernet, InfiniBand, Unknown)", path, text));
}

// Names in a directory, or none when it does not exist.
absl::StatusOr<std::vector<std::string>> ListDirOrEmpty(const std::string& path) {
  auto names = ListDir(path);
  if (absl::IsNotFound(names.status())) return std::vector<std::string>{};
  return names;
}

// The kernel gives uverbs/umad/issm the fixed major 231 or a dynamic one (234-254, 384-511)
// and rdma_cm the misc major 10. Any other number (e.g. 1:1, /dev/mem) is refused, so a
// tampered sysfs or /dev can never make Allocate hand out a foreign device.
bool PlausibleMajor(const std::string& name, uint32_t major) {
  if (name == "rdma_cm") return major == 10;
  return major == 231 || (major >= 234 && major <= 254) || (major >= 384 && major <= 511);
}

class ScanPass {
 public:
  explicit ScanPass(const HostPaths& paths) : paths_(paths) {}

  absl::StatusOr<NodeInventory> Run() {
    NodeInventory inv;
    auto canonical_sys = RealPath(paths_.sys_root);
    std::string ib_class = JoinPath(paths_.sys_root, "class/infiniband");
    auto ibdevs = ListDir(ib_class);
    if (!ibdevs.ok()) {
      // No RDMA core loaded (or no sysfs at all): nothing to offer, not an error.
      if (absl::IsNotFound(ibdevs.status())) return inv;
      return absl::UnavailableError(
          fmt::format("RDMA scan: listing {}: {}", ib_class, ibdevs.status().message()));
    }
    virtual_dir_ =
        JoinPath(canonical_sys.ok() ? *canonical_sys : paths_.sys_root, "devices/virtual/");
    IndexVerbs();
    IndexMad();
    for (const std::string& ibdev : *ibdevs) {
      auto dev = ScanDevice(ibdev);
      if (!dev.ok()) {
        Warn(fmt::format("ibdev={} skipped: {}", ibdev, dev.status().message()));
        continue;
      }
      inv.devices.push_back(std::move(*dev));
    }
    std::sort(inv.devices.begin(), inv.devices.end(),
              [](const RdmaDevice& a, const RdmaDevice& b) { return a.ibdev < b.ibdev; });
    ScanRdmaCm(inv);
    return inv;
  }

  std::vector<std::string>& warnings() { return warnings_; }

 private:
  void Warn(std::string msg) { warnings_.push_back(std::move(msg)); }

  void IndexVerbs() {
    std::string dir = JoinPath(paths_.sys_root, "class/infiniband_verbs");
    auto names = ListDirOrEmpty(dir);
    if (!names.ok()) {
      Warn(fmt::format("uverbs index: {}", names.status().message()));
      return;
    }
    for (const std::string& name : *names) {
      if (name.rfind("uverbs", 0) != 0) continue;  // abi_version
      std::string entry = JoinPath(dir, name);
      auto ibdev = ReadAttr(JoinPath(entry, "ibdev"));
      if (!ibdev.ok()) {
        Warn(fmt::format("node={} ignored: {}", name, ibdev.status().message()));
        continue;
      }
      verbs_[*ibdev].push_back(NodeEntry{name, entry, ""});
    }
  }

  void IndexMad() {
    std::string dir = JoinPath(paths_.sys_root, "class/infiniband_mad");
    auto names = ListDirOrEmpty(dir);
    if (!names.ok()) {
      Warn(fmt::format("umad index: {}", names.status().message()));
      return;
    }
    for (const std::string& name : *names) {
      bool umad = name.rfind("umad", 0) == 0;
      if (!umad && name.rfind("issm", 0) != 0) continue;  // abi_version
      std::string entry = JoinPath(dir, name);
      auto ibdev = ReadAttr(JoinPath(entry, "ibdev"));
      if (!ibdev.ok()) {
        Warn(fmt::format("node={} ignored: {}", name, ibdev.status().message()));
        continue;
      }
      auto port = ReadAttr(JoinPath(entry, "port"));
      NodeEntry e{name, entry,
                  port.ok() ? *port : "<" + std::string(port.status().message()) + ">"};
      (umad ? umad_ : issm_)[*ibdev].push_back(std::move(e));
    }
  }

  // Device number and presence of one node. Errors (garbage or truncated `dev`) make the
  // owning device malformed; a node with neither a sysfs number nor a /dev node is NotFound.
  absl::StatusOr<CharDevice> ReadCharDevice(const std::string& name, const std::string& sysfs_dir,
                                            const std::string& owner) {
    CharDevice cd;
    cd.name = name;
    cd.dev_path = JoinPath(paths_.dev_root, "infiniband/" + name);
    struct stat st;
    // lstat: a symlink in <dev_root>/infiniband could lead a container to any device.
    bool node_exists = ::lstat(cd.dev_path.c_str(), &st) == 0;
    std::string dev_attr = JoinPath(sysfs_dir, "dev");
    auto text = ReadAttr(dev_attr);
    if (text.ok()) {
      auto num = ParseDevNumber(*text);
      if (!num.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("read {}: {}", dev_attr, num.status().message()));
      }
      cd.major = num->first;
      cd.minor = num->second;
    } else if (absl::IsNotFound(text.status())) {
      if (!node_exists || !S_ISCHR(st.st_mode)) {
        return absl::NotFoundError(
            fmt::format("{}node={}: sysfs has no dev attribute and {} is not a character device",
                        owner, name, cd.dev_path));
      }
      cd.major = major(st.st_rdev);
      cd.minor = minor(st.st_rdev);
    } else {
      return text.status();
    }
    if (!PlausibleMajor(name, cd.major)) {
      Warn(fmt::format("{}node={}: device number {}:{} is not an RDMA device's; not used", owner,
                       name, cd.major, cd.minor));
    } else if (!node_exists) {
      Warn(fmt::format("{}node={}: {} does not exist", owner, name, cd.dev_path));
    } else if (S_ISLNK(st.st_mode)) {
      Warn(fmt::format("{}node={}: {} is a symlink; not used", owner, name, cd.dev_path));
    } else if (!S_ISCHR(st.st_mode)) {
      Warn(fmt::format("{}node={}: {} is not a character device", owner, name, cd.dev_path));
    } else if (major(st.st_rdev) != cd.major || minor(st.st_rdev) != cd.minor) {
      Warn(fmt::format("{}node={}: {} is {}:{}, sysfs says {}:{}", owner, name, cd.dev_path,
                       major(st.st_rdev), minor(st.st_rdev), cd.major, cd.minor));
    } else {
      cd.present = true;
    }
    return cd;
  }

  absl::Status ReadPciParent(const std::string& fn, RdmaDevice& dev) {
    dev.pci_address = BaseName(fn);
    ASSIGN_OR_RETURN(dev.vendor_id, ReadHexId(JoinPath(fn, "vendor"), 4));
    ASSIGN_OR_RETURN(dev.device_id, ReadHexId(JoinPath(fn, "device"), 4));
    ASSIGN_OR_RETURN(std::string cls, ReadHexId(JoinPath(fn, "class"), 6));
    dev.pci_class = "0x" + cls;
    auto numa = ReadIntAttr(JoinPath(fn, "numa_node"));
    if (numa.ok()) {
      if (*numa < -1 || *numa > 1023) {
        return absl::InvalidArgumentError(
            fmt::format("read {}: NUMA node {} out of range", JoinPath(fn, "numa_node"), *numa));
      }
      dev.numa_node = static_cast<int>(*numa);
    } else if (!absl::IsNotFound(numa.status())) {
      return numa.status();
    }
    auto driver = ReadLink(JoinPath(fn, "driver"));
    if (driver.ok()) {
      dev.driver = BaseName(*driver);
    } else if (!absl::IsNotFound(driver.status())) {
      return driver.status();
    }
    ASSIGN_OR_RETURN(dev.netdevs, ListDirOrEmpty(JoinPath(fn, "net")));
    return absl::OkStatus();
  }

  absl::StatusOr<RdmaDevice> ScanDevice(const std::string& ibdev) {
    RdmaDevice dev;
    dev.ibdev = ibdev;
    std::string owner = fmt::format("ibdev={} ", ibdev);
    ASSIGN_OR_RETURN(std::string dir,
                     RealPath(JoinPath(paths_.sys_root, "class/infiniband/" + ibdev)));
    std::string device_link = JoinPath(dir, "device");
    struct stat lst;
    bool pci = false;
    if (::lstat(device_link.c_str(), &lst) == 0) {
      auto parent = RealPath(device_link);
      if (!parent.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("resolving parent link: {}", parent.status().message()));
      }
      if (IsPciAddress(BaseName(*parent))) {
        pci = true;
        RETURN_IF_ERROR(ReadPciParent(*parent, dev));
      }
    } else if (dir.rfind(virtual_dir_, 0) != 0) {
      return absl::InvalidArgumentError(fmt::format("{} has no `device` link to its parent", dir));
    }

    std::string ports_dir = JoinPath(dir, "ports");
    ASSIGN_OR_RETURN(std::vector<std::string> port_names, ListDir(ports_dir));
    std::set<std::string> gid_netdevs;
    for (const std::string& pname : port_names) {
      if (!IsDecimal(pname) || std::stoi(pname) < 1) {
        return absl::InvalidArgumentError(
            fmt::format("{}: '{}' is not a port number", ports_dir, pname));
      }
      std::string pdir = JoinPath(ports_dir, pname);
      RdmaPort port;
      port.number = std::stoi(pname);
      ASSIGN_OR_RETURN(port.state, ReadPrefixedState(JoinPath(pdir, "state")));
      ASSIGN_OR_RETURN(port.phys_state, ReadPrefixedState(JoinPath(pdir, "phys_state")));
      ASSIGN_OR_RETURN(port.link_layer, ReadLinkLayer(JoinPath(pdir, "link_layer")));
      ASSIGN_OR_RETURN(std::vector<std::string> gids, ListDirOrEmpty(JoinPath(pdir, "gids")));
      port.gid_table_size = static_cast<int>(gids.size());
      if (!pci) {
        ASSIGN_OR_RETURN(std::vector<std::string> ndevs,
                         ListDirOrEmpty(JoinPath(pdir, "gid_attrs/ndevs")));
        for (const std::string& idx : ndevs) {
          // Unused GID entries read as EINVAL on a real kernel, empty in fakes: skip both.
          auto name = ReadAttr(JoinPath(pdir, "gid_attrs/ndevs/" + idx));
          if (name.ok() && !name->empty()) gid_netdevs.insert(*name);
        }
      }
      ASSIGN_OR_RETURN(port.umad, FindMad(umad_, "umad", ibdev, port.number, owner));
      ASSIGN_OR_RETURN(port.issm, FindMad(issm_, "issm", ibdev, port.number, owner));
      dev.ports.push_back(std::move(port));
    }
    std::sort(dev.ports.begin(), dev.ports.end(),
              [](const RdmaPort& a, const RdmaPort& b) { return a.number < b.number; });
    if (!pci) dev.netdevs.assign(gid_netdevs.begin(), gid_netdevs.end());
    std::sort(dev.netdevs.begin(), dev.netdevs.end());
    for (const std::string& name : dev.netdevs) dev.netdev_states.push_back(ReadNetdevState(name));

    auto verbs = verbs_.find(ibdev);
    if (verbs == verbs_.end()) {
      Warn(fmt::format("{}has no uverbs device (ib_uverbs not loaded?): not usable", owner));
    } else {
      const NodeEntry& e = verbs->second.front();
      auto cd = ReadCharDevice(e.name, e.sysfs_dir, owner);
      if (absl::IsNotFound(cd.status())) {
        Warn(std::string(cd.status().message()));
      } else if (!cd.ok()) {
        return cd.status();
      } else {
        dev.uverbs = std::move(*cd);
      }
    }
    return dev;
  }

  // operstate/carrier through class/net/<name> (the netdev's own directory, wherever it lives).
  NetdevState ReadNetdevState(const std::string& name) {
    NetdevState st;
    st.name = name;
    std::string dir = JoinPath(paths_.sys_root, "class/net/" + name);
    auto oper = ReadAttr(JoinPath(dir, "operstate"));
    if (oper.ok()) st.operstate = *oper;
    auto carrier = ReadAttr(JoinPath(dir, "carrier"));
    if (carrier.ok()) {
      st.carrier = *carrier == "1" ? 1 : 0;
    } else if (!absl::IsNotFound(carrier.status())) {
      st.carrier = 0;  // the kernel answers EINVAL while the interface is down
    }
    return st;
  }

  // The umad or issm node (`kind`) of (ibdev, port), warning when there is none.
  absl::StatusOr<std::optional<CharDevice>> FindMad(
      const std::map<std::string, std::vector<NodeEntry>>& index, const char* kind,
      const std::string& ibdev, int port, const std::string& owner) {
    auto it = index.find(ibdev);
    if (it != index.end()) {
      for (const NodeEntry& e : it->second) {
        if (!IsDecimal(e.port_text)) {
          return absl::InvalidArgumentError(
              fmt::format("{}/port: '{}' is not a port number", e.sysfs_dir, e.port_text));
        }
        if (std::stoi(e.port_text) != port) continue;
        auto cd = ReadCharDevice(e.name, e.sysfs_dir, owner);
        if (absl::IsNotFound(cd.status())) {
          Warn(std::string(cd.status().message()));
          return std::optional<CharDevice>();
        }
        if (!cd.ok()) return cd.status();
        return std::optional<CharDevice>(std::move(*cd));
      }
    }
    Warn(fmt::format("{}port={} has no {} device (ib_umad not loaded?)", owner, port, kind));
    return std::optional<CharDevice>();
  }

  void ScanRdmaCm(NodeInventory& inv) {
    std::string link = JoinPath(paths_.sys_root, "class/misc/rdma_cm");
    struct stat st;
    if (::lstat(link.c_str(), &st) != 0) {
      if (!inv.devices.empty()) {
        Warn(
            "node=rdma_cm: class/misc/rdma_cm missing (rdma_ucm not loaded?): RDMA CM "
            "applications will fail");
      }
      return;
    }
    auto cd = ReadCharDevice("rdma_cm", link, "");
    if (!cd.ok()) {
      Warn(fmt::format("node=rdma_cm ignored: {}", cd.status().message()));
      return;
    }
    inv.rdma_cm = std::move(*cd);
  }

  const HostPaths& paths_;
  std::string virtual_dir_;
  std::map<std::string, std::vector<NodeEntry>> verbs_, umad_, issm_;
  std::vector<std::string> warnings_;
};

}  // namespace

SysfsDeviceScanner::SysfsDeviceScanner(HostPaths paths) : paths_(std::move(paths)) {}

absl::StatusOr<NodeInventory> SysfsDeviceScanner::Scan() {
  ScanPass scan(paths_);
  auto inv = scan.Run();
  Report(std::move(scan.warnings()));
  return inv;
}

std::vector<std::string> SysfsDeviceScanner::Warnings() const {
  absl::MutexLock lock(&mu_);
  return active_warnings_;
}

void SysfsDeviceScanner::Report(std::vector<std::string> current) {
  std::sort(current.begin(), current.end());
  current.erase(std::unique(current.begin(), current.end()), current.end());
  absl::MutexLock lock(&mu_);
  for (const std::string& w : current) {
    if (!std::binary_search(active_warnings_.begin(), active_warnings_.end(), w)) {
      spdlog::warn("rdma scan: {}", w);
    }
  }
  active_warnings_ = std::move(current);
}

}  // namespace rdmashare::rdma
