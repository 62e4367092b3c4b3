// TlsSessionCache without a server: the file format, the binding and expiry rules, and saving
// and loading a synthetic session in a temp dir. The handshakes themselves are tested against
// real etcd in tests/etcd/etcd_tls_session_test.cc.
#include "cni/ipam/tls_session_cache.h"

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A resumable TLS 1.3 session with a made-up id and key, valid for `timeout` seconds.
SslSessionPtr MakeSession(long timeout = 7200) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  const unsigned char aes128gcm[2] = {0x13, 0x01};
  SslSessionPtr s(SSL_SESSION_new());
  unsigned char key[32] = {1, 2, 3};
  unsigned char id[32] = {4, 5, 6};
  EXPECT_EQ(SSL_SESSION_set_protocol_version(s.get(), TLS1_3_VERSION), 1);
  EXPECT_EQ(SSL_SESSION_set_cipher(s.get(), SSL_CIPHER_find(ssl.get(), aes128gcm)), 1);
  EXPECT_EQ(SSL_SESSION_set1_master_key(s.get(), key, sizeof(key)), 1);
  EXPECT_EQ(SSL_SESSION_set1_id(s.get(), id, sizeof(id)), 1);
  SSL_SESSION_set_time(s.get(), Now());
  SSL_SESSION_set_timeout(s.get(), timeout);
  return s;
}

std::string Der(SSL_SESSION* s) {
  std::string out(static_cast<size_t>(i2d_SSL_SESSION(s, nullptr)), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_SSL_SESSION(s, &p);
  return out;
}

const std::string kBinding(64, 'b');

TlsSessionRecord ValidRecord() {
  return TlsSessionRecord{kBinding, Now() + 600, Der(MakeSession().get())};
}

TEST(TlsSessionRecordTest, EncodesAndParsesBackExactly) {
  TlsSessionRecord r = ValidRecord();
  std::string text = EncodeTlsSessionRecord(r);
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord back, ParseTlsSessionRecord(text));
  EXPECT_EQ(back, r);
  EXPECT_EQ(EncodeTlsSessionRecord(back), text);
}

struct BadRecord {
  std::string name;
  std::string text;
  std::string message;
};

class BadRecordTest : public ::testing::TestWithParam<BadRecord> {};

TEST_P(BadRecordTest, IsRejectedNamingTheProblem) {
  EXPECT_THAT(ParseTlsSessionRecord(GetParam().text).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)));
}

const std::string kHeader = "rdmashare-tls-session 1\nbinding " + std::string(64, 'b') + "\n";

INSTANTIATE_TEST_SUITE_P(
    Records, BadRecordTest,
    ::testing::Values(
        BadRecord{"Empty", "", "truncated"},
        BadRecord{"NoFinalNewline", kHeader + "expires 5\nsession AAAA", "truncated"},
        BadRecord{"WrongMagic",
                  "rdmashare-tls-session 2\n" + kHeader.substr(24) + "expires 5\nsession AAAA\n",
                  "first line"},
        BadRecord{"ThreeLines", kHeader + "expires 5\n", "3 lines"},
        BadRecord{"FiveLines", kHeader + "expires 5\nsession AAAA\nx\n", "more than 4 lines"},
        BadRecord{"FieldsSwapped", kHeader + "session AAAA\nexpires 5\n", "'expires '"},
        BadRecord{"BindingUppercase",
                  "rdmashare-tls-session 1\nbinding " + std::string(64, 'B') +
                      "\nexpires 5\nsession AAAA\n",
                  "64 lowercase hexadecimal"},
        BadRecord{"BindingShort", "rdmashare-tls-session 1\nbinding abc\nexpires 5\nsession AAAA\n",
                  "64 lowercase hexadecimal"},
        BadRecord{"ExpiresNegative", kHeader + "expires -5\nsession AAAA\n", "expires"},
        BadRecord{"ExpiresLeadingZero", kHeader + "expires 05\nsession AAAA\n", "leading zero"},
        BadRecord{"ExpiresHuge", kHeader + "expires 9999999999999999999\nsession AAAA\n",
                  "at most 18 digits"},
        BadRecord{"SessionEmpty", kHeader + "expires 5\nsession \n", "base64"},
        BadRecord{"SessionNotBase64", kHeader + "expires 5\nsession A A\n", "base64"},
        BadRecord{"SessionUnpadded", kHeader + "expires 5\nsession QUI\n", "canonical base64"},
        BadRecord{"Oversized", std::string(kMaxTlsSessionFileBytes + 1, '\n'), "more than"}),
    [](const ::testing::TestParamInfo<BadRecord>& info) { return info.param.name; });

