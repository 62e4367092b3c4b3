#include "cni/ipam/local_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <ostream>

#include "cni/ipam/allocator.h"
#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/testing/fifo.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::RemoveTree;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

IpamArgs Args(const std::string& id, const std::string& ifname = "net1") {
  IpamArgs a;
  a.container_id = id;
  a.ifname = ifname;
  a.network_name = "rail1";
  a.netns = "/var/run/netns/" + id;
  return a;
}

IpamConfig Conf(const std::string& text) {
  auto conf = ParseIpamConfig(json::parse(text));
  EXPECT_TRUE(conf.ok()) << conf.status();
  return *conf;
}

const char kPool[] = R"({"subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.4"]})";

int Mode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

class LocalStoreTest : public ::testing::Test {
 protected:
  std::string Net(const std::string& rel = "") const {
    return rel.empty() ? dir_.Sub("rail1") : dir_.Sub("rail1/" + rel);
  }
  TempDir dir_;
  LocalStore store_{dir_.path()};
  Allocator alloc_{&store_, [] { return int64_t{5000}; }};
};

TEST_F(LocalStoreTest, WritesHostLocalLayoutAndSidecar) {
  IpamArgs args = Args("ctr1");
  args.cni_args = {{"K8S_POD_NAMESPACE", "ns1"}, {"K8S_POD_NAME", "pod1"}, {"K8S_POD_UID", "u1"}};
  ASSERT_OK(alloc_.Add(args, Conf(kPool)).status());
  ASSERT_OK_AND_ASSIGN(std::string record, ReadFile(Net("172.16.11.1")));
  EXPECT_EQ(record, "ctr1\r\nnet1");
  ASSERT_OK_AND_ASSIGN(std::string last, ReadFile(Net("last_reserved_ip.0")));
  EXPECT_EQ(last, "172.16.11.1");
  EXPECT_TRUE(PathExists(Net("lock")));
  ASSERT_OK_AND_ASSIGN(std::string meta_text, ReadFile(Net(".meta/172.16.11.1")));
  json meta = json::parse(meta_text);
  EXPECT_EQ(meta["netns"], "/var/run/netns/ctr1");
  EXPECT_EQ(meta["podNamespace"], "ns1");
  EXPECT_EQ(meta["podName"], "pod1");
  EXPECT_EQ(meta["podUid"], "u1");
  EXPECT_EQ(Mode(dir_.path() + "/rail1"), 0700);
  EXPECT_EQ(Mode(Net("172.16.11.1")), 0600);
  ASSERT_OK_AND_ASSIGN(Reservation got, store_.Get("rail1", "172.16.11.1"));
  EXPECT_EQ(got.container_id, "ctr1");
  EXPECT_EQ(got.pod_name, "pod1");
  EXPECT_EQ(got.pod_uid, "u1");
  EXPECT_EQ(got.netns, "/var/run/netns/ctr1");
  EXPECT_EQ(CniCode(store_.Get("rail1", "172.16.11.9").status()), kUnknownContainer);
}

TEST_F(LocalStoreTest, NonDurableStoreWritesTheSameLayout) {
  LocalStore fast(dir_.path(), /*durable=*/false);
  Allocator alloc(&fast, [] { return int64_t{1}; });
  ASSERT_OK(
      alloc
          .Add(Args("quick"), Conf(R"({"subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.4"],
                               "fsync":false})"))
          .status());
  ASSERT_OK_AND_ASSIGN(std::string record, ReadFile(Net("172.16.11.1")));
  EXPECT_EQ(record, "quick\r\nnet1");
}

TEST_F(LocalStoreTest, DelRemovesRecordAndSidecar) {
  ASSERT_OK(alloc_.Add(Args("ctr1"), Conf(kPool)).status());
  ASSERT_OK(alloc_.Del(Args("ctr1"), Conf(kPool)));
  EXPECT_FALSE(PathExists(Net("172.16.11.1")));
  EXPECT_FALSE(PathExists(Net(".meta/172.16.11.1")));
  EXPECT_OK(alloc_.Del(Args("ctr1"), Conf(kPool)));
}

