// RunCli: flag parsing and dispatch of the `rdmashare` commands (declared in cli.h).
#include "tools/cli/cli.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "tools/cli/pool.h"

namespace rdmashare::cli {
namespace {

using ::nlohmann::ordered_json;

struct FlagSpec {
  std::string name;  // without "--"
  bool takes_value;
  std::string help;
};

struct CommandSpec {
  std::string name;
  std::string args;  // positional arguments for the usage line
  std::string summary;
  std::vector<FlagSpec> flags;
  size_t positional = 0;             // exact number of positional arguments
  bool positional_optional = false;  // or none at all
};

const std::vector<FlagSpec>& RootFlags() {
  static const std::vector<FlagSpec> kFlags = {
      {"sysfs-root", true, "sysfs root (default /sys)"},
      {"dev-root", true, "device root (default /dev)"},
      {"proc-root", true, "procfs root (default /proc)"},
      {"kubelet-dir", true, "kubelet state directory (default /var/lib/kubelet)"},
  };
  return kFlags;
}

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"doctor",
       "",
       "check this host for rdmashare: RDMA devices, ports, link layer, verbs (rdma-core's "
       "libibverbs) against sysfs, netns mode, GPUDirect, rdma_cm, netdevs, GID room, kubelet",
       {{"json", false, "print JSON instead of a table"}}},
      {"devices",
       "",
       "list the node's RDMA devices; with --config, what each resource selects (dry run)",
       {{"config", true, "device-plugin config.json to check against this node"},
        {"json", false, "print JSON"}}},
      {"rails",
       "",
       "pair GPUs with their nearest RDMA NIC and generate the device-plugin config and the "
       "rail networks",
       {{"resource-template", true, "resource name per rail (default shared_cx5_gpu{n})"},
        {"network-template", true, "network name per rail (default gpu{n}-net{10+n})"},
        {"prefix", true, "resource prefix (default spidernet.io)"},
        {"rdma-hca-max", true, "shareable units per resource (default 100)"},
        {"periodic-update-interval", true, "seconds between rescans (default 300)"},
        {"subnet-template", true, "IPv4 subnet per rail (default 172.16.{10+n}.0/24)"},
        {"gateway-host", true, "host number of the gateway in each subnet (default 254)"},
        {"range", true, "host numbers handed to pods, FIRST-LAST (default 1-200)"},
        {"table-base", true, "policy routing table of rail 1; rail n gets base+n-1 (default 100)"},
        {"namespace", true,
         "namespace of the generated objects (default rdmashare, as manifests/; \"\" = none)"},
        {"mount-cli", false,
         "set \"mountCli\": true on every resource: rdmashare-dp mounts the CLI into the pods, "
         "so `rdmashare gid` works in any image"},
        {"config-map", true, "ConfigMap name for YAML output (default rdmashare-dp-config)"},
        {"format", true, "yaml (default) or json"},
        {"output", true, "dp-config, networks or all (default all)"}}},
      {"gid",
       "",
       "inside a pod: the RDMA device and RoCE v2 GID index of each rail interface",
       {{"ifname", true, "only this interface (e.g. net1)"},
        {"env", false, "print NCCL/UCX settings as export lines"},
        {"socket-ifname", true, "NCCL_SOCKET_IFNAME value (default eth0)"}}},
      {"capture",
       "DIR",
       "copy this host's RDMA sysfs and /dev/infiniband numbers into DIR (a test fixture)",
       {},
       1},
      {"pool",
       "[list|release]",
       "rdmashare-ipam pools: used/free and who holds what (list, the default), or release a "
       "dead node's addresses (etcd store)",
       {{"conf", true,
         "network config of the pool: CNI config, conflist or NetworkAttachmentDefinition JSON"},
        {"data-dir", true, "local store directory (default: the config's dataDir)"},
        {"json", false, "print JSON (list)"},
        {"node", true, "release: the node whose addresses are reclaimed"},
        {"quarantined", false,
         "release: end the quarantines (addresses an IP-conflict probe took out of use for "
         "quarantineSeconds) now"},
        {"ip", true, "release --quarantined: only this address"},
        {"pool", true, "release: pool id (default: the config's pool, else the network name)"}},
       1,
       true},
  };
  return kCommands;
}

