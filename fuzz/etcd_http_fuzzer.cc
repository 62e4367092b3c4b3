// libFuzzer target: the etcd client's HTTP/1.1 response framing (cni/ipam/http_response.h),
// the one network parser of the etcd path. The input is fed in pieces whose sizes come from its
// first byte (so the fuzzer explores splits inside lines and chunk sizes), then OnEof.
// Invariants: never more bytes consumed than given; the parser never holds more than its caps
// allow; a completed response's body is within the body cap and its status in 100..599; every
// error is InvalidArgument, ResourceExhausted or Unavailable with a message naming the response
// or the connection; after done() nothing more is consumed.
#include <string>
#include <string_view>

#include "cni/ipam/http_response.h"
#include "fuzz/fuzz_check.h"

namespace {

using rdmashare::cni::ipam::HttpResponseLimits;
using rdmashare::cni::ipam::HttpResponseParser;

HttpResponseLimits Limits() {
  HttpResponseLimits l;
  l.max_header_bytes = 4096;
  l.max_header_fields = 16;
  l.max_body_bytes = 8192;
  l.max_trailer_bytes = 1024;
  return l;
}

bool GoodError(const absl::Status& st) {
  bool code_ok =
      absl::IsInvalidArgument(st) || absl::IsResourceExhausted(st) || absl::IsUnavailable(st);
  std::string m(st.message());
  return code_ok && (m.rfind("response", 0) == 0 || m.rfind("connection", 0) == 0);
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  if (size == 0) return false;
  HttpResponseParser p(Limits());
  // The first byte is the piece size, not part of the response.
  auto used = p.Feed(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  if (!used.ok()) return false;
  if (!p.done() && !p.OnEof().ok()) return false;
  return p.done();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const HttpResponseLimits limits = Limits();
  HttpResponseParser p(limits);
  uint64_t fed = 0;
  bool failed = false;
  while (!in.empty() && !failed) {
    std::string_view chunk = in.substr(0, piece);
    in.remove_prefix(chunk.size());
    bool was_done = p.done();
    absl::StatusOr<size_t> used = p.Feed(chunk);
    if (!used.ok()) {
      RS_FUZZ_CHECK(GoodError(used.status()));
      failed = true;
      break;
    }
    RS_FUZZ_CHECK(*used <= chunk.size());
    if (was_done) RS_FUZZ_CHECK(*used == 0);
    fed += *used;
    RS_FUZZ_CHECK(p.consumed() <= fed + chunk.size());
    RS_FUZZ_CHECK(p.response().body.size() <= limits.max_body_bytes);
    RS_FUZZ_CHECK(p.buffered() <= limits.max_body_bytes + limits.max_header_bytes + 8192);
  }
  if (!failed && !p.done()) {
    absl::Status eof = p.OnEof();
    if (!eof.ok()) RS_FUZZ_CHECK(GoodError(eof));
  }
  if (p.done()) {
    RS_FUZZ_CHECK(p.response().status >= 100 && p.response().status <= 599);
    RS_FUZZ_CHECK(p.response().body.size() <= limits.max_body_bytes);
  }
  return 0;
}