TEST_F(LocalStoreTest, HonoursExistingHostLocalLeases) {
  WriteTestFile(Net("172.16.11.1"), "hostlocal-ctr\r\neth0");
  WriteTestFile(Net("172.16.11.2"), "legacyctr");  // pre-ifname host-local format
  WriteTestFile(Net("last_reserved_ip.0"), "172.16.11.2");
  ASSERT_OK_AND_ASSIGN(Result r, alloc_.Add(Args("ours"), Conf(kPool)));
  EXPECT_EQ(r.ips[0].address.ToString(), "172.16.11.3/24");
  // A DEL for the legacy owner releases its record whatever the ifname (host-local semantics).
  ASSERT_OK(alloc_.Del(Args("legacyctr", "eth0"), Conf(kPool)));
  EXPECT_FALSE(PathExists(Net("172.16.11.2")));
  EXPECT_TRUE(PathExists(Net("172.16.11.1")));
}

TEST_F(LocalStoreTest, ReferenceHostLocalSeesOurReservations) {
  if (!PathExists("/usr/lib/cni/host-local")) GTEST_SKIP() << "/usr/lib/cni/host-local missing";
  ASSERT_OK(alloc_.Add(Args("ours"), Conf(kPool)).status());
  CniRequest req;
  req.container_id = "theirs";
  req.ifname = "eth0";
  req.netns = "/var/run/netns/theirs";
  req.path = "/usr/lib/cni";
  std::string conf = fmt::format(
      R"({{"cniVersion":"1.0.0","name":"rail1","type":"macvlan","ipam":{{"type":"host-local",)"
      R"("dataDir":"{}","ranges":[[{{"subnet":"172.16.11.0/24","rangeStart":"172.16.11.1",)"
      R"("rangeEnd":"172.16.11.4"}}]]}}}})",
      dir_.path());
  ASSERT_OK_AND_ASSIGN(Result theirs, DelegateAdd("host-local", req, conf));
  ASSERT_EQ(theirs.ips.size(), 1u);
  EXPECT_NE(theirs.ips[0].address.ToString(), "172.16.11.1/24");
  // And we see theirs: the next two of ours avoid it.
  ASSERT_OK_AND_ASSIGN(Result a, alloc_.Add(Args("ours2"), Conf(kPool)));
  ASSERT_OK_AND_ASSIGN(Result b, alloc_.Add(Args("ours3"), Conf(kPool)));
  EXPECT_NE(a.ips[0].address.ToString(), theirs.ips[0].address.ToString());
  EXPECT_NE(b.ips[0].address.ToString(), theirs.ips[0].address.ToString());
  EXPECT_OK(DelegateDel("host-local", req, conf));
}

TEST_F(LocalStoreTest, CorruptRecordIsReportedAndOthersUnaffected) {
  WriteTestFile(Net("172.16.11.2"), std::string("\x01\x02garbage\n\n", 11));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_THAT(all[0].error, HasSubstr("record " + Net("172.16.11.2") + " is corrupt"));
  IpamConfig conf = Conf(kPool);
  ASSERT_OK_AND_ASSIGN(Result a, alloc_.Add(Args("a"), conf));
  ASSERT_OK_AND_ASSIGN(Result b, alloc_.Add(Args("b"), conf));
  EXPECT_EQ(a.ips[0].address.ToString(), "172.16.11.1/24");
  EXPECT_EQ(b.ips[0].address.ToString(), "172.16.11.3/24");
  IpamArgs c = Args("c");
  c.cni_args["IP"] = "172.16.11.2";
  auto r = alloc_.Add(c, conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kStoreCorrupt);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(Net("172.16.11.2")));
  // GC keeps the unreadable record (its owner is unknown) and releases the stale ones.
  ASSERT_OK(alloc_.Gc(Args("x"), conf, {Attachment{"a", "net1"}}));
  EXPECT_TRUE(PathExists(Net("172.16.11.2")));
  EXPECT_TRUE(PathExists(Net("172.16.11.1")));
  EXPECT_FALSE(PathExists(Net("172.16.11.3")));
}

TEST_F(LocalStoreTest, IgnoresForeignFilesInNetworkDir) {
  WriteTestFile(Net("README"), "hello");
  WriteTestFile(Net(".hidden"), "x");
  WriteTestFile(Net("last_reserved_ip.7"), "10.0.0.1");
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  EXPECT_TRUE(all.empty());
}

