// `rdmashare pool`: pool usage and release of a dead node's or quarantined addresses (declared
// in pool.h), and its Command.
#include "tools/cli/pool.h"

#include "cni/ipam/config.h"
#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

absl::Status BadFile(const std::string& path, const std::string& problem) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", path, problem));
}

bool IsRdmashareIpam(const json& plugin) {
  auto it = plugin.find("ipam");
  return it != plugin.end() && it->is_object() && it->value("type", json()).is_string() &&
         (*it)["type"].get<std::string>() == cni::ipam::kIpamType;
}

// A network config or conflist object -> target.
absl::StatusOr<PoolTarget> FromNetworkConfig(const std::string& path, const json& conf) {
  if (!conf.is_object()) return BadFile(path, "the network config is not a JSON object");
  auto name = conf.find("name");
  if (name == conf.end() || !name->is_string() || name->get<std::string>().empty()) {
    return BadFile(path, "the network config has no \"name\"");
  }
  PoolTarget t;
  t.network = name->get<std::string>();
  if (auto plugins = conf.find("plugins"); plugins != conf.end()) {
    if (!plugins->is_array()) return BadFile(path, "\"plugins\" is not an array");
    for (const json& p : *plugins) {
      if (p.is_object() && IsRdmashareIpam(p)) {
        t.ipam = p["ipam"];
        return t;
      }
    }
    return BadFile(path, fmt::format("no plugin of network {} uses ipam type {}", t.network,
                                     cni::ipam::kIpamType));
  }
  if (!IsRdmashareIpam(conf)) {
    return BadFile(
        path, fmt::format("network {} does not use ipam type {}", t.network, cni::ipam::kIpamType));
  }
  t.ipam = conf["ipam"];
  return t;
}

std::string Pod(const cni::ipam::Reservation& r) {
  if (r.pod_name.empty()) return "-";
  return r.pod_namespace.empty() ? r.pod_name : r.pod_namespace + "/" + r.pod_name;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

cni::ipam::IpamArgs ArgsFor(const PoolTarget& target) {
  cni::ipam::IpamArgs args;
  args.network_name = target.network;
  args.ipam_conf = target.ipam;
  return args;
}

}  // namespace

absl::StatusOr<PoolTarget> LoadPoolTarget(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return absl::NotFoundError(std::string(text.status().message()));
  absl::StatusOr<json> parsed = ParseJsonBounded(*text, path);
  if (!parsed.ok()) {
    if (parsed.status().message().find("not valid JSON") == std::string_view::npos) {
      return absl::InvalidArgumentError(std::string(parsed.status().message()));
    }
    return BadFile(path,
                   "not JSON (give a CNI network config, a conflist, or a "
                   "NetworkAttachmentDefinition from kubectl get net-attach-def NAME -o json)");
  }
  json doc = *std::move(parsed);
  if (doc.is_object() && doc.value("kind", json()) == "NetworkAttachmentDefinition") {
    const json* config = nullptr;
    if (auto spec = doc.find("spec"); spec != doc.end() && spec->is_object()) {
      if (auto c = spec->find("config"); c != spec->end() && c->is_string()) config = &*c;
    }
    if (config == nullptr) {
      return BadFile(path, "the NetworkAttachmentDefinition has no spec.config string");
    }
    absl::StatusOr<json> conf_parsed =
        ParseJsonBounded(config->get<std::string>(), path + ": spec.config");
    if (!conf_parsed.ok()) {
      if (conf_parsed.status().message().find("not valid JSON") == std::string_view::npos) {
        return absl::InvalidArgumentError(std::string(conf_parsed.status().message()));
      }
      return BadFile(path, "spec.config of the NetworkAttachmentDefinition is not JSON");
    }
    json conf = *std::move(conf_parsed);
    // Multus names the network after the object when the config has no name.
    if (conf.is_object() && !conf.contains("name")) {
      if (auto md = doc.find("metadata"); md != doc.end() && md->is_object()) {
        conf["name"] = md->value("name", json(""));
      }
    }
    return FromNetworkConfig(path, conf);
  }
  return FromNetworkConfig(path, doc);
}

absl::StatusOr<PoolListing> ListPool(const PoolTarget& target, const std::string& data_dir) {
  PoolTarget t = target;
  if (!data_dir.empty()) t.ipam["dataDir"] = data_dir;
  ASSIGN_OR_RETURN(cni::ipam::IpamConfig conf, cni::ipam::ParseIpamConfig(t.ipam));
  PoolListing out;
  out.network = t.network;
  out.pool = conf.pool.empty() ? t.network : conf.pool;
  out.store = conf.store.type;
  if (conf.store.type == "etcd") {
    for (const std::string& e : conf.store.endpoints) {
      out.where += (out.where.empty() ? "" : ",") + e;
    }
    out.where += " prefix " + conf.store.prefix;
  } else {
    out.where = conf.data_dir;
  }
  ASSIGN_OR_RETURN(out.ranges, cni::ipam::IpamPoolReport(ArgsFor(t)));
  return out;
}

