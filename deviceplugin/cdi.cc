#include "deviceplugin/cdi.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::deviceplugin {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxAnnotationNameLength = 63;
constexpr size_t kMaxFileStemLength = 200;

bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAlnum(char c) { return IsLetter(c) || (c >= '0' && c <= '9'); }

// FNV-1a, 32 bits: short, stable across builds and platforms.
uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string Sanitize(const std::string& kind) {
  std::string out = kind;
  for (char& c : out) {
    if (!IsAlnum(c) && c != '_' && c != '-') c = '_';
  }
  return out;
}

// `s` cut to `max` characters: a prefix plus "-" and the hash of `full` when too long.
std::string Shorten(const std::string& s, size_t max, const std::string& full) {
  if (s.size() <= max) return s;
  std::string hash = fmt::format("{:08x}", Fnv1a(full));
  return s.substr(0, max - hash.size() - 1) + "-" + hash;
}

// Why `part` breaks the rule of a CDI vendor (dots allowed) or class (no dots), or "".
std::string NamePartProblem(const std::string& part, bool allow_dot) {
  if (part.empty()) return "is empty";
  if (!IsLetter(part.front())) return "must start with a letter";
  if (!IsAlnum(part.back())) return "must end with a letter or digit";
  for (char c : part) {
    if (IsAlnum(c) || c == '_' || c == '-' || (allow_dot && c == '.')) continue;
    return fmt::format("contains '{}' (allowed: letters, digits, '_', '-'{})", c,
                       allow_dot ? ", '.'" : "");
  }
  return "";
}

bool IsAbsolute(const std::string& p) { return !p.empty() && p.front() == '/'; }

absl::Status ValidateEdits(const std::string& kind, const CdiContainerEdits& edits) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(fmt::format("CDI spec {}: {}", kind, what));
  };
  for (const std::string& e : edits.env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      return bad(fmt::format("env entry '{}' is not NAME=value", e));
    }
  }
  for (const CdiDeviceNode& n : edits.device_nodes) {
    if (!IsAbsolute(n.path)) {
      return bad(fmt::format("device node path '{}' is not absolute", n.path));
    }
    if (!n.host_path.empty() && !IsAbsolute(n.host_path)) {
      return bad(
          fmt::format("device node {}: host path '{}' is not absolute", n.path, n.host_path));
    }
    if (!n.type.empty() && n.type != "c" && n.type != "b" && n.type != "u" && n.type != "p") {
      return bad(fmt::format("device node {}: type '{}' is not one of c, b, u, p", n.path, n.type));
    }
    for (char c : n.permissions) {
      if (c != 'r' && c != 'w' && c != 'm') {
        return bad(fmt::format("device node {}: permissions '{}' may only hold r, w, m", n.path,
                               n.permissions));
      }
    }
  }
  for (const CdiMount& m : edits.mounts) {
    if (!IsAbsolute(m.host_path) || !IsAbsolute(m.container_path)) {
      return bad(
          fmt::format("mount '{}' -> '{}' needs absolute paths", m.host_path, m.container_path));
    }
  }
  return absl::OkStatus();
}

absl::Status Annotate(const absl::Status& st, const std::string& what) {
  return absl::Status(st.code(), fmt::format("{}: {}", what, st.message()));
}

}  // namespace

absl::Status ValidateCdiKind(const std::string& kind) {
  size_t slash = kind.find('/');
  if (slash == std::string::npos || kind.find('/', slash + 1) != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("CDI kind '{}' is not of the form <vendor>/<class>", kind));
  }
  std::string vendor = kind.substr(0, slash), cls = kind.substr(slash + 1);
  if (std::string p = NamePartProblem(vendor, true); !p.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("CDI kind '{}': vendor (resource prefix) '{}' {}", kind, vendor, p));
  }
  if (std::string p = NamePartProblem(cls, false); !p.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("CDI kind '{}': class (resource name) '{}' {}", kind, cls, p));
  }
  return absl::OkStatus();
}

