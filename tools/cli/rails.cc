// `rdmashare rails`: GPU/NIC pairing by PCIe topology and the generated device-plugin config and
// rail networks (declared in cli.h).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/ip.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

using ::nlohmann::ordered_json;

bool ParseUint(const std::string& s, int& out) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  out = std::stoi(s);
  return true;
}

// The resolved sysfs path components from the host bridge ("pci0000:00") down to and excluding
// the function itself.
absl::StatusOr<std::vector<std::string>> UpstreamChain(const HostPaths& paths,
                                                       const std::string& pci) {
  ASSIGN_OR_RETURN(std::string real, RealPath(JoinPath(paths.sys_root, "bus/pci/devices/" + pci)));
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= real.size()) {
    size_t next = real.find('/', pos);
    if (next == std::string::npos) next = real.size();
    if (next > pos) parts.push_back(real.substr(pos, next - pos));
    pos = next + 1;
  }
  auto host = std::find_if(parts.begin(), parts.end(),
                           [](const std::string& p) { return p.rfind("pci", 0) == 0; });
  if (host == parts.end() || parts.empty()) return std::vector<std::string>{};
  return std::vector<std::string>(host, parts.end() - 1);
}

// Number of PCI bridges (below the host bridge) that both chains share.
int SharedBridges(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  return common == 0 ? 0 : static_cast<int>(common) - 1;
}

int NumaOf(const HostPaths& paths, const std::string& pci) {
  absl::StatusOr<int64_t> numa =
      ReadIntAttr(JoinPath(paths.sys_root, "bus/pci/devices/" + pci + "/numa_node"));
  return numa.ok() ? static_cast<int>(*numa) : -1;
}

struct Subnet {
  uint32_t network = 0;
  int prefix = 0;
};

std::string Ipv4String(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

absl::StatusOr<Subnet> ParseSubnet(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        fmt::format("subnet \"{}\": {} (want a.b.c.d/len, e.g. 172.16.11.0/24)", text, why));
  };
  absl::StatusOr<IpPrefix> net = IpPrefix::ParseNetwork(text, /*strict=*/true);
  if (!net.ok()) return bad(std::string(net.status().message()));
  if (net->family() != 4) return bad("not an IPv4 subnet");
  if (net->length() < 8 || net->length() > 30) return bad("prefix length must be 8-30");
  return Subnet{static_cast<uint32_t>(net->addr().value()), net->length()};
}

bool IsDns1123Label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

// Checks that a template gives every rail a different value.
absl::Status CheckDistinct(const std::string& what, const std::string& tmpl,
                           const std::map<std::string, int>& seen, const std::string& value,
                           int n) {
  auto it = seen.find(value);
  if (it != seen.end()) {
    return absl::InvalidArgumentError(
        fmt::format("{} template \"{}\" gives the same value \"{}\" to rails {} and {} (use {{n}})",
                    what, tmpl, value, it->second, n));
  }
  return absl::OkStatus();
}

// YAML rendering.
bool PlainSafe(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
          c == '-')) {
      return false;
    }
  }
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> kReserved = {"true", "false", "null", "yes", "no",
                                                  "on",   "off",   "y",    "n"};
  return kReserved.count(lower) == 0;
}

std::string Scalar(const ordered_json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return PlainSafe(s) ? s : v.dump();
  }
  return v.dump();
}

bool NonEmptyContainer(const ordered_json& v) {
  return (v.is_object() || v.is_array()) && !v.empty();
}

