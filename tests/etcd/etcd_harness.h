// EtcdCluster: real etcd members (Debian etcd-server, /usr/bin/etcd) on loopback ports picked at
// random, data in a TempDir, for tests of the etcd IPAM store. Members can be killed and
// restarted (same data, same ports) to test outages.
//
// One object per test; not thread-safe. The destructor kills every member.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/testing/loopback_http.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"

namespace rdmashare::testing {

inline constexpr char kEtcdBinary[] = "/usr/bin/etcd";

// A throwaway PKI made with the openssl CLI in a TempDir: a CA, a server certificate for
// 127.0.0.1 / localhost / etcd.rdmashare.test (serverAuth + clientAuth: etcd's gateway presents
// it to its own gRPC server), two client certificates (the second: a rotated one), and an
// unrelated second CA.
class TestPki {
 public:
  TestPki();
  // True when every file was generated.
  bool ok() const { return ok_; }
  std::string ca() const { return dir_.Sub("ca.crt"); }
  std::string server_cert() const { return dir_.Sub("server.crt"); }
  std::string server_key() const { return dir_.Sub("server.key"); }
  std::string client_cert() const { return dir_.Sub("client.crt"); }
  std::string client_key() const { return dir_.Sub("client.key"); }
  std::string other_ca() const { return dir_.Sub("other-ca.crt"); }
  // A second client certificate of the same CA (a rotated client certificate).
  std::string client2_cert() const { return dir_.Sub("client2.crt"); }
  std::string client2_key() const { return dir_.Sub("client2.key"); }
  // Output of the failing openssl command when !ok().
  const std::string& error() const { return error_; }

 private:
  bool Run(const std::vector<std::string>& args);
  TempDir dir_;
  bool ok_ = false;
  std::string error_;
};

// TLS of every member's client port (empty cert = plain http). `ca` verifies client
// certificates (client_cert_auth only).
struct EtcdTlsConfig {
  std::string cert, key, ca;
  bool client_cert_auth = false;
  // Client credentials the harness uses to probe a member (client_cert_auth only).
  std::string probe_cert, probe_key;
};

class EtcdCluster {
 public:
  // Starts `members` members forming one cluster and waits until it serves requests.
  explicit EtcdCluster(int members = 1, EtcdTlsConfig tls = {});
  ~EtcdCluster();

  // True when every member came up.
  bool ok() const { return ok_; }
  // "127.0.0.1:<client port>" of each member ("https://127.0.0.1:<port>" with TLS).
  std::vector<std::string> Endpoints() const;
  int client_port(int i) const { return members_[i].client_port; }
  int size() const { return static_cast<int>(members_.size()); }
  // SIGKILLs member `i` (no-op when it is not running).
  void Kill(int i);
  // Restarts member `i` on its data dir and ports; true when it serves again (the rest of a
  // multi-member cluster must be up for that: quorum).
  bool Restart(int i);
  // Restarts every member (after a full outage); true when all serve again.
  bool RestartAll();
  // True when a KV request on member `i` succeeds within `timeout_ms`.
  bool Serving(int i, int timeout_ms = 200) const;

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::unique_ptr<Subprocess> proc;
  };
  bool Start(int i, bool new_cluster);

  TempDir dir_;
  EtcdTlsConfig tls_;
  std::vector<Member> members_;
  bool ok_ = false;
};

}  // namespace rdmashare::testing
