// Rooted, strict file access helpers used for sysfs, /dev and state files.
//
// Stateless free functions; thread-safe. Errors are absl::Status with the path in the message:
// NotFound when the path does not exist, InvalidArgument when content is malformed,
// FailedPrecondition when the path is not a regular file (or is a symbolic link where none is
// followed), Internal for other I/O failures.
//
// Hostile trees: every read opens non-blocking and only after checking the path is a regular file
// (a FIFO, socket or device planted where a file is expected is refused, never opened for
// reading, and cannot hang the caller); writes create their temp files exclusively under random
// names (a planted symlink is never followed). The *At variants work relative to an open
// directory and never follow a symlink at the name, for state kept in a data directory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace rdmashare {

// Joins path components with exactly one '/' between them ("a/" + "/b" -> "a/b").
std::string JoinPath(const std::string& a, const std::string& b);

// Reads a whole file, following symbolic links (a ConfigMap's files are links into `..data`).
// Refuses files larger than `max_bytes` (InvalidArgument) and anything but a regular file
// (FailedPrecondition naming its type, checked before the non-blocking open and again on the
// open descriptor).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 1 << 20);

// ReadFile for state files: the last component of `path` must not be a symbolic link
// (FailedPrecondition "is a symbolic link (not followed)").
absl::StatusOr<std::string> ReadFileNoFollow(const std::string& path, size_t max_bytes = 1 << 20);

// ReadFileNoFollow of `name` (one path component) in the open directory `dir_fd`; `dir_path` only
// names the directory in messages.
absl::StatusOr<std::string> ReadFileAt(int dir_fd, const std::string& dir_path,
                                       const std::string& name, size_t max_bytes = 1 << 20);

// Opens a directory (O_DIRECTORY, O_CLOEXEC). With `follow_last` false the last component must
// not be a symbolic link (FailedPrecondition). NotFound when absent, FailedPrecondition when it is
// not a directory.
absl::StatusOr<UniqueFd> OpenDir(const std::string& path, bool follow_last = true);

// OpenDir of `name` (one component, never followed when a symbolic link) inside `dir_fd`.
absl::StatusOr<UniqueFd> OpenDirAt(int dir_fd, const std::string& dir_path,
                                   const std::string& name);

// Lists the names in the open directory `dir_fd` (without "." and ".."), sorted; `dir_fd` itself
// stays open and unchanged.
absl::StatusOr<std::vector<std::string>> ListDirAt(int dir_fd, const std::string& dir_path);

// What the file type bits of `mode` are, for messages ("a FIFO", "a directory", ...).
std::string FileTypeName(mode_t mode);

// Random part of a temp file name: 16 hexadecimal digits.
inline constexpr size_t kTempSuffixLength = 16;
// WriteFileAtomic's temp files are named "." + basename + kAtomicTempInfix + 16 hex digits.
inline constexpr char kAtomicTempInfix[] = ".tmp-";

// A file made by CreateTempFileAt: open for writing, and its name in the directory.
struct TempFile {
  UniqueFd fd;
  std::string name;
};

// Creates a new file named `prefix` + kTempSuffixLength random hex digits in the open directory
// `dir_fd`, exclusively (O_CREAT|O_EXCL|O_NOFOLLOW: whatever already holds the name, a symlink
// included, is never opened; another random name is tried), open write-only with `mode` (before
// the umask). `dir_path` only names the directory in messages.
absl::StatusOr<TempFile> CreateTempFileAt(int dir_fd, const std::string& dir_path,
                                          const std::string& prefix, mode_t mode);

// Reads a sysfs attribute: the file's content without the trailing newline/whitespace.
// Rejects content with embedded NUL bytes or over 4 KiB (InvalidArgument).
absl::StatusOr<std::string> ReadAttr(const std::string& path);

// Reads a sysfs attribute holding a decimal integer (optionally negative).
absl::StatusOr<int64_t> ReadIntAttr(const std::string& path);

// Returns the target of a symbolic link as stored (not resolved).
absl::StatusOr<std::string> ReadLink(const std::string& path);

// Returns the canonical absolute path (all links resolved); NotFound if it does not exist.
absl::StatusOr<std::string> RealPath(const std::string& path);

// Lists the names in a directory (without "." and ".."), sorted. NotFound if absent.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

// True when the path exists (following symlinks).
bool PathExists(const std::string& path);

// Last component of a path ("a/b/c" -> "c").
std::string BaseName(const std::string& path);

// Writes `content` to `path` atomically: a temp file created exclusively under a random name in
// the same directory (see kAtomicTempInfix; a planted symlink is never followed), fchmod to
// `mode`, fsync, rename over `path` (a symlink at `path` is replaced, not followed), fsync of the
// directory. The temp file is removed on any error.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             mode_t mode = 0644);

// Creates a directory and its parents (like mkdir -p) with `mode` for the ones it creates.
absl::Status MakeDirs(const std::string& path, mode_t mode = 0755);

// Parses a "major:minor" device number as found in sysfs `dev` files.
absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseDevNumber(const std::string& text);

}  // namespace rdmashare