std::string TopUsage() {
  std::string s =
      "usage: rdmashare <command> [flags]\n"
      "       rdmashare --version | --help | <command> --help\n\ncommands:\n";
  for (const CommandSpec& c : Commands()) s += fmt::format("  {:<8} {}\n", c.name, c.summary);
  s += "\nflags of every command:\n";
  for (const FlagSpec& f : RootFlags()) s += fmt::format("  --{:<13} {}\n", f.name, f.help);
  return s;
}

std::string CommandUsage(const CommandSpec& c) {
  std::string s = fmt::format("usage: rdmashare {} [flags]{}\n\n{}\n\nflags:\n", c.name,
                              c.args.empty() ? "" : " " + c.args, c.summary);
  for (const FlagSpec& f : c.flags) {
    s += fmt::format("  --{:<26} {}\n", f.name + (f.takes_value ? " V" : ""), f.help);
  }
  for (const FlagSpec& f : RootFlags()) {
    s += fmt::format("  --{:<26} {}\n", f.name + (f.takes_value ? " V" : ""), f.help);
  }
  return s;
}

struct ParsedArgs {
  std::map<std::string, std::string> values;
  std::set<std::string> bools;
  std::vector<std::string> positional;
  bool help = false;

  std::string Get(const std::string& name, const std::string& fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

absl::StatusOr<ParsedArgs> ParseArgs(const CommandSpec& cmd, const std::vector<std::string>& args) {
  ParsedArgs out;
  std::vector<FlagSpec> flags = cmd.flags;
  flags.insert(flags.end(), RootFlags().begin(), RootFlags().end());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      out.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec =
        std::find_if(flags.begin(), flags.end(), [&](const FlagSpec& f) { return f.name == name; });
    if (spec == flags.end()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: unknown flag --{} (see rdmashare {} --help)", cmd.name, name, cmd.name));
    }
    if (!spec->takes_value) {
      if (value) {
        return absl::InvalidArgumentError(
            fmt::format("{}: flag --{} takes no value", cmd.name, name));
      }
      out.bools.insert(name);
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: flag --{} needs a value", cmd.name, name));
      }
      value = args[++i];
    }
    out.values[name] = *value;
  }
  if (!out.help && out.positional.size() != cmd.positional &&
      !(cmd.positional_optional && out.positional.empty())) {
    return absl::InvalidArgumentError(
        cmd.positional == 0
            ? fmt::format("{}: unexpected argument \"{}\"", cmd.name, out.positional.front())
            : fmt::format("{}: expected {} argument(s) ({}), got {}", cmd.name, cmd.positional,
                          cmd.args, out.positional.size()));
  }
  return out;
}

absl::StatusOr<int> ParseIntFlag(const ParsedArgs& p, const std::string& name, int fallback,
                                 int min, int max) {
  auto it = p.values.find(name);
  if (it == p.values.end()) return fallback;
  const std::string& s = it->second;
  bool digits = !s.empty() && s.size() <= 9 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  int v = digits ? std::stoi(s) : -1;
  if (!digits || v < min || v > max) {
    return absl::InvalidArgumentError(
        fmt::format("--{} \"{}\": want an integer {}-{}", name, s, min, max));
  }
  return v;
}

HostPaths PathsFor(const ParsedArgs& p, HostPaths paths) {
  paths.sys_root = p.Get("sysfs-root", paths.sys_root);
  paths.dev_root = p.Get("dev-root", paths.dev_root);
  paths.host_dev_root = paths.dev_root;
  paths.proc_root = p.Get("proc-root", paths.proc_root);
  paths.kubelet_dir = p.Get("kubelet-dir", paths.kubelet_dir);
  return paths;
}

int Fail(std::ostream& err, const std::string& cmd, const absl::Status& st, int code) {
  err << "rdmashare " << cmd << ": " << st.message() << "\n";
  return code;
}

