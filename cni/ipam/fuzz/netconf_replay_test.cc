// Replays the netconf fuzz corpus and deterministic mutations of it (truncations, byte flips,
// splices) through the fuzz entry point, so every build exercises the parsers on malformed
// input even without clang/libFuzzer. The entry point traps on an error without a CNI code.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cni/protocol/netconf.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace rdmashare::cni {
namespace {

std::vector<std::string> LoadCorpus() {
  std::vector<std::string> seeds;
  auto names = ListDir(RS_CNI_CORPUS_DIR);
  if (!names.ok()) return seeds;
  for (const std::string& n : *names) {
    auto bytes = ReadFile(JoinPath(RS_CNI_CORPUS_DIR, n));
    if (bytes.ok()) seeds.push_back(*bytes);
  }
  return seeds;
}

int Feed(const std::string& s) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(NetconfCorpusTest, ValidSeedsParse) {
  std::vector<std::string> seeds = LoadCorpus();
  ASSERT_GE(seeds.size(), 6u) << "corpus at " << RS_CNI_CORPUS_DIR;
  int parsed = 0;
  for (const std::string& s : seeds) {
    EXPECT_EQ(Feed(s), 0);
    if (ParseNetConf(s).ok()) ++parsed;
  }
  EXPECT_GE(parsed, 6);
}

TEST(NetconfCorpusTest, MutationsNeverCrashAndAlwaysCarryCodes) {
  std::mt19937 rng(12345);
  int runs = 0;
  for (const std::string& seed : LoadCorpus()) {
    for (size_t cut = 0; cut < seed.size(); cut += 7) {
      Feed(seed.substr(0, cut));
      ++runs;
    }
    for (int i = 0; i < 300; ++i) {
      std::string m = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !m.empty(); ++e) {
        size_t pos = rng() % m.size();
        switch (rng() % 3) {
          case 0:
            m[pos] = static_cast<char>(rng() % 256);
            break;
          case 1:
            m.erase(pos, 1 + rng() % 8);
            break;
          default:
            m.insert(pos, std::string(1 + rng() % 3, "{}[]\",:0\\-./"[rng() % 13]));
        }
      }
      Feed(m);
      ++runs;
    }
  }
  EXPECT_GT(runs, 1000);
}

}  // namespace
}  // namespace rdmashare::cni
