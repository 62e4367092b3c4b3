// rdmashare-fakenode: writes a preset fake node (sysfs + /dev trees) under a directory.
//
//   rdmashare-fakenode --preset walkthrough-8rail --root /tmp/node1
//
// Prints "sys_root=<dir>/sys" and "dev_root=<dir>/dev" on success (exit 0). Bad flags: a message
// on stderr and exit 2. Build failures (e.g. mknod refused): exit 1.
#include <cstdio>
#include <string>

#include "fmt/format.h"
#include "tools/fakenode/fake_node.h"

namespace {

std::string PresetList() {
  std::string out;
  for (const std::string& n : rdmashare::fakenode::PresetNames()) {
    out += (out.empty() ? "" : "|") + n;
  }
  return out;
}

void PrintUsage(std::FILE* to) {
  std::fprintf(to, "usage: rdmashare-fakenode --preset %s --root DIR\n", PresetList().c_str());
}

int BadFlags(const std::string& msg) {
  std::fprintf(stderr, "rdmashare-fakenode: %s\n", msg.c_str());
  PrintUsage(stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset, root;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      PrintUsage(stdout);
      return 0;
    }
    std::string* target = nullptr;
    std::string flag = arg, value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (flag == "--preset") {
      target = &preset;
    } else if (flag == "--root") {
      target = &root;
    } else {
      return BadFlags(fmt::format("unknown flag '{}'", arg));
    }
    if (!has_value) {
      if (i + 1 >= argc) return BadFlags(fmt::format("flag {} needs a value", flag));
      value = argv[++i];
    }
    if (value.empty()) return BadFlags(fmt::format("flag {} needs a non-empty value", flag));
    *target = value;
  }
  if (preset.empty()) return BadFlags("missing --preset");
  if (root.empty()) return BadFlags("missing --root");
  auto spec = rdmashare::fakenode::PresetByName(preset);
  if (!spec.ok()) return BadFlags(std::string(spec.status().message()));
  auto node = rdmashare::fakenode::FakeNode::Build(*spec, root);
  if (!node.ok()) {
    std::fprintf(stderr, "rdmashare-fakenode: building preset %s under %s: %s\n", preset.c_str(),
                 root.c_str(), std::string(node.status().message()).c_str());
    return 1;
  }
  std::printf("sys_root=%s\ndev_root=%s\n", node->sys_root().c_str(), node->dev_root().c_str());
  return 0;
}
