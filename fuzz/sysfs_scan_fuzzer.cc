// libFuzzer target: a whole sysfs scan with one attribute replaced by fuzz bytes. A fake node
// (one ConnectX-5 RoCE PF mlx5_0 with its netdev, uverbs, umad/issm, rdma_cm, plus eth0) is
// written once; each input names an attribute on its first line (one of kAttributes; any other
// text picks one by hash) and the rest of the input becomes that file's content, then
// SysfsDeviceScanner::Scan runs. Invariants: the scan itself never fails and never throws; the
// device is either reported or skipped with a warning; nothing else appears. Needs root (mknod).
#include <unistd.h>

#include <functional>
#include <map>
#include <string>

#include "common/files.h"
#include "fuzz/fuzz_check.h"
#include "rdma/device_scanner.h"
#include "tools/fakenode/fake_node.h"

namespace {

using rdmashare::fakenode::FakeNode;

// Attributes the scanner reads, relative to the fake node's sys root.
const char* const kAttributes[] = {
    "class/infiniband/mlx5_0/ports/1/state",
    "class/infiniband/mlx5_0/ports/1/phys_state",
    "class/infiniband/mlx5_0/ports/1/link_layer",
    "class/infiniband/mlx5_0/ports/1/gid_attrs/ndevs/0",
    "class/infiniband/mlx5_0/node_guid",
    "class/infiniband/mlx5_0/device/vendor",
    "class/infiniband/mlx5_0/device/device",
    "class/infiniband/mlx5_0/device/class",
    "class/infiniband/mlx5_0/device/numa_node",
    "class/infiniband_verbs/uverbs0/ibdev",
    "class/infiniband_verbs/uverbs0/dev",
    "class/infiniband_mad/umad0/ibdev",
    "class/infiniband_mad/umad0/port",
    "class/infiniband_mad/umad0/dev",
    "class/infiniband_mad/issm0/port",
    "class/net/enp11s0f0np0/operstate",
    "class/net/enp11s0f0np0/carrier",
    "class/misc/rdma_cm/dev",
};

struct Tree {
  std::string sys_root;
  rdmashare::HostPaths paths;
  std::map<std::string, std::string> originals;  // path -> content
  bool ok = false;
};

Tree& TheTree() {
  static Tree tree = [] {
    Tree t;
    static const rdmashare::fuzz::ScratchDir dir("sysfs");
    const std::string d = dir.path();
    auto spec = rdmashare::fakenode::NoRdmaCm();
    spec.rdma_cm = rdmashare::fakenode::DevNumber{10, 58};
    auto node = FakeNode::Build(spec, d);
    if (!node.ok()) return t;  // not root: the target does nothing
    t.sys_root = node->sys_root();
    t.paths = node->paths();
    for (const char* rel : kAttributes) {
      std::string path = rdmashare::JoinPath(t.sys_root, rel);
      auto content = rdmashare::ReadFile(path);
      RS_FUZZ_CHECK(content.ok());
      t.originals[path] = *content;
    }
    t.ok = true;
    return t;
  }();
  return tree;
}

// Writes the input into its attribute, scans, restores the attribute.
absl::StatusOr<rdmashare::rdma::NodeInventory> ScanWith(const uint8_t* data, size_t size,
                                                        std::vector<std::string>* warnings) {
  Tree& t = TheTree();
  if (!t.ok) return absl::FailedPreconditionError("no fake tree (needs root)");
  std::string input = rdmashare::fuzz::AsString(data, size);
  size_t nl = input.find('\n');
  std::string selector = input.substr(0, nl);
  std::string content = nl == std::string::npos ? std::string() : input.substr(nl + 1);
  const char* rel = nullptr;
  for (const char* a : kAttributes) {
    if (selector == a) rel = a;
  }
  if (rel == nullptr) {
    rel = kAttributes[std::hash<std::string>()(selector) % std::size(kAttributes)];
  }
  std::string path = rdmashare::JoinPath(t.sys_root, rel);
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(path, content));
  rdmashare::rdma::SysfsDeviceScanner scanner(t.paths);
  auto inv = scanner.Scan();
  if (warnings != nullptr) *warnings = scanner.Warnings();
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(path, t.originals[path]));
  return inv;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  auto inv = ScanWith(data, size, nullptr);
  return inv.ok() && inv->devices.size() == 1;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!TheTree().ok) return 0;
  std::vector<std::string> warnings;
  auto inv = ScanWith(data, size, &warnings);
  RS_FUZZ_CHECK(inv.ok());
  RS_FUZZ_CHECK(inv->devices.size() <= 1);
  if (inv->devices.empty()) RS_FUZZ_CHECK(!warnings.empty());
  for (const auto& dev : inv->devices) RS_FUZZ_CHECK(dev.ibdev == "mlx5_0");
  return 0;
}
