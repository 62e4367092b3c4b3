#include "common/files.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "common/host_paths.h"
#include "common/testing/fifo.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(JoinPathTest, CollapsesSlashesBetweenParts) {
  EXPECT_EQ(JoinPath("/sys/", "/class"), "/sys/class");
  EXPECT_EQ(JoinPath("/", "dev"), "/dev");
  EXPECT_EQ(JoinPath("", "x"), "x");
  EXPECT_EQ(JoinPath("a", ""), "a");
}

TEST(ReadAttrTest, StripsTrailingNewline) {
  TempDir t;
  WriteTestFile(t.Sub("a"), "4: ACTIVE\n");
  ASSERT_OK_AND_ASSIGN(std::string v, ReadAttr(t.Sub("a")));
  EXPECT_EQ(v, "4: ACTIVE");
}

TEST(ReadAttrTest, MissingFileIsNotFoundNamingThePath) {
  TempDir t;
  EXPECT_THAT(ReadAttr(t.Sub("nope")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(t.Sub("nope"))));
}

TEST(ReadAttrTest, RejectsNulBytes) {
  TempDir t;
  WriteTestFile(t.Sub("a"), std::string("ab\0c", 4));
  EXPECT_THAT(ReadAttr(t.Sub("a")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ReadAttrTest, RejectsOversizedContent) {
  TempDir t;
  WriteTestFile(t.Sub("a"), std::string(5000, 'x'));
  EXPECT_THAT(ReadAttr(t.Sub("a")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ReadIntAttrTest, ParsesNegativeAndRejectsGarbage) {
  TempDir t;
  WriteTestFile(t.Sub("n"), "-1\n");
  WriteTestFile(t.Sub("g"), "12abc\n");
  WriteTestFile(t.Sub("e"), "\n");
  ASSERT_OK_AND_ASSIGN(int64_t n, ReadIntAttr(t.Sub("n")));
  EXPECT_EQ(n, -1);
  EXPECT_THAT(ReadIntAttr(t.Sub("g")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("12abc")));
  EXPECT_THAT(ReadIntAttr(t.Sub("e")), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ListDirTest, ReturnsSortedNamesWithoutDots) {
  TempDir t;
  WriteTestFile(t.Sub("d/b"), "");
  WriteTestFile(t.Sub("d/a"), "");
  ASSERT_OK_AND_ASSIGN(auto names, ListDir(t.Sub("d")));
  EXPECT_THAT(names, ElementsAre("a", "b"));
  EXPECT_THAT(ListDir(t.Sub("none")), StatusIs(absl::StatusCode::kNotFound));
}

TEST(WriteFileAtomicTest, ReplacesContentAndSetsMode) {
  TempDir t;
  ASSERT_OK(WriteFileAtomic(t.Sub("f"), "one", 0600));
  ASSERT_OK(WriteFileAtomic(t.Sub("f"), "two", 0600));
  ASSERT_OK_AND_ASSIGN(std::string v, ReadFile(t.Sub("f")));
  EXPECT_EQ(v, "two");
  struct stat st;
  ASSERT_EQ(::stat(t.Sub("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK_AND_ASSIGN(auto names, ListDir(t.path()));
  EXPECT_THAT(names, ElementsAre("f"));
}

std::string Mode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? fmt::format("{:o}", st.st_mode & 07777) : "absent";
}

TEST(WriteFileAtomicTest, SymlinksPlantedAtPredictableTempNamesAreNotFollowed) {
  TempDir t;
  WriteTestFile(t.Sub("victim"), "precious");
  ASSERT_EQ(::chmod(t.Sub("victim").c_str(), 0600), 0);
  // Every name a temp file could get from the pid (old scheme "<path>.tmp.<pid>", and pid-based
  // variants): none may be opened through.
  for (const std::string& name :
       {fmt::format("f.tmp.{}", ::getpid()), fmt::format(".f.tmp.{}", ::getpid()),
        fmt::format("f.tmp-{}", ::getpid()), fmt::format(".f.tmp-{}", ::getpid())}) {
    ASSERT_EQ(::symlink(t.Sub("victim").c_str(), t.Sub(name).c_str()), 0) << name;
  }
  ASSERT_OK(WriteFileAtomic(t.Sub("f"), "written", 0644));
  ASSERT_OK_AND_ASSIGN(std::string victim, ReadFile(t.Sub("victim")));
  EXPECT_EQ(victim, "precious");
  EXPECT_EQ(Mode(t.Sub("victim")), "600");
  ASSERT_OK_AND_ASSIGN(std::string f, ReadFileNoFollow(t.Sub("f")));
  EXPECT_EQ(f, "written");
  EXPECT_EQ(Mode(t.Sub("f")), "644");
}

TEST(WriteFileAtomicTest, TempFilesGetFreshRandomHiddenNames) {
  TempDir t;
  UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  ASSERT_TRUE(in.valid());
  ASSERT_GE(::inotify_add_watch(in.get(), t.path().c_str(), IN_CREATE), 0);
  for (int i = 0; i < 3; ++i) ASSERT_OK(WriteFileAtomic(t.Sub("spec.json"), "x", 0644));
  std::set<std::string> names;
  alignas(struct inotify_event) char buf[4096];
  ssize_t n = ::read(in.get(), buf, sizeof(buf));
  for (char* p = buf; n > 0 && p < buf + n;) {
    auto* ev = reinterpret_cast<struct inotify_event*>(p);
    if (ev->len > 0) names.insert(ev->name);
    p += sizeof(struct inotify_event) + ev->len;
  }
  ASSERT_EQ(names.size(), 3u) << ::testing::PrintToString(names);
  const std::regex pattern(R"(\.spec\.json\.tmp-[0-9a-f]{16})");
  for (const std::string& name : names) {
    EXPECT_TRUE(std::regex_match(name, pattern)) << name;
    EXPECT_EQ(name.find(std::to_string(::getpid())), std::string::npos) << name;
  }
  ASSERT_OK_AND_ASSIGN(auto left, ListDir(t.path()));
  EXPECT_THAT(left, ElementsAre("spec.json"));
}

TEST(WriteFileAtomicTest, ReplacesASymlinkAtThePathInsteadOfWritingThroughIt) {
  TempDir t;
  WriteTestFile(t.Sub("victim"), "precious");
  ASSERT_EQ(::symlink(t.Sub("victim").c_str(), t.Sub("f").c_str()), 0);
  ASSERT_OK(WriteFileAtomic(t.Sub("f"), "written", 0600));
  ASSERT_OK_AND_ASSIGN(std::string victim, ReadFile(t.Sub("victim")));
  EXPECT_EQ(victim, "precious");
  ASSERT_OK_AND_ASSIGN(std::string f, ReadFileNoFollow(t.Sub("f")));
  EXPECT_EQ(f, "written");
}

TEST(WriteFileAtomicTest, DirectoryAtThePathFailsAndLeavesNoTempFile) {
  TempDir t;
  ASSERT_OK(MakeDirs(t.Sub("f")));
  EXPECT_THAT(WriteFileAtomic(t.Sub("f"), "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(t.Sub("f") + ": is a directory, not a regular file")));
  ASSERT_OK_AND_ASSIGN(auto left, ListDir(t.path()));
  EXPECT_THAT(left, ElementsAre("f"));
}

TEST(CreateTempFileAtTest, CreatesDistinctFilesUnderThePrefix) {
  TempDir t;
  ASSERT_OK_AND_ASSIGN(UniqueFd dir, OpenDir(t.path()));
  ASSERT_OK_AND_ASSIGN(TempFile a, CreateTempFileAt(dir.get(), t.path(), ".tmp-x-", 0600));
  ASSERT_OK_AND_ASSIGN(TempFile b, CreateTempFileAt(dir.get(), t.path(), ".tmp-x-", 0600));
  EXPECT_NE(a.name, b.name);
  EXPECT_EQ(a.name.size(), std::string(".tmp-x-").size() + kTempSuffixLength);
  EXPECT_EQ(Mode(t.Sub(a.name)), "600");
}

// Non-regular files where ReadFile expects one: refused promptly, whatever the variant.
TEST(ReadFileTest, RefusesFifoWithoutBlocking) {
  TempDir t;
  MakeFifo(t.Sub("fifo"));
  absl::StatusOr<std::string> follow, no_follow, at, attr;
  ASSERT_TRUE(FinishesWithin(
      [&] {
        follow = ReadFile(t.Sub("fifo"));
        no_follow = ReadFileNoFollow(t.Sub("fifo"));
        attr = ReadAttr(t.Sub("fifo"));
        auto dir = OpenDir(t.path());
        at = dir.ok() ? ReadFileAt(dir->get(), t.path(), "fifo") : dir.status();
      },
      {t.Sub("fifo")}));
  for (const auto* r : {&follow, &no_follow, &at, &attr}) {
    EXPECT_THAT(*r, StatusIs(absl::StatusCode::kFailedPrecondition,
                             HasSubstr(t.Sub("fifo") + ": is a FIFO, not a regular file")));
  }
}

TEST(ReadFileTest, RefusesDirectoriesAndDevices) {
  TempDir t;
  ASSERT_OK(MakeDirs(t.Sub("d")));
  EXPECT_THAT(ReadFile(t.Sub("d")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is a directory")));
  EXPECT_THAT(ReadFile("/dev/null"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("a character device")));
}

TEST(ReadFileTest, FollowsLinksLikeAConfigMapAndReadsProcFiles) {
  TempDir t;
  WriteTestFile(t.Sub("..2024/config.json"), "{}");
  ASSERT_EQ(::symlink("..2024", t.Sub("..data").c_str()), 0);
  ASSERT_EQ(::symlink("..data/config.json", t.Sub("config.json").c_str()), 0);
  ASSERT_OK_AND_ASSIGN(std::string v, ReadFile(t.Sub("config.json")));
  EXPECT_EQ(v, "{}");
  ASSERT_OK_AND_ASSIGN(std::string status, ReadFile("/proc/self/status"));
  EXPECT_THAT(status, HasSubstr("Pid:"));
}

TEST(ReadFileNoFollowTest, RefusesASymlinkNamingIt) {
  TempDir t;
  WriteTestFile(t.Sub("target"), "secret");
  ASSERT_EQ(::symlink(t.Sub("target").c_str(), t.Sub("link").c_str()), 0);
  EXPECT_THAT(ReadFileNoFollow(t.Sub("link")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(t.Sub("link") + ": is a symbolic link (not followed)")));
  ASSERT_OK_AND_ASSIGN(UniqueFd dir, OpenDir(t.path()));
  EXPECT_THAT(ReadFileAt(dir.get(), t.path(), "link"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("symbolic link")));
  EXPECT_THAT(ReadFileAt(dir.get(), t.path(), "../etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(OpenDirTest, RefusesASymlinkedLastComponentOnlyWhenAsked) {
  TempDir t;
  ASSERT_OK(MakeDirs(t.Sub("real")));
  ASSERT_EQ(::symlink(t.Sub("real").c_str(), t.Sub("link").c_str()), 0);
  EXPECT_OK(OpenDir(t.Sub("link")).status());
  EXPECT_THAT(OpenDir(t.Sub("link"), /*follow_last=*/false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("symbolic link")));
  ASSERT_OK_AND_ASSIGN(UniqueFd dir, OpenDir(t.path()));
  EXPECT_THAT(OpenDirAt(dir.get(), t.path(), "link"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("symbolic link")));
  WriteTestFile(t.Sub("file"), "");
  EXPECT_THAT(OpenDirAt(dir.get(), t.path(), "file"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));
  EXPECT_THAT(OpenDirAt(dir.get(), t.path(), "none"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto names, ListDirAt(dir.get(), t.path()));
  EXPECT_THAT(names, ElementsAre("file", "link", "real"));
}

TEST(MakeDirsTest, CreatesParentsAndIsIdempotent) {
  TempDir t;
  ASSERT_OK(MakeDirs(t.Sub("a/b/c")));
  ASSERT_OK(MakeDirs(t.Sub("a/b/c")));
  EXPECT_TRUE(PathExists(t.Sub("a/b/c")));
  WriteTestFile(t.Sub("file"), "");
  EXPECT_THAT(MakeDirs(t.Sub("file")), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ParseDevNumberTest, AcceptsMajorMinorAndRejectsMalformed) {
  ASSERT_OK_AND_ASSIGN(auto mm, ParseDevNumber("231:192"));
  EXPECT_EQ(mm.first, 231u);
  EXPECT_EQ(mm.second, 192u);
  for (const char* bad :
       {"", "231", ":1", "1:", "a:b", "1:2:3", "4096:0", "1:1048576", "99999999999:1"}) {
    EXPECT_THAT(ParseDevNumber(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(BaseNameTest, ReturnsLastComponent) {
  EXPECT_EQ(BaseName("/a/b/c"), "c");
  EXPECT_EQ(BaseName("/a/b/"), "b");
  EXPECT_EQ(BaseName("c"), "c");
}

}  // namespace
}  // namespace rdmashare
