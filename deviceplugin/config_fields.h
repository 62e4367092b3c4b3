// Typed access to the JSON of the device plugin's config.json, decoded the way Go's
// encoding/json decodes into the Go plugin's structs: Fields matches an object's keys to known
// field names (exact match preferred, else case-insensitive with a warning; unknown keys warned
// with a near-miss hint; the last of repeated keys wins; null counts as absent), GetInt reads
// integers the way Go's ParseInt does (no fraction, no exponent), GetStringList reads arrays of
// non-empty strings. Errors are InvalidArgument naming the configList entry and field
// (EntryContext); warnings go to a Warnings sink.
//
// Internal to config parsing (config.cc, resource_name.cc): the names live in
// rdmashare::deviceplugin::config_internal so that generic helpers (Lower, Quote, JoinPath) never
// clash with the rest of the device plugin. Pure functions and values; Fields holds pointers into
// the JSON document it was matched against, which must outlive it. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::deviceplugin::config_internal {

// Ordered so that "last key wins" and warnings follow document order, as in Go.
using Json = nlohmann::ordered_json;

// ASCII lower-case copy of `s`.
std::string Lower(std::string_view s);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// JSON-quotes `s` (escapes quotes and control characters; never throws).
std::string Quote(std::string_view s);

// "string \"100\"", "number 1.5", "array" — for "got ..." in messages. Containers are not
// dumped: their text can be large and deeply nested.
std::string Describe(const Json& v);

// Appends an object key to a JSON path; keys that are not plain identifiers are JSON-quoted so
// that control characters cannot reach logs.
std::string JoinPath(std::string_view base, std::string_view key);

// Collects warnings; forwards them to the caller's vector when there is one.
class Warnings {
 public:
  // `sink` may be null (warnings are then dropped); it must outlive this object.
  explicit Warnings(std::vector<std::string>* sink) : sink_(sink) {}
  // Formats one warning and appends it to the sink.
  template <typename... Args>
  void Add(fmt::format_string<Args...> format, Args&&... args) {
    if (sink_ != nullptr) sink_->push_back(fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  std::vector<std::string>* sink_;
};

// The values of one JSON object's known fields, matched the way Go's encoding/json matches keys
// to struct fields. A null value counts as absent.
class Fields {
 public:
  // Matches the keys of `object` to the field names `known`; `path` is the object's JSON path
  // in warnings ("" for the top level).
  template <size_t N>
  static Fields Match(const Json& object, const std::string_view (&known)[N],
                      const std::string& path, Warnings& warnings) {
    return Match(object, known, N, path, warnings);
  }

  // As above, with the known names as a pointer and a count.
  static Fields Match(const Json& object, const std::string_view* known, size_t known_count,
                      const std::string& path, Warnings& warnings);

  // The field's value, or null when absent or JSON null.
  const Json* Get(std::string_view name) const {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : it->second;
  }

 private:
  std::map<std::string_view, const Json*> values_;
};

// Names an entry in messages: configList[3] (resourceName "x").
struct EntryContext {
  size_t index = 0;
  std::optional<std::string> resource_name;

  // "configList[3]" or "configList[3] (resourceName \"x\")".
  std::string Name() const {
    if (!resource_name) return fmt::format("configList[{}]", index);
    return fmt::format("configList[{}] (resourceName {})", index, Quote(*resource_name));
  }
  // The entry's JSON path, "configList[3]".
  std::string Path() const { return fmt::format("configList[{}]", index); }
  // InvalidArgument "<Name()>: <field>: <cause>".
  absl::Status Error(std::string_view field, std::string_view cause) const {
    return absl::InvalidArgumentError(fmt::format("{}: {}: {}", Name(), field, cause));
  }
};

// An integer JSON value (Go's int decoding: no fraction, no exponent); `err` builds the error
// from a cause.
template <typename ErrorFn>
absl::StatusOr<int64_t> GetInt(const Json& v, const ErrorFn& err) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return err(fmt::format("{} is out of range", v.dump()));
    }
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return err(fmt::format("must be an integer, got {}", Describe(v)));
}

// A JSON array of non-empty strings; errors name `field` (and the element) of the entry `ctx`.
absl::StatusOr<std::vector<std::string>> GetStringList(const Json& v, const std::string& field,
                                                       const EntryContext& ctx);

// Drops repeated values (after normalization), keeping the first, with a warning each naming
// `path`.
std::vector<std::string> Dedup(std::vector<std::string> values, const std::string& path,
                               Warnings& warnings);

}  // namespace rdmashare::deviceplugin::config_internal
