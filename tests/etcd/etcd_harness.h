// EtcdCluster: real etcd members (Debian etcd-server, /usr/bin/etcd) on loopback ports picked at
// random, data in a TempDir, for tests of the etcd IPAM store. Members can be killed and
// restarted (same data, same ports) to test outages.
//
// One object per test; not thread-safe. The destructor kills every member.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"

namespace rdmashare::testing {

inline constexpr char kEtcdBinary[] = "/usr/bin/etcd";

class EtcdCluster {
 public:
  // Starts `members` members forming one cluster and waits until it serves requests.
  explicit EtcdCluster(int members = 1);
  ~EtcdCluster();

  // True when every member came up.
  bool ok() const { return ok_; }
  // "127.0.0.1:<client port>" of each member.
  std::vector<std::string> Endpoints() const;
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
  std::vector<Member> members_;
  bool ok_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

}  // namespace rdmashare::testing
