#include "cni/ipam/config.h"

#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& msg) { return CniError(kInvalidNetworkConfig, "ipam: " + msg); }

absl::StatusOr<std::string> OptString(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Bad(fmt::format("{}\"{}\" must be a string", where, key));
  return it->get<std::string>();
}

absl::StatusOr<IpAddr> ParseAddr(const std::string& text, const std::string& what) {
  auto ip = IpAddr::Parse(text);
  if (!ip.ok()) return Bad(fmt::format("{} '{}' is not an IP address", what, text));
  return *ip;
}

absl::StatusOr<IpPrefix> ParseSubnet(const std::string& text, const std::string& what) {
  auto net = IpPrefix::ParseNetwork(text, /*strict=*/true);
  if (!net.ok()) return Bad(fmt::format("{}: {}", what, net.status().message()));
  if (net->length() > net->network().bits() - 2) {
    return Bad(fmt::format("{} {} is too small to allocate from", what, text));
  }
  return *net;
}

// First and last allocatable address of a subnet when no explicit range is given.
IpAddr DefaultStart(const IpPrefix& net) { return net.network().Next(); }
IpAddr DefaultEnd(const IpPrefix& net) {
  return net.family() == 4 ? net.Last().Prev() : net.Last();
}

absl::StatusOr<std::pair<IpAddr, IpAddr>> ParseInterval(const std::string& text,
                                                        const std::string& what) {
  size_t dash = text.find('-');
  if (dash == std::string::npos) {
    ASSIGN_OR_RETURN(IpAddr ip, ParseAddr(text, what));
    return std::make_pair(ip, ip);
  }
  ASSIGN_OR_RETURN(IpAddr a, ParseAddr(text.substr(0, dash), what));
  ASSIGN_OR_RETURN(IpAddr b, ParseAddr(text.substr(dash + 1), what));
  if (a.family() != b.family()) {
    return Bad(fmt::format("{} '{}' mixes IPv4 and IPv6", what, text));
  }
  if (b < a) return Bad(fmt::format("{} '{}' ends before it starts", what, text));
  return std::make_pair(a, b);
}

absl::StatusOr<std::vector<std::string>> StringList(const json& obj, const char* key,
                                                    const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Bad(fmt::format("{}\"{}\" must be an array of strings", where, key));
  for (const json& s : *it) {
    if (!s.is_string()) return Bad(fmt::format("{}\"{}\" must be an array of strings", where, key));
    out.push_back(s.get<std::string>());
  }
  return out;
}

absl::Status ParseRoutes(const json& obj, const std::string& where, std::vector<Route>* out) {
  auto it = obj.find("routes");
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) return Bad(where + "\"routes\" must be an array");
  for (const json& r : *it) {
    if (!r.is_object()) return Bad(where + "every route must be an object {dst, gw}");
    Route route;
    ASSIGN_OR_RETURN(std::string dst, OptString(r, "dst", where + "route "));
    if (dst.empty()) return Bad(where + "route \"dst\" is missing");
    // Kept as written (host bits included) for the result; the plugin masks it for the kernel.
    auto parsed = IpPrefix::Parse(dst);
    if (!parsed.ok()) return Bad(fmt::format("{}route dst: {}", where, parsed.status().message()));
    route.dst = *parsed;
    ASSIGN_OR_RETURN(std::string gw_text, OptString(r, "gw", where + "route "));
    if (!gw_text.empty()) {
      ASSIGN_OR_RETURN(IpAddr gw, ParseAddr(gw_text, where + "route gw"));
      if (gw.family() != route.dst.family()) {
        return Bad(fmt::format("{}route {} via {} mixes IPv4 and IPv6", where, dst, gw_text));
      }
      route.gw = gw;
    }
    out->push_back(route);
  }
  return absl::OkStatus();
}

