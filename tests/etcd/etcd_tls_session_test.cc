// TLS session resumption of rdmashare-ipam's etcd client against real etcd 3.4 over TLS: the
// first client does a full handshake and caches the session under the data dir, the next client
// (as the next plugin process would) resumes it; rotated client certificates or CA bundles, expired
// entries and hostile cache files (garbage, truncated, symlink, FIFO, oversized, directory, wrong
// mode, unsafe directory) fall back to a full handshake without hanging. Resumption is observed
// through EtcdClient::tls_stats() (OpenSSL's SSL_session_reused) and the plugin's debug log.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

#include "cni/ipam/etcd_client.h"
#include "cni/ipam/tls_session_cache.h"
#include "cni/protocol/delegate.h"
#include "common/files.h"
#include "common/testing/fifo.h"
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
using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::TestPki;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

// One PKI for the whole binary (key generation is the slow part).
const TestPki& Pki() {
  static const TestPki* pki = new TestPki();
  return *pki;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ReadAll(const std::string& path) { return ReadFileNoFollow(path).value_or(""); }

class TlsSessionTest : public ::testing::Test {
 protected:
  // Mutual TLS (the deployment manifests' setup) unless a test says otherwise.
  void SetUp() override { Start(/*client_cert_auth=*/true); }

  void Start(bool client_cert_auth) {
    ASSERT_TRUE(Pki().ok()) << Pki().error();
    EtcdTlsConfig t;
    t.cert = Pki().server_cert();
    t.key = Pki().server_key();
    t.ca = Pki().ca();
    t.client_cert_auth = client_cert_auth;
    t.probe_cert = Pki().client_cert();
    t.probe_key = Pki().client_key();
    etcd_ = std::make_unique<EtcdCluster>(1, t);
    ASSERT_TRUE(etcd_->ok()) << "etcd with TLS did not start";
    tls_ = {Pki().ca(), Pki().client_cert(), Pki().client_key()};
  }

  EtcdOptions Options() const {
    EtcdOptions o;
    o.endpoints = {fmt::format("https://127.0.0.1:{}", etcd_->client_port(0))};
    o.dial_timeout = std::chrono::milliseconds(1000);
    o.request_timeout = std::chrono::milliseconds(3000);
    o.tls = tls_;
    o.tls_sessions.base_dir = dir_.Sub("data");
    o.tls_sessions.sub_dir = "pool/.tls-sessions";
    return o;
  }
  std::string CacheDir() const { return dir_.Sub("data/pool/.tls-sessions"); }
  std::string CacheFile() const {
    return JoinPath(CacheDir(), fmt::format("127.0.0.1_{}", etcd_->client_port(0)));
  }

  // Put + Get through a fresh client (a new plugin process); its handshake counters.
  EtcdTlsStats RoundTrip(const EtcdOptions& o) {
    auto c = EtcdClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return {};
    EXPECT_OK((*c)->Put("/tls-session-test/k", "v").status());
    auto got = (*c)->Get("/tls-session-test/k");
    EXPECT_TRUE(got.ok() && got->has_value()) << got.status();
    return (*c)->tls_stats();
  }
  EtcdTlsStats RoundTrip() { return RoundTrip(Options()); }

  std::unique_ptr<EtcdCluster> etcd_;
  EtcdTlsFiles tls_;
  TempDir dir_;
};

TEST_F(TlsSessionTest, FirstClientDoesAFullHandshakeAndCachesTheSession) {
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
  EXPECT_GE(s.sessions_saved, 1);
  struct stat st;
  ASSERT_EQ(lstat(CacheFile().c_str(), &st), 0) << CacheFile();
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(lstat(CacheDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord r, ParseTlsSessionRecord(ReadAll(CacheFile())));
  EXPECT_GT(r.expires, UnixNow());
  EXPECT_LE(r.expires, UnixNow() + kDefaultTlsSessionLifetime.count());
  // No temp file is left behind.
  ASSERT_OK_AND_ASSIGN(auto names, ListDir(CacheDir()));
  EXPECT_EQ(names.size(), 1u);
}

TEST_F(TlsSessionTest, NextClientResumesTheCachedSession) {
  RoundTrip();
  const std::string saved = ReadAll(CacheFile());
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 0);
  EXPECT_EQ(s.resumed_handshakes, 1);
  // A fresh entry is not rewritten with the new ticket etcd sends after a resumption.
  EXPECT_EQ(s.sessions_saved, 0);
  EXPECT_EQ(ReadAll(CacheFile()), saved);
  // And the one after that resumes too.
  EXPECT_EQ(RoundTrip().resumed_handshakes, 1);
}

TEST_F(TlsSessionTest, EntryPastHalfItsLifetimeIsRefreshedByAResumedConnection) {
  RoundTrip();
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord r, ParseTlsSessionRecord(ReadAll(CacheFile())));
  r.expires = UnixNow() + 60;
  ASSERT_OK(WriteFileAtomic(CacheFile(), EncodeTlsSessionRecord(r), 0600));
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.resumed_handshakes, 1);
  EXPECT_GE(s.sessions_saved, 1);
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord after, ParseTlsSessionRecord(ReadAll(CacheFile())));
  EXPECT_GT(after.expires, UnixNow() + 60);
}