// True when both paths name the same directory (or, unresolvable, are the same text).
bool SameDirectory(const std::string& a, const std::string& b) {
  if (a == b) return true;
  absl::StatusOr<std::string> ra = RealPath(a);
  absl::StatusOr<std::string> rb = RealPath(b);
  return ra.ok() && rb.ok() && *ra == *rb;
}

int RunDoctor(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  rdma::FakeNetnsModeReader unavailable(rdma::NetnsMode::kUnavailable);
  rdma::NetnsModeReader& reader = env.netns_reader ? *env.netns_reader : unavailable;
  // The verbs view describes the tree at env.paths.sys_root (the running host's /sys in main);
  // compared with any other tree it would report differences that are not there.
  rdma::VerbsReader* verbs =
      SameDirectory(paths.sys_root, env.paths.sys_root) ? env.verbs_reader : nullptr;
  absl::StatusOr<std::vector<CheckResult>> results = RunDoctorChecks(paths, reader, verbs);
  if (!results.ok()) return Fail(err, "doctor", results.status(), kExitFailure);
  if (p.bools.count("json")) {
    out << DoctorJson(*results).dump(2) << "\n";
  } else {
    PrintDoctorTable(*results, out);
  }
  return DoctorExitCode(*results);
}

int RunDevices(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  if (!inv.ok()) return Fail(err, "devices", inv.status(), kExitFailure);
  for (const std::string& w : scanner.Warnings()) err << "warning: " << w << "\n";
  bool json = p.bools.count("json") > 0;
  nlohmann::json doc = DevicesJson(*inv);
  if (!json) PrintDevicesTable(*inv, out);
  int code = kExitOk;
  if (p.values.count("config")) {
    const std::string& path = p.values.at("config");
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) return Fail(err, "devices", text.status(), kExitFailure);
    std::vector<std::string> warnings;
    absl::StatusOr<deviceplugin::PluginConfig> config = deviceplugin::ParseConfig(*text, &warnings);
    if (!config.ok()) {
      return Fail(
          err, "devices",
          absl::InvalidArgumentError(fmt::format("config {}: {}", path, config.status().message())),
          kExitFailure);
    }
    for (const std::string& w : warnings) err << "config warning: " << w << "\n";
    nlohmann::json resources = nlohmann::json::array();
    if (!json) out << fmt::format("\nconfig {}: {} resources\n", path, config->resources.size());
    for (const ResourceMatch& m : MatchResources(*config, *inv)) {
      if (m.ibdevs.empty()) code = kExitFailure;
      nlohmann::json entry = {{"resource", m.full_name},
                              {"ibdevs", m.ibdevs},
                              {"dead_selectors", m.dead_selectors},
                              {"healthy", m.healthy}};
      if (!m.healthy) entry["health_cause"] = m.health_cause;
      resources.push_back(std::move(entry));
      if (json) continue;
      std::string devs;
      for (const std::string& d : m.ibdevs) devs += (devs.empty() ? "" : ",") + d;
      out << fmt::format("  {}: {}{}\n", m.full_name,
                         m.ibdevs.empty() ? "selects NO device on this node" : devs,
                         m.ibdevs.empty() ? ""
                         : m.healthy      ? " (Healthy)"
                                          : " (Unhealthy: " + m.health_cause + ")");
      for (const std::string& s : m.dead_selectors) {
        out << fmt::format("    selector {} matches nothing on this node\n", s);
      }
    }
    doc["config"] = path;
    doc["resources"] = resources;
  }
  if (json) out << doc.dump(2) << "\n";
  return code;
}

