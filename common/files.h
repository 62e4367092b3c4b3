// Rooted, strict file access helpers used for sysfs, /dev and state files.
//
// Stateless free functions; thread-safe. Errors are absl::Status with the path in the message:
// NotFound when the path does not exist, InvalidArgument when content is malformed, Internal for
// other I/O failures.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdmashare {

// Joins path components with exactly one '/' between them ("a/" + "/b" -> "a/b").
std::string JoinPath(const std::string& a, const std::string& b);

// Reads a whole file. Refuses files larger than `max_bytes` (InvalidArgument).
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 1 << 20);

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

// Writes `content` to `path` atomically: temp file in the same directory, fsync, rename, fsync
// of the directory. The file gets `mode`.
absl::Status WriteFileAtomic(const std::string& path, const std::string& content,
                             mode_t mode = 0644);

// Creates a directory and its parents (like mkdir -p) with `mode` for the ones it creates.
absl::Status MakeDirs(const std::string& path, mode_t mode = 0755);

// Parses a "major:minor" device number as found in sysfs `dev` files.
absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseDevNumber(const std::string& text);

}  // namespace rdmashare