TEST_F(TlsSessionTest, ServerOnlyTlsResumesToo) {
  Start(/*client_cert_auth=*/false);
  tls_ = {Pki().ca(), "", ""};
  EXPECT_EQ(RoundTrip().full_handshakes, 1);
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.resumed_handshakes, 1);
  EXPECT_EQ(s.full_handshakes, 0);
}

TEST_F(TlsSessionTest, RotatedClientCertificateFallsBackToAFullHandshakeAndReplacesTheEntry) {
  RoundTrip();
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord before, ParseTlsSessionRecord(ReadAll(CacheFile())));
  tls_ = {Pki().ca(), Pki().client2_cert(), Pki().client2_key()};
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord after, ParseTlsSessionRecord(ReadAll(CacheFile())));
  EXPECT_NE(after.binding, before.binding);
  // The new certificate's session is the one resumed from now on.
  EXPECT_EQ(RoundTrip().resumed_handshakes, 1);
}

TEST_F(TlsSessionTest, RotatedCertificateFileInPlaceFallsBackToAFullHandshake) {
  // Same paths, new contents (a Secret update): the binding follows the contents.
  std::string cert = dir_.Sub("tls/tls.crt"), key = dir_.Sub("tls/tls.key");
  WriteTestFile(cert, ReadAll(Pki().client_cert()));
  WriteTestFile(key, ReadAll(Pki().client_key()));
  tls_ = {Pki().ca(), cert, key};
  RoundTrip();
  EXPECT_EQ(RoundTrip().resumed_handshakes, 1);
  WriteTestFile(cert, ReadAll(Pki().client2_cert()));
  WriteTestFile(key, ReadAll(Pki().client2_key()));
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
}

TEST_F(TlsSessionTest, RotatedCaBundleFallsBackToAFullHandshake) {
  std::string ca = dir_.Sub("tls/ca.crt");
  WriteTestFile(ca, ReadAll(Pki().ca()));
  tls_.ca = ca;
  RoundTrip();
  // A CA rotation starts by adding the new CA to the bundle.
  WriteTestFile(ca, ReadAll(Pki().ca()) + ReadAll(Pki().other_ca()));
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
  EXPECT_EQ(RoundTrip().resumed_handshakes, 1);
}

TEST_F(TlsSessionTest, AnotherEndpointNameDoesNotResumeTheEntry) {
  RoundTrip();
  std::string saved = ReadAll(CacheFile());
  // The same server under another name gets its own file; an entry copied over is refused.
  EtcdOptions o = Options();
  o.endpoints = {fmt::format("https://localhost:{}", etcd_->client_port(0))};
  std::string other = JoinPath(CacheDir(), TlsSessionFileName("localhost", etcd_->client_port(0)));
  WriteTestFile(other, saved);
  ASSERT_EQ(chmod(other.c_str(), 0600), 0);
  EtcdTlsStats s = RoundTrip(o);
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
}

