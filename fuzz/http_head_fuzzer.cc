// libFuzzer target: the request head the device plugin's /metrics, /healthz, /readyz endpoint
// reads from any local client (ParseHttpRequestHead). Invariants: a rejection is InvalidArgument
// with a message; an accepted head has a token method, an absolute path without spaces or
// control characters, HTTP/1.0 or HTTP/1.1, and parsing is deterministic.
#include <string>

#include "deviceplugin/http_message.h"
#include "fuzz/fuzz_check.h"

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return rdmashare::deviceplugin::ParseHttpRequestHead(rdmashare::fuzz::AsString(data, size)).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input = rdmashare::fuzz::AsString(data, size);
  auto head = rdmashare::deviceplugin::ParseHttpRequestHead(input);
  if (!head.ok()) {
    RS_FUZZ_CHECK(head.status().code() == absl::StatusCode::kInvalidArgument);
    RS_FUZZ_CHECK(!head.status().message().empty());
    return 0;
  }
  RS_FUZZ_CHECK(!head->method.empty());
  RS_FUZZ_CHECK(!head->path.empty() && head->path[0] == '/');
  for (char c : head->path + head->query) {
    RS_FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  }
  RS_FUZZ_CHECK(head->version == "HTTP/1.0" || head->version == "HTTP/1.1");
  auto again = rdmashare::deviceplugin::ParseHttpRequestHead(input);
  RS_FUZZ_CHECK(again.ok() && *again == *head);
  return 0;
}