// host-local range: {subnet, rangeStart, rangeEnd, gateway}.
absl::StatusOr<AddrRange> ParseHostLocalRange(const json& obj, const std::string& where) {
  if (!obj.is_object()) return Bad(where + "must be an object {subnet, rangeStart, ...}");
  AddrRange r;
  ASSIGN_OR_RETURN(std::string subnet, OptString(obj, "subnet", where));
  if (subnet.empty()) return Bad(where + "\"subnet\" is missing");
  ASSIGN_OR_RETURN(r.subnet, ParseSubnet(subnet, where + "subnet"));
  r.start = DefaultStart(r.subnet);
  r.end = DefaultEnd(r.subnet);
  ASSIGN_OR_RETURN(std::string start, OptString(obj, "rangeStart", where));
  ASSIGN_OR_RETURN(std::string end, OptString(obj, "rangeEnd", where));
  ASSIGN_OR_RETURN(std::string gateway, OptString(obj, "gateway", where));
  if (!start.empty()) {
    ASSIGN_OR_RETURN(r.start, ParseAddr(start, where + "rangeStart"));
  }
  if (!end.empty()) {
    ASSIGN_OR_RETURN(r.end, ParseAddr(end, where + "rangeEnd"));
  }
  for (const auto& [name, ip] : {std::pair<const char*, IpAddr>{"rangeStart", r.start},
                                 std::pair<const char*, IpAddr>{"rangeEnd", r.end}}) {
    if (!r.subnet.Contains(ip)) {
      return Bad(fmt::format("{}{} {} is outside subnet {}", where, name, ip.ToString(), subnet));
    }
  }
  if (r.end < r.start) {
    return Bad(fmt::format("{}rangeEnd {} is before rangeStart {}", where, r.end.ToString(),
                           r.start.ToString()));
  }
  // host-local's default gateway is the first address of the subnet.
  if (gateway.empty()) {
    r.gateway = r.subnet.network().Next();
  } else {
    ASSIGN_OR_RETURN(r.gateway, ParseAddr(gateway, where + "gateway"));
    if (!r.subnet.Contains(r.gateway)) {
      return Bad(fmt::format("{}gateway {} is outside subnet {}", where, gateway, subnet));
    }
  }
  return r;
}