TEST_F(TlsSessionTest, ExpiredOrTooDistantEntryIsNotOffered) {
  RoundTrip();
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord r, ParseTlsSessionRecord(ReadAll(CacheFile())));
  for (int64_t expires : {UnixNow() - 1, UnixNow() + 2 * kDefaultTlsSessionLifetime.count()}) {
    r.expires = expires;
    ASSERT_OK(WriteFileAtomic(CacheFile(), EncodeTlsSessionRecord(r), 0600));
    EtcdTlsStats s = RoundTrip();
    EXPECT_EQ(s.full_handshakes, 1) << expires;
    EXPECT_EQ(s.resumed_handshakes, 0) << expires;
  }
}

TEST_F(TlsSessionTest, ZeroLifetimeDisablesTheCache) {
  EtcdOptions o = Options();
  o.tls_sessions.lifetime = std::chrono::seconds(0);
  EXPECT_EQ(RoundTrip(o).full_handshakes, 1);
  EtcdTlsStats s = RoundTrip(o);
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.sessions_saved, 0);
  EXPECT_FALSE(PathExists(dir_.Sub("data/pool")));
}

// ------------------------------------------------------------------ hostile cache entries

struct HostileEntry {
  std::string name;
  // Replaces the valid entry at `path` (saved by a first client) with something hostile.
  void (*plant)(const std::string& path, const std::string& valid, const TempDir& dir);
  // Whether the next client's session replaces what was planted (a directory cannot be).
  bool replaced = true;
};

class HostileEntryTest : public TlsSessionTest,
                         public ::testing::WithParamInterface<HostileEntry> {};

TEST_P(HostileEntryTest, IsIgnoredWithAFullHandshakeAndReplaced) {
  RoundTrip();
  const std::string path = CacheFile();
  const std::string valid = ReadAll(path);
  ASSERT_FALSE(valid.empty());
  ASSERT_EQ(unlink(path.c_str()), 0);
  GetParam().plant(path, valid, dir_);
  EtcdTlsStats s;
  ASSERT_TRUE(FinishesWithin([&] { s = RoundTrip(); }, {path})) << "the client hung";
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  if (!GetParam().replaced) {
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    return;
  }
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_OK(ParseTlsSessionRecord(ReadAll(path)).status());
  // The symlink's target is untouched.
  if (PathExists(dir_.Sub("elsewhere/entry"))) {
    EXPECT_EQ(ReadAll(dir_.Sub("elsewhere/entry")), valid);
  }
  EXPECT_EQ(RoundTrip().resumed_handshakes, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Entries, HostileEntryTest,
    ::testing::Values(
        HostileEntry{"Garbage",
                     [](const std::string& p, const std::string&, const TempDir&) {
                       WriteTestFile(p, "\x01\x02not a session\n");
                       chmod(p.c_str(), 0600);
                     }},
        HostileEntry{"Truncated",
                     [](const std::string& p, const std::string& valid, const TempDir&) {
                       WriteTestFile(p, valid.substr(0, valid.size() / 2));
                       chmod(p.c_str(), 0600);
                     }},
        HostileEntry{"SessionNotDer",
                     [](const std::string& p, const std::string& valid, const TempDir&) {
                       auto r = ParseTlsSessionRecord(valid);
                       ASSERT_TRUE(r.ok());
                       r->session = std::string(r->session.size(), 'x');
                       WriteTestFile(p, EncodeTlsSessionRecord(*r));
                       chmod(p.c_str(), 0600);
                     }},
        HostileEntry{"SymlinkToAValidEntry",
                     [](const std::string& p, const std::string& valid, const TempDir& dir) {
                       WriteTestFile(dir.Sub("elsewhere/entry"), valid);
                       chmod(dir.Sub("elsewhere/entry").c_str(), 0600);
                       ASSERT_EQ(symlink(dir.Sub("elsewhere/entry").c_str(), p.c_str()), 0);
                     }},
        HostileEntry{"Fifo",
                     [](const std::string& p, const std::string&, const TempDir&) { MakeFifo(p); }},
        HostileEntry{"Oversized",
                     [](const std::string& p, const std::string& valid, const TempDir&) {
                       WriteTestFile(p, valid + std::string(kMaxTlsSessionFileBytes, '\n'));
                       chmod(p.c_str(), 0600);
                     }},
        HostileEntry{"ReadableByOthers",
                     [](const std::string& p, const std::string& valid, const TempDir&) {
                       WriteTestFile(p, valid);
                       chmod(p.c_str(), 0644);
                     }},
        HostileEntry{"Directory",
                     [](const std::string& p, const std::string&, const TempDir&) {
                       ASSERT_EQ(mkdir(p.c_str(), 0700), 0);
                     },
                     /*replaced=*/false}),
    [](const ::testing::TestParamInfo<HostileEntry>& info) { return info.param.name; });

TEST_F(TlsSessionTest, SymlinkedCacheDirectoryIsNeitherReadNorWritten) {
  RoundTrip();
  std::string moved = dir_.Sub("moved");
  ASSERT_EQ(rename(CacheDir().c_str(), moved.c_str()), 0);
  ASSERT_EQ(symlink(moved.c_str(), CacheDir().c_str()), 0);
  std::string before = ReadAll(JoinPath(moved, BaseName(CacheFile())));
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.sessions_saved, 0);
  EXPECT_EQ(ReadAll(JoinPath(moved, BaseName(CacheFile()))), before);
}