// Sets the modification time of `path` to `age` ago.
void Age(const std::string& path, std::chrono::seconds age) {
  struct timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= age.count();
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

TEST_F(LocalStoreTest, ListRemovesTempFilesLeftByKilledWritersButNotFreshOnes) {
  const auto old_age = LocalStore::kStaleTempAge + std::chrono::seconds(5);
  WriteTestFile(Net(".tmp-172.16.11.2-4242-1"), "dead\r\nnet1");
  WriteTestFile(Net(".meta/.tmp-172.16.11.2-4242-2"), "{}");
  WriteTestFile(Net(".tmp-172.16.11.3-4243-1"), "writing\r\nnet1");  // a live writer's
  // Today's names: ".tmp-<name>-<16 random hex digits>".
  WriteTestFile(Net(".tmp-172.16.11.4-0123456789abcdef"), "dead\r\nnet1");
  Age(Net(".tmp-172.16.11.4-0123456789abcdef"), old_age);
  Age(Net(".tmp-172.16.11.2-4242-1"), old_age);
  Age(Net(".meta/.tmp-172.16.11.2-4242-2"), old_age);
  WriteTestFile(Net("README"), "not ours");
  Age(Net("README"), old_age);
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  EXPECT_TRUE(all.empty());
  EXPECT_FALSE(PathExists(Net(".tmp-172.16.11.2-4242-1")));
  EXPECT_FALSE(PathExists(Net(".tmp-172.16.11.4-0123456789abcdef")));
  EXPECT_FALSE(PathExists(Net(".meta/.tmp-172.16.11.2-4242-2")));
  EXPECT_TRUE(PathExists(Net(".tmp-172.16.11.3-4243-1")));
  EXPECT_TRUE(PathExists(Net("README")));
}

TEST_F(LocalStoreTest, ReserveNeverOverwritesExistingRecord) {
  Reservation r;
  r.ip = "172.16.11.9";
  r.container_id = "a";
  r.ifname = "net1";
  ASSERT_OK_AND_ASSIGN(bool first, store_.Reserve("rail1", r));
  EXPECT_TRUE(first);
  r.container_id = "b";
  ASSERT_OK_AND_ASSIGN(bool second, store_.Reserve("rail1", r));
  EXPECT_FALSE(second);
  ASSERT_OK_AND_ASSIGN(std::string record, ReadFile(Net("172.16.11.9")));
  EXPECT_EQ(record, "a\r\nnet1");
}

TEST_F(LocalStoreTest, LockHeldByAnotherOpenFileTimesOutWithCode11) {
  ASSERT_OK(MakeDirs(Net(), 0700));
  UniqueFd fd(::open(Net("lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::flock(fd.get(), LOCK_EX), 0);
  auto r = alloc_.Add(Args("a"), Conf(R"({"subnet":"172.16.11.0/24","lockTimeoutMs":100})"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kTryAgainLater);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("still held by another process after 100 ms"));
  ::flock(fd.get(), LOCK_UN);
  EXPECT_OK(alloc_.Add(Args("a"), Conf(kPool)).status());
}

// A hostile entry planted in the network directory before an ADD. `outside` is a directory
// beside the data directory holding "victim" ("precious", mode 0644): nothing may be created,
// changed or removed there, and the ADD must end promptly (a FIFO must not block it).
struct HostileEntry {
  std::string name;
  std::function<void(const std::string& net, const std::string& outside)> plant;
  int code;
  std::string text;  // expected in the message
};

void PrintTo(const HostileEntry& c, std::ostream* os) { *os << c.name; }

void Symlink(const std::string& target, const std::string& link) {
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0) << link << ": " << strerror(errno);
}

// "name -> contents" of every entry of `dir` (symlinks as "-> target").
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  auto names = ListDir(dir);
  for (const std::string& n : names.value_or(std::vector<std::string>{})) {
    std::string path = JoinPath(dir, n);
    auto link = ReadLink(path);
    auto text = ReadFileNoFollow(path);
    out[n] = link.ok() ? "-> " + *link : text.ok() ? *text : text.status().ToString();
    out[n] += fmt::format(" mode {:o}", Mode(path));
  }
  return out;
}

class HostileDataDirTest : public ::testing::TestWithParam<HostileEntry> {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeDirs(net_, 0700));
    ASSERT_OK(MakeDirs(outside_, 0755));
    WriteTestFile(JoinPath(outside_, "victim"), "precious");
    ASSERT_EQ(::chmod(JoinPath(outside_, "victim").c_str(), 0644), 0);
    // A file named like the first address: a Release through a followed .meta would delete it.
    WriteTestFile(JoinPath(outside_, "172.16.11.1"), "not a sidecar");
  }
  std::vector<std::string> Fifos() const {
    std::vector<std::string> out;
    for (const char* n : {"lock", ".meta", "172.16.11.1", "last_reserved_ip.0"}) {
      out.push_back(JoinPath(net_, n));
    }
    return out;
  }

  TempDir dir_;
  std::string data_ = dir_.Sub("data");
  std::string net_ = dir_.Sub("data/rail1");
  std::string outside_ = dir_.Sub("outside");
  LocalStore store_{data_};
  Allocator alloc_{&store_, [] { return int64_t{5000}; }};
};

