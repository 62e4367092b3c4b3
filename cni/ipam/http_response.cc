#include "cni/ipam/http_response.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/escaping.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

constexpr std::string_view kHttpPrefix = "HTTP/";
// Chunk framing (size lines, extensions, CRLFs) may always reach this much, whatever the body cap.
constexpr uint64_t kMinChunkFramingBytes = 64 * 1024;

// `text` for a message: at most 64 bytes, non-printable bytes, quotes and backslashes escaped.
std::string Shown(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = absl::CHexEscape(std::string(text.substr(0, kMax)));
  if (text.size() > kMax) out += "...";
  return out;
}

absl::Status Malformed(const std::string& msg) { return absl::InvalidArgumentError(msg); }
absl::Status OverLimit(const std::string& msg) { return absl::ResourceExhaustedError(msg); }

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 9110 5.6.2 tchar.
bool IsTchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// VCHAR, obs-text, SP, HTAB: what a field value or reason phrase may hold.
bool IsFieldChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The elements of a comma-separated field value (RFC 9110 5.6.1), OWS trimmed, empty ones kept.
std::vector<std::string_view> ListElements(std::string_view value) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (;;) {
    size_t comma = value.find(',', pos);
    out.push_back(
        TrimOws(value.substr(pos, comma == std::string_view::npos ? comma : comma - pos)));
    if (comma == std::string_view::npos) return out;
    pos = comma + 1;
  }
}

// Parses "HTTP/1.x SP 3DIGIT [SP reason]".
absl::Status ParseStatusLine(std::string_view line, int* status, bool* http10) {
  auto bad = [&] {
    return Malformed(fmt::format(
        "response status line '{}' is not 'HTTP/1.x <3-digit code> <reason>'", Shown(line)));
  };
  if (line.size() < 12 || line.substr(0, 5) != kHttpPrefix || !IsDigit(line[5]) || line[6] != '.' ||
      !IsDigit(line[7]) || line[8] != ' ') {
    return bad();
  }
  if (line[5] != '1' || (line[7] != '0' && line[7] != '1')) {
    return Malformed(
        fmt::format("response version '{}' is not HTTP/1.0 or HTTP/1.1", Shown(line.substr(0, 8))));
  }
  if (!IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11])) return bad();
  if (line.size() > 12 && line[12] != ' ') return bad();
  for (char c : line.substr(std::min<size_t>(line.size(), 13))) {
    if (!IsFieldChar(c)) {
      return Malformed(
          fmt::format("response status line '{}' has a control character in its "
                      "reason phrase",
                      Shown(line)));
    }
  }
  *status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (*status < 100 || *status > 599) {
    return Malformed(fmt::format("response status code {:03d} is not in 100..599", *status));
  }
  *http10 = line[7] == '0';
  return absl::OkStatus();
}

// Checks a field line "name: value" (`what`: "header" or "trailer") and splits it.
absl::Status ParseFieldLine(std::string_view line, const char* what, std::string* name,
                            std::string* value) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::all_of(line.begin(), line.begin() + colon, IsTchar)) {
    return Malformed(fmt::format(
        "response {} line '{}' is not 'name: value' (a token, then ':' with no space before it)",
        what, Shown(line)));
  }
  std::string_view v = TrimOws(line.substr(colon + 1));
  if (!std::all_of(v.begin(), v.end(), IsFieldChar)) {
    return Malformed(fmt::format("response {} {} has a control character in its value", what,
                                 Shown(line.substr(0, colon))));
  }
  *name = Lower(line.substr(0, colon));
  *value = std::string(v);
  return absl::OkStatus();
}

}  // namespace

HttpResponseParser::HttpResponseParser(HttpResponseLimits limits) : limits_(limits) {}

const char* HttpResponseParser::stage() const {
  switch (state_) {
    case State::kHead:
      return "status line and headers";
    case State::kBodyLength:
      return "body";
    case State::kBodyUntilClose:
      return "body (read until the server closes the connection)";
    case State::kChunkLine:
      return "chunk size line";
    case State::kChunkData:
      return "chunk data";
    case State::kChunkDataCr:
    case State::kChunkDataLf:
      return "CRLF after chunk data";
    case State::kTrailers:
      return "trailers";
    case State::kDone:
      return "end";
    case State::kFailed:
      return "error";
  }
  return "?";
}

const char* HttpResponseParser::framing() const {
  switch (framing_) {
    case Framing::kNone:
      return "none";
    case Framing::kEmpty:
      return "no body";
    case Framing::kLength:
      return "Content-Length";
    case Framing::kChunked:
      return "chunked";
    case Framing::kUntilClose:
      return "until close";
  }
  return "?";
}