int RunRails(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  RailsOptions o;
  o.resource_template = p.Get("resource-template", o.resource_template);
  o.network_template = p.Get("network-template", o.network_template);
  o.prefix = p.Get("prefix", o.prefix);
  o.subnet_template = p.Get("subnet-template", o.subnet_template);
  o.namespace_name = p.Get("namespace", o.namespace_name);
  o.mount_cli = p.bools.count("mount-cli") > 0;
  o.config_map_name = p.Get("config-map", o.config_map_name);
  std::string format = p.Get("format", "yaml");
  std::string output = p.Get("output", "all");
  absl::Status usage = absl::OkStatus();
  auto set_int = [&](const char* name, int& field, int min, int max) {
    absl::StatusOr<int> v = ParseIntFlag(p, name, field, min, max);
    if (v.ok()) {
      field = *v;
    } else if (usage.ok()) {
      usage = v.status();
    }
  };
  set_int("rdma-hca-max", o.rdma_hca_max, 1, 10000);
  set_int("periodic-update-interval", o.periodic_update_interval, 0, 86400);
  set_int("gateway-host", o.gateway_host, 1, 1 << 24);
  set_int("table-base", o.table_base, 1, 250);
  if (p.values.count("range")) {
    const std::string& r = p.values.at("range");
    size_t dash = r.find('-');
    ParsedArgs a, b;
    if (dash != std::string::npos) {
      a.values["range"] = r.substr(0, dash);
      b.values["range"] = r.substr(dash + 1);
    }
    absl::StatusOr<int> first = ParseIntFlag(a, "range", -1, 1, 1 << 24);
    absl::StatusOr<int> last = ParseIntFlag(b, "range", -1, 1, 1 << 24);
    if (dash == std::string::npos || !first.ok() || !last.ok() || *first > *last) {
      if (usage.ok()) {
        usage = absl::InvalidArgumentError(
            fmt::format("--range \"{}\": want FIRST-LAST host numbers, e.g. 1-200", r));
      }
    } else {
      o.range_first = *first;
      o.range_last = *last;
    }
  }
  if (format != "yaml" && format != "json") {
    usage = absl::InvalidArgumentError(fmt::format("--format \"{}\": want yaml or json", format));
  }
  if (output != "dp-config" && output != "networks" && output != "all") {
    usage = absl::InvalidArgumentError(
        fmt::format("--output \"{}\": want dp-config, networks or all", output));
  }
  // Templates are checked before touching the host, so a typo is a usage error everywhere.
  for (const std::string* t : {&o.resource_template, &o.network_template, &o.subnet_template}) {
    if (absl::StatusOr<std::string> e = ExpandTemplate(*t, 1); !e.ok() && usage.ok()) {
      usage = e.status();
    }
  }
  if (!usage.ok()) return Fail(err, "rails", usage, kExitUsage);

  HostPaths paths = PathsFor(p, env.paths);
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  if (!inv.ok()) return Fail(err, "rails", inv.status(), kExitFailure);
  absl::StatusOr<RailPlan> plan = PlanRails(paths, *inv);
  if (!plan.ok()) return Fail(err, "rails", plan.status(), kExitFailure);
  for (const Rail& r : plan->rails) {
    err << fmt::format(
        "rail {}: GPU {} <-> {} ({}, {}) by {}{}\n", r.number, r.gpu_pci, r.ibdev, r.nic_pci,
        r.netdev, r.affinity,
        r.affinity == "pcie" ? fmt::format(" ({} shared bridges)", r.shared_bridges) : "");
  }
  for (const std::string& g : plan->unpaired_gpus) err << "unpaired GPU: " << g << "\n";
  for (const std::string& n : plan->unpaired_nics) err << "unpaired NIC: " << n << "\n";

  absl::StatusOr<ordered_json> dp = RailsDpConfig(*plan, o);
  if (!dp.ok()) return Fail(err, "rails", dp.status(), kExitUsage);
  absl::StatusOr<std::vector<ordered_json>> nets = RailsNetworks(*plan, o);
  if (!nets.ok()) return Fail(err, "rails", nets.status(), kExitUsage);

  ordered_json metadata = {{"name", o.config_map_name}};
  if (!o.namespace_name.empty()) metadata["namespace"] = o.namespace_name;
  ordered_json config_map = {{"apiVersion", "v1"},
                             {"kind", "ConfigMap"},
                             {"metadata", metadata},
                             {"data", {{"config.json", dp->dump(2)}}}};
  std::vector<ordered_json> docs;
  if (output != "networks") docs.push_back(config_map);
  if (output != "dp-config") docs.insert(docs.end(), nets->begin(), nets->end());
  if (format == "json") {
    if (output == "dp-config") {
      out << dp->dump(2) << "\n";
    } else {
      out << ordered_json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", docs}}.dump(2) << "\n";
    }
    return kExitOk;
  }
  out << "# generated by rdmashare rails " << Version() << "\n";
  for (size_t i = 0; i < docs.size(); ++i) {
    out << "---\n" << ToYaml(docs[i]);
  }
  return kExitOk;
}

