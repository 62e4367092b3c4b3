// Storage faults under rdmashare-ipam's local store (in-process IpamAdd/IpamDel/IpamGc, exactly
// what rdmashare-macvlan runs): the data directory on a full tiny tmpfs, on a read-only mount,
// with corrupted and truncated reservation files. Expected: a clear error (CNI code, message
// naming the file or the cause), no crash, and no damage to the other reservations. Root only
// (mount); every mount is undone in TearDown.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cni/ipam/ipam.h"
#include "cni/ipam/local_store.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

constexpr char kNetwork[] = "rail1";

class StorageFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    data_ = dir_.Sub("data");
    ASSERT_OK(MakeDirs(data_, 0700));
  }
  void TearDown() override {
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
      EXPECT_EQ(::umount2(it->c_str(), MNT_DETACH), 0) << *it << ": " << strerror(errno);
    }
  }
  void Mount(const char* source, const std::string& target, const char* type, unsigned long flags,
             const char* options) {
    ASSERT_EQ(::mount(source, target.c_str(), type, flags, options), 0)
        << target << ": " << strerror(errno);
    mounts_.push_back(target);
  }

  IpamArgs Args(const std::string& id) const {
    IpamArgs a;
    a.container_id = id;
    a.ifname = "net1";
    a.network_name = kNetwork;
    a.netns = "/var/run/netns/" + id;
    a.ipam_conf = json{{"type", "rdmashare-ipam"},
                       {"subnet", "172.16.11.0/24"},
                       {"ips", {"172.16.11.10-172.16.11.200"}},
                       {"gateway", "172.16.11.254"},
                       {"dataDir", data_},
                       {"lockTimeoutMs", 2000}};
    return a;
  }
  // Every record of the network (parsed by the store itself), ip -> container id or error.
  std::map<std::string, std::string> Records() const {
    std::map<std::string, std::string> out;
    LocalStore store(data_);
    auto all = store.List(kNetwork);
    EXPECT_TRUE(all.ok()) << all.status();
    for (const Reservation& r : all.value_or(std::vector<Reservation>{})) {
      out[r.ip] = r.error.empty() ? r.container_id : "ERROR " + r.error;
    }
    return out;
  }
  std::string Ip(const absl::StatusOr<Result>& r) const {
    return r.ok() && !r->ips.empty() ? r->ips[0].address.addr().ToString() : "";
  }

  TempDir dir_;
  std::string data_;
  std::vector<std::string> mounts_;
};

TEST_F(StorageFaultsTest, FullDiskFailsAddWithIoErrorAndKeepsEveryReservation) {
  Mount("tmpfs", data_, "tmpfs", 0, "size=64k,mode=0700");
  std::map<std::string, std::string> held;  // ip -> id
  absl::StatusOr<Result> last = absl::UnknownError("no ADD ran");
  int n = 0;
  for (; n < 200; ++n) {
    std::string id = fmt::format("full{}", n);
    last = IpamAdd(Args(id));
    if (!last.ok()) break;
    held[Ip(last)] = id;
  }
  ASSERT_FALSE(last.ok()) << "64 KiB never filled up after " << n << " ADDs";
  ASSERT_GT(n, 0) << "not even one ADD fit: " << last.status();
  EXPECT_EQ(CniCode(last.status()), kIoFailure) << last.status();
  EXPECT_THAT(std::string(last.status().message()), HasSubstr("No space left on device"));
  EXPECT_THAT(std::string(last.status().message()), HasSubstr(data_));
  // The failed ADD left no record (nor half of one); every earlier reservation is intact.
  EXPECT_EQ(Records(), held);
  // Idempotent ADD of a holder still answers from the store.
  auto again = IpamAdd(Args(held.begin()->second));
  ASSERT_OK(again.status());
  EXPECT_EQ(Ip(again), held.begin()->first);
  // Freeing space makes ADD work again.
  ASSERT_OK(IpamDel(Args(held.begin()->second)));
  held.erase(held.begin());
  auto after = IpamAdd(Args("full-after"));
  ASSERT_OK(after.status());
  held[Ip(after)] = "full-after";
  EXPECT_EQ(Records(), held);
}