absl::StatusOr<size_t> HttpResponseParser::Feed(std::string_view data) {
  if (state_ == State::kFailed) return error_;
  size_t off = 0;
  while (off < data.size() && state_ != State::kDone) {
    size_t used = 0;
    absl::Status st = Step(data.substr(off), &used);
    off += used;
    consumed_ += used;
    if (!st.ok()) {
      state_ = State::kFailed;
      error_ = st;
      return st;
    }
  }
  return off;
}

absl::Status HttpResponseParser::OnEof() {
  absl::Status st;
  switch (state_) {
    case State::kDone:
      return absl::OkStatus();
    case State::kFailed:
      return error_;
    case State::kBodyUntilClose:
      state_ = State::kDone;
      return absl::OkStatus();
    case State::kHead:
      st = absl::UnavailableError(
          consumed_ == 0 ? std::string("connection closed by the server before the response")
                         : fmt::format("response truncated: connection closed in the status line "
                                       "and headers after {} bytes",
                                       consumed_));
      break;
    case State::kBodyLength:
      st = absl::UnavailableError(
          fmt::format("response body truncated: connection closed after {} of {} bytes",
                      response_.body.size(), response_.body.size() + remaining_));
      break;
    default:
      st = absl::UnavailableError(
          fmt::format("response chunked body truncated: connection closed in the {} after {} "
                      "body bytes",
                      stage(), response_.body.size()));
  }
  state_ = State::kFailed;
  error_ = st;
  return st;
}

absl::Status HttpResponseParser::TakeLineByte(char c, const char* what, bool* complete) {
  *complete = false;
  if (c == '\n') {
    if (line_.empty() || line_.back() != '\r') {
      return Malformed(
          fmt::format("response {} '{}' ends in a bare LF (CRLF required)", what, Shown(line_)));
    }
    line_.pop_back();
    *complete = true;
    return absl::OkStatus();
  }
  if (!line_.empty() && line_.back() == '\r') {
    return Malformed(fmt::format("response {} '{}' has a bare CR", what, Shown(line_)));
  }
  line_.push_back(c);
  return absl::OkStatus();
}

absl::Status HttpResponseParser::Step(std::string_view data, size_t* used) {
  *used = 0;
  switch (state_) {
    case State::kHead:
      for (char c : data) {
        ++*used;
        if (++head_bytes_ > limits_.max_header_bytes) {
          return OverLimit(
              fmt::format("response header section exceeds {} bytes", limits_.max_header_bytes));
        }
        bool complete = false;
        RETURN_IF_ERROR(TakeLineByte(c, status_seen_ ? "header line" : "status line", &complete));
        // A peer that does not speak HTTP (a TLS server, a wrong port) fails at once.
        if (!status_seen_ && !complete) {
          size_t n = std::min(line_.size(), kHttpPrefix.size());
          if (std::string_view(line_).substr(0, n) != kHttpPrefix.substr(0, n)) {
            return Malformed(
                fmt::format("response does not start with 'HTTP/' (got '{}')", Shown(line_)));
          }
        }
        if (complete) {
          RETURN_IF_ERROR(TakeHeadLine());
          if (state_ != State::kHead) return absl::OkStatus();
        }
      }
      return absl::OkStatus();

    case State::kBodyLength: {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
      response_.body.append(data.data(), n);
      remaining_ -= n;
      *used = n;
      if (remaining_ == 0) state_ = State::kDone;
      return absl::OkStatus();
    }

    case State::kBodyUntilClose:
      if (data.size() > limits_.max_body_bytes - response_.body.size()) {
        return OverLimit(
            fmt::format("response body exceeds the limit of {} bytes", limits_.max_body_bytes));
      }
      response_.body.append(data.data(), data.size());
      *used = data.size();
      return absl::OkStatus();

    case State::kChunkLine:
      for (char c : data) {
        ++*used;
        if (++framing_bytes_ > std::max(limits_.max_body_bytes, kMinChunkFramingBytes)) {
          return OverLimit(fmt::format(
              "response chunk framing exceeds {} bytes (too many or too long chunk lines)",
              std::max(limits_.max_body_bytes, kMinChunkFramingBytes)));
        }
        bool complete = false;
        RETURN_IF_ERROR(TakeLineByte(c, "chunk line", &complete));
        if (complete) return TakeChunkLine();
        if (line_.size() > kMaxChunkLineBytes + 1) {  // + the CR of its CRLF
          return OverLimit(fmt::format("response chunk line '{}' exceeds {} bytes", Shown(line_),
                                       kMaxChunkLineBytes));
        }
      }
      return absl::OkStatus();

    case State::kChunkData: {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
      response_.body.append(data.data(), n);
      remaining_ -= n;
      *used = n;
      if (remaining_ == 0) state_ = State::kChunkDataCr;
      return absl::OkStatus();
    }

    case State::kChunkDataCr:
    case State::kChunkDataLf: {
      char want = state_ == State::kChunkDataCr ? '\r' : '\n';
      *used = 1;
      ++framing_bytes_;
      if (data[0] != want) {
        return Malformed(fmt::format("response chunk data is not followed by CRLF (got '{}')",
                                     Shown(data.substr(0, 1))));
      }
      state_ = state_ == State::kChunkDataCr ? State::kChunkDataLf : State::kChunkLine;
      return absl::OkStatus();
    }

    case State::kTrailers:
      for (char c : data) {
        ++*used;
        if (++trailer_bytes_ > limits_.max_trailer_bytes) {
          return OverLimit(
              fmt::format("response trailer section exceeds {} bytes", limits_.max_trailer_bytes));
        }
        bool complete = false;
        RETURN_IF_ERROR(TakeLineByte(c, "trailer line", &complete));
        if (complete) return TakeTrailerLine();
      }
      return absl::OkStatus();

    case State::kDone:
    case State::kFailed:
      break;
  }
  return absl::InternalError("response parser stepped in a final state");
}

