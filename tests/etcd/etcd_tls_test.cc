// rdmashare-ipam's etcd client over TLS (a test CA made with the openssl CLI, etcd started with
// --cert-file/--key-file/--trusted-ca-file [--client-cert-auth]) and with host names in
// endpoints (localhost, an injected hosts file, unknown names).
#include <chrono>
#include <map>
#include <string>

#include "cni/ipam/config.h"
#include "cni/ipam/etcd_client.h"
#include "cni/ipam/ipam.h"
#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::EtcdTlsConfig;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::TestPki;
using ::rdmashare::testing::WriteTestFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

// One PKI for the whole binary (key generation is the slow part).
const TestPki& Pki() {
  static const TestPki* pki = new TestPki();
  return *pki;
}

EtcdTlsConfig ServerTls(bool client_cert_auth) {
  EtcdTlsConfig t;
  t.cert = Pki().server_cert();
  t.key = Pki().server_key();
  t.ca = Pki().ca();
  t.client_cert_auth = client_cert_auth;
  t.probe_cert = Pki().client_cert();
  t.probe_key = Pki().client_key();
  return t;
}

EtcdOptions Options(const std::vector<std::string>& endpoints) {
  EtcdOptions o;
  o.endpoints = endpoints;
  o.dial_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(3000);
  return o;
}

// Put + Get of one key through a fresh client; the status of the first failing step.
absl::Status RoundTrip(const EtcdOptions& o) {
  auto c = EtcdClient::Create(o);
  if (!c.ok()) return c.status();
  auto put = (*c)->Put("/tls-test/k", "v");
  if (!put.ok()) return put.status();
  auto got = (*c)->Get("/tls-test/k");
  if (!got.ok()) return got.status();
  if (!got->has_value() || (*got)->value != "v") return absl::InternalError("value lost");
  return absl::OkStatus();
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Pki().ok()) << Pki().error(); }
};

class ServerTlsTest : public TlsTest {
 protected:
  void SetUp() override {
    TlsTest::SetUp();
    etcd_ = std::make_unique<EtcdCluster>(1, ServerTls(false));
    ASSERT_TRUE(etcd_->ok()) << "etcd with TLS did not start";
  }
  std::string Https(const std::string& host) const {
    return fmt::format("https://{}:{}", host, etcd_->client_port(0));
  }
  std::unique_ptr<EtcdCluster> etcd_;
  TempDir dir_;
};

TEST_F(ServerTlsTest, KeyValueRoundTripWithTheRightCa) {
  EtcdOptions o = Options({Https("127.0.0.1")});
  o.tls.ca = Pki().ca();
  EXPECT_OK(RoundTrip(o));
}

TEST_F(ServerTlsTest, BareHostPortUsesTlsWhenTlsIsConfigured) {
  EtcdOptions o = Options({fmt::format("127.0.0.1:{}", etcd_->client_port(0))});
  o.tls.ca = Pki().ca();
  EXPECT_OK(RoundTrip(o));
}

TEST_F(ServerTlsTest, LocalhostIsVerifiedAgainstTheCertificatesDnsName) {
  EtcdOptions o = Options({Https("localhost")});
  o.tls.ca = Pki().ca();
  EXPECT_OK(RoundTrip(o));
}

TEST_F(ServerTlsTest, HostsFileNameIsVerifiedAgainstTheCertificate) {
  std::string hosts = dir_.Sub("hosts");
  WriteTestFile(hosts, "# test\n127.0.0.1   etcd.rdmashare.test  other\n");
  EtcdOptions o = Options({Https("etcd.rdmashare.test")});
  o.tls.ca = Pki().ca();
  o.hosts_file = hosts;
  EXPECT_OK(RoundTrip(o));
}

TEST_F(ServerTlsTest, NameNotInTheCertificateFailsVerificationWithCode11) {
  std::string hosts = dir_.Sub("hosts");
  WriteTestFile(hosts, "127.0.0.1 impostor.rdmashare.test\n");
  EtcdOptions o = Options({Https("impostor.rdmashare.test")});
  o.tls.ca = Pki().ca();
  o.hosts_file = hosts;
  absl::Status st = RoundTrip(o);
  EXPECT_EQ(CniCode(st), kTryAgainLater) << st;
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr(Https("impostor.rdmashare.test")),
                    HasSubstr("certificate verify failed"), HasSubstr("hostname mismatch")));
}

