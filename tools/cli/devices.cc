// `rdmashare devices`: the node's RDMA inventory and a config dry run (declared in cli.h).
#include <algorithm>

#include "common/files.h"
#include "deviceplugin/selectors.h"
#include "fmt/format.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

std::string Join(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

nlohmann::json CharDeviceJson(const std::optional<rdma::CharDevice>& dev) {
  if (!dev) return nullptr;
  return {{"name", dev->name},
          {"dev", fmt::format("{}:{}", dev->major, dev->minor)},
          {"path", dev->dev_path},
          {"present", dev->present}};
}

// Selector lists by their config.json key.
std::vector<std::pair<const char*, std::vector<std::string> deviceplugin::Selectors::*>> Lists() {
  using S = deviceplugin::Selectors;
  return {{"vendors", &S::vendors},
          {"deviceIDs", &S::device_ids},
          {"drivers", &S::drivers},
          {"ifNames", &S::if_names},
          {"linkTypes", &S::link_types}};
}

}  // namespace

void PrintDevicesTable(const rdma::NodeInventory& inventory, std::ostream& out) {
  out << fmt::format("{:<10} {:<13} {:<9} {:<10} {:<16} {:<4} {:<22} {}\n", "IBDEV", "PCI", "ID",
                     "DRIVER", "NETDEV", "NUMA", "PORTS", "CHARDEVS");
  for (const rdma::RdmaDevice& d : inventory.devices) {
    std::vector<std::string> ports, chars;
    if (d.uverbs) chars.push_back(d.uverbs->name + (d.uverbs->present ? "" : "(missing)"));
    for (const rdma::RdmaPort& p : d.ports) {
      ports.push_back(
          fmt::format("{}:{}/{}", p.number, p.state, rdma::LinkLayerName(p.link_layer)));
      if (p.umad) chars.push_back(p.umad->name + (p.umad->present ? "" : "(missing)"));
    }
    out << fmt::format("{:<10} {:<13} {:<9} {:<10} {:<16} {:<4} {:<22} {}\n", d.ibdev,
                       d.pci_address.empty() ? "-" : d.pci_address,
                       d.vendor_id.empty() ? "-" : d.vendor_id + ":" + d.device_id,
                       d.driver.empty() ? "-" : d.driver, d.netdevs.empty() ? "-" : Join(d.netdevs),
                       d.numa_node, Join(ports), chars.empty() ? "-" : Join(chars));
  }
  if (inventory.devices.empty()) out << "(no RDMA devices)\n";
  out << "rdma_cm: "
      << (inventory.rdma_cm ? fmt::format("{} {}:{}{}", inventory.rdma_cm->dev_path,
                                          inventory.rdma_cm->major, inventory.rdma_cm->minor,
                                          inventory.rdma_cm->present ? "" : " (missing)")
                            : std::string("absent"))
      << "\n";
}

nlohmann::json DevicesJson(const rdma::NodeInventory& inventory) {
  nlohmann::json devices = nlohmann::json::array();
  for (const rdma::RdmaDevice& d : inventory.devices) {
    nlohmann::json ports = nlohmann::json::array();
    for (const rdma::RdmaPort& p : d.ports) {
      ports.push_back({{"port", p.number},
                       {"state", p.state},
                       {"phys_state", p.phys_state},
                       {"link_layer", rdma::LinkLayerName(p.link_layer)},
                       {"gid_table_size", p.gid_table_size},
                       {"umad", CharDeviceJson(p.umad)},
                       {"issm", CharDeviceJson(p.issm)}});
    }
    devices.push_back({{"ibdev", d.ibdev},
                       {"pci", d.pci_address},
                       {"vendor", d.vendor_id},
                       {"device", d.device_id},
                       {"class", d.pci_class},
                       {"driver", d.driver},
                       {"numa_node", d.numa_node},
                       {"netdevs", d.netdevs},
                       {"ports", ports},
                       {"uverbs", CharDeviceJson(d.uverbs)},
                       {"usable", d.usable()}});
  }
  return {{"devices", devices}, {"rdma_cm", CharDeviceJson(inventory.rdma_cm)}};
}

std::vector<ResourceMatch> MatchResources(const deviceplugin::PluginConfig& config,
                                          const rdma::NodeInventory& inventory) {
  std::vector<ResourceMatch> out;
  for (const deviceplugin::ResourceConfig& rc : config.resources) {
    ResourceMatch m;
    m.full_name = rc.FullName();
    std::vector<rdma::RdmaDevice> selected = deviceplugin::SelectDevices(rc, inventory);
    for (const rdma::RdmaDevice& d : selected) m.ibdevs.push_back(d.ibdev);
    deviceplugin::ResourceHealth health = deviceplugin::EvaluateHealth(rc, selected);
    m.healthy = health.healthy;
    m.health_cause = health.cause;
    // A value is dead when no device matches a selector holding that value alone.
    for (const auto& [key, member] : Lists()) {
      for (const std::string& value : rc.selectors.*member) {
        deviceplugin::Selectors single;
        (single.*member).push_back(value);
        bool any = std::any_of(
            inventory.devices.begin(), inventory.devices.end(),
            [&](const rdma::RdmaDevice& d) { return deviceplugin::SelectorsMatch(single, d); });
        if (!any) m.dead_selectors.push_back(fmt::format("{}={}", key, value));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The `devices` command: flags and glue.

namespace {

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
      return Fail(err, "devices",
                  absl::InvalidArgumentError(
                      fmt::format("config {}: {}", path, std::string(config.status().message()))),
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

}  // namespace

const Command& DevicesCommand() {
  static const Command kCommand = {
      {"devices",
       "",
       "list the node's RDMA devices; with --config, what each resource selects (dry run)",
       {{"config", true, "device-plugin config.json to check against this node"},
        {"json", false, "print JSON"}}},
      RunDevices};
  return kCommand;
}

}  // namespace rdmashare::cli
