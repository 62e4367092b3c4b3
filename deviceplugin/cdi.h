// CDI (Container Device Interface) spec writer: one spec file per device-plugin resource, so that
// CDI-aware runtimes (podman 4.3+, containerd 1.7+, CRI-O 1.23+) inject the pool's device nodes
// themselves when kubelet hands them a qualified device name ("<kind>=all").
//
// Format: cdiVersion 0.5.0 (the newest version podman 4.3's vendored CDI library accepts; it is
// also the first with deviceNodes[].hostPath, which we need because the daemon's view of /dev
// may differ from the host's). One spec per resource kind "<resourcePrefix>/<resourceName>"
// holding a single device named "all" whose containerEdits carry every node of the pool.
//
// Files are named "rdmashare-<sanitized kind>.json" in the spec directory (default
// /var/run/cdi) and replaced atomically (WriteFileAtomic: a hidden temp file with a random name,
// created exclusively, fsync, rename); only files whose name starts with "rdmashare-" (and those
// temp files, ".rdmashare-*.tmp-*") are ever removed. The directory may be writable by others:
// nothing at a spec path but a regular file is read or replaced (no symlink followed, no FIFO
// opened), and such an entry fails only its own kind. Plain functions are stateless and
// thread-safe; CdiSpecWriter serializes its own file operations with a mutex, so it may be shared
// between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "deviceplugin/resource_pool.h"
#include "rdma/device.h"

namespace rdmashare::deviceplugin {

// The CDI spec version we write.
inline constexpr char kCdiVersion[] = "0.5.0";
// Default spec directory (runtimes read /etc/cdi and /var/run/cdi; the latter wins on conflict
// and is the one meant for generated, non-persistent specs).
inline constexpr char kCdiDefaultDir[] = "/var/run/cdi";
// Every file we write starts with this; nothing else is ever deleted.
inline constexpr char kCdiFilePrefix[] = "rdmashare-";
// The one device of every spec.
inline constexpr char kCdiDeviceName[] = "all";
// Prefix of CDI device-injection annotations (runtimes whose kubelet lacks cdi_devices).
inline constexpr char kCdiAnnotationPrefix[] = "cdi.k8s.io/";

// A device node edit (CDI containerEdits.deviceNodes[]).
struct CdiDeviceNode {
  // Path inside the container ("/dev/infiniband/uverbs0").
  std::string path;
  // Path on the host; empty = same as `path`.
  std::string host_path;
  // "c" for character devices; empty = let the runtime stat host_path.
  std::string type = "c";
  // Device number; written only when `type` is set and major != 0 (0 = let the runtime stat).
  uint32_t major = 0;
  uint32_t minor = 0;
  // cgroup permissions, any of "rwm"; empty = runtime default ("rwm").
  std::string permissions = "rw";

  bool operator==(const CdiDeviceNode& o) const {
    return path == o.path && host_path == o.host_path && type == o.type && major == o.major &&
           minor == o.minor && permissions == o.permissions;
  }
};

// A bind mount edit (CDI containerEdits.mounts[]).
struct CdiMount {
  std::string host_path;
  std::string container_path;
  // OCI mount options; for a read-only bind mount e.g. {"ro", "nosuid", "nodev", "bind"}.
  std::vector<std::string> options;

  bool operator==(const CdiMount& o) const {
    return host_path == o.host_path && container_path == o.container_path && options == o.options;
  }
};

// What the device "all" of one resource injects.
struct CdiContainerEdits {
  // "NAME=value" strings.
  std::vector<std::string> env;
  std::vector<CdiDeviceNode> device_nodes;
  std::vector<CdiMount> mounts;

