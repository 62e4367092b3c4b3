#include "common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/host_paths.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::IsOk;
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
