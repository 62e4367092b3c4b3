#include "rdma/port_counters.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "common/files.h"
#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

bool IsCounterName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A counter file holds one unsigned decimal number (the kernel prints u64 values).
absl::StatusOr<uint64_t> ReadCounter(const std::string& path) {
  absl::StatusOr<std::string> text = ReadAttr(path);
  if (!text.ok()) return text.status();
  if (text->empty() || text->size() > 20 ||
      !std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(fmt::format("{}: '{}' is not a counter", path, *text));
  }
  errno = 0;
  unsigned long long v = std::strtoull(text->c_str(), nullptr, 10);
  if (errno == ERANGE) {
    return absl::InvalidArgumentError(fmt::format("{}: '{}' overflows 64 bits", path, *text));
  }
  return static_cast<uint64_t>(v);
}

}  // namespace

absl::StatusOr<PortCounters> ReadPortCounters(const std::string& sys_root, const std::string& ibdev,
                                              int port) {
  std::string pdir = JoinPath(sys_root, fmt::format("class/infiniband/{}/ports/{}", ibdev, port));
  struct stat st;
  if (::stat(pdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(fmt::format("{}: no such RDMA port", pdir));
  }
  PortCounters out;
  struct Std {
    const char* name;
    uint64_t PortCounters::*field;
  };
  static constexpr Std kStd[] = {{"port_xmit_data", &PortCounters::xmit_data},
                                 {"port_rcv_data", &PortCounters::rcv_data},
                                 {"port_xmit_packets", &PortCounters::xmit_packets},
                                 {"port_rcv_packets", &PortCounters::rcv_packets}};
  std::string cdir = JoinPath(pdir, "counters");
  if (::stat(cdir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    for (const Std& s : kStd) {
      std::string path = JoinPath(cdir, s.name);
      absl::StatusOr<uint64_t> v = ReadCounter(path);
      if (v.ok()) {
        out.*(s.field) = *v;
        out.has_port_counters = true;
      } else if (!absl::IsNotFound(v.status())) {
        out.problems.push_back(std::string(v.status().message()));
      }
    }
  }
  absl::StatusOr<std::vector<std::string>> names = ListDir(JoinPath(pdir, "hw_counters"));
  if (names.ok()) {
    for (const std::string& name : *names) {
      if (out.hw.size() >= kMaxHwCounters) {
        out.problems.push_back(fmt::format("{}/hw_counters: more than {} counters, rest ignored",
                                           pdir, kMaxHwCounters));
        break;
      }
      // "lifespan" is mlx5's refresh period in ms (a setting, not a counter).
      if (!IsCounterName(name) || name == "lifespan") continue;
      absl::StatusOr<uint64_t> v = ReadCounter(JoinPath(pdir, "hw_counters/" + name));
      if (v.ok()) {
        out.hw.emplace_back(name, *v);
      } else {
        out.problems.push_back(std::string(v.status().message()));
      }
    }
  }
  return out;
}

}  // namespace rdmashare::rdma
