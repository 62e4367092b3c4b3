#include "cni/protocol/netconf.h"

#include <cctype>
#include <cstdlib>

#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni {
namespace {

using nlohmann::json;

std::string SupportedList() {
  std::string out;
  for (const char* v : kSupportedVersions) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

absl::StatusOr<std::string> RequiredString(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return CniError(kInvalidNetworkConfig, fmt::format("network config: \"{}\" is missing", key));
  }
  if (!it->is_string() || it->get<std::string>().empty()) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network config: \"{}\" must be a non-empty string", key));
  }
  return it->get<std::string>();
}

// Returns the object at `key`, `fallback` when absent, or code 7 when it is not an object.
absl::StatusOr<json> OptionalObject(const json& obj, const char* key, json fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_object()) {
    return CniError(
        kInvalidNetworkConfig,
        fmt::format("network config: \"{}\" must be an object, got {}", key, it->type_name()));
  }
  return *it;
}

bool ValidNetworkName(const std::string& name) {
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

std::vector<long> VersionParts(const std::string& v) {
  std::vector<long> parts;
  size_t start = 0;
  while (start <= v.size()) {
    size_t dot = v.find('.', start);
    if (dot == std::string::npos) dot = v.size();
    parts.push_back(std::strtol(v.substr(start, dot - start).c_str(), nullptr, 10));
    start = dot + 1;
  }
  while (parts.size() < 3) parts.push_back(0);
  return parts;
}

}  // namespace

bool IsSupportedVersion(const std::string& version) {
  for (const char* v : kSupportedVersions) {
    if (version == v) return true;
  }
  return false;
}

bool VersionAtLeast(const std::string& version, const std::string& minimum) {
  return VersionParts(version) >= VersionParts(minimum);
}

std::string PluginUsage(const std::vector<std::string>& args, const std::string& plugin,
                        const std::string& about) {
  for (const std::string& a : args) {
    if (a == "--version" || a == "-version") {
      return fmt::format("{} {} (CNI {})\n", plugin, RDMASHARE_VERSION, kLatestVersion);
    }
    if (a == "--help" || a == "-h" || a == "-help") {
      std::string versions;
      for (const char* v : kSupportedVersions)
        versions += (versions.empty() ? "" : ", ") + std::string(v);
      return fmt::format(
          "{plugin}: {about}\n\n"
          "A CNI plugin: the container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS,\n"
          "GC, VERSION), CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH in the\n"
          "environment and the network config as JSON on stdin (at most {max} bytes); it answers\n"
          "with one JSON document on stdout (a result or an error with its CNI code) and exits\n"
          "0 or 1. Spec versions: {versions}.\n\n"
          "Try it: echo '{{\"cniVersion\":\"1.0.0\"}}' | CNI_COMMAND=VERSION {plugin}\n"
          "Configuration keys: see the README of rdmashare ({plugin} section).\n\n"
          "  --help       this text\n  --version    the plugin's version\n",
          fmt::arg("plugin", plugin), fmt::arg("about", about), fmt::arg("max", kMaxStdinBytes),
          fmt::arg("versions", versions));
    }
  }
  return "";
}

absl::StatusOr<std::string> ReadStdin(std::istream& in, size_t max_bytes) {
  std::string data;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > max_bytes) {
      return CniError(
          kDecodeFailure,
          fmt::format("stdin: more than {} bytes (a network config is a few KiB)", max_bytes));
    }
  }
  return data;
}

absl::StatusOr<json> ParseCniJson(std::string_view text, std::string_view what) {
  JsonLimits limits;
  limits.max_depth = kMaxJsonDepth;
  limits.max_bytes = kMaxStdinBytes;
  absl::StatusOr<json> doc = ParseJsonBounded(text, what, limits);
  if (!doc.ok()) return CniError(kDecodeFailure, std::string(doc.status().message()));
  return doc;
}

