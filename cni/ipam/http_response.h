// HttpResponseParser: a strict, incremental parser of one HTTP/1.1 response (RFC 9112) as the
// etcd client reads it from an etcd member (untrusted network input). Pure: it is fed bytes and
// never touches a socket, so it is unit-tested and fuzzed without one; the caller owns the
// connection, the deadline (it reads with the remaining time and checks it between reads) and
// tells the parser when the peer closed the connection (OnEof).
//
// What it accepts (anything else is an error naming the problem):
//  - Lines end in CRLF (a bare CR or LF is refused). Status line "HTTP/1.0|1.1 SP 3DIGIT [SP
//    reason]" with a code in 100..599. Header fields "name: value" (name a token, no space before
//    ':', no control characters in the value; an obs-fold continuation is joined with a space).
//    The header section (interim 1xx responses included) is at most max_header_bytes and
//    max_header_fields fields.
//  - Interim 1xx responses are skipped (101 is refused: we never ask for an upgrade). 204 and 304
//    have no body whatever their headers say.
//  - Content-Length: digits only (no sign, no space inside), overflow-checked, at most
//    max_body_bytes; repeated fields or list elements must all agree.
//  - Transfer-Encoding: exactly "chunked" (no other coding is decoded), never together with
//    Content-Length. Chunk sizes are hex digits, overflow-checked against max_body_bytes; chunk
//    extensions (";name=value") are tolerated and ignored; each chunk line is at most
//    kMaxChunkLineBytes, chunk framing in all at most max(max_body_bytes, 64 KiB); trailer fields
//    are checked, discarded and bounded by max_trailer_bytes and max_header_fields.
//  - Neither: the body runs until the connection closes (RFC 9112 6.3 rule 8). It is complete
//    only when OnEof() reports a real end of stream (a clean close; for TLS, a close_notify);
//    running out of time is the caller's error, never a complete body.
//  - The body is at most max_body_bytes in every framing.
//
// Errors: InvalidArgument for malformed input, ResourceExhausted for a limit exceeded,
// Unavailable for a connection closed before the response was complete. Messages start with
// "response" or "connection" and quote the offending text (escaped, truncated). After an error
// the parser stays failed.
//
// Not thread-safe (one connection, one reader).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdmashare::cni::ipam {

// Default body cap (EtcdOptions::max_response_bytes, store.maxResponseBytes).
inline constexpr uint64_t kDefaultMaxResponseBytes = 64ull << 20;

// Longest chunk line (size and extensions, without the CRLF).
inline constexpr size_t kMaxChunkLineBytes = 4096;

// Bounds of what one response may make the parser hold or read.
struct HttpResponseLimits {
  // Status line and header fields of the final response and of every interim 1xx response
  // before it, CRLFs included.
  size_t max_header_bytes = 64 * 1024;
  // Header field lines (and, separately, trailer field lines).
  size_t max_header_fields = 100;
  // The decoded body.
  uint64_t max_body_bytes = kDefaultMaxResponseBytes;
  // The trailer section of a chunked body, CRLFs included.
  size_t max_trailer_bytes = 16 * 1024;
};

// A complete response.
struct HttpResponse {
  int status = 0;
  std::string body;
  // False when the connection cannot carry another request: "Connection: close", HTTP/1.0, a
  // close-delimited body.
  bool keep_alive = true;
  bool operator==(const HttpResponse& o) const {
    return status == o.status && body == o.body && keep_alive == o.keep_alive;
  }
};

class HttpResponseParser {
 public:
  explicit HttpResponseParser(HttpResponseLimits limits = {});

  // Parses the bytes of `data` that belong to the response and returns how many that is: all of
  // them, unless the response ends inside `data` (then the rest is not part of it; once done()
  // nothing more is consumed). An error when the bytes break the rules above.
  absl::StatusOr<size_t> Feed(std::string_view data);

  // The peer closed the connection (a clean end of stream). Completes a close-delimited body;
  // any other unfinished response is an Unavailable error saying where it was cut.
  absl::Status OnEof();

  // True once a complete final response was parsed.
  bool done() const { return state_ == State::kDone; }
  // The response; complete only when done().
  const HttpResponse& response() const { return response_; }
  HttpResponse TakeResponse() { return std::move(response_); }

  // Bytes consumed so far (all interim responses included).
  uint64_t consumed() const { return consumed_; }
  // Bytes the parser holds (pending line or header text plus the body so far).
  size_t buffered() const { return line_.size() + response_.body.size(); }
  // Where the parser is ("status line and headers", "body", "chunk size line", "chunk data",
  // "trailers", ...), for timeout messages.
  const char* stage() const;
  // The framing the final response's headers chose ("none" before them).
  const char* framing() const;

 private:
  enum class State {
    kHead,
    kBodyLength,
    kBodyUntilClose,
    kChunkLine,
    kChunkData,
    kChunkDataCr,
    kChunkDataLf,
    kTrailers,
    kDone,
    kFailed,
  };
  enum class Framing { kNone, kEmpty, kLength, kChunked, kUntilClose };

  // Consumes at least one byte of `data` (non-empty) in the current state; *used says how many.
  absl::Status Step(std::string_view data, size_t* used);
  // Appends `c` to the pending line (CRLF-strict: a bare CR or LF is an error naming `what`);
  // sets *complete, with the line in line_ without its CRLF, once the line ended.
  absl::Status TakeLineByte(char c, const char* what, bool* complete);
  // A complete line of the header section: the status line, a field line, or the empty line.
  absl::Status TakeHeadLine();
  // The empty line ended the header section: chooses the framing from fields_.
  absl::Status EndHead();
  absl::Status TakeChunkLine();
  absl::Status TakeTrailerLine();

  const HttpResponseLimits limits_;
  State state_ = State::kHead;
  Framing framing_ = Framing::kNone;
  absl::Status error_;
  HttpResponse response_;
  // The line being read (status, field, chunk or trailer line).
  std::string line_;
  // The current response's header fields (name lower-cased, value trimmed).
  std::vector<std::pair<std::string, std::string>> fields_;
  bool status_seen_ = false;
  bool http10_ = false;
  size_t head_bytes_ = 0;       // all header sections so far (interim ones included)
  uint64_t remaining_ = 0;      // body or chunk bytes still expected
  uint64_t framing_bytes_ = 0;  // chunk lines and data CRLFs so far
  size_t trailer_bytes_ = 0;
  size_t trailer_fields_ = 0;
  uint64_t consumed_ = 0;
};

}  // namespace rdmashare::cni::ipam
