#include "cni/ipam/http_response.h"

#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;

// Feeds `input` in pieces of `step` bytes (0: all at once), then an EOF when `eof`. Returns the
// first error, or OK; `parser` holds the outcome.
absl::Status FeedAll(HttpResponseParser& parser, const std::string& input, size_t step, bool eof) {
  size_t off = 0;
  while (off < input.size() && !parser.done()) {
    size_t n = step == 0 ? input.size() - off : std::min(step, input.size() - off);
    absl::StatusOr<size_t> used = parser.Feed(std::string_view(input).substr(off, n));
    if (!used.ok()) return used.status();
    if (*used < n && !parser.done()) return absl::InternalError("bytes left unconsumed");
    off += *used;
    if (*used < n) break;
  }
  if (eof) return parser.OnEof();
  return absl::OkStatus();
}

HttpResponseLimits SmallLimits() {
  HttpResponseLimits l;
  l.max_header_bytes = 256;
  l.max_header_fields = 4;
  l.max_body_bytes = 1000;
  l.max_trailer_bytes = 32;
  return l;
}

constexpr char kChunkedHead[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string Fields(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "X-F" + std::to_string(i) + ": v\r\n";
  return out;
}

struct GoodCase {
  std::string name;
  std::string input;
  bool eof;
  int status;
  std::string body;
  bool keep_alive;
};

class GoodResponseTest : public ::testing::TestWithParam<GoodCase> {};

TEST_P(GoodResponseTest, ParsesTheSameWholeOrOneByteAtATime) {
  const GoodCase& c = GetParam();
  for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
    SCOPED_TRACE(step);
    HttpResponseParser parser;
    ASSERT_THAT(FeedAll(parser, c.input, step, c.eof), IsOk());
    ASSERT_TRUE(parser.done());
    EXPECT_EQ(parser.response(), (HttpResponse{c.status, c.body, c.keep_alive}));
    EXPECT_EQ(parser.consumed(), c.input.size());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Responses, GoodResponseTest,
    ::testing::Values(
        GoodCase{"ContentLength",
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                 "{\"a\":1}",
                 false, 200, "{\"a\":1}", true},
        GoodCase{"ContentLengthLeadingZerosAndRepeated",
                 "HTTP/1.1 200 OK\r\nContent-Length: 005\r\nContent-Length: 5, 5\r\n\r\nhello",
                 false, 200, "hello", true},
        GoodCase{"ZeroContentLength", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200,
                 "", true},
        GoodCase{"Chunked", std::string(kChunkedHead) + "5\r\nhello\r\n0006\r\n world\r\n0\r\n\r\n",
                 false, 200, "hello world", true},
        GoodCase{"ChunkedWithExtensionsAndTrailers",
                 std::string(kChunkedHead) +
                     "5 ;name=value;flag\r\nhello\r\nA;x=\"q;uoted\"\r\n0123456789\r\n"
                     "0;last\r\nX-Trailer: done\r\nX-Other: 1\r\n\r\n",
                 false, 200, "hello0123456789", true},
        GoodCase{"ChunkSizeHexCase", std::string(kChunkedHead) + "a\r\n0123456789\r\n0\r\n\r\n",
                 false, 200, "0123456789", true},
        GoodCase{"CloseDelimitedAtEof", "HTTP/1.1 200 OK\r\nX: y\r\n\r\n{\"kvs\":[]}", true, 200,
                 "{\"kvs\":[]}", false},
        GoodCase{"ConnectionClose",
                 "HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive, Close\r\n"
                 "Content-Length: 2\r\n\r\nno",
                 false, 503, "no", false},
        GoodCase{"Http10IsNotKeptAlive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false,
                 200, "ok", false},
        GoodCase{"NoReasonPhrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", false, 200, "ok",
                 true},
        GoodCase{"InterimResponsesAreSkipped",
                 "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                 false, 200, "ok", true},
        GoodCase{"NoContentHasNoBody", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                 false, 204, "", true},
        GoodCase{"NotModifiedHasNoBody", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                 false, 304, "", true},
        GoodCase{"ObsFoldIsJoinedWithASpace", "HTTP/1.1 200 OK\r\nContent-Length:\r\n 3\r\n\r\nabc",
                 false, 200, "abc", true},
        GoodCase{"ValueWithObsText",
                 "HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nX: \xff\r\n"
                 "Content-Length: 1\r\n\r\nx",
                 false, 200, "x", true}),
    [](const ::testing::TestParamInfo<GoodCase>& info) { return info.param.name; });

struct BadCase {
  std::string name;
  std::string input;
  bool eof;
  HttpResponseLimits limits;
  absl::StatusCode code;
  std::string message;
};

class BadResponseTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadResponseTest, IsRefusedWithAnExactMessage) {
  const BadCase& c = GetParam();
  for (size_t step : {size_t{0}, size_t{1}, size_t{5}}) {
    SCOPED_TRACE(step);
    HttpResponseParser parser(c.limits);
    absl::Status st = FeedAll(parser, c.input, step, c.eof);
    EXPECT_THAT(st, StatusIs(c.code, c.message));
    EXPECT_FALSE(parser.done());
    EXPECT_LE(parser.response().body.size(), c.limits.max_body_bytes);
    // A failed parser stays failed.
    EXPECT_THAT(parser.Feed("0\r\n\r\n").status(), StatusIs(c.code, c.message));
    EXPECT_THAT(parser.OnEof(), StatusIs(c.code, c.message));
  }
}

const auto kInvalid = absl::StatusCode::kInvalidArgument;
const auto kLimit = absl::StatusCode::kResourceExhausted;
const auto kCut = absl::StatusCode::kUnavailable;

INSTANTIATE_TEST_SUITE_P(
    Hostile, BadResponseTest,
    ::testing::Values(
        // Chunk sizes.
        BadCase{"NegativeChunkSize",
                std::string(kChunkedHead) + "-6\r\n",
                false,
                {},
                kInvalid,
                "response chunk size '-6' is not hexadecimal"},
        BadCase{"ChunkSizeThatWrapsSizeT",
                std::string(kChunkedHead) + "FFFFFFFFFFFFFFEC\r\n",
                false,
                {},
                kLimit,
                "response chunk size 'FFFFFFFFFFFFFFEC' too large (the body limit is 67108864 "
                "bytes)"},
        BadCase{"ChunkSizeBeyond64Bits",
                std::string(kChunkedHead) + "100000000000000000000;ext\r\n",
                false,
                {},
                kLimit,
                "response chunk size '100000000000000000000' too large (the body limit is "
                "67108864 bytes)"},
        BadCase{"ChunkSizeWithGarbage",
                std::string(kChunkedHead) + "5x\r\nhello\r\n",
                false,
                {},
                kInvalid,
                "response chunk size '5x' is not hexadecimal"},
        BadCase{"ChunkSizeWithPrefix",
                std::string(kChunkedHead) + "0x5\r\nhello\r\n",
                false,
                {},
                kInvalid,
                "response chunk size '0x5' is not hexadecimal"},
        BadCase{"EmptyChunkSize",
                std::string(kChunkedHead) + "\r\n",
                false,
                {},
                kInvalid,
                "response chunk size '' is not hexadecimal"},
        BadCase{"ChunksBeyondTheBodyCap",
                std::string(kChunkedHead) + "3E8\r\n" + std::string(1000, 'a') + "\r\n1\r\n", false,
                SmallLimits(), kLimit, "response body exceeds the limit of 1000 bytes"},
        BadCase{"ChunkDataWithoutCrlf",
                std::string(kChunkedHead) + "5\r\nhelloX\r\n",
                false,
                {},
                kInvalid,
                "response chunk data is not followed by CRLF (got 'X')"},
        BadCase{"ChunkLineTooLong",
                std::string(kChunkedHead) + "5;" + std::string(5000, 'e'),
                false,
                {},
                kLimit,
                "response chunk line '5;" + std::string(62, 'e') + "...' exceeds 4096 bytes"},
        BadCase{"ChunkExtensionWithControlCharacter",
                std::string(kChunkedHead) + "5;a\x01\r\nhello\r\n",
                false,
                {},
                kInvalid,
                "response chunk extension ';a\\x01' has a control character"},
        BadCase{"TrailersTooLarge",
                std::string(kChunkedHead) + "0\r\nX-T: " + std::string(40, 't') + "\r\n\r\n", false,
                SmallLimits(), kLimit, "response trailer section exceeds 32 bytes"},
        BadCase{"TooManyTrailers",
                std::string(kChunkedHead) + "0\r\n" + Fields(101),
                false,
                {},
                kLimit,
                "response has more than 100 trailer fields"},
        BadCase{"MalformedTrailer",
                std::string(kChunkedHead) + "0\r\nno colon\r\n\r\n",
                false,
                {},
                kInvalid,
                "response trailer line 'no colon' is not 'name: value' (a token, then ':' with "
                "no space before it)"},
        // Content-Length.
        BadCase{"HugeContentLength",
                "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                false,
                {},
                kLimit,
                "response Content-Length 99999999999 exceeds the limit of 67108864 bytes"},
        BadCase{"ContentLengthBeyond64Bits",
                "HTTP/1.1 200 OK\r\nContent-Length: 000184467440737095516160\r\n\r\n",
                false,
                {},
                kLimit,
                "response Content-Length 184467440737095516160 exceeds the limit of 67108864 "
                "bytes"},
        BadCase{"NegativeContentLength",
                "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                false,
                {},
                kInvalid,
                "response Content-Length '-5' is not a decimal number"},
        BadCase{"SignedContentLength",
                "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
                false,
                {},
                kInvalid,
                "response Content-Length '+5' is not a decimal number"},
        BadCase{"EmptyContentLength",
                "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
                false,
                {},
                kInvalid,
                "response Content-Length '' is not a decimal number"},
        BadCase{"ContentLengthWithInnerSpace",
                "HTTP/1.1 200 OK\r\nContent-Length: 1 0\r\n\r\n",
                false,
                {},
                kInvalid,
                "response Content-Length '1 0' is not a decimal number"},
        BadCase{"ConflictingContentLengths",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                false,
                {},
                kInvalid,
                "response has conflicting Content-Length values '5' and '6'"},
        BadCase{"ConflictingContentLengthList",
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
                false,
                {},
                kInvalid,
                "response has conflicting Content-Length values '5' and '6'"},
        BadCase{"ContentLengthAndChunked",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                {},
                kInvalid,
                "response has both Transfer-Encoding and Content-Length"},
        BadCase{"GzipTransferCoding",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                false,
                {},
                kInvalid,
                "response Transfer-Encoding 'gzip, chunked' is not supported (only "
                "chunked)"},
        BadCase{"ChunkedTwice",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: Chunked\r\n"
                "\r\n",
                false,
                {},
                kInvalid,
                "response Transfer-Encoding 'chunked, chunked' is not supported (only chunked)"},
        BadCase{"CloseDelimitedBeyondTheBodyCap",
                "HTTP/1.1 200 OK\r\n\r\n" + std::string(1001, 'b'), false, SmallLimits(), kLimit,
                "response body exceeds the limit of 1000 bytes"},
        // Status line and header section.
        BadCase{"NotHttp",
                "\x16\x03\x01\x02",
                false,
                {},
                kInvalid,
                "response does not start with 'HTTP/' (got '\\x16')"},
        BadCase{"Http2",
                "HTTP/2.0 200 OK\r\n\r\n",
                false,
                {},
                kInvalid,
                "response version 'HTTP/2.0' is not HTTP/1.0 or HTTP/1.1"},
        BadCase{"StatusCodeNotDigits",
                "HTTP/1.1 2x0 OK\r\n\r\n",
                false,
                {},
                kInvalid,
                "response status line 'HTTP/1.1 2x0 OK' is not 'HTTP/1.x <3-digit code> "
                "<reason>'"},
        BadCase{"StatusCodeOutOfRange",
                "HTTP/1.1 600 Odd\r\n\r\n",
                false,
                {},
                kInvalid,
                "response status code 600 is not in 100..599"},
        BadCase{"ControlCharacterInReason",
                "HTTP/1.1 200 O\x7fK\r\n\r\n",
                false,
                {},
                kInvalid,
                "response status line 'HTTP/1.1 200 O\\x7fK' has a control character in its "
                "reason phrase"},
        BadCase{"SwitchingProtocols",
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                false,
                {},
                kInvalid,
                "response 101 Switching Protocols to a request that asked for no upgrade"},
        BadCase{"BareLf",
                "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
                false,
                {},
                kInvalid,
                "response status line 'HTTP/1.1 200 OK' ends in a bare LF (CRLF required)"},
        BadCase{"BareCr",
                "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
                false,
                {},
                kInvalid,
                "response header line 'X: a\\r' has a bare CR"},
        BadCase{"SpaceBeforeColon",
                "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
                false,
                {},
                kInvalid,
                "response header line 'Content-Length : 5' is not 'name: value' (a token, then "
                "':' with no space before it)"},
        BadCase{"ControlCharacterInValue",
                "HTTP/1.1 200 OK\r\nX-A: a\x01z\r\n\r\n",
                false,
                {},
                kInvalid,
                "response header X-A has a control character in its value"},
        BadCase{"FoldWithoutField",
                "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
                false,
                {},
                kInvalid,
                "response header line ' folded' continues a field but no field precedes it"},
        BadCase{"HeaderSectionTooLarge",
                "HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'h') + "\r\n\r\n",
                false,
                {},
                kLimit,
                "response header section exceeds 65536 bytes"},
        BadCase{"InterimResponsesCountTowardsTheHeaderCap",
                [] {
                  std::string s;
                  for (int i = 0; i < 20; ++i) s += "HTTP/1.1 100 Continue\r\n\r\n";
                  return s;
                }(),
                false, SmallLimits(), kLimit, "response header section exceeds 256 bytes"},
        BadCase{"TooManyHeaderFields",
                "HTTP/1.1 200 OK\r\n" + Fields(101) + "\r\n",
                false,
                {},
                kLimit,
                "response has more than 100 header fields"},
        // Cut short: only a clean end of stream completes a close-delimited body.
        BadCase{"NothingBeforeEof",
                "",
                true,
                {},
                kCut,
                "connection closed by the server before the response"},
        BadCase{"EofInHeaders",
                "HTTP/1.1 200 OK\r\nContent-",
                true,
                {},
                kCut,
                "response truncated: connection closed in the status line and headers after 25 "
                "bytes"},
        BadCase{"EofInContentLengthBody",
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
                true,
                {},
                kCut,
                "response body truncated: connection closed after 5 of 10 bytes"},
        BadCase{"EofInChunkData",
                std::string(kChunkedHead) + "5\r\nhel",
                true,
                {},
                kCut,
                "response chunked body truncated: connection closed in the chunk data after 3 "
                "body bytes"},
        BadCase{"EofBeforeLastChunk",
                std::string(kChunkedHead) + "5\r\nhello\r\n",
                true,
                {},
                kCut,
                "response chunked body truncated: connection closed in the chunk size line after "
                "5 body bytes"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(HttpResponseParserTest, StopsConsumingAtTheEndOfTheResponse) {
  HttpResponseParser parser;
  std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
  ASSERT_OK_AND_ASSIGN(size_t used, parser.Feed(input));
  EXPECT_EQ(used, input.find("okHTTP") + 2);
  EXPECT_TRUE(parser.done());
  ASSERT_OK_AND_ASSIGN(size_t more, parser.Feed("x"));
  EXPECT_EQ(more, 0u);
}

TEST(HttpResponseParserTest, CloseDelimitedBodyIsIncompleteUntilEof) {
  HttpResponseParser parser;
  ASSERT_OK(parser.Feed("HTTP/1.1 200 OK\r\n\r\n{\"kvs").status());
  EXPECT_FALSE(parser.done());
  EXPECT_STREQ(parser.framing(), "until close");
  ASSERT_OK(parser.OnEof());
  EXPECT_TRUE(parser.done());
  EXPECT_EQ(parser.response().body, "{\"kvs");
  EXPECT_FALSE(parser.response().keep_alive);
}

TEST(HttpResponseParserTest, EndlessChunkedBodyStopsAtTheCapWithBoundedMemory) {
  HttpResponseParser parser(SmallLimits());
  ASSERT_OK(parser.Feed(kChunkedHead).status());
  std::string chunk = "40\r\n" + std::string(64, 'c') + "\r\n";
  absl::Status st;
  int fed = 0;
  while (st.ok() && fed < 1000) {
    st = parser.Feed(chunk).status();
    ++fed;
    EXPECT_LE(parser.buffered(), 1000u + kMaxChunkLineBytes);
  }
  EXPECT_THAT(st, StatusIs(kLimit, "response body exceeds the limit of 1000 bytes"));
  EXPECT_EQ(fed, 1000 / 64 + 1);
}

TEST(HttpResponseParserTest, AnnouncedLengthIsNotReservedUpFront) {
  HttpResponseParser parser;
  ASSERT_OK(parser.Feed("HTTP/1.1 200 OK\r\nContent-Length: 60000000\r\n\r\nab").status());
  EXPECT_EQ(parser.buffered(), 2u);
  EXPECT_GE(parser.response().body.capacity(), 2u);
  EXPECT_LT(parser.response().body.capacity(), 1u << 20);
  EXPECT_STREQ(parser.stage(), "body");
}

TEST(HttpResponseParserTest, ChunkFramingOverheadIsBounded) {
  HttpResponseLimits limits;
  limits.max_body_bytes = 64 * 1024;
  HttpResponseParser parser(limits);
  ASSERT_OK(parser.Feed(kChunkedHead).status());
  // One body byte per 4 KiB of chunk extensions.
  std::string chunk = "1;" + std::string(4000, 'e') + "\r\nx\r\n";
  absl::Status st;
  size_t body = 0;
  while (st.ok()) {
    st = parser.Feed(chunk).status();
    if (st.ok()) ++body;
  }
  EXPECT_THAT(st, StatusIs(kLimit,
                           "response chunk framing exceeds 65536 bytes (too many or too "
                           "long chunk lines)"));
  EXPECT_EQ(parser.response().body.size(), body);
  EXPECT_LT(body, 20u);
}

}  // namespace
}  // namespace rdmashare::cni::ipam
