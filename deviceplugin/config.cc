// config.json parsing and validation for the device plugin.
//
// Where each rule comes from. "Go plugin" = Mellanox/k8s-rdma-shared-dev-plugin (pkg/types/
// types.go, pkg/resources/resources_manager.go ReadConfig + ValidateConfigs, server.go
// newResourceServer, README.md). "kubelet" = the device manager's Register, which refuses a
// resource unless v1helper.IsExtendedResourceName(name) holds (k8s.io/kubernetes
// pkg/apis/core/v1/helper, apimachinery validation.IsQualifiedName / IsDNS1123Subdomain).
// "brief" = rdmashare's own rules, stricter only where the Go plugin accepted a value that could
// never select anything there either.
//
// JSON decoding (Go encoding/json semantics, so Go configs keep working):
//   - keys match fields case-insensitively, an exact match preferred; for repeated keys the last
//     one in document order wins. We accept the same and warn about non-exact spellings.
//   - unknown keys are ignored by Go; we warn with the JSON path and a near-miss hint.
//   - null means "absent" (Go leaves the field at its zero value); we do the same.
//   - a value of the wrong type is an error; integers reject fractions and exponents (Go's
//     ParseInt refuses "100.0"), so do we.
// periodicUpdateInterval (Go plugin): absent -> 60 s, 0 -> no periodic rescan, negative -> error.
//   Go multiplies by time.Second in int64: above 9223372036 s it overflows, so we reject that;
//   values above INT_MAX (68 years) are clamped with a warning. Brief: > 1 day is a warning.
// configList (Go plugin): missing or empty -> error ("no resources configuration found").
// resourceName: Go plugin: must match ^[a-zA-Z0-9_]+$ and be unique among all entries whatever
//   their prefix (its socket is <resourceName>.sock). kubelet: the name part of a qualified name
//   is <= 63 chars of [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?. Together: letters, digits and
//   '_', starting and ending with a letter or digit, at most 63 characters.
// resourcePrefix: Go plugin: absent or "" -> "rdma". kubelet: the full name must not contain
//   "kubernetes.io/" (so the prefix must not end in "kubernetes.io"), must not start with
//   "requests.", and "requests." + prefix must be a DNS-1123 subdomain of <= 253 characters:
//   lower-case alphanumeric labels with inner '-', joined by '.', at most 244 characters. The
//   Go README's example prefix "example_prefix" fails this: kubelet would refuse it.
// rdmaHcaMax: Go plugin: integer, absent -> 0 (the README calls it required; the code defaults
//   to 0 and then advertises no units), negative -> error. Brief: at most 10000 (every unit is a
//   Device in every ListAndWatch message); absent -> warning.
// devices / selectors (Go plugin): an entry needs one of them (selectors count as set when any
//   list is non-empty); both set -> error; devices alone -> used as selectors.ifNames, with a
//   deprecation warning.
// selectors (Go plugin compares strings exactly with ghw's lower-case 4-digit PCI ids, the
//   driver name, the netdev name and netlink's EncapType "ether"/"infiniband"). Brief: ids are
//   accepted with or without 0x in any case and normalized; link types accept synonyms; values
//   that could never match there ("", "mellanox", "roce") are errors; duplicates are dropped with
//   a warning; ifNames that no Linux netdev can have (> 15 bytes, '/', whitespace) are warnings.
// includeIssm: rdmashare extension, boolean, default false (the Go plugin ignores the key).
// mountCli: rdmashare extension, boolean, default false: Allocate also mounts the rdmashare CLI
//   read-only into the container (so `rdmashare gid` works in any image).
// healthPolicy: rdmashare extension, "any" (default: units Healthy while at least one selected
//   HCA is usable) or "all" (Healthy only while every selected HCA is usable); case-insensitive.
// topology: rdmashare extension, boolean, default true: advertise the NUMA node(s) of the
//   resource's HCAs in Device.topology. false leaves topology empty, for pods that span NUMA
//   nodes under a strict Topology Manager policy.
#include "deviceplugin/config.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::deviceplugin {
namespace {

// Ordered so that "last key wins" and warnings follow document order, as in Go.
using Json = nlohmann::ordered_json;

constexpr int kDefaultPeriodicUpdateIntervalS = 60;
constexpr int64_t kLongIntervalS = 24 * 60 * 60;
// Go computes time.Duration(seconds) * time.Second in int64 nanoseconds.
constexpr int64_t kMaxGoIntervalS = std::numeric_limits<int64_t>::max() / 1000000000;
constexpr int kMaxRdmaHcaMax = 10000;
constexpr size_t kMaxResourceNameLength = 63;
// IsDNS1123Subdomain allows 253 characters for "requests." + prefix.
constexpr size_t kMaxResourcePrefixLength = 253 - 9;
constexpr std::string_view kDefaultResourcePrefix = "rdma";
// Containers nested deeper than this are refused (a valid config needs 5 levels).
constexpr int kMaxDepth = 32;
// IFNAMSIZ - 1.
constexpr size_t kMaxIfNameLength = 15;

constexpr std::string_view kTopFields[] = {"periodicUpdateInterval", "configList"};
constexpr std::string_view kEntryFields[] = {"resourceName", "resourcePrefix", "rdmaHcaMax",
                                             "devices",      "selectors",      "includeIssm",
                                             "mountCli",     "healthPolicy",   "topology"};
constexpr std::string_view kSelectorFields[] = {"vendors", "deviceIDs", "drivers", "ifNames",
                                                "linkTypes"};

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

// Collects warnings; forwards them to the caller's vector when there is one.
class Warnings {
 public:
  explicit Warnings(std::vector<std::string>* sink) : sink_(sink) {}
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
  template <size_t N>
  static Fields Match(const Json& object, const std::string_view (&known)[N],
                      const std::string& path, Warnings& warnings) {
    Fields fields;
    for (const auto& [key, value] : object.items()) {
      std::optional<std::string_view> field;
      for (std::string_view name : known) {
        if (key == name) field = name;
      }
      if (!field) {
        for (std::string_view name : known) {
          if (EqualsIgnoreCase(key, name)) {
            field = name;
            warnings.Add(
                "{}: key matched field \"{}\" case-insensitively (accepted like the Go "
                "plugin does); spell it \"{}\"",
                JoinPath(path, key), name, name);
            break;
          }
        }
      }
      if (!field) {
        std::string_view hint;
        size_t best = 3;
        for (std::string_view name : known) {
          size_t d = EditDistance(Lower(key), Lower(name));
          if (d < best) best = d, hint = name;
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

  std::string Name() const {
    if (!resource_name) return fmt::format("configList[{}]", index);
    return fmt::format("configList[{}] (resourceName {})", index, Quote(*resource_name));
  }
  std::string Path() const { return fmt::format("configList[{}]", index); }
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

absl::StatusOr<int> ParsePeriodicUpdateInterval(const Json* v, Warnings& warnings) {
  if (v == nullptr) return kDefaultPeriodicUpdateIntervalS;
  auto err = [](std::string cause) {
    return absl::InvalidArgumentError(fmt::format("periodicUpdateInterval: {}", cause));
  };
  ASSIGN_OR_RETURN(int64_t seconds, GetInt(*v, err));
  if (seconds < 0) {
    return err(fmt::format("{} is negative (seconds; 0 disables the periodic rescan)", seconds));
  }
  if (seconds > kMaxGoIntervalS) {
    return err(fmt::format("{} seconds is out of range (at most {})", seconds, kMaxGoIntervalS));
  }
  if (seconds > std::numeric_limits<int>::max()) {
    warnings.Add("periodicUpdateInterval: {} seconds clamped to {}", seconds,
                 std::numeric_limits<int>::max());
    return std::numeric_limits<int>::max();
  }
  if (seconds > kLongIntervalS) {
    warnings.Add(
        "periodicUpdateInterval: {} seconds is more than a day; device changes that raise no "
        "event are noticed that late",
        seconds);
  }
  return static_cast<int>(seconds);
}

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

absl::Status ValidateResourceName(const std::string& name, const EntryContext& ctx) {
  if (name.empty()) return ctx.Error("resourceName", "empty (required)");
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!IsAlnum(c) && c != '_') {
      return ctx.Error("resourceName",
                       fmt::format("{} has {} at offset {}; only letters, digits and '_' are "
                                   "allowed (Go plugin rule)",
                                   Quote(name), Quote(std::string(1, c)), i));
    }
  }
  if (name.size() > kMaxResourceNameLength) {
    return ctx.Error("resourceName", fmt::format("{} characters long; kubelet allows at most {}",
                                                 name.size(), kMaxResourceNameLength));
  }
  if (!IsAlnum(name.front()) || !IsAlnum(name.back())) {
    return ctx.Error("resourceName", fmt::format("{} must start and end with a letter or digit "
                                                 "(kubelet qualified-name rule)",
                                                 Quote(name)));
  }
  return absl::OkStatus();
}

// Why `prefix` is not a DNS-1123 subdomain, or "" when it is one.
std::string Dns1123SubdomainProblem(std::string_view prefix) {
  size_t label_start = 0;
  for (size_t i = 0; i <= prefix.size(); ++i) {
    if (i < prefix.size() && prefix[i] != '.') {
      char c = prefix[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        if (c >= 'A' && c <= 'Z') return fmt::format("has upper-case '{}' at offset {}", c, i);
        return fmt::format("has {} at offset {}", Quote(std::string(1, c)), i);
      }
      continue;
    }
    std::string_view label = prefix.substr(label_start, i - label_start);
    if (label.empty()) return fmt::format("has an empty label at offset {}", label_start);
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("has label {} starting or ending with '-'", Quote(label));
    }
    label_start = i + 1;
  }
  return "";
}

absl::Status ValidateResourcePrefix(const std::string& prefix, const std::string& name,
                                    const EntryContext& ctx) {
  std::string full = fmt::format("{}/{}", prefix, name);
  constexpr std::string_view kReserved = "kubernetes.io";
  if (prefix.size() >= kReserved.size() &&
      prefix.compare(prefix.size() - kReserved.size(), kReserved.size(), kReserved) == 0) {
    return ctx.Error("resourcePrefix",
                     fmt::format("{} is in the reserved kubernetes.io namespace; kubelet refuses "
                                 "to register {}",
                                 Quote(prefix), Quote(full)));
  }
  if (prefix.rfind("requests.", 0) == 0) {
    return ctx.Error("resourcePrefix", fmt::format("{} starts with the reserved quota prefix "
                                                   "\"requests.\"; kubelet refuses to register {}",
                                                   Quote(prefix), Quote(full)));
  }
  if (prefix.size() > kMaxResourcePrefixLength) {
    return ctx.Error("resourcePrefix", fmt::format("{} characters long; kubelet allows at most {}",
                                                   prefix.size(), kMaxResourcePrefixLength));
  }
  std::string problem = Dns1123SubdomainProblem(prefix);
  if (!problem.empty()) {
    return ctx.Error("resourcePrefix",
                     fmt::format("{} is not a lower-case DNS subdomain ({}); kubelet refuses to "
                                 "register {} (use e.g. \"example.com\")",
                                 Quote(prefix), problem, Quote(full)));
  }
  return absl::OkStatus();
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

void WarnUnmatchableIfNames(const std::vector<std::string>& names, const std::string& path,
                            Warnings& warnings) {
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    bool bad_char = false;
    for (char c : n) bad_char |= c == '/' || std::isspace(static_cast<unsigned char>(c)) != 0;
    if (n.size() > kMaxIfNameLength || bad_char || n == "." || n == "..") {
      warnings.Add("{}[{}]: {} is not a valid Linux interface name; it can never match", path, i,
                   Quote(n));
    }
  }
}

// Parses one selector list (absent -> empty), normalizing with `normalize` when given.
absl::StatusOr<std::vector<std::string>> ParseSelectorList(
    const Fields& fields, std::string_view name, const EntryContext& ctx, Warnings& warnings,
    absl::StatusOr<std::string> (*normalize)(std::string_view)) {
  const Json* v = fields.Get(name);
  if (v == nullptr) return std::vector<std::string>{};
  std::string field = fmt::format("selectors.{}", name);
  ASSIGN_OR_RETURN(std::vector<std::string> values, GetStringList(*v, field, ctx));
  if (normalize != nullptr) {
    for (size_t i = 0; i < values.size(); ++i) {
      absl::StatusOr<std::string> n = normalize(values[i]);
      if (!n.ok())
        return ctx.Error(fmt::format("{}[{}]", field, i), std::string(n.status().message()));
      values[i] = *std::move(n);
    }
  }
  return Dedup(std::move(values), fmt::format("{}.{}", ctx.Path(), field), warnings);
}

absl::StatusOr<Selectors> ParseSelectors(const Json& v, const EntryContext& ctx,
                                         Warnings& warnings) {
  if (!v.is_object()) {
    return ctx.Error("selectors", fmt::format("must be an object, got {}", Describe(v)));
  }
  Fields fields = Fields::Match(v, kSelectorFields, ctx.Path() + ".selectors", warnings);
  Selectors s;
  ASSIGN_OR_RETURN(s.vendors, ParseSelectorList(fields, "vendors", ctx, warnings, NormalizePciId));
  ASSIGN_OR_RETURN(s.device_ids,
                   ParseSelectorList(fields, "deviceIDs", ctx, warnings, NormalizePciId));
  ASSIGN_OR_RETURN(s.drivers, ParseSelectorList(fields, "drivers", ctx, warnings, nullptr));
  ASSIGN_OR_RETURN(s.if_names, ParseSelectorList(fields, "ifNames", ctx, warnings, nullptr));
  WarnUnmatchableIfNames(s.if_names, ctx.Path() + ".selectors.ifNames", warnings);
  ASSIGN_OR_RETURN(s.link_types,
                   ParseSelectorList(fields, "linkTypes", ctx, warnings, NormalizeLinkType));
  return s;
}

absl::StatusOr<ResourceConfig> ParseEntry(const Json& v, size_t index, Warnings& warnings) {
  EntryContext ctx{index, std::nullopt};
  if (!v.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must be an object, got {}", ctx.Name(), Describe(v)));
  }
  Fields fields = Fields::Match(v, kEntryFields, ctx.Path(), warnings);
  ResourceConfig rc;

  const Json* name = fields.Get("resourceName");
  if (name == nullptr) return ctx.Error("resourceName", "missing (required)");
  if (!name->is_string()) {
    return ctx.Error("resourceName", fmt::format("must be a string, got {}", Describe(*name)));
  }
  rc.resource_name = name->get<std::string>();
  ctx.resource_name = rc.resource_name;
  RETURN_IF_ERROR(ValidateResourceName(rc.resource_name, ctx));

  if (const Json* prefix = fields.Get("resourcePrefix"); prefix != nullptr) {
    if (!prefix->is_string()) {
      return ctx.Error("resourcePrefix",
                       fmt::format("must be a string, got {}", Describe(*prefix)));
    }
    rc.resource_prefix = prefix->get<std::string>();
  }
  // The Go plugin treats an empty prefix like an absent one.
  if (rc.resource_prefix.empty()) rc.resource_prefix = std::string(kDefaultResourcePrefix);
  RETURN_IF_ERROR(ValidateResourcePrefix(rc.resource_prefix, rc.resource_name, ctx));

  if (const Json* max = fields.Get("rdmaHcaMax"); max != nullptr) {
    auto err = [&ctx](std::string cause) { return ctx.Error("rdmaHcaMax", cause); };
    ASSIGN_OR_RETURN(int64_t n, GetInt(*max, err));
    if (n < 0 || n > kMaxRdmaHcaMax) {
      return err(fmt::format("{} is out of range 0..{}", n, kMaxRdmaHcaMax));
    }
    rc.rdma_hca_max = static_cast<int>(n);
  } else {
    warnings.Add(
        "{}.rdmaHcaMax: not set; defaults to 0 (like the Go plugin): the resource "
        "advertises no units",
        ctx.Path());
  }

  if (const Json* devices = fields.Get("devices"); devices != nullptr) {
    ASSIGN_OR_RETURN(rc.devices, GetStringList(*devices, "devices", ctx));
    rc.devices = Dedup(std::move(rc.devices), ctx.Path() + ".devices", warnings);
  }
  if (const Json* selectors = fields.Get("selectors"); selectors != nullptr) {
    ASSIGN_OR_RETURN(rc.selectors, ParseSelectors(*selectors, ctx, warnings));
  }
  if (rc.selectors.empty() && rc.devices.empty()) {
    return ctx.Error("selectors",
                     "no selectors and no devices; the resource would select "
                     "nothing (set selectors, e.g. \"ifNames\")");
  }
  if (!rc.selectors.empty() && !rc.devices.empty()) {
    return ctx.Error("devices",
                     "cannot be combined with selectors (the Go plugin refuses both); "
                     "move the names into selectors.ifNames");
  }
  if (!rc.devices.empty()) {
    warnings.Add("{}.devices: deprecated; use selectors.ifNames (treated as ifNames)", ctx.Path());
    WarnUnmatchableIfNames(rc.devices, ctx.Path() + ".devices", warnings);
    rc.selectors.if_names = rc.devices;
  }

  if (const Json* issm = fields.Get("includeIssm"); issm != nullptr) {
    if (!issm->is_boolean()) {
      return ctx.Error("includeIssm", fmt::format("must be a boolean, got {}", Describe(*issm)));
    }
    rc.include_issm = issm->get<bool>();
  }
  if (const Json* mount = fields.Get("mountCli"); mount != nullptr) {
    if (!mount->is_boolean()) {
      return ctx.Error("mountCli", fmt::format("must be a boolean, got {}", Describe(*mount)));
    }
    rc.mount_cli = mount->get<bool>();
  }
  if (const Json* policy = fields.Get("healthPolicy"); policy != nullptr) {
    if (!policy->is_string()) {
      return ctx.Error("healthPolicy",
                       fmt::format("must be \"any\" or \"all\", got {}", Describe(*policy)));
    }
    std::string value = Lower(policy->get<std::string>());
    if (value == "any") {
      rc.health_policy = HealthPolicy::kAny;
    } else if (value == "all") {
      rc.health_policy = HealthPolicy::kAll;
    } else {
      return ctx.Error("healthPolicy", fmt::format("must be \"any\" or \"all\", got {}",
                                                   Quote(policy->get<std::string>())));
    }
  }
  if (const Json* topo = fields.Get("topology"); topo != nullptr) {
    if (!topo->is_boolean()) {
      return ctx.Error("topology", fmt::format("must be a boolean, got {}", Describe(*topo)));
    }
    rc.topology = topo->get<bool>();
  }
  return rc;
}

// Watches the parser's events: finds keys repeated verbatim inside one JSON object (the parsed
// document keeps only the last value, as Go does, so this is the only place they can be seen)
// and refuses containers nested too deep. Records JSON paths for the messages.
class StructureChecker {
 public:
  // Returns false (drop the value) for containers nested deeper than kMaxDepth: ordered_json
  // copies values recursively when an object grows, so deep input must never be built.
  bool OnEvent(int depth, Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        CountArrayElement();
        if (depth >= kMaxDepth) {
          if (!too_deep_at_) {
            too_deep_at_ = CurrentPath();
            if (too_deep_at_->size() > 80) too_deep_at_ = too_deep_at_->substr(0, 77) + "...";
          }
          return false;
        }
        frames_.push_back(Frame{event == Json::parse_event_t::array_start, 0, {}, {}});
        break;
      case Json::parse_event_t::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) repeated_.push_back(CurrentPath());
        break;
      }
      case Json::parse_event_t::value:
        CountArrayElement();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
    }
    return true;
  }
  const std::vector<std::string>& repeated() const { return repeated_; }
  // JSON path of the value holding the first container nested too deep, if any.
  const std::optional<std::string>& too_deep_at() const { return too_deep_at_; }

