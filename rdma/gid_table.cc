#include "rdma/gid_table.h"

#include <algorithm>
#include <cstdlib>

#include "common/files.h"
#include "fmt/format.h"

namespace rdmashare::rdma {

absl::StatusOr<std::vector<GidTableEntry>> ReadGidTable(const std::string& sys_root,
                                                        const std::string& ibdev, int port) {
  std::string pdir = JoinPath(sys_root, fmt::format("class/infiniband/{}/ports/{}", ibdev, port));
  absl::StatusOr<std::vector<std::string>> names = ListDir(JoinPath(pdir, "gids"));
  if (!names.ok()) return names.status();
  std::vector<GidTableEntry> out;
  for (const std::string& name : *names) {
    if (name.empty() || name.size() > 6 ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;  // not an index
    }
    GidTableEntry e;
    e.index = std::atoi(name.c_str());
    absl::StatusOr<std::string> gid = ReadAttr(JoinPath(pdir, "gids/" + name));
    if (gid.ok()) e.gid = *gid;
    if (e.used()) {
      absl::StatusOr<std::string> type = ReadAttr(JoinPath(pdir, "gid_attrs/types/" + name));
      if (type.ok()) e.type = *type;
      absl::StatusOr<std::string> ndev = ReadAttr(JoinPath(pdir, "gid_attrs/ndevs/" + name));
      if (ndev.ok()) e.netdev = *ndev;
    }
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(),
            [](const GidTableEntry& a, const GidTableEntry& b) { return a.index < b.index; });
  return out;
}

GidRoom ReadGidRoom(const std::string& sys_root, const std::string& ibdev, int port) {
  GidRoom room;
  absl::StatusOr<std::vector<GidTableEntry>> table = ReadGidTable(sys_root, ibdev, port);
  if (!table.ok()) return room;
  room.size = static_cast<int>(table->size());
  for (const GidTableEntry& e : *table) room.used += e.used() ? 1 : 0;
  return room;
}

std::string DescribeGidRoom(const GidRoom& room) {
  return fmt::format(
      "{} of {} GID entries free ({} used): room for {} pods ({} entries each: RoCE v1+v2 of "
      "the pod's IPv4 and IPv6 link-local addresses)",
      room.free(), room.size, room.used, room.pods_fit(), kGidEntriesPerPod);
}

}  // namespace rdmashare::rdma