TEST(UsableTlsSessionTest, ValidRecordGivesItsSession) {
  ASSERT_OK_AND_ASSIGN(SslSessionPtr s,
                       UsableTlsSession(ValidRecord(), kBinding, Now(), std::chrono::hours(1)));
  EXPECT_EQ(SSL_SESSION_is_resumable(s.get()), 1);
}

TEST(UsableTlsSessionTest, OtherBindingIsRefused) {
  EXPECT_THAT(
      UsableTlsSession(ValidRecord(), std::string(64, 'c'), Now(), std::chrono::hours(1)).status(),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("other TLS files")));
}

TEST(UsableTlsSessionTest, ExpiredOrTooDistantIsRefused) {
  TlsSessionRecord r = ValidRecord();
  EXPECT_THAT(UsableTlsSession(r, kBinding, r.expires, std::chrono::hours(1)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("expired")));
  EXPECT_THAT(UsableTlsSession(r, kBinding, Now(), std::chrono::seconds(60)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("beyond")));
}

TEST(UsableTlsSessionTest, GarbageOrTrailingBytesAreRefused) {
  TlsSessionRecord r = ValidRecord();
  r.session += '\0';
  EXPECT_THAT(UsableTlsSession(r, kBinding, Now(), std::chrono::hours(1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("after its DER")));
  r.session = "garbage";
  EXPECT_THAT(UsableTlsSession(r, kBinding, Now(), std::chrono::hours(1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a DER")));
}

TEST(TlsSessionBindingTest, DependsOnEveryInput) {
  std::string files = TlsFilesDigest("ca", "cert", "key");
  std::string b = TlsSessionBinding(files, "10.0.0.1", 2379, "10.0.0.1");
  EXPECT_EQ(b.size(), 64u);
  EXPECT_EQ(b,
            TlsSessionBinding(TlsFilesDigest("ca", "cert", "key"), "10.0.0.1", 2379, "10.0.0.1"));
  for (const std::string& other :
       {TlsSessionBinding(TlsFilesDigest("ca2", "cert", "key"), "10.0.0.1", 2379, "10.0.0.1"),
        TlsSessionBinding(TlsFilesDigest("ca", "cert2", "key"), "10.0.0.1", 2379, "10.0.0.1"),
        TlsSessionBinding(TlsFilesDigest("ca", "cert", "key2"), "10.0.0.1", 2379, "10.0.0.1"),
        // Field boundaries count: ("cac", "ert") is not ("ca", "cert").
        TlsSessionBinding(TlsFilesDigest("cac", "ert", "key"), "10.0.0.1", 2379, "10.0.0.1"),
        TlsSessionBinding(files, "10.0.0.2", 2379, "10.0.0.1"),
        TlsSessionBinding(files, "10.0.0.1", 2380, "10.0.0.1"),
        TlsSessionBinding(files, "10.0.0.1", 2379, "etcd")}) {
    EXPECT_NE(other, b);
  }
}

TEST(TlsSessionFileNameTest, IsOnePathComponent) {
  EXPECT_EQ(TlsSessionFileName("10.0.0.2", 2379), "10.0.0.2_2379");
  EXPECT_EQ(TlsSessionFileName("etcd-0.example", 2379), "etcd-0.example_2379");
  EXPECT_EQ(TlsSessionFileName("::1", 2379), "__1_2379");
  EXPECT_EQ(TlsSessionFileName("fe80::1%eth0/..", 1), "fe80__1_eth0_.._1");
}

class TlsSessionCacheTest : public ::testing::Test {
 protected:
  TlsSessionCacheOptions Options() const {
    TlsSessionCacheOptions o;
    o.base_dir = dir_.Sub("data");
    o.sub_dir = "pool/.tls-sessions";
    return o;
  }
  TempDir dir_;
};

TEST_F(TlsSessionCacheTest, SavedSessionLoadsWithItsBindingOnly) {
  TlsSessionCache cache(Options());
  SslSessionPtr s = MakeSession();
  ASSERT_OK(cache.Save("h_1", kBinding, s.get()));
  struct stat st;
  ASSERT_EQ(lstat(cache.PathOf("h_1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(lstat(dir_.Sub("data/pool/.tls-sessions").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  int64_t expires = 0;
  SslSessionPtr back = cache.Load("h_1", kBinding, &expires);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(Der(back.get()), Der(s.get()));
  EXPECT_GT(expires, Now());
  EXPECT_EQ(cache.Load("h_1", std::string(64, 'c')), nullptr);
  EXPECT_EQ(cache.Load("other", kBinding), nullptr);
}

TEST_F(TlsSessionCacheTest, ExpiryIsTheSessionTimeoutCappedByTheLifetime) {
  TlsSessionCache cache(Options());
  ASSERT_OK(cache.Save("short", kBinding, MakeSession(/*timeout=*/60).get()));
  ASSERT_OK(cache.Save("long", kBinding, MakeSession(/*timeout=*/100000).get()));
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord s, ParseTlsSessionRecord(*ReadFile(cache.PathOf("short"))));
  EXPECT_LE(s.expires, Now() + 60);
  EXPECT_GT(s.expires, Now() + 50);
  ASSERT_OK_AND_ASSIGN(TlsSessionRecord l, ParseTlsSessionRecord(*ReadFile(cache.PathOf("long"))));
  EXPECT_LE(l.expires, Now() + kDefaultTlsSessionLifetime.count());
  EXPECT_GT(l.expires, Now() + kDefaultTlsSessionLifetime.count() - 10);
}

TEST_F(TlsSessionCacheTest, DisabledCacheNeitherLoadsNorWrites) {
  TlsSessionCacheOptions o = Options();
  o.lifetime = std::chrono::seconds(0);
  TlsSessionCache cache(o);
  ASSERT_OK(cache.Save("h_1", kBinding, MakeSession().get()));
  EXPECT_FALSE(PathExists(dir_.Sub("data")));
  EXPECT_EQ(cache.Load("h_1", kBinding), nullptr);
}

TEST_F(TlsSessionCacheTest, NonResumableSessionIsNotSaved) {
  TlsSessionCache cache(Options());
  SslSessionPtr empty(SSL_SESSION_new());
  ASSERT_OK(cache.Save("h_1", kBinding, empty.get()));
  EXPECT_FALSE(PathExists(cache.PathOf("h_1")));
}

TEST_F(TlsSessionCacheTest, ParentDirectoryComponentInSubDirIsRefused) {
  TlsSessionCacheOptions o = Options();
  o.sub_dir = "pool/../../escape";
  TlsSessionCache cache(o);
  EXPECT_THAT(cache.Save("h_1", kBinding, MakeSession().get()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'..'")));
  EXPECT_FALSE(PathExists(dir_.Sub("escape")));
}

TEST_F(TlsSessionCacheTest, ResumedConnectionsRewriteTheEntryOnlyPastHalfItsLifetime) {
  TlsSessionCache cache(Options());  // 3600 s
  EXPECT_TRUE(cache.ShouldSave(/*resumed=*/false, 0));
  EXPECT_TRUE(cache.ShouldSave(/*resumed=*/false, Now() + 3600));
  EXPECT_FALSE(cache.ShouldSave(/*resumed=*/true, Now() + 3000));
  EXPECT_TRUE(cache.ShouldSave(/*resumed=*/true, Now() + 1000));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
