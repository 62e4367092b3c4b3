// libFuzzer entry point for ParseNetnsModeReply (bytes from a netlink socket are untrusted).
// Built as a fuzzer with clang (-fsanitize=fuzzer); with any compiler the same function is
// driven over the seed corpus and deterministic mutations by netns_reply_replay_test.cc.
#include <cstddef>
#include <cstdint>

#include "rdma/netns_mode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The corpus is recorded for request sequence number 1.
  (void)rdmashare::rdma::ParseNetnsModeReply(data, size, 1);
  return 0;
}
