// manifests/etcd/in-cluster/make-certs.sh, run as written: its server certificate serves a real
// etcd 3.4 with client-certificate auth (the overlay's flags), its client Secret's files let
// rdmashare-ipam's client in, and without the client certificate the client is refused.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "cni/ipam/etcd_client.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::EtcdTlsConfig;
using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;

const std::string kScript = std::string(RS_MANIFESTS_DIR) + "/etcd/in-cluster/make-certs.sh";

::rdmashare::testing::RunResult MakeCerts(const std::vector<std::string>& args) {
  Subprocess::Options o;
  o.argv = {"/bin/bash", kScript};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return RunProgram(o, std::chrono::seconds(60));
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

TEST(InClusterCertsTest, ServeEtcdWithClientCertAuthAndAdmitOnlyTheClientSecret) {
  TempDir dir;
  const std::string out = dir.Sub("pki");
  auto made = MakeCerts({out, "--days", "2"});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  for (const char* key : {"ca.key", "server.key", "client.key", "secrets.yaml"}) {
    EXPECT_EQ(ModeOf(JoinPath(out, key)), 0600u) << key;
  }
  ASSERT_OK_AND_ASSIGN(std::string secrets, ReadFile(JoinPath(out, "secrets.yaml")));
  for (const char* want : {"name: rdmashare-etcd-server", "name: rdmashare-etcd\n",
                           "endpoints: ", "tls.crt: ", "tls.key: ", "ca.crt: "}) {
    EXPECT_THAT(secrets, HasSubstr(want));
  }
  // A second run keeps the CA unless forced.
  auto again = MakeCerts({out});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("ca.key exists; --force"));

  EtcdTlsConfig tls;
  tls.cert = JoinPath(out, "server.crt");
  tls.key = JoinPath(out, "server.key");
  tls.ca = JoinPath(out, "ca.crt");
  tls.client_cert_auth = true;
  tls.probe_cert = JoinPath(out, "client.crt");
  tls.probe_key = JoinPath(out, "client.key");
  EtcdCluster etcd(1, tls);
  ASSERT_TRUE(etcd.ok()) << "etcd did not start with make-certs.sh's server certificate";

  EtcdOptions o;
  o.endpoints = {fmt::format("https://localhost:{}", etcd.client_port(0))};
  o.dial_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(3000);
  o.tls.ca = JoinPath(out, "ca.crt");
  o.tls.cert = JoinPath(out, "client.crt");
  o.tls.key = JoinPath(out, "client.key");
  {
    ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(o));
    ASSERT_OK(client->Put("/in-cluster/k", "v").status());
    ASSERT_OK_AND_ASSIGN(auto got, client->Get("/in-cluster/k"));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value, "v");
  }
  // Without the client certificate: refused, code 11 naming the endpoint.
  o.tls.cert.clear();
  o.tls.key.clear();
  ASSERT_OK_AND_ASSIGN(auto anonymous, EtcdClient::Create(o));
  absl::StatusOr<std::optional<KeyValue>> refused = anonymous->Get("/in-cluster/k");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(CniCode(refused.status()), kTryAgainLater) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr(o.endpoints[0]));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