// Pool form object: {subnet, ips, excludeIPs, gateway, routes}.
absl::StatusOr<Pool> ParsePoolObject(const json& obj, const std::string& where,
                                     std::vector<Route>* routes) {
  if (!obj.is_object()) return Bad(where + "must be an object {subnet, ips, ...}");
  ASSIGN_OR_RETURN(std::string subnet_text, OptString(obj, "subnet", where));
  if (subnet_text.empty()) return Bad(where + "\"subnet\" is missing");
  ASSIGN_OR_RETURN(IpPrefix subnet, ParseSubnet(subnet_text, where + "subnet"));
  IpAddr gateway;
  ASSIGN_OR_RETURN(std::string gateway_text, OptString(obj, "gateway", where));
  if (!gateway_text.empty()) {
    ASSIGN_OR_RETURN(gateway, ParseAddr(gateway_text, where + "gateway"));
    if (!subnet.Contains(gateway)) {
      return Bad(
          fmt::format("{}gateway {} is outside subnet {}", where, gateway_text, subnet_text));
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::string> ips, StringList(obj, "ips", where));
  std::vector<std::pair<IpAddr, IpAddr>> intervals;
  for (const std::string& text : ips) {
    ASSIGN_OR_RETURN(auto iv, ParseInterval(text, where + "ips entry"));
    if (!subnet.Contains(iv.first) || !subnet.Contains(iv.second)) {
      return Bad(fmt::format("{}ips entry '{}' is outside subnet {}", where, text, subnet_text));
    }
    intervals.push_back(iv);
  }
  if (intervals.empty()) intervals.emplace_back(DefaultStart(subnet), DefaultEnd(subnet));
  std::sort(intervals.begin(), intervals.end());
  Pool pool;
  for (const auto& iv : intervals) {
    // Merge overlapping or adjacent entries so every address appears once.
    if (!pool.ranges.empty() &&
        (pool.ranges.back().end == subnet.Last() || iv.first <= pool.ranges.back().end.Next())) {
      if (pool.ranges.back().end < iv.second) pool.ranges.back().end = iv.second;
      continue;
    }
    pool.ranges.push_back(AddrRange{subnet, iv.first, iv.second, gateway});
  }
  ASSIGN_OR_RETURN(std::vector<std::string> excludes, StringList(obj, "excludeIPs", where));
  for (const std::string& text : excludes) {
    ASSIGN_OR_RETURN(auto iv, ParseInterval(text, where + "excludeIPs entry"));
    pool.excludes.push_back(iv);
  }
  RETURN_IF_ERROR(ParseRoutes(obj, where, routes));
  return pool;
}

bool Overlaps(const AddrRange& a, const AddrRange& b) {
  return a.subnet.family() == b.subnet.family() && a.start <= b.end && b.start <= a.end;
}

absl::Status ParseStore(const json& store, StoreConfig* out) {
  if (!store.is_object()) return Bad("\"store\" must be an object");
  ASSIGN_OR_RETURN(std::string type, OptString(store, "type", "store."));
  if (type.empty()) return Bad("store.type is required (\"local\" or \"etcd\")");
  if (type != "local" && type != "etcd") {
    return Bad(fmt::format("store.type '{}' is unknown (\"local\" or \"etcd\")", type));
  }
  out->type = type;
  if (type == "local") return absl::OkStatus();
  auto eps = store.find("endpoints");
  if (eps == store.end() || !eps->is_array() || eps->empty()) {
    return Bad("store.endpoints must be a non-empty array of strings for the etcd store");
  }
  for (const json& e : *eps) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      return Bad("store.endpoints must be a non-empty array of strings for the etcd store");
    }
    out->endpoints.push_back(e.get<std::string>());
  }
  ASSIGN_OR_RETURN(std::string prefix, OptString(store, "prefix", "store."));
  if (!prefix.empty()) {
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    out->prefix = prefix;
  }
  for (auto [key, field] : {std::make_pair("dialTimeoutMs", &out->dial_timeout),
                            std::make_pair("requestTimeoutMs", &out->request_timeout)}) {
    auto it = store.find(key);
    if (it == store.end()) continue;
    if (!it->is_number_integer() || it->get<long long>() <= 0 || it->get<long long>() > 600000) {
      return Bad(fmt::format("store.{} must be an integer in 1..600000", key));
    }
    *field = std::chrono::milliseconds(it->get<long long>());
  }
  if (auto it = store.find("maxResponseBytes"); it != store.end()) {
    if (!it->is_number_integer() || it->get<long long>() < kMinMaxResponseBytes ||
        it->get<long long>() > kMaxMaxResponseBytes) {
      return Bad(fmt::format("store.maxResponseBytes must be an integer in {}..{}",
                             kMinMaxResponseBytes, kMaxMaxResponseBytes));
    }
    out->max_response_bytes = it->get<uint64_t>();
  }
  if (auto it = store.find("blockSize"); it != store.end()) {
    long long v = it->is_number_integer() ? it->get<long long>() : -1;
    bool pow2 = v > 0 && (v & (v - 1)) == 0;
    if (v != 0 && (!pow2 || v < static_cast<long long>(kMinBlockSize) ||
                   v > static_cast<long long>(kMaxBlockSize))) {
      return Bad(fmt::format("store.blockSize must be 0 (no blocks) or a power of two in {}..{}",
                             kMinBlockSize, kMaxBlockSize));
    }
    out->block_size = static_cast<uint64_t>(v);
  }
  if (auto it = store.find("blockReleaseSeconds"); it != store.end()) {
    if (!it->is_number_integer() || it->get<long long>() < 0 ||
        it->get<long long>() > kMaxBlockReleaseSeconds) {
      return Bad(fmt::format("store.blockReleaseSeconds must be an integer in 0..{}",
                             kMaxBlockReleaseSeconds));
    }
    out->block_release_seconds = it->get<int64_t>();
  }
  if (auto it = store.find("tls"); it != store.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("store.tls must be an object {\"ca\", \"cert\", \"key\"}");
    for (const auto& [key, value] : it->items()) {
      if (key != "ca" && key != "cert" && key != "key" && key != "sessionCacheSeconds") {
        return Bad(fmt::format(
            "store.tls.{} is unknown (\"ca\", \"cert\", \"key\", \"sessionCacheSeconds\")", key));
      }
      (void)value;
    }
    if (auto ttl = it->find("sessionCacheSeconds"); ttl != it->end()) {
      if (!ttl->is_number_integer() || ttl->get<long long>() < 0 ||
          ttl->get<long long>() > kMaxTlsSessionLifetime.count()) {
        return Bad(fmt::format("store.tls.sessionCacheSeconds must be an integer in 0..{}",
                               kMaxTlsSessionLifetime.count()));
      }
      out->tls_session_lifetime = std::chrono::seconds(ttl->get<long long>());
    }
    ASSIGN_OR_RETURN(out->tls.ca, OptString(*it, "ca", "store.tls."));
    ASSIGN_OR_RETURN(out->tls.cert, OptString(*it, "cert", "store.tls."));
    ASSIGN_OR_RETURN(out->tls.key, OptString(*it, "key", "store.tls."));
    if (out->tls.ca.empty()) {
      return Bad(
          "store.tls.ca is required (the CA certificate that signed etcd's server "
          "certificate)");
    }
    if (out->tls.cert.empty() != out->tls.key.empty()) {
      return Bad(
          "store.tls.cert and store.tls.key go together (a client certificate needs its "
          "private key)");
    }
  }
  for (const std::string& e : out->endpoints) {
    bool https = e.rfind("https://", 0) == 0;
    if (https && !out->tls.enabled()) {
      return Bad(
          fmt::format("store.endpoints: '{}' uses TLS: set store.tls.ca to the CA "
                      "certificate that signed etcd's server certificate",
                      e));
    }
    if (e.rfind("http://", 0) == 0 && out->tls.enabled()) {
      return Bad(
          fmt::format("store.endpoints: '{}' is plain http but store.tls is set; use "
                      "https://",
                      e));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateStoreName(const std::string& what, const std::string& name) {
  std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  if (name.empty()) return Bad(fmt::format("{} is empty", what));
  if (name.size() > kMaxStoreNameLength) {
    return Bad(fmt::format("{} '{}' is {} characters long; at most {} are allowed", what, shown,
                           name.size(), kMaxStoreNameLength));
  }
  bool ok = std::isalnum(static_cast<unsigned char>(name[0])) != 0;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    return Bad(
        fmt::format("{} '{}' is invalid: it must match [A-Za-z0-9][A-Za-z0-9_.-]* (no "
                    "'/', no leading '.', no control characters)",
                    what, shown));
  }
  return absl::OkStatus();
}

EtcdOptions EtcdOptionsFor(const StoreConfig& store) {
  EtcdOptions o;
  o.endpoints = store.endpoints;
  o.dial_timeout = store.dial_timeout;
  o.request_timeout = store.request_timeout;
  o.max_response_bytes = store.max_response_bytes;
  o.tls = store.tls;
  o.tls_sessions.lifetime = store.tls_session_lifetime;
  return o;
}

std::string AddrRange::ToString() const {
  return fmt::format("{} {}-{}", subnet.ToString(), start.ToString(), end.ToString());
}

const AddrRange* Pool::RangeOf(const IpAddr& ip) const {
  for (const AddrRange& r : ranges) {
    if (r.Contains(ip)) return &r;
  }
  return nullptr;
}

const std::pair<IpAddr, IpAddr>* Pool::ExcludeOf(const IpAddr& ip) const {
  for (const auto& ex : excludes) {
    if (ex.first <= ip && ip <= ex.second) return &ex;
  }
  return nullptr;
}

bool Pool::Allocatable(const IpAddr& ip) const {
  const AddrRange* r = RangeOf(ip);
  if (r == nullptr || ExcludeOf(ip) != nullptr) return false;
  if (ip == r->subnet.network() || ip == r->gateway) return false;
  if (ip.family() == 4 && ip == r->subnet.Last()) return false;
  return true;
}

std::string Pool::ToString() const {
  std::string out;
  for (const AddrRange& r : ranges) {
    if (!out.empty()) out += ", ";
    out += r.ToString();
  }
  return out;
}

Dns ParseResolvConf(const std::string& text) {
  Dns dns;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t hash = line.find_first_of("#;");
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string key, word;
    if (!(words >> key)) continue;
    std::vector<std::string> values;
    while (words >> word) values.push_back(word);
    if (values.empty()) continue;
    if (key == "nameserver") {
      dns.nameservers.push_back(values[0]);
    } else if (key == "domain") {
      dns.domain = values[0];
    } else if (key == "search") {
      dns.search = values;
    } else if (key == "options") {
      dns.options.insert(dns.options.end(), values.begin(), values.end());
    }
  }
  return dns;
}