void EmitNode(const ordered_json& v, size_t indent, std::string& out) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    for (const auto& [key, val] : v.items()) {
      out += pad + Scalar(ordered_json(key)) + ":";
      if (NonEmptyContainer(val)) {
        out += "\n";
        EmitNode(val, indent + 2, out);
      } else if (val.is_string() &&
                 val.get_ref<const std::string&>().find('\n') != std::string::npos) {
        out += " |-\n";
        const std::string& s = val.get_ref<const std::string&>();
        size_t pos = 0;
        while (pos <= s.size()) {
          size_t nl = s.find('\n', pos);
          if (nl == std::string::npos) nl = s.size();
          std::string line = s.substr(pos, nl - pos);
          if (!line.empty()) absl::StrAppend(&out, pad, "  ", line);
          out += "\n";
          pos = nl + 1;
        }
      } else {
        out += " " + Scalar(val) + "\n";
      }
    }
    return;
  }
  for (const ordered_json& item : v) {
    if (item.is_object() && !item.empty()) {
      std::string sub;
      EmitNode(item, indent + 2, sub);
      out += pad + "- " + sub.substr(indent + 2);
    } else if (item.is_array() && !item.empty()) {
      out += pad + "-\n";
      EmitNode(item, indent + 2, out);
    } else {
      out += pad + "- " + Scalar(item) + "\n";
    }
  }
}

}  // namespace

absl::StatusOr<std::string> ExpandTemplate(const std::string& tmpl, int n) {
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    char c = tmpl[pos];
    if (c == '}') {
      return absl::InvalidArgumentError(
          fmt::format("template \"{}\": unmatched '}}' at offset {}", tmpl, pos));
    }
    if (c != '{') {
      out += c;
      ++pos;
      continue;
    }
    size_t close = tmpl.find('}', pos);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("template \"{}\": unmatched '{{' at offset {}", tmpl, pos));
    }
    std::string expr = tmpl.substr(pos + 1, close - pos - 1);
    int value = 0;
    int a = 0;
    size_t plus = expr.find('+');
    if (expr == "n") {
      value = n;
    } else if (plus != std::string::npos && expr.substr(plus + 1) == "n" &&
               ParseUint(expr.substr(0, plus), a)) {
      value = a + n;
    } else if (plus != std::string::npos && expr.substr(0, plus) == "n" &&
               ParseUint(expr.substr(plus + 1), a)) {
      value = n + a;
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "template \"{}\": unsupported expression {{{}}} (use {{n}} or {{A+n}})", tmpl, expr));
    }
    out += std::to_string(value);
    pos = close + 1;
  }
  return out;
}

