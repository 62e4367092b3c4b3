// TempDir: a fresh directory under /tmp (short paths keep unix socket names under 108 bytes),
// removed recursively on destruction. One per test; not shared across threads.
#pragma once

#include <string>

namespace rdmashare::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + rel.
  std::string Sub(const std::string& rel) const;

 private:
  std::string path_;
};

// Writes `content` to `path`, creating parent directories. Aborts the test binary on failure
// (tests only).
void WriteTestFile(const std::string& path, const std::string& content);

// Removes a tree recursively (no shell). Ignores errors.
void RemoveTree(const std::string& path);

}  // namespace rdmashare::testing