std::string CdiQualifiedName(const std::string& kind) {
  return fmt::format("{}={}", kind, kCdiDeviceName);
}

std::string CdiAnnotationKey(const std::string& kind) {
  std::string name = Shorten("rdmashare_" + Sanitize(kind), kMaxAnnotationNameLength, kind);
  return kCdiAnnotationPrefix + name;
}

std::string CdiSpecFileName(const std::string& kind) {
  return Shorten(kCdiFilePrefix + Sanitize(kind), kMaxFileStemLength, kind) + ".json";
}

absl::StatusOr<std::string> RenderCdiSpec(const std::string& kind, const CdiContainerEdits& edits) {
  RETURN_IF_ERROR(ValidateCdiKind(kind));
  RETURN_IF_ERROR(ValidateEdits(kind, edits));
  Json ce = Json::object();
  if (!edits.env.empty()) ce["env"] = edits.env;
  if (!edits.device_nodes.empty()) {
    Json nodes = Json::array();
    for (const CdiDeviceNode& n : edits.device_nodes) {
      Json j = Json::object();
      j["path"] = n.path;
      if (!n.host_path.empty()) j["hostPath"] = n.host_path;
      if (!n.type.empty()) j["type"] = n.type;
      if (!n.type.empty() && n.major != 0) {
        j["major"] = n.major;
        j["minor"] = n.minor;
      }
      if (!n.permissions.empty()) j["permissions"] = n.permissions;
      nodes.push_back(std::move(j));
    }
    ce["deviceNodes"] = std::move(nodes);
  }
  if (!edits.mounts.empty()) {
    Json mounts = Json::array();
    for (const CdiMount& m : edits.mounts) {
      Json j = Json::object();
      j["hostPath"] = m.host_path;
      j["containerPath"] = m.container_path;
      if (!m.options.empty()) j["options"] = m.options;
      mounts.push_back(std::move(j));
    }
    ce["mounts"] = std::move(mounts);
  }
  Json spec = Json::object();
  spec["cdiVersion"] = kCdiVersion;
  spec["kind"] = kind;
  Json device = Json::object();
  device["name"] = kCdiDeviceName;
  device["containerEdits"] = std::move(ce);
  spec["devices"] = Json::array({std::move(device)});
  return spec.dump(2) + "\n";
}

std::vector<CdiDeviceNode> CdiDeviceNodesFor(const std::vector<DeviceNode>& nodes,
                                             const std::vector<rdma::RdmaDevice>& devices,
                                             const std::optional<rdma::CharDevice>& rdma_cm) {
  std::map<std::string, const rdma::CharDevice*> by_name;
  auto index = [&](const std::optional<rdma::CharDevice>& c) {
    if (c) by_name.emplace(c->name, &*c);
  };
  for (const rdma::RdmaDevice& d : devices) {
    index(d.uverbs);
    for (const rdma::RdmaPort& p : d.ports) {
      index(p.umad);
      index(p.issm);
    }
  }
  index(rdma_cm);
  std::vector<CdiDeviceNode> out;
  out.reserve(nodes.size());
  for (const DeviceNode& n : nodes) {
    CdiDeviceNode c;
    c.path = n.container_path;
    c.host_path = n.host_path;
    c.permissions = n.permissions;
    auto it = by_name.find(BaseName(n.container_path));
    if (it != by_name.end()) {
      c.major = it->second->major;
      c.minor = it->second->minor;
    }
    out.push_back(std::move(c));
  }
  return out;
}

CdiContainerEdits CdiEditsForSnapshot(const PoolSnapshot& snapshot,
                                      const std::optional<rdma::CharDevice>& rdma_cm) {
  CdiContainerEdits edits;
  edits.device_nodes = CdiDeviceNodesFor(snapshot.nodes, snapshot.devices, rdma_cm);
  if (!snapshot.cli_host_path.empty()) {
    edits.mounts.push_back(
        CdiMount{snapshot.cli_host_path, kCliContainerPath, {"ro", "nosuid", "nodev", "bind"}});
  }
  return edits;
}