absl::StatusOr<RailPlan> PlanRails(const HostPaths& paths, const rdma::NodeInventory& inventory) {
  std::string pci_dir = JoinPath(paths.sys_root, "bus/pci/devices");
  absl::StatusOr<std::vector<std::string>> functions = ListDir(pci_dir);
  std::vector<std::string> gpus;
  if (functions.ok()) {
    for (const std::string& f : *functions) {
      absl::StatusOr<std::string> vendor = ReadAttr(JoinPath(pci_dir, f + "/vendor"));
      absl::StatusOr<std::string> cls = ReadAttr(JoinPath(pci_dir, f + "/class"));
      if (!vendor.ok() || !cls.ok() || *vendor != "0x10de") continue;
      if (cls->rfind("0x0302", 0) == 0 || cls->rfind("0x0300", 0) == 0) gpus.push_back(f);
    }
  }
  std::sort(gpus.begin(), gpus.end());
  if (gpus.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("rails: no NVIDIA GPU (vendor 0x10de, class 0x0300/0x0302) under {}", pci_dir));
  }

  struct Nic {
    const rdma::RdmaDevice* dev;
    std::vector<std::string> chain;
  };
  std::vector<Nic> nics;
  RailPlan plan;
  for (const rdma::RdmaDevice& d : inventory.devices) {
    bool roce = std::any_of(d.ports.begin(), d.ports.end(), [](const rdma::RdmaPort& p) {
      return p.link_layer == rdma::LinkLayer::kEthernet;
    });
    if (d.pci_address.empty() || d.netdevs.empty() || !roce) {
      plan.unpaired_nics.push_back(d.ibdev + " (not a RoCE PCI function with a netdev)");
      continue;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> chain, UpstreamChain(paths, d.pci_address));
    nics.push_back(Nic{&d, std::move(chain)});
  }
  std::sort(nics.begin(), nics.end(),
            [](const Nic& a, const Nic& b) { return a.dev->pci_address < b.dev->pci_address; });
  if (nics.empty()) {
    return absl::FailedPreconditionError(
        "rails: no RoCE RDMA NIC (Ethernet link layer, PCI function with a netdev) on this node");
  }

  // Every (GPU, NIC) candidate, best first: most shared bridges, same NUMA node, GPU address,
  // NIC address. Taking them greedily pairs each switch's GPUs and NICs in address order.
  struct Candidate {
    size_t gpu, nic;
    int shared;
    bool same_numa;
  };
  std::vector<Candidate> candidates;
  for (size_t g = 0; g < gpus.size(); ++g) {
    ASSIGN_OR_RETURN(std::vector<std::string> gchain, UpstreamChain(paths, gpus[g]));
    int gnuma = NumaOf(paths, gpus[g]);
    for (size_t i = 0; i < nics.size(); ++i) {
      int nnuma = nics[i].dev->numa_node;
      candidates.push_back(
          Candidate{g, i, SharedBridges(gchain, nics[i].chain), gnuma >= 0 && gnuma == nnuma});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) {
                     return std::make_tuple(-a.shared, !a.same_numa, a.gpu, a.nic) <
                            std::make_tuple(-b.shared, !b.same_numa, b.gpu, b.nic);
                   });
  std::vector<bool> gpu_used(gpus.size()), nic_used(nics.size());
  for (const Candidate& c : candidates) {
    if (gpu_used[c.gpu] || nic_used[c.nic]) continue;
    gpu_used[c.gpu] = nic_used[c.nic] = true;
    Rail rail;
    rail.number = static_cast<int>(c.gpu) + 1;
    rail.gpu_pci = gpus[c.gpu];
    rail.nic_pci = nics[c.nic].dev->pci_address;
    rail.ibdev = nics[c.nic].dev->ibdev;
    rail.netdev = nics[c.nic].dev->netdevs.front();
    rail.shared_bridges = c.shared;
    rail.affinity = c.shared > 0 ? "pcie" : c.same_numa ? "numa" : "none";
    plan.rails.push_back(std::move(rail));
  }
  std::sort(plan.rails.begin(), plan.rails.end(),
            [](const Rail& a, const Rail& b) { return a.number < b.number; });
  for (size_t g = 0; g < gpus.size(); ++g) {
    if (!gpu_used[g]) plan.unpaired_gpus.push_back(gpus[g]);
  }
  for (size_t i = 0; i < nics.size(); ++i) {
    if (!nic_used[i]) plan.unpaired_nics.push_back(nics[i].dev->ibdev + " (more NICs than GPUs)");
  }
  return plan;
}

absl::StatusOr<ordered_json> RailsDpConfig(const RailPlan& plan, const RailsOptions& options) {
  ordered_json list = ordered_json::array();
  std::map<std::string, int> seen;
  for (const Rail& rail : plan.rails) {
    ASSIGN_OR_RETURN(std::string name, ExpandTemplate(options.resource_template, rail.number));
    RETURN_IF_ERROR(CheckDistinct("resource", options.resource_template, seen, name, rail.number));
    seen[name] = rail.number;
    ordered_json entry = {{"resourcePrefix", options.prefix},
                          {"resourceName", name},
                          {"rdmaHcaMax", options.rdma_hca_max},
                          {"selectors", {{"ifNames", {rail.netdev}}}}};
    if (options.mount_cli) entry["mountCli"] = true;
    list.push_back(std::move(entry));
  }
  return ordered_json{{"periodicUpdateInterval", options.periodic_update_interval},
                      {"configList", list}};
}

