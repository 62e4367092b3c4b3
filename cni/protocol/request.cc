#include "cni/protocol/request.h"

#include <cctype>
#include <utility>

#include "cni/protocol/error.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Returns the variable's value, or code 4 naming it when missing or empty.
absl::StatusOr<std::string> Require(const std::map<std::string, std::string>& env,
                                    const std::string& name, const std::string& command) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) {
    return CniError(kInvalidEnv, fmt::format("{} is required for {} but not set", name, command));
  }
  return it->second;
}

std::string Optional(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? std::string() : it->second;
}

}  // namespace

std::vector<std::string> CniRequest::PathDirs() const {
  std::vector<std::string> dirs;
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    if (colon > start) dirs.push_back(path.substr(start, colon - start));
    start = colon + 1;
  }
  return dirs;
}

absl::Status ValidateContainerId(const std::string& id) {
  if (id.empty()) return CniError(kInvalidEnv, "CNI_CONTAINERID is empty");
  if (id.size() > kMaxContainerIdLength) {
    return CniError(kInvalidEnv, fmt::format("CNI_CONTAINERID is {} bytes long (at most {})",
                                             id.size(), kMaxContainerIdLength));
  }
  bool ok = IsAlnum(id[0]);
  for (char c : id) ok = ok && (IsAlnum(c) || c == '_' || c == '.' || c == '-');
  if (!ok) {
    return CniError(kInvalidEnv,
                    fmt::format("CNI_CONTAINERID '{}' has invalid characters: it must match "
                                "[A-Za-z0-9][A-Za-z0-9_.-]*",
                                id));
  }
  return absl::OkStatus();
}

std::string EscapeForMessage(const std::string& text) {
  std::string out;
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", b);
    }
  }
  return out;
}

std::string IfNameProblem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxIfNameLength) {
    return fmt::format("is longer than {} bytes ({} bytes)", kMaxIfNameLength, name.size());
  }
  if (name == "." || name == "..") return "is not a valid name ('.' and '..' are reserved)";
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const auto b = static_cast<unsigned char>(c);
    if (c == '/') return "contains '/'";
    if (c == ':') return "contains ':' (the kernel's alias syntax)";
    if (c == '%') {
      return "contains '%' (the kernel would replace a \"%d\" with a number and create the "
             "link under another name)";
    }
    if (c == ' ' || (b >= '\t' && b <= '\r')) {
      return fmt::format("contains whitespace (byte 0x{:02x} at offset {})", b, i);
    }
    if (b < 0x20 || b >= 0x7f) {
      return fmt::format("contains byte 0x{:02x} at offset {}: only printable ASCII is accepted", b,
                         i);
    }
  }
  return "";
}

absl::Status ValidateIfName(const std::string& ifname) {
  std::string problem = IfNameProblem(ifname);
  if (problem.empty()) return absl::OkStatus();
  return CniError(kInvalidEnv,
                  fmt::format("CNI_IFNAME '{}' {}", EscapeForMessage(ifname), problem));
}

absl::StatusOr<std::map<std::string, std::string>> ParseCniArgs(const std::string& args) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= args.size()) {
    size_t semi = args.find(';', start);
    if (semi == std::string::npos) semi = args.size();
    std::string pair = args.substr(start, semi - start);
    start = semi + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string::npos) {
      return CniError(kInvalidEnv,
                      fmt::format("CNI_ARGS: pair '{}' has no '=' (expected K=V;K=V)", pair));
    }
    std::string key = pair.substr(0, eq);
    if (key.empty()) {
      return CniError(kInvalidEnv, fmt::format("CNI_ARGS: pair '{}' has an empty key", pair));
    }
    if (!out.emplace(key, pair.substr(eq + 1)).second) {
      return CniError(kInvalidEnv, fmt::format("CNI_ARGS: key '{}' is given twice", key));
    }
  }
  return out;
}

absl::StatusOr<CniRequest> ParseRequest(const std::map<std::string, std::string>& env,
                                        std::string stdin_data) {
  CniRequest req;
  req.stdin_data = std::move(stdin_data);
  auto cmd = env.find("CNI_COMMAND");
  if (cmd == env.end() || cmd->second.empty()) {
    return CniError(kInvalidEnv, "CNI_COMMAND is not set");
  }
  req.command = cmd->second;
  if (req.command == kCmdVersion) return req;
  if (req.command == kCmdGc || req.command == kCmdStatus) {
    ASSIGN_OR_RETURN(req.path, Require(env, "CNI_PATH", req.command));
    return req;
  }
  if (req.command != kCmdAdd && req.command != kCmdDel && req.command != kCmdCheck) {
    return CniError(kInvalidEnv,
                    fmt::format("CNI_COMMAND '{}' is unknown (expected ADD, DEL, CHECK, VERSION, "
                                "GC or STATUS)",
                                req.command));
  }
  ASSIGN_OR_RETURN(req.container_id, Require(env, "CNI_CONTAINERID", req.command));
  RETURN_IF_ERROR(ValidateContainerId(req.container_id));
  if (req.command == kCmdDel) {
    req.netns = Optional(env, "CNI_NETNS");
  } else {
    ASSIGN_OR_RETURN(req.netns, Require(env, "CNI_NETNS", req.command));
  }
  ASSIGN_OR_RETURN(req.ifname, Require(env, "CNI_IFNAME", req.command));
  RETURN_IF_ERROR(ValidateIfName(req.ifname));
  ASSIGN_OR_RETURN(req.path, Require(env, "CNI_PATH", req.command));
  req.args = Optional(env, "CNI_ARGS");
  RETURN_IF_ERROR(ParseCniArgs(req.args).status());
  return req;
}

std::map<std::string, std::string> EnvironToMap(char** envp) {
  std::map<std::string, std::string> env;
  for (char** p = envp; p != nullptr && *p != nullptr; ++p) {
    std::string entry = *p;
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

}  // namespace rdmashare::cni