int RunGid(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  GetifaddrsAddressSource real;
  AddressSource& source = env.addresses ? *env.addresses : real;
  absl::StatusOr<std::vector<InterfaceAddress>> addrs = source.List();
  if (!addrs.ok()) return Fail(err, "gid", addrs.status(), kExitFailure);
  std::string only = p.Get("ifname", "");
  std::vector<GidEntry> found;
  int code = kExitOk;
  bool matched_ifname = false;
  for (const InterfaceAddress& a : *addrs) {
    if (a.ifname == "lo") continue;
    if (!only.empty() && a.ifname != only) continue;
    matched_ifname = true;
    absl::StatusOr<GidEntry> e = FindRoceV2Gid(paths, a);
    if (e.ok()) {
      found.push_back(*e);
    } else if (absl::IsNotFound(e.status()) && only.empty()) {
      // Without --ifname, interfaces such as the cluster's eth0 are simply not rails.
      err << fmt::format("{} {}: not an RDMA rail (no GID holds this address)\n", a.ifname, a.ipv4);
    } else {
      err << "rdmashare gid: " << e.status().message() << "\n";
      code = kExitFailure;
    }
  }
  if (!only.empty() && !matched_ifname) {
    err << fmt::format("rdmashare gid: interface {} has no IPv4 address\n", only);
    return kExitFailure;
  }
  if (found.empty()) {
    err << "rdmashare gid: no interface has a RoCE v2 GID for its IPv4 address\n";
    return kExitFailure;
  }
  if (p.bools.count("env")) {
    out << GidEnvironment(found, p.Get("socket-ifname", "eth0"));
  } else {
    out << fmt::format("{:<10} {:<18} {:<10} {:<5} {}\n", "IFNAME", "ADDRESS", "IBDEV", "PORT",
                       "GID_INDEX (RoCE v2)");
    for (const GidEntry& e : found) {
      out << fmt::format("{:<10} {:<18} {:<10} {:<5} {}\n", e.ifname,
                         fmt::format("{}/{}", e.ipv4, e.prefix_len), e.ibdev, e.port, e.gid_index);
    }
  }
  return code;
}

int RunCapture(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  const std::string& dir = p.positional.front();
  absl::StatusOr<CaptureStats> stats = Capture(paths, dir);
  if (!stats.ok()) return Fail(err, "capture", stats.status(), kExitFailure);
  out << fmt::format(
      "captured {} files, {} links, {} device nodes into {} ({} unreadable attributes kept "
      "empty)\nuse: --sysfs-root {}/sys --dev-root {}/dev\n",
      stats->files, stats->links, stats->dev_nodes, dir, stats->skipped, dir, dir);
  if (stats->files == 0) {
    err << fmt::format("warning: no RDMA devices or GPUs under {}: the capture is empty\n",
                       paths.sys_root);
  }
  for (const std::string& r : stats->refused) {
    err << fmt::format("warning: {}/{}: not a regular file, directory or symlink; not copied\n",
                       paths.sys_root, r);
  }
  if (stats->dev_nodes < stats->listed) {
    out << fmt::format("device numbers listed in {}/dev-numbers.txt (mknod needs root)\n", dir);
  }
  return kExitOk;
}