absl::StatusOr<IpamConfig> ParseIpamConfig(const json& ipam, const std::string& data_dir_default) {
  if (!ipam.is_object()) return Bad("\"ipam\" must be an object");
  IpamConfig conf;
  conf.data_dir = data_dir_default;

  const bool has_ranges = ipam.contains("ranges");
  const bool has_pools = ipam.contains("pools");
  const bool has_range_bounds = ipam.contains("rangeStart") || ipam.contains("rangeEnd");
  const bool has_pool_keys = ipam.contains("ips") || ipam.contains("excludeIPs");
  const bool has_subnet = ipam.contains("subnet");
  if (has_ranges &&
      (has_pools || has_subnet || has_pool_keys || has_range_bounds || ipam.contains("gateway"))) {
    return Bad(
        "config mixes host-local \"ranges\" with pool fields (subnet/ips/excludeIPs/gateway/"
        "pools); use one form");
  }
  if (has_pools && (has_subnet || has_pool_keys || has_range_bounds || ipam.contains("gateway"))) {
    return Bad("config mixes \"pools\" with top-level subnet/ips/excludeIPs/gateway; use one form");
  }
  if (has_range_bounds && has_pool_keys) {
    return Bad(
        "config mixes host-local rangeStart/rangeEnd with pool ips/excludeIPs; use one form");
  }

  std::string where;
  if (has_ranges) {
    const json& sets = ipam["ranges"];
    if (!sets.is_array() || sets.empty()) {
      return Bad("\"ranges\" must be a non-empty array of range sets");
    }
    for (size_t i = 0; i < sets.size(); ++i) {
      if (!sets[i].is_array() || sets[i].empty()) {
        return Bad(fmt::format("ranges[{}] must be a non-empty array of ranges", i));
      }
      Pool pool;
      for (size_t j = 0; j < sets[i].size(); ++j) {
        ASSIGN_OR_RETURN(AddrRange r,
                         ParseHostLocalRange(sets[i][j], fmt::format("ranges[{}][{}] ", i, j)));
        if (!pool.ranges.empty() && pool.family() != r.subnet.family()) {
          return Bad(fmt::format("ranges[{}] mixes IPv4 and IPv6 ranges", i));
        }
        pool.ranges.push_back(r);
      }
      conf.pools.push_back(std::move(pool));
    }
    RETURN_IF_ERROR(ParseRoutes(ipam, "", &conf.routes));
  } else if (has_pools) {
    const json& pools = ipam["pools"];
    if (!pools.is_array() || pools.empty()) return Bad("\"pools\" must be a non-empty array");
    for (size_t i = 0; i < pools.size(); ++i) {
      ASSIGN_OR_RETURN(Pool pool,
                       ParsePoolObject(pools[i], fmt::format("pools[{}] ", i), &conf.routes));
      conf.pools.push_back(std::move(pool));
    }
    RETURN_IF_ERROR(ParseRoutes(ipam, "", &conf.routes));
  } else if (has_subnet && has_range_bounds) {
    // host-local's legacy single-range form.
    ASSIGN_OR_RETURN(AddrRange r, ParseHostLocalRange(ipam, ""));
    conf.pools.push_back(Pool{{r}, {}});
    RETURN_IF_ERROR(ParseRoutes(ipam, "", &conf.routes));
  } else if (has_subnet) {
    ASSIGN_OR_RETURN(Pool pool, ParsePoolObject(ipam, "", &conf.routes));
    conf.pools.push_back(std::move(pool));
  } else {
    return Bad("config needs \"ranges\" (host-local form), \"subnet\" or \"pools\" (pool form)");
  }

  // No address may belong to two pools / ranges (host-local refuses overlapping ranges too).
  for (size_t a = 0; a < conf.pools.size(); ++a) {
    for (size_t i = 0; i < conf.pools[a].ranges.size(); ++i) {
      for (size_t b = a; b < conf.pools.size(); ++b) {
        for (size_t j = (a == b ? i + 1 : 0); j < conf.pools[b].ranges.size(); ++j) {
          if (Overlaps(conf.pools[a].ranges[i], conf.pools[b].ranges[j])) {
            return Bad(fmt::format("range {} overlaps range {}", conf.pools[a].ranges[i].ToString(),
                                   conf.pools[b].ranges[j].ToString()));
          }
        }
      }
    }
  }

  ASSIGN_OR_RETURN(std::string data_dir, OptString(ipam, "dataDir", ""));
  if (!data_dir.empty()) {
    if (data_dir[0] != '/') return Bad(fmt::format("dataDir '{}' must be absolute", data_dir));
    conf.data_dir = data_dir;
  }
  ASSIGN_OR_RETURN(std::string resolv, OptString(ipam, "resolvConf", ""));
  if (!resolv.empty()) {
    auto text = ReadFile(resolv);
    if (!text.ok()) {
      return Bad(fmt::format("resolvConf {} cannot be read: {}", resolv, text.status().message()));
    }
    conf.dns = ParseResolvConf(*text);
  }
  if (auto it = ipam.find("lockTimeoutMs"); it != ipam.end()) {
    if (!it->is_number_integer() || it->get<long long>() <= 0 || it->get<long long>() > 600000) {
      return Bad("\"lockTimeoutMs\" must be an integer in 1..600000");
    }
    conf.lock_timeout = std::chrono::milliseconds(it->get<long long>());
  }
  if (auto it = ipam.find("quarantineSeconds"); it != ipam.end()) {
    if (!it->is_number_integer() || it->get<long long>() < 0) {
      return Bad("\"quarantineSeconds\" must be a non-negative integer");
    }
    conf.quarantine = std::chrono::seconds(it->get<long long>());
  }
  if (auto it = ipam.find("fsync"); it != ipam.end()) {
    if (!it->is_boolean()) return Bad("\"fsync\" must be a boolean");
    conf.fsync = it->get<bool>();
  }
  ASSIGN_OR_RETURN(conf.log_file, OptString(ipam, "logFile", ""));
  ASSIGN_OR_RETURN(conf.log_level, OptString(ipam, "logLevel", ""));
  ASSIGN_OR_RETURN(conf.pool, OptString(ipam, "pool", ""));
  if (ipam.contains("pool")) RETURN_IF_ERROR(ValidateStoreName("\"pool\"", conf.pool));
  ASSIGN_OR_RETURN(conf.node_name, OptString(ipam, "nodeName", ""));
  ASSIGN_OR_RETURN(std::string node_file, OptString(ipam, "nodeNameFile", ""));
  if (!node_file.empty()) conf.node_name_file = node_file;
  if (auto it = ipam.find("store"); it != ipam.end() && !it->is_null()) {
    RETURN_IF_ERROR(ParseStore(*it, &conf.store));
  }
  return conf;
}

absl::StatusOr<std::string> ResolveNodeName(const IpamConfig& conf) {
  auto valid = [](const std::string& n) {
    bool ok = !n.empty() && n.size() <= 253;
    for (char c : n) {
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_');
    }
    return ok;
  };
  std::string name = conf.node_name, source = "nodeName";
  if (name.empty() && !conf.node_name_file.empty() && PathExists(conf.node_name_file)) {
    auto text = ReadFile(conf.node_name_file);
    if (!text.ok()) {
      return Bad(fmt::format("node-name file {} cannot be read: {}", conf.node_name_file,
                             text.status().message()));
    }
    name = text->substr(0, text->find('\n'));
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    source = "node-name file " + conf.node_name_file;
  }
  if (name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0) {
      return Bad("no nodeName, no node-name file and gethostname failed");
    }
    name = host;
    source = "host name";
  }
  if (!valid(name)) {
    return Bad(
        fmt::format("node name '{}' (from {}) must match [A-Za-z0-9_.-]{{1,253}}", name, source));
  }
  return name;
}

}  // namespace rdmashare::cni::ipam
