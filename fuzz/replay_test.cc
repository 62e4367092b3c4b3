// Replay of one fuzz target's seed corpus and of deterministic mutations of it, through the
// target's own LLVMFuzzerTestOneInput, in the regular (gcc) build: every build exercises the
// parsers on malformed input even without clang/libFuzzer. Seeds named valid_* must be accepted
// and invalid_* rejected by the target's main parser (RsFuzzAccepts); others (edge_*, crash_*
// regressions) only have to keep the target's invariants. Compiled once per target with
// RS_FUZZ_CORPUS_DIR and RS_FUZZ_MUTATIONS.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/files.h"
#include "fuzz/fuzz_check.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace rdmashare::fuzz {
namespace {

struct Seed {
  std::string name;
  std::string bytes;
};

std::vector<Seed> LoadCorpus() {
  std::vector<Seed> seeds;
  auto names = ListDir(RS_FUZZ_CORPUS_DIR);
  if (!names.ok()) return seeds;
  for (const std::string& n : *names) {
    auto bytes = ReadFile(JoinPath(RS_FUZZ_CORPUS_DIR, n));
    if (bytes.ok()) seeds.push_back({n, *bytes});
  }
  return seeds;
}

bool Accepts(const std::string& b) {
  return RsFuzzAccepts(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}
void Feed(const std::string& b) {
  EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(b.data()), b.size()), 0);
}

TEST(FuzzCorpusTest, SeedsHaveTheOutcomeTheirNamesSay) {
  std::vector<Seed> seeds = LoadCorpus();
  ASSERT_GE(seeds.size(), 4u) << "corpus at " << RS_FUZZ_CORPUS_DIR;
  int valid = 0, invalid = 0;
  for (const Seed& s : seeds) {
    SCOPED_TRACE(s.name);
    Feed(s.bytes);
    if (s.name.rfind("valid_", 0) == 0) {
      ++valid;
      EXPECT_TRUE(Accepts(s.bytes)) << "a valid_ seed is rejected";
    } else if (s.name.rfind("invalid_", 0) == 0) {
      ++invalid;
      EXPECT_FALSE(Accepts(s.bytes)) << "an invalid_ seed is accepted";
    }
  }
  EXPECT_GT(valid, 0) << "the corpus needs valid_ seeds";
  EXPECT_GT(invalid, 0) << "the corpus needs invalid_ seeds";
}

TEST(FuzzCorpusTest, MutatedSeedsKeepTheInvariantsAndReachBothOutcomes) {
  std::vector<Seed> seeds = LoadCorpus();
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(20261129);
  int accepted = 0, rejected = 0;
  const char kTokens[] = "{}[]\",:0-./\\\r\n =;x";
  for (int i = 0; i < RS_FUZZ_MUTATIONS; ++i) {
    std::string b = seeds[rng() % seeds.size()].bytes;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      size_t pos = rng() % b.size();
      switch (rng() % 5) {
        case 0:
          b[pos] = static_cast<char>(b[pos] ^ (1u << (rng() % 8)));
          break;
        case 1:
          b.resize(pos);
          break;
        case 2:
          b.erase(pos, 1 + rng() % 8);
          break;
        case 3:
          b.insert(pos, 1, kTokens[rng() % (sizeof(kTokens) - 1)]);
          break;
        default: {
          // Splice in a piece of another seed.
          const std::string& other = seeds[rng() % seeds.size()].bytes;
          if (other.empty()) break;
          size_t from = rng() % other.size();
          b.insert(pos, other.substr(from, 1 + rng() % 32));
        }
      }
    }
    Feed(b);
    (Accepts(b) ? accepted : rejected)++;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace rdmashare::fuzz