 private:
  struct Frame {
    bool array = false;
    size_t next_index = 0;
    std::string key;
    std::set<std::string> keys;
  };
  void CountArrayElement() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().next_index;
  }
  std::string CurrentPath() const {
    std::string path;
    for (const Frame& f : frames_) {
      if (f.array) {
        path += fmt::format("[{}]", f.next_index - 1);
      } else {
        path = JoinPath(path, f.key);
      }
    }
    return path;
  }

  std::vector<Frame> frames_;
  std::vector<std::string> repeated_;
  std::optional<std::string> too_deep_at_;
};

// Captures the parser's error message (json::parse without exceptions gives none).
class ErrorCapture : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    message = JsonParseErrorText(ex);
    return false;
  }
  std::string message;
};

}  // namespace

absl::StatusOr<std::string> NormalizePciId(std::string_view value) {
  std::string_view digits = value;
  if (digits.size() >= 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
  }
  bool ok = digits.size() == 4;
  for (char c : digits) ok &= std::isxdigit(static_cast<unsigned char>(c)) != 0;
  if (!ok) {
    return absl::InvalidArgumentError(fmt::format(
        "{} is not a PCI id (expected 4 hex digits, e.g. \"15b3\" or \"0x15B3\")", Quote(value)));
  }
  return Lower(digits);
}

