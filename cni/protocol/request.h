// CniRequest: one plugin invocation (the CNI_* environment plus stdin), validated per command.
//
// Only `main` reads the process environment; it hands a map to ParseRequest and everything
// downstream works on CniRequest. Plain values and stateless functions; thread-safe.
//
// Errors are CniError statuses with code 4 (kInvalidEnv) naming the variable and the problem.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdmashare::cni {

// CNI_COMMAND values.
inline constexpr char kCmdAdd[] = "ADD";
inline constexpr char kCmdDel[] = "DEL";
inline constexpr char kCmdCheck[] = "CHECK";
inline constexpr char kCmdVersion[] = "VERSION";
inline constexpr char kCmdGc[] = "GC";
inline constexpr char kCmdStatus[] = "STATUS";

struct CniRequest {
  // CNI_COMMAND: ADD, DEL, CHECK, VERSION, GC or STATUS.
  std::string command;
  // CNI_CONTAINERID (ADD/DEL/CHECK).
  std::string container_id;
  // CNI_NETNS: path of the pod's network namespace (may be empty on DEL).
  std::string netns;
  // CNI_IFNAME: interface name inside the pod.
  std::string ifname;
  // CNI_ARGS as given ("K=V;K=V"); parse with ParseCniArgs.
  std::string args;
  // CNI_PATH as given (':'-separated directories of plugin binaries).
  std::string path;
  // The network configuration JSON read from stdin.
  std::string stdin_data;

  // CNI_PATH split on ':' with empty entries dropped.
  std::vector<std::string> PathDirs() const;

  bool operator==(const CniRequest& o) const {
    return command == o.command && container_id == o.container_id && netns == o.netns &&
           ifname == o.ifname && args == o.args && path == o.path && stdin_data == o.stdin_data;
  }
};

// Builds and validates a request from environment variables and stdin:
//  - CNI_COMMAND missing or not one of the six commands: code 4.
//  - VERSION: nothing else is read or required.
//  - ADD, CHECK: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH required.
//  - DEL: CNI_CONTAINERID, CNI_IFNAME, CNI_PATH required; CNI_NETNS may be absent.
//  - GC, STATUS: CNI_PATH required; nothing else is read.
//  - container id and ifname are validated (ValidateContainerId / ValidateIfName); CNI_ARGS
//    must parse (ParseCniArgs). All failures are code 4 naming the variable.
absl::StatusOr<CniRequest> ParseRequest(const std::map<std::string, std::string>& env,
                                        std::string stdin_data);

// Longest container id accepted. The spec sets none; runtimes use 64 hex digits. Ids are stored
// in lease records that the local store reads with a 4 KiB limit, so an unbounded id would
// become an unreadable (never released) record.
inline constexpr size_t kMaxContainerIdLength = 1024;

// Container id rule from the spec: non-empty, [A-Za-z0-9][A-Za-z0-9_.-]*, and at most
// kMaxContainerIdLength bytes. Code 4 otherwise.
absl::Status ValidateContainerId(const std::string& id);

// Longest interface name the kernel accepts (IFNAMSIZ - 1).
inline constexpr size_t kMaxIfNameLength = 15;

// Why `name` is not an interface name we accept, or "" when it is one. The kernel's rule
// (dev_valid_name: 1..15 bytes, not "." or "..", no '/', ':' or whitespace) plus two of ours:
// no '%' (the kernel expands "%d" into a number, so the link would get another name than the one
// asked for) and printable ASCII only (a non-UTF-8 name cannot be reported faithfully in the
// JSON result, and the kernel counts Latin-1 0xa0 as whitespace). The text completes a sentence
// that starts with the name ("contains '%' ...").
std::string IfNameProblem(const std::string& name);

// `text` for an error message: printable ASCII as is, every other byte as \xNN (names that
// IfNameProblem refuses are quoted with it, so the message shows the bytes that were given).
std::string EscapeForMessage(const std::string& text);

// CNI_IFNAME must pass IfNameProblem. Code 4 naming the variable and the problem otherwise.
absl::Status ValidateIfName(const std::string& ifname);

// Parses CNI_ARGS "K1=V1;K2=V2" (CONVENTIONS.md). Empty string -> empty map; empty segments
// (";;", trailing ';') are ignored. A segment without '=' or with an empty key, or a key given
// twice, is code 4. Values may be empty and may contain '='.
absl::StatusOr<std::map<std::string, std::string>> ParseCniArgs(const std::string& args);

// Converts a NULL-terminated `environ`-style array into a map (for `main`).
std::map<std::string, std::string> EnvironToMap(char** envp);

}  // namespace rdmashare::cni