TEST_P(HostileDataDirTest, AddIsRefusedPromptlyAndNothingOutsideChanges) {
  const HostileEntry& c = GetParam();
  c.plant(net_, outside_);
  const auto before = Snapshot(outside_);
  IpamArgs args = Args("hostile");
  args.cni_args["IP"] = "172.16.11.1";
  absl::StatusOr<Result> r = absl::UnknownError("not run");
  ASSERT_TRUE(FinishesWithin([&] { r = alloc_.Add(args, Conf(kPool)); }, Fifos()))
      << "ADD blocked on " << c.name;
  ASSERT_FALSE(r.ok()) << c.name;
  EXPECT_EQ(CniCode(r.status()), c.code) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.text));
  EXPECT_EQ(Snapshot(outside_), before);
  auto record = ReadFileNoFollow(JoinPath(net_, "172.16.11.1"));
  EXPECT_FALSE(record.ok() && record->find("hostile") != std::string::npos)
      << "the failed ADD kept its record";
}

INSTANTIATE_TEST_SUITE_P(
    Entries, HostileDataDirTest,
    ::testing::Values(HostileEntry{"LockSymlinkToAFile",
                                   [](const std::string& net, const std::string& out) {
                                     Symlink(JoinPath(out, "victim"), JoinPath(net, "lock"));
                                   },
                                   kIoFailure, "lock is a symbolic link, not a regular file"},
                      HostileEntry{"LockSymlinkToNothing",
                                   [](const std::string& net, const std::string& out) {
                                     Symlink(JoinPath(out, "created-through-lock"),
                                             JoinPath(net, "lock"));
                                   },
                                   kIoFailure, "lock is a symbolic link, not a regular file"},
                      HostileEntry{"LockFifo",
                                   [](const std::string& net, const std::string&) {
                                     MakeFifo(JoinPath(net, "lock"));
                                   },
                                   kIoFailure, "lock is a FIFO, not a regular file"},
                      HostileEntry{"MetaSymlinkToADirectory",
                                   [](const std::string& net, const std::string& out) {
                                     Symlink(out, JoinPath(net, ".meta"));
                                   },
                                   kIoFailure, ".meta: is a symbolic link (not followed)"},
                      HostileEntry{"MetaFifo",
                                   [](const std::string& net, const std::string&) {
                                     MakeFifo(JoinPath(net, ".meta"));
                                   },
                                   kIoFailure, ".meta: is a FIFO, not a directory"},
                      HostileEntry{"RecordFifo",
                                   [](const std::string& net, const std::string&) {
                                     MakeFifo(JoinPath(net, "172.16.11.1"));
                                   },
                                   kStoreCorrupt, "172.16.11.1: is a FIFO, not a regular file"},
                      HostileEntry{"RecordSymlink",
                                   [](const std::string& net, const std::string& out) {
                                     Symlink(JoinPath(out, "victim"), JoinPath(net, "172.16.11.1"));
                                   },
                                   kStoreCorrupt, "172.16.11.1: is a symbolic link (not followed)"},
                      HostileEntry{"NetworkDirSymlink",
                                   [](const std::string& net, const std::string& out) {
                                     RemoveTree(net);
                                     Symlink(out, net);
                                   },
                                   kIoFailure, "rail1: is a symbolic link (not followed)"}),
    [](const ::testing::TestParamInfo<HostileEntry>& info) { return info.param.name; });

TEST_F(HostileDataDirTest, LastReservedFifoFailsAddPromptlyWithCode5) {
  MakeFifo(JoinPath(net_, "last_reserved_ip.0"));
  absl::StatusOr<Result> r = absl::UnknownError("not run");
  ASSERT_TRUE(FinishesWithin([&] { r = alloc_.Add(Args("a"), Conf(kPool)); }, Fifos()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kIoFailure);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("last_reserved_ip.0: is a FIFO, not a regular file"));
}