absl::StatusOr<NetConf> ParseNetConf(std::string_view stdin_data) {
  ASSIGN_OR_RETURN(json doc, ParseCniJson(stdin_data, "network config on stdin"));
  if (!doc.is_object()) {
    return CniError(kDecodeFailure, fmt::format("network config on stdin must be a JSON object, "
                                                "got {}",
                                                doc.type_name()));
  }
  NetConf conf;
  auto version = RequiredString(doc, "cniVersion");
  if (!version.ok()) return version.status();
  conf.cni_version = *version;
  if (!IsSupportedVersion(conf.cni_version)) {
    return CniError(kIncompatibleVersion,
                    fmt::format("cniVersion {} is not supported (supported: {})", conf.cni_version,
                                SupportedList()));
  }
  auto name = RequiredString(doc, "name");
  if (!name.ok()) return name.status();
  if (name->size() > kMaxNetworkNameLength) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network config: name is {} bytes long (at most {})", name->size(),
                                kMaxNetworkNameLength));
  }
  if (!ValidNetworkName(*name)) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("network config: name '{}' is invalid: it must match "
                                "[A-Za-z0-9][A-Za-z0-9_.-]*",
                                *name));
  }
  conf.name = *name;
  auto type = RequiredString(doc, "type");
  if (!type.ok()) return type.status();
  conf.type = *type;

  auto ipam = OptionalObject(doc, "ipam", json());
  if (!ipam.ok()) return ipam.status();
  conf.ipam = *ipam;
  auto prev = OptionalObject(doc, "prevResult", json());
  if (!prev.ok()) return prev.status();
  if (!prev->is_null()) conf.prev_result = *prev;
  auto rc = OptionalObject(doc, "runtimeConfig", json::object());
  if (!rc.ok()) return rc.status();
  conf.runtime_config = *rc;
  auto args = OptionalObject(doc, "args", json::object());
  if (!args.ok()) return args.status();
  conf.args = *args;
  auto dns = OptionalObject(doc, "dns", json());
  if (!dns.ok()) return dns.status();
  conf.dns = *dns;
  conf.raw = std::move(doc);
  return conf;
}

absl::Status ValidateCommandForVersion(const std::string& command, const std::string& version) {
  std::string minimum;
  if (command == kCmdCheck) minimum = "0.4.0";
  if (command == kCmdGc || command == kCmdStatus) minimum = "1.1.0";
  if (!minimum.empty() && !VersionAtLeast(version, minimum)) {
    return CniError(kIncompatibleVersion,
                    fmt::format("config version {} does not allow {} (needs {} or newer)", version,
                                command, minimum));
  }
  return absl::OkStatus();
}

std::string EncodeVersionInfo(const std::string& cni_version) {
  nlohmann::ordered_json out;
  out["cniVersion"] = IsSupportedVersion(cni_version) ? cni_version : kLatestVersion;
  out["supportedVersions"] = nlohmann::ordered_json::array();
  for (const char* v : kSupportedVersions) out["supportedVersions"].push_back(v);
  return out.dump();
}

std::string VersionFromStdin(std::string_view stdin_data) {
  absl::StatusOr<json> parsed = ParseCniJson(stdin_data, "stdin");
  json doc = parsed.ok() ? *std::move(parsed) : json();
  if (doc.is_object()) {
    auto it = doc.find("cniVersion");
    if (it != doc.end() && it->is_string() && IsSupportedVersion(it->get<std::string>())) {
      return it->get<std::string>();
    }
  }
  return kLatestVersion;
}

absl::StatusOr<std::vector<Attachment>> ParseValidAttachments(const NetConf& conf) {
  const json* list = nullptr;
  for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
    auto it = conf.raw.find(key);
    if (it != conf.raw.end()) {
      list = &*it;
      break;
    }
  }
  if (list == nullptr) {
    return CniError(kInvalidNetworkConfig,
                    "GC: \"cni.dev/valid-attachments\" is missing from the network config");
  }
  if (!list->is_array()) {
    return CniError(kInvalidNetworkConfig, "GC: \"cni.dev/valid-attachments\" must be an array");
  }
  std::vector<Attachment> out;
  for (const json& item : *list) {
    if (!item.is_object()) {
      return CniError(kInvalidNetworkConfig,
                      "GC: every valid attachment must be an object {containerID, ifname}");
    }
    auto id = item.find("containerID");
    auto ifname = item.find("ifname");
    if (id == item.end() || !id->is_string() || ifname == item.end() || !ifname->is_string()) {
      return CniError(
          kInvalidNetworkConfig,
          fmt::format("GC: valid attachment {} needs string containerID and ifname", item.dump()));
    }
    out.push_back({id->get<std::string>(), ifname->get<std::string>()});
  }
  return out;
}

}  // namespace rdmashare::cni
