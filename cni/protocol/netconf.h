// NetConf: the network configuration a plugin receives on stdin, for any supported cniVersion.
//
// Parsing never throws (nlohmann::json parse without exceptions; every field type-checked).
// Plain values and stateless functions; thread-safe. Errors are CniError statuses:
// 6 (kDecodeFailure) when stdin is not a JSON object, 7 (kInvalidNetworkConfig) for missing or
// ill-typed fields, 1 (kIncompatibleVersion) for an unsupported cniVersion.
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {

// The versions we implement, oldest first.
inline constexpr const char* kSupportedVersions[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
// The newest version we implement (used when the caller gives none, e.g. VERSION).
inline constexpr char kLatestVersion[] = "1.1.0";

// Longest network name accepted: it names the IPAM store's directory (NAME_MAX).
inline constexpr size_t kMaxNetworkNameLength = 255;

struct NetConf {
  std::string cni_version;
  // Network name; validated like the spec asks ([A-Za-z0-9][A-Za-z0-9_.-]*, and at most
  // kMaxNetworkNameLength bytes), so it is safe as a directory name.
  std::string name;
  std::string type;
  // The whole configuration object as received (plugin-specific fields live here).
  nlohmann::json raw;
  // "ipam" object, or null when absent.
  nlohmann::json ipam;
  // "prevResult" (object) when present.
  std::optional<nlohmann::json> prev_result;
  // "runtimeConfig" object, or an empty object when absent.
  nlohmann::json runtime_config = nlohmann::json::object();
  // "args" object (CONVENTIONS.md args.cni.*), or an empty object when absent.
  nlohmann::json args = nlohmann::json::object();
  // "dns" object, or null when absent.
  nlohmann::json dns;

  bool operator==(const NetConf& o) const {
    return cni_version == o.cni_version && name == o.name && type == o.type && raw == o.raw &&
           ipam == o.ipam && prev_result == o.prev_result && runtime_config == o.runtime_config &&
           args == o.args && dns == o.dns;
  }
};

// One entry of cni.dev/valid-attachments (GC).
struct Attachment {
  std::string container_id;
  std::string ifname;
  bool operator==(const Attachment& o) const {
    return container_id == o.container_id && ifname == o.ifname;
  }
  bool operator<(const Attachment& o) const {
    return container_id != o.container_id ? container_id < o.container_id : ifname < o.ifname;
  }
};

// Parses and validates the stdin configuration. `name`, `type`, `cniVersion` are required
// strings; `ipam`, `prevResult`, `runtimeConfig`, `args`, `dns` must be objects when present.
absl::StatusOr<NetConf> ParseNetConf(std::string_view stdin_data);

// Largest stdin a plugin reads (a network config with prevResult is a few KiB; 4 MiB leaves
// room for large runtimeConfig sections and refuses a runaway writer).
inline constexpr size_t kMaxStdinBytes = 4 << 20;
// JSON nesting accepted from stdin and from delegated plugins' output (a network config nests
// about 6 levels).
inline constexpr size_t kMaxJsonDepth = 64;

// What a CNI plugin prints for --help / --version (argv is otherwise ignored: the runtime
// passes everything in the environment and on stdin). Empty when argv asks for neither.
std::string PluginUsage(const std::vector<std::string>& args, const std::string& plugin,
                        const std::string& about);

// Reads the whole stdin, at most kMaxStdinBytes: more is code 6 (kDecodeFailure) "stdin: more
// than N bytes" without reading it all.
absl::StatusOr<std::string> ReadStdin(std::istream& in, size_t max_bytes = kMaxStdinBytes);

// Parses JSON that came from outside (stdin, a delegated plugin's stdout) with the size and
// depth caps above: code 6 (kDecodeFailure) naming `what` and the reason otherwise.
absl::StatusOr<nlohmann::json> ParseCniJson(std::string_view text, std::string_view what);

// True when `version` is one of kSupportedVersions.
bool IsSupportedVersion(const std::string& version);

// Semantic comparison of dotted versions ("0.4.0" >= "0.3.1"). Unparseable parts compare as 0.
bool VersionAtLeast(const std::string& version, const std::string& minimum);

// Checks that `command` exists in `version` (CHECK needs >= 0.4.0; GC and STATUS >= 1.1.0).
// Code 1 (kIncompatibleVersion) otherwise.
absl::Status ValidateCommandForVersion(const std::string& command, const std::string& version);

// The VERSION answer: {"cniVersion": v, "supportedVersions": [...]} where v is `cni_version` if
// supported, else kLatestVersion.
std::string EncodeVersionInfo(const std::string& cni_version);

// The cniVersion to answer VERSION with, read leniently from stdin (VERSION must succeed even
// with empty or odd stdin): the "cniVersion" string if stdin is a JSON object holding a
// supported one, else kLatestVersion.
std::string VersionFromStdin(std::string_view stdin_data);

// GC: the attachments the runtime still uses, from "cni.dev/valid-attachments" (or the older
// "cni.dev/attachments"). An empty array is valid (release everything); an absent key or an
// ill-typed one is code 7 (GC must never wipe a network because a field was misspelled).
absl::StatusOr<std::vector<Attachment>> ParseValidAttachments(const NetConf& conf);

}  // namespace rdmashare::cni
