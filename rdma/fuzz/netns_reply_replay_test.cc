// Replays the netns-reply fuzz corpus (expected outcome encoded in each seed's name prefix) and
// a deterministic set of mutations of it through the fuzz entry point's parser.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/netns_mode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace rdmashare::rdma {
namespace {

struct Seed {
  std::string name;
  std::string bytes;
};

std::vector<Seed> LoadCorpus() {
  std::vector<Seed> seeds;
  auto names = ListDir(RS_NETNS_CORPUS_DIR);
  if (!names.ok()) return seeds;
  for (const std::string& n : *names) {
    auto bytes = ReadFile(JoinPath(RS_NETNS_CORPUS_DIR, n));
    if (bytes.ok()) seeds.push_back({n, *bytes});
  }
  return seeds;
}

absl::StatusOr<std::optional<NetnsMode>> Parse(const std::string& b) {
  return ParseNetnsModeReply(reinterpret_cast<const uint8_t*>(b.data()), b.size(), 1);
}

TEST(NetnsReplyCorpusTest, EverySeedParsesToTheOutcomeItsNameSays) {
  std::vector<Seed> seeds = LoadCorpus();
  ASSERT_GE(seeds.size(), 9u) << "corpus at " << RS_NETNS_CORPUS_DIR;
  for (const Seed& s : seeds) {
    SCOPED_TRACE(s.name);
    auto got = Parse(s.bytes);
    auto starts = [&](const char* p) { return s.name.rfind(p, 0) == 0; };
    if (starts("shared")) {
      ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
      EXPECT_EQ(**got, NetnsMode::kShared);
    } else if (starts("exclusive")) {
      ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
      EXPECT_EQ(**got, NetnsMode::kExclusive);
    } else if (starts("unavailable")) {
      ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
      EXPECT_EQ(**got, NetnsMode::kUnavailable);
    } else if (starts("none")) {
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_FALSE(got->has_value());
    } else if (starts("invalid")) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    } else if (starts("error")) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
    } else {
      ADD_FAILURE() << "seed name must start with the expected outcome";
    }
  }
}

TEST(NetnsReplyCorpusTest, MutatedSeedsOnlyYieldDocumentedOutcomes) {
  std::vector<Seed> seeds = LoadCorpus();
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(20261128);
  int ok = 0, errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = seeds[rng() % seeds.size()].bytes;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      switch (rng() % 3) {
        case 0:
          b[rng() % b.size()] ^= static_cast<char>(1u << (rng() % 8));
          break;
        case 1:
          b.resize(rng() % b.size());
          break;
        default:
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                   static_cast<char>(rng() & 0xff));
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(b.data()), b.size());
    auto got = Parse(b);
    if (got.ok()) {
      ++ok;
      if (got->has_value()) {
        EXPECT_THAT(**got, ::testing::AnyOf(NetnsMode::kShared, NetnsMode::kExclusive,
                                            NetnsMode::kUnavailable));
      }
    } else {
      ++errors;
      EXPECT_THAT(got.status().code(), ::testing::AnyOf(absl::StatusCode::kInvalidArgument,
                                                        absl::StatusCode::kUnavailable))
          << got.status();
    }
  }
  // Mutations must reach both the accepting and the rejecting paths.
  EXPECT_GT(ok, 0);
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace rdmashare::rdma
