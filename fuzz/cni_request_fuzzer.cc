// libFuzzer target: a CNI invocation's environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
// CNI_IFNAME, CNI_ARGS, CNI_PATH) as ParseRequest sees it, plus ParseCniArgs on its own. Input
// layout: "KEY=VALUE" lines form the environment until an empty line; the rest is stdin.
// Invariants: every rejection is CNI code 4 with a message; an accepted ADD/DEL/CHECK has a
// container id and ifname that are safe as path components (no '/', NUL, not "." or "..",
// ifname <= 15 bytes) and CNI_ARGS that parse; CNI_ARGS parsing round-trips.
#include <map>
#include <string>

#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "fuzz/fuzz_check.h"

namespace {

std::map<std::string, std::string> EnvOf(const std::string& input, std::string* stdin_data) {
  std::map<std::string, std::string> env;
  size_t pos = 0;
  while (pos < input.size()) {
    size_t nl = input.find('\n', pos);
    if (nl == std::string::npos) nl = input.size();
    std::string line = input.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) break;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  *stdin_data = pos < input.size() ? input.substr(pos) : std::string();
  return env;
}

bool SafeComponent(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  std::string stdin_data;
  auto env = EnvOf(rdmashare::fuzz::AsString(data, size), &stdin_data);
  return rdmashare::cni::ParseRequest(env, stdin_data).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare::cni;
  std::string input = rdmashare::fuzz::AsString(data, size);
  std::string stdin_data;
  auto env = EnvOf(input, &stdin_data);
  auto req = ParseRequest(env, stdin_data);
  if (!req.ok()) {
    RS_FUZZ_CHECK(CniCode(req.status()) == kInvalidEnv);
    RS_FUZZ_CHECK(!req.status().message().empty());
  } else if (req->command == kCmdAdd || req->command == kCmdDel || req->command == kCmdCheck) {
    RS_FUZZ_CHECK(SafeComponent(req->container_id));
    RS_FUZZ_CHECK(SafeComponent(req->ifname) && req->ifname.size() <= 15);
    RS_FUZZ_CHECK(ValidateContainerId(req->container_id).ok());
    RS_FUZZ_CHECK(ParseCniArgs(req->args).ok());
    RS_FUZZ_CHECK(req->command == kCmdDel || !req->netns.empty());
  }
  // CNI_ARGS alone: the first line as a whole.
  std::string first = input.substr(0, input.find('\n'));
  auto args = ParseCniArgs(first);
  if (!args.ok()) {
    RS_FUZZ_CHECK(CniCode(args.status()) == kInvalidEnv);
  } else {
    std::string joined;
    for (const auto& [k, v] : *args) {
      RS_FUZZ_CHECK(!k.empty() && k.find('=') == std::string::npos &&
                    k.find(';') == std::string::npos);
      RS_FUZZ_CHECK(v.find(';') == std::string::npos);
      joined += k + "=" + v + ";";
    }
    auto again = ParseCniArgs(joined);
    RS_FUZZ_CHECK(again.ok() && *again == *args);
  }
  return 0;
}