TEST_F(StorageFaultsTest, ReadOnlyDataDirFailsAddAndDelClearlyAndKeepsReservations) {
  auto first = IpamAdd(Args("ro1"));
  ASSERT_OK(first.status());
  std::map<std::string, std::string> before = Records();
  ASSERT_EQ(before.size(), 1u);
  Mount(data_.c_str(), data_, nullptr, MS_BIND, nullptr);
  // A remount changes the bind mount above; it is no new mount to undo.
  ASSERT_EQ(::mount(nullptr, data_.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0)
      << strerror(errno);

  auto add = IpamAdd(Args("ro2"));
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(CniCode(add.status()), kIoFailure) << add.status();
  EXPECT_THAT(std::string(add.status().message()), HasSubstr("Read-only file system"));
  EXPECT_THAT(std::string(add.status().message()), HasSubstr(data_));
  absl::Status del = IpamDel(Args("ro1"));
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(CniCode(del), kIoFailure) << del;
  EXPECT_THAT(std::string(del.message()), HasSubstr("Read-only file system"));
  EXPECT_EQ(Records(), before);
  // Writable again: the held address is still the holder's, and DEL/ADD work.
  ASSERT_EQ(::mount(nullptr, data_.c_str(), nullptr, MS_BIND | MS_REMOUNT, nullptr), 0)
      << strerror(errno);
  auto again = IpamAdd(Args("ro1"));
  ASSERT_OK(again.status());
  EXPECT_EQ(Ip(again), Ip(first));
  ASSERT_OK(IpamDel(Args("ro1")));
  ASSERT_OK(IpamAdd(Args("ro2")).status());
}

// Corrupt / truncated records: what they look like on disk after a bad write or a disk error.
struct CorruptCase {
  std::string name;
  std::string content;
};

class CorruptRecordTest : public StorageFaultsTest,
                          public ::testing::WithParamInterface<CorruptCase> {};

TEST_P(CorruptRecordTest, IsNamedInErrorsSkippedByAllocationAndOthersStayIntact) {
  std::map<std::string, std::string> held;
  for (const char* id : {"good1", "good2", "victim"}) {
    auto r = IpamAdd(Args(id));
    ASSERT_OK(r.status());
    held[Ip(r)] = id;
  }
  std::string victim_ip;
  for (const auto& [ip, id] : held) {
    if (id == "victim") victim_ip = ip;
  }
  std::string path = JoinPath(JoinPath(data_, kNetwork), victim_ip);
  // Overwrite in place, like a torn write would leave it.
  WriteTestFile(path, GetParam().content);

  std::map<std::string, std::string> records = Records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_THAT(records[victim_ip], HasSubstr("record " + path));
  for (const auto& [ip, id] : held) {
    if (id != "victim") {
      EXPECT_EQ(records[ip], id);
    }
  }
  // New ADDs never hand out the unreadable address and never touch the file.
  for (int i = 0; i < 5; ++i) {
    auto r = IpamAdd(Args(fmt::format("new{}", i)));
    ASSERT_OK(r.status());
    EXPECT_NE(Ip(r), victim_ip);
  }
  EXPECT_EQ(ReadFile(path).value_or("<gone>"), GetParam().content);
  // Asking for that address explicitly names the file and the problem (code 105).
  IpamArgs want = Args("asker");
  want.cni_args["IP"] = victim_ip;
  auto asked = IpamAdd(want);
  ASSERT_FALSE(asked.ok());
  EXPECT_EQ(CniCode(asked.status()), kStoreCorrupt) << asked.status();
  EXPECT_THAT(std::string(asked.status().message()), HasSubstr(path));
  // GC keeps the unreadable record (it cannot know the owner) but releases what is not valid.
  Attachment keep{"good1", "net1"};
  ASSERT_OK(IpamGc(Args("gc"), {keep}));
  records = Records();
  EXPECT_EQ(records.size(), 2u);
  EXPECT_THAT(records[victim_ip], HasSubstr("is corrupt"));
  // The owner's DEL succeeds (DEL must converge) without removing what it cannot read.
  ASSERT_OK(IpamDel(Args("victim")));
  EXPECT_TRUE(PathExists(path));
}

INSTANTIATE_TEST_SUITE_P(
    Records, CorruptRecordTest,
    ::testing::Values(CorruptCase{"Garbage", "\x7f\x45\x4c\x46\x02\x01garbage"},
                      CorruptCase{"Empty", ""}, CorruptCase{"TruncatedAfterLineBreak", "\r\n"},
                      CorruptCase{"TruncatedQuarantine", "_quarantine\r\n"},
                      CorruptCase{"NulBytes", std::string("vict\0im\r\nnet1", 13)},
                      CorruptCase{"TraversalId", "../../etc/passwd\r\nnet1"}),
    [](const ::testing::TestParamInfo<CorruptCase>& info) { return info.param.name; });

TEST_F(StorageFaultsTest, DataDirAndRecordsAreCreatedPrivate) {
  std::string fresh = dir_.Sub("fresh/nested");
  IpamArgs a = Args("mode1");
  a.ipam_conf["dataDir"] = fresh;
  auto r = IpamAdd(a);
  ASSERT_OK(r.status());
  struct stat st {};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(JoinPath(fresh, kNetwork).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(JoinPath(JoinPath(fresh, kNetwork), Ip(r)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace rdmashare::cni::ipam