absl::StatusOr<std::string> NormalizeLinkType(std::string_view value) {
  std::string lower = Lower(value);
  if (lower == "ether" || lower == "ethernet" || lower == "eth") return std::string("ether");
  if (lower == "infiniband" || lower == "ib") return std::string("infiniband");
  return absl::InvalidArgumentError(
      fmt::format("{} is not a link type (expected \"ether\" or \"infiniband\")", Quote(value)));
}

absl::StatusOr<PluginConfig> ParseConfig(std::string_view json,
                                         std::vector<std::string>* warnings) {
  StructureChecker structure;
  Json doc = Json::parse(
      json.begin(), json.end(),
      [&structure](int depth, Json::parse_event_t event, Json& parsed) {
        return structure.OnEvent(depth, event, parsed);
      },
      /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    ErrorCapture capture;
    Json::sax_parse(json.begin(), json.end(), &capture);
    return absl::InvalidArgumentError(fmt::format("config: not valid JSON: {}", capture.message));
  }
  if (const std::optional<std::string>& at = structure.too_deep_at(); at) {
    return absl::InvalidArgumentError(fmt::format(
        "config: {}: JSON nested more than {} levels deep", at->empty() ? "top" : *at, kMaxDepth));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("config: must be a JSON object, got {}", Describe(doc)));
  }
  Warnings warn(warnings);
  for (const std::string& path : structure.repeated()) {
    warn.Add("{}: key repeated in the same object; the last value wins (as in the Go plugin)",
             path);
  }
  Fields fields = Fields::Match(doc, kTopFields, "", warn);
  PluginConfig config;
  ASSIGN_OR_RETURN(config.periodic_update_interval_s,
                   ParsePeriodicUpdateInterval(fields.Get("periodicUpdateInterval"), warn));

  const Json* list = fields.Get("configList");
  if (list == nullptr) {
    return absl::InvalidArgumentError("configList: missing (required: at least one resource)");
  }
  if (!list->is_array()) {
    return absl::InvalidArgumentError(
        fmt::format("configList: must be an array, got {}", Describe(*list)));
  }
  if (list->empty()) {
    return absl::InvalidArgumentError("configList: empty (at least one resource is required)");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    ASSIGN_OR_RETURN(ResourceConfig rc, ParseEntry((*list)[i], i, warn));
    for (size_t j = 0; j < config.resources.size(); ++j) {
      const ResourceConfig& other = config.resources[j];
      if (other.resource_name != rc.resource_name) continue;
      EntryContext ctx{i, rc.resource_name};
      EntryContext other_ctx{j, other.resource_name};
      std::string cause =
          other.FullName() == rc.FullName()
              ? fmt::format("duplicate of {}: both are {}", other_ctx.Name(), Quote(rc.FullName()))
              : fmt::format(
                    "duplicate of {} ({} vs {}); names must be unique whatever the prefix "
                    "(the Go plugin names each socket after resourceName)",
                    other_ctx.Name(), Quote(other.FullName()), Quote(rc.FullName()));
      return ctx.Error("resourceName", cause);
    }
    config.resources.push_back(std::move(rc));
  }
  return config;
}

}  // namespace rdmashare::deviceplugin