absl::Status HttpResponseParser::TakeHeadLine() {
  std::string line = std::move(line_);
  line_.clear();
  if (!status_seen_) {
    RETURN_IF_ERROR(ParseStatusLine(line, &response_.status, &http10_));
    status_seen_ = true;
    return absl::OkStatus();
  }
  if (line.empty()) return EndHead();
  if (fields_.size() >= limits_.max_header_fields) {
    return OverLimit(
        fmt::format("response has more than {} header fields", limits_.max_header_fields));
  }
  if (IsOws(line[0])) {
    // obs-fold (RFC 9112 5.2): a user agent replaces it with a space.
    if (fields_.empty()) {
      return Malformed(fmt::format(
          "response header line '{}' continues a field but no field precedes it", Shown(line)));
    }
    std::string_view more = TrimOws(line);
    if (!std::all_of(more.begin(), more.end(), IsFieldChar)) {
      return Malformed(fmt::format("response header {} has a control character in its value",
                                   Shown(fields_.back().first)));
    }
    if (!more.empty()) {
      std::string& value = fields_.back().second;
      if (!value.empty()) value += ' ';
      value.append(more.data(), more.size());
    }
    return absl::OkStatus();
  }
  std::string name, value;
  RETURN_IF_ERROR(ParseFieldLine(line, "header", &name, &value));
  fields_.emplace_back(std::move(name), std::move(value));
  return absl::OkStatus();
}

