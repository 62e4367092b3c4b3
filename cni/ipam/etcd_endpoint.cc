#include "cni/ipam/etcd_endpoint.h"

#include "cni/ipam/name_lookup.h"
#include "cni/protocol/error.h"
#include "common/ip.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

absl::StatusOr<EtcdEndpoint> ParseEtcdEndpoint(const std::string& text, bool tls_configured) {
  std::string rest = text;
  EtcdEndpoint out;
  out.text = text;
  out.tls = tls_configured;
  if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    out.tls = true;
    if (!tls_configured) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' uses TLS: set store.tls.ca to the "
                                  "CA certificate that signed etcd's server certificate",
                                  text));
    }
  } else if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
    if (tls_configured) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' is plain http but store.tls is set; "
                                  "use https:// (or drop store.tls)",
                                  text));
    }
    out.tls = false;
  } else if (rest.find("://") != std::string::npos) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: etcd endpoint '{}': scheme must be http or https", text));
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' is not [address]:port", text));
    }
    out.host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    if (absl::StatusOr<IpAddr> ip = IpAddr::Parse(out.host); !ip.ok() || ip->family() != 6) {
      return CniError(
          kInvalidNetworkConfig,
          fmt::format("ipam: etcd endpoint '{}': '{}' is not an IPv6 address", text, out.host));
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' has no port", text));
    }
    out.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (!IsNumericHost(out.host) && !IsHostName(out.host)) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}': host '{}' is neither an IP address "
                                  "nor a valid host name",
                                  text, out.host));
    }
  }
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) digits = digits && c >= '0' && c <= '9';
  if (digits) out.port = std::stoi(port);
  if (!digits || out.port <= 0 || out.port > 65535) {
    return CniError(
        kInvalidNetworkConfig,
        fmt::format("ipam: etcd endpoint '{}': port '{}' is not in 1..65535", text, port));
  }
  return out;
}

}  // namespace rdmashare::cni::ipam
