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
//
// The Go-compatible field access (key matching, integers, string lists) is in config_fields.h,
// the resourceName / resourcePrefix rules in resource_name.h.
#include "deviceplugin/config.h"

#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "deviceplugin/config_fields.h"
#include "deviceplugin/resource_name.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::deviceplugin {
namespace {

using config_internal::Dedup;
using config_internal::Describe;
using config_internal::EntryContext;
using config_internal::Fields;
using config_internal::GetInt;
using config_internal::GetStringList;
using config_internal::JoinPath;
using config_internal::Json;
using config_internal::Lower;
using config_internal::Quote;
using config_internal::ValidateResourceName;
using config_internal::ValidateResourcePrefix;
using config_internal::Warnings;

constexpr int kDefaultPeriodicUpdateIntervalS = 60;
constexpr int64_t kLongIntervalS = 24 * 60 * 60;
// Go computes time.Duration(seconds) * time.Second in int64 nanoseconds.
constexpr int64_t kMaxGoIntervalS = std::numeric_limits<int64_t>::max() / 1000000000;
constexpr int kMaxRdmaHcaMax = 10000;
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
    auto err = [&ctx](const std::string& cause) { return ctx.Error("rdmaHcaMax", cause); };
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
