#include "common/testing/temp_dir.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/files.h"

namespace rdmashare::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/rs.XXXXXX";
  char* p = ::mkdtemp(tmpl);
  if (p == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = p;
}

TempDir::~TempDir() { RemoveTree(path_); }

std::string TempDir::Sub(const std::string& rel) const { return JoinPath(path_, rel); }

void WriteTestFile(const std::string& path, const std::string& content) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (!MakeDirs(path.substr(0, slash)).ok()) std::abort();
  }
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::abort();
  }
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
}

void RemoveTree(const std::string& path) {
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) -> int {
        ::remove(p);
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS);
}

}  // namespace rdmashare::testing