absl::Status HttpResponseParser::EndHead() {
  const int status = response_.status;
  if (status >= 100 && status < 200) {
    if (status == 101) {
      return Malformed("response 101 Switching Protocols to a request that asked for no upgrade");
    }
    // An interim response (RFC 9110 15.2): skip it; the final one follows.
    fields_.clear();
    status_seen_ = false;
    return absl::OkStatus();
  }
  std::string length_text;  // canonical (no leading zeros)
  std::vector<std::string> codings;
  bool has_te = false, close = false;
  for (const auto& [name, value] : fields_) {
    if (name == "content-length") {
      for (std::string_view e : ListElements(value)) {
        if (e.empty() || !std::all_of(e.begin(), e.end(), IsDigit)) {
          return Malformed(
              fmt::format("response Content-Length '{}' is not a decimal number", Shown(value)));
        }
        std::string_view canon = e.substr(std::min(e.find_first_not_of('0'), e.size() - 1));
        if (!length_text.empty() && canon != length_text) {
          return Malformed(
              fmt::format("response has conflicting Content-Length values '{}' and "
                          "'{}'",
                          Shown(length_text), Shown(canon)));
        }
        length_text = std::string(canon);
      }
    } else if (name == "transfer-encoding") {
      has_te = true;
      for (std::string_view e : ListElements(value)) {
        if (!e.empty()) codings.push_back(Lower(e));
      }
    } else if (name == "connection") {
      for (std::string_view e : ListElements(value)) close = close || Lower(e) == "close";
    }
  }
  fields_.clear();
  fields_.shrink_to_fit();
  response_.keep_alive = !http10_ && !close;
  if (has_te && !length_text.empty()) {
    return Malformed("response has both Transfer-Encoding and Content-Length");
  }
  if (has_te && (codings.size() != 1 || codings[0] != "chunked")) {
    std::string joined;
    for (const std::string& c : codings) joined += (joined.empty() ? "" : ", ") + c;
    return Malformed(fmt::format("response Transfer-Encoding '{}' is not supported (only chunked)",
                                 Shown(joined)));
  }
  uint64_t length = 0;
  if (!length_text.empty()) {
    // 20 digits may exceed uint64; anything that long is over any cap anyway.
    bool over = length_text.size() > 19;
    if (!over) length = std::stoull(length_text);
    if (over || length > limits_.max_body_bytes) {
      return OverLimit(fmt::format("response Content-Length {} exceeds the limit of {} bytes",
                                   Shown(length_text), limits_.max_body_bytes));
    }
  }
  if (status == 204 || status == 304) {
    framing_ = Framing::kEmpty;
    state_ = State::kDone;
  } else if (has_te) {
    framing_ = Framing::kChunked;
    state_ = State::kChunkLine;
  } else if (!length_text.empty()) {
    framing_ = Framing::kLength;
    remaining_ = length;
    state_ = length == 0 ? State::kDone : State::kBodyLength;
  } else {
    framing_ = Framing::kUntilClose;
    response_.keep_alive = false;
    state_ = State::kBodyUntilClose;
  }
  return absl::OkStatus();
}

absl::Status HttpResponseParser::TakeChunkLine() {
  std::string line = std::move(line_);
  line_.clear();
  if (line.size() > kMaxChunkLineBytes) {
    return OverLimit(
        fmt::format("response chunk line '{}' exceeds {} bytes", Shown(line), kMaxChunkLineBytes));
  }
  std::string_view size_text = std::string_view(line).substr(0, line.find(';'));
  while (!size_text.empty() && IsOws(size_text.back())) size_text.remove_suffix(1);
  size_t digits = 0;
  while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
    ++digits;
  }
  std::string_view rest = std::string_view(line).substr(digits);
  while (!rest.empty() && IsOws(rest.front())) rest.remove_prefix(1);
  if (digits == 0 || (!rest.empty() && rest.front() != ';')) {
    return Malformed(fmt::format("response chunk size '{}' is not hexadecimal", Shown(size_text)));
  }
  if (!std::all_of(rest.begin(), rest.end(), IsFieldChar)) {
    return Malformed(
        fmt::format("response chunk extension '{}' has a control character", Shown(rest)));
  }
  std::string_view hex = std::string_view(line).substr(0, digits);
  while (hex.size() > 1 && hex.front() == '0') hex.remove_prefix(1);
  uint64_t size = 0;
  bool over = hex.size() > 16;
  for (size_t i = 0; !over && i < hex.size(); ++i) {
    char c = static_cast<char>(std::tolower(static_cast<unsigned char>(hex[i])));
    size = size * 16 + static_cast<uint64_t>(IsDigit(c) ? c - '0' : c - 'a' + 10);
  }
  if (over || size > limits_.max_body_bytes) {
    return OverLimit(fmt::format("response chunk size '{}' too large (the body limit is {} bytes)",
                                 Shown(size_text), limits_.max_body_bytes));
  }
  if (size > limits_.max_body_bytes - response_.body.size()) {
    return OverLimit(
        fmt::format("response body exceeds the limit of {} bytes", limits_.max_body_bytes));
  }
  if (size == 0) {
    state_ = State::kTrailers;
  } else {
    remaining_ = size;
    state_ = State::kChunkData;
  }
  return absl::OkStatus();
}

absl::Status HttpResponseParser::TakeTrailerLine() {
  std::string line = std::move(line_);
  line_.clear();
  if (line.empty()) {
    state_ = State::kDone;
    return absl::OkStatus();
  }
  if (++trailer_fields_ > limits_.max_header_fields) {
    return OverLimit(
        fmt::format("response has more than {} trailer fields", limits_.max_header_fields));
  }
  if (IsOws(line[0])) {
    return Malformed(
        fmt::format("response trailer line '{}' is an obsolete line folding", Shown(line)));
  }
  std::string name, value;
  return ParseFieldLine(line, "trailer", &name, &value);
}

}  // namespace rdmashare::cni::ipam
