#include "common/json.h"

#include "fmt/format.h"

namespace rdmashare {
namespace {

using Json = nlohmann::json;

// A SAX pass that builds nothing: tracks the nesting depth (stopping past the cap) and keeps
// the parser's error message.
class DepthCheck : public nlohmann::json_sax<Json> {
 public:
  explicit DepthCheck(size_t max_depth) : max_depth_(max_depth) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool key(string_t&) override { return true; }
  bool start_object(std::size_t) override { return Enter(); }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_object() override { return Leave(); }
  bool end_array() override { return Leave(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_ = JsonParseErrorText(ex);
    return false;
  }

  bool too_deep() const { return too_deep_; }
  const std::string& error() const { return error_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  bool Leave() {
    --depth_;
    return true;
  }

  const size_t max_depth_;
  size_t depth_ = 0;
  bool too_deep_ = false;
  std::string error_;
};

}  // namespace

std::string JsonParseErrorText(const nlohmann::detail::exception& ex) {
  std::string text = ex.what();
  if (size_t tag_end = text.find("] ");
      text.rfind("[json.exception.", 0) == 0 && tag_end != std::string::npos) {
    text.erase(0, tag_end + 2);
  }
  return text;
}

absl::StatusOr<Json> ParseJsonBounded(std::string_view text, std::string_view what,
                                      const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} bytes, more than the {} allowed", what, text.size(), limits.max_bytes));
  }
  DepthCheck check(limits.max_depth);
  bool ok =
      Json::sax_parse(text.begin(), text.end(), &check, nlohmann::detail::input_format_t::json,
                      /*strict=*/true, /*ignore_comments=*/false);
  if (check.too_deep()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: JSON nested deeper than {} levels", what, limits.max_depth));
  }
  if (!ok) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: not valid JSON: {}", what, check.error().empty() ? "parse error" : check.error()));
  }
  Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(fmt::format("{}: not valid JSON", what));
  }
  return doc;
}

}  // namespace rdmashare
