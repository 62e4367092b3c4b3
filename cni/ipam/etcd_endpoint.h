// EtcdEndpoint: one configured etcd endpoint ("http://10.0.0.1:2379",
// "https://etcd-0.example:2379", "127.0.0.1:2379", "[::1]:2379") parsed and validated: scheme, host
// (an IP address or an RFC 1123 host name, see name_lookup.h), port, and whether it speaks TLS.
//
// Plain values and a pure function; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace rdmashare::cni::ipam {

// A parsed endpoint.
struct EtcdEndpoint {
  std::string text;  // as configured
  std::string host;  // numeric address or host name (no brackets)
  int port = 0;
  bool tls = false;
  bool operator==(const EtcdEndpoint& o) const {
    return text == o.text && host == o.host && port == o.port && tls == o.tls;
  }
};

// Parses "http://host:port", "https://host:port", "host:port" or "[v6]:port". A bare "host:port"
// uses TLS when `tls_configured` (store.tls is set); "https://" needs it and "http://" refuses
// it. CNI code 7 naming the endpoint and the problem otherwise.
absl::StatusOr<EtcdEndpoint> ParseEtcdEndpoint(const std::string& text, bool tls_configured);

}  // namespace rdmashare::cni::ipam