TEST_F(ServerTlsTest, WrongCaIsCode11NamingTheEndpointAndVerifyFailure) {
  EtcdOptions o = Options({Https("127.0.0.1")});
  o.tls.ca = Pki().other_ca();
  auto start = std::chrono::steady_clock::now();
  absl::Status st = RoundTrip(o);
  EXPECT_EQ(CniCode(st), kTryAgainLater) << st;
  EXPECT_TRUE(IsEtcdUnreachable(st));
  EXPECT_THAT(st.message(),
              AllOf(HasSubstr(Https("127.0.0.1")), HasSubstr("certificate verify failed")));
  // A handshake failure gives up like a refused connection, before the request timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(3000));
}

TEST_F(ServerTlsTest, PlainHttpClientGetsNoAnswerFromATlsPort) {
  EtcdOptions o = Options({fmt::format("http://127.0.0.1:{}", etcd_->client_port(0))});
  o.request_timeout = std::chrono::milliseconds(1000);
  absl::Status st = RoundTrip(o);
  EXPECT_EQ(CniCode(st), kTryAgainLater) << st;
}

TEST_F(ServerTlsTest, IpamAddOverTlsFromTheStaticBinary) {
  json ipam = {{"type", "rdmashare-ipam"},
               {"subnet", "10.30.0.0/24"},
               {"ips", json::array({"10.30.0.1-10.30.0.9"})},
               {"dataDir", dir_.Sub("data")},
               {"nodeName", "n1"},
               {"store",
                {{"type", "etcd"},
                 {"endpoints", json::array({Https("127.0.0.1")})},
                 {"tls", {{"ca", Pki().ca()}}}}}};
  json conf = {{"cniVersion", "1.0.0"}, {"name", "tlsnet"}, {"type", "x"}, {"ipam", ipam}};
  std::map<std::string, std::string> env = {{"CNI_COMMAND", "ADD"},
                                            {"CNI_PATH", "/x"},
                                            {"CNI_CONTAINERID", "c1"},
                                            {"CNI_IFNAME", "net1"},
                                            {"CNI_NETNS", "/var/run/netns/c1"}};
  auto out = ExecPlugin(RDMASHARE_IPAM_BIN, env, conf.dump(), std::chrono::seconds(30));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit_code, 0) << out->stdout_data;
  json doc = json::parse(out->stdout_data, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << out->stdout_data;
  EXPECT_EQ(doc["ips"][0]["address"], "10.30.0.1/24");

  // The record is in etcd, read back over TLS.
  EtcdOptions o = Options({Https("127.0.0.1")});
  o.tls.ca = Pki().ca();
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(o));
  ASSERT_OK_AND_ASSIGN(auto kv, client->Get("/rdmashare/ipam/pools/tlsnet/ips/10.30.0.1"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(json::parse(kv->value)["containerID"], "c1");
}

class MutualTlsTest : public TlsTest {
 protected:
  void SetUp() override {
    TlsTest::SetUp();
    etcd_ = std::make_unique<EtcdCluster>(1, ServerTls(true));
    ASSERT_TRUE(etcd_->ok()) << "etcd with client-cert-auth did not start";
  }
  std::unique_ptr<EtcdCluster> etcd_;
};

TEST_F(MutualTlsTest, ClientCertificateIsAccepted) {
  EtcdOptions o = Options(etcd_->Endpoints());
  o.tls = {Pki().ca(), Pki().client_cert(), Pki().client_key()};
  EXPECT_OK(RoundTrip(o));
}

TEST_F(MutualTlsTest, MissingClientCertificateIsCode11SayingSo) {
  EtcdOptions o = Options(etcd_->Endpoints());
  o.tls.ca = Pki().ca();
  absl::Status st = RoundTrip(o);
  EXPECT_EQ(CniCode(st), kTryAgainLater) << st;
  EXPECT_THAT(st.message(), AllOf(HasSubstr(etcd_->Endpoints()[0]), HasSubstr("certificate"),
                                  HasSubstr("set store.tls.cert and store.tls.key")));
}

// ---------------------------------------------------------------------------- TLS files

struct BadTlsFiles {
  std::string name;
  // File names relative to the test dir ("" = unset); "$ca" etc. name the PKI's files.
  std::string ca, cert, key;
  std::string message;
};

class BadTlsFilesTest : public ::testing::TestWithParam<BadTlsFiles> {
 protected:
  std::string Resolve(const std::string& f) {
    if (f.empty()) return f;
    if (f == "$ca") return Pki().ca();
    if (f == "$client.crt") return Pki().client_cert();
    if (f == "$client.key") return Pki().client_key();
    if (f == "$server.key") return Pki().server_key();
    return dir_.Sub(f);
  }
  TempDir dir_;
};

TEST_P(BadTlsFilesTest, IsCode7NamingTheFile) {
  ASSERT_TRUE(Pki().ok()) << Pki().error();
  WriteTestFile(dir_.Sub("garbage.pem"), "not a certificate\n");
  EtcdOptions o = Options({"https://127.0.0.1:2379"});
  o.tls = {Resolve(GetParam().ca), Resolve(GetParam().cert), Resolve(GetParam().key)};
  auto c = EtcdClient::Create(o);
  EXPECT_THAT(c.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)));
  EXPECT_EQ(CniCode(c.status()), kInvalidNetworkConfig);
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadTlsFilesTest,
    ::testing::Values(
        BadTlsFiles{"MissingCa", "missing.pem", "", "", "store.tls.ca"},
        BadTlsFiles{"MissingCaNamesFile", "missing.pem", "", "", "missing.pem"},
        BadTlsFiles{"CaNotPem", "garbage.pem", "", "", "contains no PEM certificate"},
        BadTlsFiles{"NoCa", "", "$client.crt", "$client.key", "store.tls.ca is required"},
        BadTlsFiles{"CertWithoutKey", "$ca", "$client.crt", "", "go together"},
        BadTlsFiles{"MissingCert", "$ca", "missing.crt", "$client.key", "missing.crt"},
        BadTlsFiles{"CertNotPem", "$ca", "garbage.pem", "$client.key",
                    "store.tls.cert " /* path follows */},
        BadTlsFiles{"KeyNotPem", "$ca", "$client.crt", "garbage.pem", "not a PEM private key"},
        BadTlsFiles{"KeyOfAnotherCert", "$ca", "$client.crt", "$server.key",
                    "does not match the certificate"}),
    [](const ::testing::TestParamInfo<BadTlsFiles>& info) { return info.param.name; });