CdiSpecWriter::CdiSpecWriter(std::string dir) : dir_(std::move(dir)) {}

std::string CdiSpecWriter::PathFor(const std::string& kind) const {
  return JoinPath(dir_, CdiSpecFileName(kind));
}

absl::StatusOr<bool> CdiSpecWriter::Write(const std::string& kind, const CdiContainerEdits& edits) {
  ASSIGN_OR_RETURN(std::string content, RenderCdiSpec(kind, edits));
  const std::string path = PathFor(kind);
  absl::MutexLock lock(&mu_);
  absl::Status dir_status = MakeDirs(dir_);
  if (!dir_status.ok()) {
    return Annotate(dir_status, fmt::format("CDI spec directory {}", dir_));
  }
  // Only a regular file is ever read back (a FIFO there must not block the daemon) or replaced:
  // a directory, FIFO, device or symlink at our path is somebody else's doing, so this kind's
  // spec fails with the reason and the caller decides what that costs.
  absl::StatusOr<std::string> old = ReadFileNoFollow(path);
  if (old.ok()) {
    if (*old == content) return false;
    // Sanitizing is not injective ("a.b/c" and "a_b/c"): never overwrite another kind's spec.
    nlohmann::json j = ParseJsonBounded(*old, path).value_or(nlohmann::json());
    if (j.is_object() && j.contains("kind") && j["kind"].is_string() &&
        j["kind"].get<std::string>() != kind) {
      return absl::AlreadyExistsError(
          fmt::format("CDI spec {} for kind {}: the file holds the spec of kind {}", path, kind,
                      j["kind"].get<std::string>()));
    }
  } else if (old.status().code() == absl::StatusCode::kFailedPrecondition) {
    return absl::FailedPreconditionError(
        fmt::format("CDI spec for kind {}: {}; remove it to let the spec be written", kind,
                    old.status().message()));
  } else if (old.status().code() != absl::StatusCode::kNotFound) {
    return Annotate(old.status(), fmt::format("CDI spec for kind {}", kind));
  }
  absl::Status st = WriteFileAtomic(path, content, 0644);
  if (!st.ok()) return Annotate(st, fmt::format("CDI spec for kind {}", kind));
  return true;
}

absl::Status CdiSpecWriter::Remove(const std::string& kind) {
  const std::string path = PathFor(kind);
  absl::MutexLock lock(&mu_);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(
        fmt::format("CDI spec for kind {}: remove {}: {}", kind, path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> CdiSpecWriter::RemoveStale(
    const std::vector<std::string>& kinds_in_use) {
  std::set<std::string> keep;
  for (const std::string& k : kinds_in_use) keep.insert(CdiSpecFileName(k));
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir_);
  if (!names.ok()) {
    if (names.status().code() == absl::StatusCode::kNotFound) return std::vector<std::string>{};
    return Annotate(names.status(), "CDI spec directory");
  }
  std::vector<std::string> removed;
  const std::string hidden_prefix = std::string(".") + kCdiFilePrefix;
  for (const std::string& name : *names) {
    // WriteFileAtomic's temp files left by a crash: ".rdmashare-<...>.json.tmp-<random>".
    const bool temp =
        name.rfind(hidden_prefix, 0) == 0 && name.find(kAtomicTempInfix) != std::string::npos;
    if (!temp && (name.rfind(kCdiFilePrefix, 0) != 0 || keep.count(name) != 0)) continue;
    const std::string path = JoinPath(dir_, name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return absl::InternalError(
          fmt::format("CDI spec directory: remove stale {}: {}", path, std::strerror(errno)));
    }
    removed.push_back(name);
  }
  return removed;
}

}  // namespace rdmashare::deviceplugin