void PrintPoolListing(const PoolListing& l, std::ostream& out) {
  out << fmt::format("network {}  pool {}  store {} ({})\n", l.network, l.pool, l.store, l.where);
  for (const cni::ipam::PoolUsage& u : l.ranges) {
    out << fmt::format("  range {}: {}{} addresses, {} used, {}{} free\n", u.ranges,
                       u.total_exact ? "" : "over ", u.total, u.used(),
                       u.total_exact ? "" : "over ", u.free());
    if (!u.blocks.empty() || !u.block_errors.empty()) {
      out << fmt::format("    {:<40} {:<20} {}\n", "BLOCK", "NODE", "USED");
      for (const cni::ipam::PoolUsage::Block& b : u.blocks) {
        out << fmt::format(
            "    {:<40} {:<20} {}{}\n", b.cidr, b.node, b.used,
            b.empty_since > 0 ? fmt::format(" (empty since {})", b.empty_since) : std::string());
      }
      for (const std::string& e : u.block_errors) out << "    UNREADABLE BLOCK: " << e << "\n";
    }
    if (!u.borrowed.empty()) {
      out << fmt::format(
          "    {} address(es) borrowed outside their node's blocks (the pool had no free "
          "block when they were taken)\n",
          u.borrowed.size());
    }
    if (u.holders.empty()) continue;
    out << fmt::format("    {:<40} {:<20} {:<20} {:<8} {}\n", "ADDRESS", "NODE", "CONTAINER",
                       "IFNAME", "POD");
    for (const cni::ipam::Reservation& r : u.holders) {
      if (!r.error.empty()) {
        out << fmt::format("    {:<40} UNREADABLE: {}\n", r.ip, r.error);
        continue;
      }
      std::string container = r.quarantined() ? "(quarantined)" : r.container_id;
      if (container.size() > 20) container = container.substr(0, 17) + "...";
      out << fmt::format("    {:<40} {:<20} {:<20} {:<8} {}{}\n", r.ip, OrDash(r.node), container,
                         OrDash(r.ifname), Pod(r),
                         u.borrowed.count(r.ip) != 0 ? " (borrowed)" : "");
    }
  }
}

ordered_json PoolListingJson(const PoolListing& l) {
  ordered_json ranges = ordered_json::array();
  for (const cni::ipam::PoolUsage& u : l.ranges) {
    ordered_json holders = ordered_json::array();
    for (const cni::ipam::Reservation& r : u.holders) {
      ordered_json h = {{"ip", r.ip},
                        {"node", r.node},
                        {"network", r.owner_network},
                        {"containerID", r.container_id},
                        {"ifname", r.ifname},
                        {"netns", r.netns},
                        {"podNamespace", r.pod_namespace},
                        {"podName", r.pod_name},
                        {"podUID", r.pod_uid}};
      if (r.quarantined()) h["quarantineUntil"] = r.quarantine_until;
      if (!r.error.empty()) h["error"] = r.error;
      if (u.borrowed.count(r.ip) != 0) h["borrowed"] = true;
      holders.push_back(h);
    }
    ordered_json blocks = ordered_json::array();
    for (const cni::ipam::PoolUsage::Block& b : u.blocks) {
      blocks.push_back(
          {{"cidr", b.cidr}, {"node", b.node}, {"used", b.used}, {"emptySince", b.empty_since}});
    }
    ranges.push_back({{"ranges", u.ranges},
                      {"total", u.total},
                      {"totalExact", u.total_exact},
                      {"used", u.used()},
                      {"free", u.free()},
                      {"blocks", blocks},
                      {"blockErrors", u.block_errors},
                      {"holders", holders}});
  }
  ordered_json doc = {{"network", l.network},
                      {"pool", l.pool},
                      {"store", l.store},
                      {"where", l.where},
                      {"ranges", ranges}};
  return doc;
}

absl::StatusOr<cni::ipam::NodeRelease> ReleasePoolNode(const PoolTarget& target,
                                                       const std::string& node,
                                                       const std::string& pool) {
  if (node.empty()) return absl::InvalidArgumentError("pool release needs --node NAME");
  PoolTarget t = target;
  if (!pool.empty()) t.ipam["pool"] = pool;
  return cni::ipam::IpamReleaseNode(ArgsFor(t), node);
}

absl::StatusOr<cni::ipam::QuarantineRelease> ReleasePoolQuarantined(const PoolTarget& target,
                                                                    const std::string& ip,
                                                                    const std::string& data_dir,
                                                                    const std::string& pool) {
  PoolTarget t = target;
  if (!data_dir.empty()) t.ipam["dataDir"] = data_dir;
  if (!pool.empty()) t.ipam["pool"] = pool;
  return cni::ipam::IpamReleaseQuarantined(ArgsFor(t), ip);
}

// ---------------------------------------------------------------------------------------------
// The `pool` command: flags and glue.

namespace {

int RunPool(const ParsedArgs& p, const Environment&, std::ostream& out, std::ostream& err) {
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

const Command& PoolCommand() {
  static const Command kCommand = {
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
      RunPool};
  return kCommand;
}

}  // namespace rdmashare::cli