absl::StatusOr<ordered_json> RailNetworkConfig(const Rail& rail, const RailsOptions& options) {
  ASSIGN_OR_RETURN(std::string name, ExpandTemplate(options.network_template, rail.number));
  if (!IsDns1123Label(name)) {
    return absl::InvalidArgumentError(fmt::format(
        "network template \"{}\" gives \"{}\" for rail {}: not a DNS-1123 label (a-z, 0-9, '-', "
        "at most 63)",
        options.network_template, name, rail.number));
  }
  ASSIGN_OR_RETURN(std::string subnet_text, ExpandTemplate(options.subnet_template, rail.number));
  absl::StatusOr<Subnet> subnet = ParseSubnet(subnet_text);
  if (!subnet.ok()) {
    return absl::InvalidArgumentError(fmt::format("subnet template \"{}\", rail {}: {}",
                                                  options.subnet_template, rail.number,
                                                  subnet.status().message()));
  }
  uint64_t size = uint64_t{1} << (32 - subnet->prefix);
  auto host_ok = [&](int h) { return h >= 1 && static_cast<uint64_t>(h) < size - 1; };
  if (!host_ok(options.gateway_host)) {
    return absl::InvalidArgumentError(fmt::format("--gateway-host {} is outside {} (hosts 1-{})",
                                                  options.gateway_host, subnet_text, size - 2));
  }
  if (!host_ok(options.range_first) || !host_ok(options.range_last) ||
      options.range_first > options.range_last) {
    return absl::InvalidArgumentError(fmt::format("--range {}-{} is outside {} (hosts 1-{})",
                                                  options.range_first, options.range_last,
                                                  subnet_text, size - 2));
  }
  uint32_t table = static_cast<uint32_t>(options.table_base + rail.number - 1);
  return ordered_json{{"cniVersion", "1.0.0"},
                      {"name", name},
                      {"type", "rdmashare-macvlan"},
                      {"master", rail.netdev},
                      {"mode", "bridge"},
                      {"policyRouting", true},
                      {"routeTable", table},
                      {"ipam",
                       {{"type", "rdmashare-ipam"},
                        {"subnet", subnet_text},
                        {"ips",
                         {fmt::format("{}-{}", Ipv4String(subnet->network + options.range_first),
                                      Ipv4String(subnet->network + options.range_last))}},
                        {"gateway", Ipv4String(subnet->network + options.gateway_host)}}}};
}

absl::StatusOr<std::vector<ordered_json>> RailsNetworks(const RailPlan& plan,
                                                        const RailsOptions& options) {
  if (options.table_base < 1 || options.table_base > 250) {
    return absl::InvalidArgumentError(
        fmt::format("--table-base {}: must be 1-250 (253-255 are the kernel's own tables)",
                    options.table_base));
  }
  std::vector<ordered_json> out;
  std::map<std::string, int> names, subnets;
  for (const Rail& rail : plan.rails) {
    ASSIGN_OR_RETURN(ordered_json config, RailNetworkConfig(rail, options));
    ASSIGN_OR_RETURN(std::string resource, ExpandTemplate(options.resource_template, rail.number));
    std::string name = config["name"];
    std::string subnet = config["ipam"]["subnet"];
    RETURN_IF_ERROR(CheckDistinct("network", options.network_template, names, name, rail.number));
    RETURN_IF_ERROR(CheckDistinct("subnet", options.subnet_template, subnets, subnet, rail.number));
    names[name] = subnets[subnet] = rail.number;
    ordered_json metadata = {{"name", name}};
    if (!options.namespace_name.empty()) metadata["namespace"] = options.namespace_name;
    metadata["annotations"] = {
        {"k8s.v1.cni.cncf.io/resourceName", options.prefix + "/" + resource}};
    out.push_back({{"apiVersion", "k8s.cni.cncf.io/v1"},
                   {"kind", "NetworkAttachmentDefinition"},
                   {"metadata", metadata},
                   {"spec", {{"config", config.dump(2)}}}});
  }
  return out;
}

std::string ToYaml(const ordered_json& value) {
  if (!NonEmptyContainer(value)) return Scalar(value) + "\n";
  std::string out;
  EmitNode(value, 0, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The `rails` command: flags and glue.

namespace {

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
    absl::StatusOr<int> first = absl::InvalidArgumentError("no '-'");
    absl::StatusOr<int> last = first;
    if (dash != std::string::npos) {
      first = ParseIntValue("range", r.substr(0, dash), 1, 1 << 24);
      last = ParseIntValue("range", r.substr(dash + 1), 1, 1 << 24);
    }
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

}  // namespace

const Command& RailsCommand() {
  static const Command kCommand = {
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
      RunRails};
  return kCommand;
}

}  // namespace rdmashare::cli