TEST(TlsEndpointTest, HttpsWithoutTlsConfigIsCode7AskingForTheCa) {
  EtcdOptions o = Options({"https://127.0.0.1:2379"});
  EXPECT_THAT(EtcdClient::Create(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("set store.tls.ca")));
}

TEST(TlsEndpointTest, PlainHttpWithTlsConfigIsCode7) {
  ASSERT_TRUE(Pki().ok()) << Pki().error();
  EtcdOptions o = Options({"http://127.0.0.1:2379"});
  o.tls.ca = Pki().ca();
  EXPECT_THAT(EtcdClient::Create(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("use https://")));
}

// ---------------------------------------------------------------------------- host names

class HostNameTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ok()) << "etcd did not start"; }
  std::string Http(const std::string& host) const {
    return fmt::format("http://{}:{}", host, etcd_.client_port(0));
  }
  EtcdCluster etcd_{1};
  TempDir dir_;
};

TEST_F(HostNameTest, LocalhostWorks) { EXPECT_OK(RoundTrip(Options({Http("localhost")}))); }

TEST_F(HostNameTest, InjectedHostsFileMapsAMadeUpName) {
  std::string hosts = dir_.Sub("hosts");
  WriteTestFile(hosts, "10.255.255.1 elsewhere\n127.0.0.1\tEtcd-Made-Up.test # comment\n");
  EtcdOptions o = Options({Http("etcd-made-up.test")});
  o.hosts_file = hosts;
  EXPECT_OK(RoundTrip(o));
}

TEST_F(HostNameTest, EveryAddressOfANameIsTried) {
  // The first address refuses (nothing listens on 127.0.0.2 at this port), the second serves.
  std::string hosts = dir_.Sub("hosts");
  WriteTestFile(hosts, "127.0.0.2 twice.test\n127.0.0.1 twice.test\n");
  EtcdOptions o = Options({Http("twice.test")});
  o.hosts_file = hosts;
  EXPECT_OK(RoundTrip(o));
}

TEST_F(HostNameTest, UnknownNameIsCode11NamingIt) {
  EtcdOptions o = Options({Http("no-such-host.invalid")});
  o.hosts_file = dir_.Sub("absent-hosts");
  absl::Status st = RoundTrip(o);
  EXPECT_EQ(CniCode(st), kTryAgainLater) << st;
  EXPECT_THAT(st.message(), AllOf(HasSubstr(Http("no-such-host.invalid")),
                                  HasSubstr("cannot resolve host name 'no-such-host.invalid'")));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
