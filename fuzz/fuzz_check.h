// Helpers shared by the libFuzzer targets in fuzz/: an invariant check that aborts (so libFuzzer
// reports a crash and the gcc replay tests fail loudly), and the hook each target exports for its
// replay test.
//
// Every target defines:
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)   the libFuzzer entry point;
//   bool RsFuzzAccepts(const uint8_t*, size_t)   true when the target's main parser accepts the
//                                                 input (used to check seed names: valid_* /
//                                                 invalid_*).
// Stateless; the targets are single-threaded as libFuzzer drives them.
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"

bool RsFuzzAccepts(const uint8_t* data, size_t size);

// Aborts with the failed condition when an invariant does not hold.
#define RS_FUZZ_CHECK(cond)                                                                  \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace rdmashare::fuzz {

// The input as a string.
inline std::string AsString(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Writes `content` to `path` (truncating; no fsync: fuzz loops write thousands of times).
inline bool WriteRaw(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  return ::close(fd) == 0 && ok;
}

// A scratch directory under /dev/shm (tmpfs: fuzz loops write files thousands of times per
// second), removed with everything in it when the process exits normally.
class ScratchDir {
 public:
  explicit ScratchDir(const char* tag) {
    std::string tmpl = std::string("/dev/shm/rs-fuzz-") + tag + "-XXXXXX";
    RS_FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) {
          ::remove(p);
          return 0;
        },
        16, FTW_DEPTH | FTW_PHYS);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An error must carry a message (every rejection names its cause).
inline bool HasMessage(const absl::Status& st) { return st.ok() || !st.message().empty(); }

}  // namespace rdmashare::fuzz