TEST_F(TlsSessionTest, CacheDirectoryOpenToOthersIsIgnored) {
  RoundTrip();
  ASSERT_EQ(chmod(CacheDir().c_str(), 0777), 0);
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.sessions_saved, 0);
}

TEST_F(TlsSessionTest, CacheDirectoryOfAnotherUserIsIgnored) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  RoundTrip();
  ASSERT_EQ(chown(CacheDir().c_str(), 65534, 65534), 0);
  ASSERT_EQ(chown(CacheFile().c_str(), 65534, 65534), 0);
  EtcdTlsStats s = RoundTrip();
  EXPECT_EQ(s.full_handshakes, 1);
  EXPECT_EQ(s.resumed_handshakes, 0);
  EXPECT_EQ(s.sessions_saved, 0);
}

// ------------------------------------------------------------------ the plugin binary

TEST_F(TlsSessionTest, PluginProcessResumesTheSessionOfThePreviousOne) {
  std::string log = dir_.Sub("ipam.log");
  json ipam = {
      {"type", "rdmashare-ipam"},
      {"subnet", "10.31.0.0/24"},
      {"ips", json::array({"10.31.0.1-10.31.0.9"})},
      {"dataDir", dir_.Sub("plugin-data")},
      {"nodeName", "n1"},
      {"logFile", log},
      {"logLevel", "debug"},
      {"store",
       {{"type", "etcd"},
        {"endpoints", json::array({Options().endpoints[0]})},
        {"tls",
         {{"ca", Pki().ca()}, {"cert", Pki().client_cert()}, {"key", Pki().client_key()}}}}}};
  json conf = {{"cniVersion", "1.0.0"}, {"name", "resumenet"}, {"type", "x"}, {"ipam", ipam}};
  auto add = [&](const std::string& id) {
    std::map<std::string, std::string> env = {{"CNI_COMMAND", "ADD"},
                                              {"CNI_PATH", "/x"},
                                              {"CNI_CONTAINERID", id},
                                              {"CNI_IFNAME", "net1"},
                                              {"CNI_NETNS", "/var/run/netns/" + id}};
    auto out = ExecPlugin(RDMASHARE_IPAM_BIN, env, conf.dump(), std::chrono::seconds(30));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->exit_code, 0) << out->stdout_data;
  };
  add("c1");
  EXPECT_THAT(ReadAll(log), HasSubstr("full TLS handshake"));
  EXPECT_THAT(ReadAll(log), ::testing::Not(HasSubstr("resumed (cached session)")));
  std::string entry = dir_.Sub(
      fmt::format("plugin-data/resumenet/.tls-sessions/127.0.0.1_{}", etcd_->client_port(0)));
  struct stat st;
  ASSERT_EQ(lstat(entry.c_str(), &st), 0) << entry;
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(truncate(log.c_str(), 0), 0);
  add("c2");
  EXPECT_THAT(ReadAll(log), HasSubstr("resumed (cached session) TLS handshake"));
  EXPECT_THAT(ReadAll(log), ::testing::Not(HasSubstr("full TLS handshake")));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