  bool operator==(const CdiContainerEdits& o) const {
    return env == o.env && device_nodes == o.device_nodes && mounts == o.mounts;
  }
};

// Checks `kind` ("<vendor>/<class>") against the CDI naming rules: vendor starts with a letter,
// ends alphanumeric, has only [A-Za-z0-9_.-]; class starts with a letter, ends alphanumeric, has
// only [A-Za-z0-9_-] (no dots). InvalidArgument naming the kind and the rule otherwise.
absl::Status ValidateCdiKind(const std::string& kind);

// "<kind>=all": the fully qualified device name for AllocateResponse.cdi_devices, the
// annotation value and `podman run --device`.
std::string CdiQualifiedName(const std::string& kind);

// "cdi.k8s.io/rdmashare_<sanitized kind>": the annotation key (its name part is a valid
// Kubernetes annotation name of at most 63 characters; long kinds are shortened to a prefix plus
// a hash of the full kind, so distinct kinds keep distinct keys).
std::string CdiAnnotationKey(const std::string& kind);

// "rdmashare-<sanitized kind>.json" (every character outside [A-Za-z0-9_-] becomes '_'; names
// over 200 characters are shortened with a hash like the annotation key).
std::string CdiSpecFileName(const std::string& kind);

// The spec document for `kind` as JSON text (2-space indent, fixed key order, trailing newline).
// Deterministic: the same input gives the same bytes. InvalidArgument for a bad kind, an edit
// without a path, a non-absolute path, a bad device type or permission, or an env entry without
// '='.
absl::StatusOr<std::string> RenderCdiSpec(const std::string& kind, const CdiContainerEdits& edits);

// Device node edits for the nodes a pool grants: each DeviceNode is matched by its node name
// (the container path's last component) against the char devices of `devices` (uverbs, umad,
// issm) and `rdma_cm`, so the spec carries type "c" and the major:minor numbers; a node with no
// match keeps type "c" without numbers (the runtime then stats its host path).
std::vector<CdiDeviceNode> CdiDeviceNodesFor(const std::vector<DeviceNode>& nodes,
                                             const std::vector<rdma::RdmaDevice>& devices,
                                             const std::optional<rdma::CharDevice>& rdma_cm);

// Edits for a whole pool snapshot: its device nodes (see CdiDeviceNodesFor) plus, when the
// snapshot has a CLI to mount, a read-only bind mount of it at kCliContainerPath.
CdiContainerEdits CdiEditsForSnapshot(const PoolSnapshot& snapshot,
                                      const std::optional<rdma::CharDevice>& rdma_cm);

// Writes, replaces and removes rdmashare's spec files in one directory.
class CdiSpecWriter {
 public:
  // `dir`: the spec directory (created on first Write when missing).
  explicit CdiSpecWriter(std::string dir);

  const std::string& dir() const { return dir_; }
  // dir() + "/" + CdiSpecFileName(kind).
  std::string PathFor(const std::string& kind) const;

  // Writes the spec of `kind` when the file is missing or its content differs; returns true
  // when it wrote. Errors: InvalidArgument (bad kind or edits, see RenderCdiSpec),
  // AlreadyExists (the file name is taken by a spec of another kind), FailedPrecondition (a
  // directory, FIFO, device or symlink at the spec path, named), and the directory's or
  // file's I/O errors (FailedPrecondition when dir exists but is not a directory, NotFound,
  // PermissionDenied, ...), each naming the path.
  absl::StatusOr<bool> Write(const std::string& kind, const CdiContainerEdits& edits)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Deletes the spec of `kind`. OK when it did not exist.
  absl::Status Remove(const std::string& kind) ABSL_LOCKS_EXCLUDED(mu_);

  // Deletes every file of ours (name starting with kCdiFilePrefix, incl. temp files left by a
  // crash) that is not the spec of one of `kinds_in_use`. Never touches other files. Returns the
  // deleted file names, sorted. OK with nothing to do when the directory does not exist.
  absl::StatusOr<std::vector<std::string>> RemoveStale(const std::vector<std::string>& kinds_in_use)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string dir_;
  absl::Mutex mu_;
};

}  // namespace rdmashare::deviceplugin
