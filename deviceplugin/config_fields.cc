#include "deviceplugin/config_fields.h"

#include <algorithm>
#include <cctype>

namespace rdmashare::deviceplugin::config_internal {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) { return Lower(a) == Lower(b); }

// JSON-quotes `s` (escapes quotes and control characters; never throws).
std::string Quote(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// "string \"100\"", "number 1.5", "array" — for "got ..." in messages. Containers are not
// dumped: their text can be large and deeply nested.
std::string Describe(const Json& v) {
  if (v.is_structured()) return v.type_name();
  std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  std::string type = v.is_number_float() ? "floating-point number" : v.type_name();
  return fmt::format("{} {}", type, text);
}

// Appends an object key to a JSON path; keys that are not plain identifiers are JSON-quoted so
// that control characters cannot reach logs.
std::string JoinPath(std::string_view base, std::string_view key) {
  bool plain = !key.empty();
  for (char c : key)
    plain &= std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  std::string shown = plain ? std::string(key) : Quote(key);
  if (base.empty()) return shown;
  return fmt::format("{}.{}", base, shown);
}

Fields Fields::Match(const Json& object, const std::string_view* known, size_t known_count,
                     const std::string& path, Warnings& warnings) {
  const std::string_view* known_end = known + known_count;
  Fields fields;
  for (const auto& [key, value] : object.items()) {
    std::optional<std::string_view> field;
    for (const std::string_view* name = known; name != known_end; ++name) {
      if (key == *name) field = *name;
    }
    if (!field) {
      for (const std::string_view* name = known; name != known_end; ++name) {
        if (EqualsIgnoreCase(key, *name)) {
          field = *name;
          warnings.Add(
              "{}: key matched field \"{}\" case-insensitively (accepted like the Go "
              "plugin does); spell it \"{}\"",
              JoinPath(path, key), *name, *name);
          break;
        }
      }
    }
    if (!field) {
      std::string_view hint;
      size_t best = 3;
      for (const std::string_view* name = known; name != known_end; ++name) {
        size_t d = EditDistance(Lower(key), Lower(*name));
        if (d < best) best = d, hint = *name;
      }
      if (hint.empty()) {
        warnings.Add("{}: unknown key, ignored", JoinPath(path, key));
      } else {
        warnings.Add("{}: unknown key, ignored (did you mean {}?)", JoinPath(path, key), hint);
      }
      continue;
    }
    auto it = fields.values_.find(*field);
    if (it != fields.values_.end()) {
      warnings.Add("{}: field \"{}\" given more than once; the last value wins",
                   JoinPath(path, key), *field);
    }
    fields.values_[*field] = value.is_null() ? nullptr : &value;
  }
  return fields;
}

// A JSON array of non-empty strings.
absl::StatusOr<std::vector<std::string>> GetStringList(const Json& v, const std::string& field,
                                                       const EntryContext& ctx) {
  if (!v.is_array()) {
    return ctx.Error(field, fmt::format("must be an array of strings, got {}", Describe(v)));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string elem_field = fmt::format("{}[{}]", field, i);
    if (!v[i].is_string()) {
      return ctx.Error(elem_field, fmt::format("must be a string, got {}", Describe(v[i])));
    }
    std::string s = v[i].get<std::string>();
    if (s.empty()) return ctx.Error(elem_field, "empty string");
    out.push_back(std::move(s));
  }
  return out;
}

// Drops repeated values (after normalization), keeping the first, with a warning each.
std::vector<std::string> Dedup(std::vector<std::string> values, const std::string& path,
                               Warnings& warnings) {
  std::vector<std::string> out;
  for (size_t i = 0; i < values.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) {
      if (values[j] == values[i]) {
        warnings.Add("{}[{}]: {} repeats {}[{}]; ignored", path, i, Quote(values[i]), path, j);
        seen = true;
      }
    }
    if (!seen) out.push_back(values[i]);
  }
  return out;
}

}  // namespace rdmashare::deviceplugin::config_internal