int RunPool(const ParsedArgs& p, std::ostream& out, std::ostream& err) {
  std::string action = p.positional.empty() ? "list" : p.positional.front();
  if (action != "list" && action != "release") {
    return Fail(
        err, "pool",
        absl::InvalidArgumentError(fmt::format("unknown action \"{}\" (list or release)", action)),
        kExitUsage);
  }
  if (!p.values.count("conf")) {
    return Fail(
        err, "pool",
        absl::InvalidArgumentError("--conf FILE is required (the network's CNI config, conflist or "
                                   "NetworkAttachmentDefinition JSON)"),
        kExitUsage);
  }
  const bool quarantined = p.bools.count("quarantined") > 0;
  if (action == "release" && p.Get("node", "").empty() == !quarantined) {
    return Fail(err, "pool",
                absl::InvalidArgumentError("release needs either --node NAME or --quarantined"),
                kExitUsage);
  }
  if (p.values.count("ip") && !quarantined) {
    return Fail(err, "pool", absl::InvalidArgumentError("--ip belongs to release --quarantined"),
                kExitUsage);
  }
  if (action == "list" && (p.values.count("node") || p.values.count("pool") || quarantined)) {
    return Fail(
        err, "pool",
        absl::InvalidArgumentError("--node, --quarantined and --pool belong to pool release"),
        kExitUsage);
  }
  absl::StatusOr<PoolTarget> target = LoadPoolTarget(p.values.at("conf"));
  if (!target.ok()) return Fail(err, "pool", target.status(), kExitFailure);
  if (action == "release" && quarantined) {
    absl::StatusOr<cni::ipam::QuarantineRelease> r =
        ReleasePoolQuarantined(*target, p.Get("ip", ""), p.Get("data-dir", ""), p.Get("pool", ""));
    if (!r.ok()) return Fail(err, "pool release", r.status(), kExitFailure);
    for (const std::string& ip : r->released) out << "released quarantined " << ip << "\n";
    for (const std::string& why : r->skipped) err << "not released: " << why << "\n";
    out << fmt::format("released {} quarantined address(es) (network {})\n", r->released.size(),
                       target->network);
    return r->skipped.empty() ? kExitOk : kExitFailure;
  }
  if (action == "release") {
    std::string node = p.Get("node", "");
    absl::StatusOr<cni::ipam::NodeRelease> released =
        ReleasePoolNode(*target, node, p.Get("pool", ""));
    if (!released.ok()) return Fail(err, "pool release", released.status(), kExitFailure);
    out << fmt::format("released {} address(es) and {} block(s) of node {} (network {})\n",
                       released->addresses, released->blocks, node, target->network);
    return kExitOk;
  }
  absl::StatusOr<PoolListing> listing = ListPool(*target, p.Get("data-dir", ""));
  if (!listing.ok()) return Fail(err, "pool", listing.status(), kExitFailure);
  if (p.bools.count("json")) {
    out << PoolListingJson(*listing).dump(2) << "\n";
  } else {
    PrintPoolListing(*listing, out);
  }
  return kExitOk;
}

}  // namespace

std::string Version() { return RDMASHARE_VERSION; }

int RunCli(const std::vector<std::string>& args, const Environment& env, std::ostream& out,
           std::ostream& err) {
  if (args.empty()) {
    err << TopUsage();
    return kExitUsage;
  }
  const std::string& first = args.front();
  if (first == "--help" || first == "-h" || first == "help") {
    out << TopUsage();
    return kExitOk;
  }
  if (first == "--version" || first == "version") {
    out << "rdmashare " << Version() << "\n";
    return kExitOk;
  }
  auto cmd = std::find_if(Commands().begin(), Commands().end(),
                          [&](const CommandSpec& c) { return c.name == first; });
  if (cmd == Commands().end()) {
    err << fmt::format("rdmashare: unknown command \"{}\"\n\n", first) << TopUsage();
    return kExitUsage;
  }
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(*cmd, std::vector<std::string>(args.begin() + 1, args.end()));
  if (!parsed.ok()) return Fail(err, cmd->name, parsed.status(), kExitUsage);
  if (parsed->help) {
    out << CommandUsage(*cmd);
    return kExitOk;
  }
  if (cmd->name == "doctor") return RunDoctor(*parsed, env, out, err);
  if (cmd->name == "devices") return RunDevices(*parsed, env, out, err);
  if (cmd->name == "rails") return RunRails(*parsed, env, out, err);
  if (cmd->name == "gid") return RunGid(*parsed, env, out, err);
  if (cmd->name == "pool") return RunPool(*parsed, out, err);
  return RunCapture(*parsed, env, out, err);
}

}  // namespace rdmashare::cli