TEST_F(HostileDataDirTest, FifoRecordIsListedAsUnreadableAndItsAddressSkipped) {
  MakeFifo(JoinPath(net_, "172.16.11.1"));
  absl::StatusOr<Result> r = absl::UnknownError("not run");
  ASSERT_TRUE(FinishesWithin([&] { r = alloc_.Add(Args("a"), Conf(kPool)); }, Fifos()));
  ASSERT_OK(r.status());
  EXPECT_EQ(r->ips[0].address.ToString(), "172.16.11.2/24");
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_THAT(all[0].error, HasSubstr("is a FIFO, not a regular file"));
}

TEST_F(HostileDataDirTest, ReleaseThroughASymlinkedMetaIsRefusedAndDeletesNothingOutside) {
  ASSERT_OK(alloc_.Add(Args("a"), Conf(kPool)).status());
  RemoveTree(JoinPath(net_, ".meta"));
  Symlink(outside_, JoinPath(net_, ".meta"));
  const auto before = Snapshot(outside_);
  absl::Status st = alloc_.Del(Args("a"), Conf(kPool));
  EXPECT_EQ(CniCode(st), kIoFailure) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(".meta: is a symbolic link (not followed)"));
  EXPECT_EQ(Snapshot(outside_), before);
}

TEST_F(HostileDataDirTest, SymlinkedSidecarIsNotFollowed) {
  ASSERT_OK(alloc_.Add(Args("a"), Conf(kPool)).status());
  WriteTestFile(JoinPath(outside_, "meta.json"), R"({"netns": "/outside"})");
  ASSERT_EQ(::unlink(JoinPath(net_, ".meta/172.16.11.1").c_str()), 0);
  Symlink(JoinPath(outside_, "meta.json"), JoinPath(net_, ".meta/172.16.11.1"));
  ASSERT_OK_AND_ASSIGN(Reservation r, store_.Get("rail1", "172.16.11.1"));
  EXPECT_EQ(r.container_id, "a");
  EXPECT_EQ(r.netns, "");
}

TEST_F(HostileDataDirTest, SymlinksAtPidBasedTempNamesNeitherBlockNorRedirectAdd) {
  // Every temp name the old pid + counter scheme could produce for this process's next writes.
  ASSERT_OK(MakeDirs(JoinPath(net_, ".meta"), 0700));
  for (int k = 1; k <= 2000; ++k) {
    for (const std::string& dir : {net_, JoinPath(net_, ".meta")}) {
      for (const char* name : {"172.16.11.1", "last_reserved_ip.0"}) {
        Symlink(JoinPath(outside_, "victim"),
                JoinPath(dir, fmt::format(".tmp-{}-{}-{}", name, ::getpid(), k)));
      }
    }
  }
  const auto before = Snapshot(outside_);
  ASSERT_OK_AND_ASSIGN(Result r, alloc_.Add(Args("a"), Conf(kPool)));
  EXPECT_EQ(r.ips[0].address.ToString(), "172.16.11.1/24");
  EXPECT_EQ(Snapshot(outside_), before);
}

TEST(ParseRecordTest, Forms) {
  Reservation r = ParseRecord("10.0.0.1", "abc\r\nnet1\n", "/p");
  EXPECT_EQ(r.container_id, "abc");
  EXPECT_EQ(r.ifname, "net1");
  EXPECT_TRUE(r.error.empty());
  Reservation legacy = ParseRecord("10.0.0.1", "abc", "/p");
  EXPECT_EQ(legacy.container_id, "abc");
  EXPECT_EQ(legacy.ifname, "");
  Reservation q = ParseRecord("10.0.0.1", "_quarantine\r\n1234", "/p");
  EXPECT_TRUE(q.quarantined());
  EXPECT_EQ(q.quarantine_until, 1234);
  for (const char* bad : {"", "\r\nnet1", "abc\r\nbad/if", "_quarantine\r\nsoon", "a b"}) {
    EXPECT_THAT(ParseRecord("10.0.0.1", bad, "/p").error, HasSubstr("record /p is corrupt")) << bad;
  }
  EXPECT_EQ(EncodeRecord(r), "abc\r\nnet1");
  EXPECT_EQ(EncodeRecord(q), "_quarantine\r\n1234");
}

}  // namespace
}  // namespace rdmashare::cni::ipam
