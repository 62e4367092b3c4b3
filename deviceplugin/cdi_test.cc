#include "deviceplugin/cdi.h"

#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/fifo.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kKind[] = "spidernet.io/shared_cx5_gpu1";

CdiContainerEdits TwoNodes() {
  CdiContainerEdits e;
  e.device_nodes = {
      {"/dev/infiniband/uverbs0", "/dev/infiniband/uverbs0", "c", 231, 192, "rw"},
      {"/dev/infiniband/rdma_cm", "/host/dev/infiniband/rdma_cm", "c", 10, 58, "rw"},
  };
  return e;
}

rdma::CharDevice Char(const std::string& name, uint32_t major, uint32_t minor) {
  return rdma::CharDevice{name, major, minor, "/dev/infiniband/" + name, true};
}

std::vector<std::string> Names(const std::string& dir) {
  auto names = ListDir(dir);
  return names.ok() ? *names : std::vector<std::string>{};
}

struct stat Stat(const std::string& path) {
  struct stat st = {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(RenderCdiSpecTest, ProducesTheExactDocument) {
  CdiContainerEdits e = TwoNodes();
  e.env = {"RDMASHARE_SHARED_CX5_GPU1_IBDEVS=mlx5_0"};
  e.mounts = {{"/opt/cni/bin/rdmashare", "/usr/local/bin/rdmashare", {"ro", "bind"}}};
  ASSERT_OK_AND_ASSIGN(std::string text, RenderCdiSpec(kKind, e));
  EXPECT_EQ(text, R"({
  "cdiVersion": "0.5.0",
  "kind": "spidernet.io/shared_cx5_gpu1",
  "devices": [
    {
      "name": "all",
      "containerEdits": {
        "env": [
          "RDMASHARE_SHARED_CX5_GPU1_IBDEVS=mlx5_0"
        ],
        "deviceNodes": [
          {
            "path": "/dev/infiniband/uverbs0",
            "hostPath": "/dev/infiniband/uverbs0",
            "type": "c",
            "major": 231,
            "minor": 192,
            "permissions": "rw"
          },
          {
            "path": "/dev/infiniband/rdma_cm",
            "hostPath": "/host/dev/infiniband/rdma_cm",
            "type": "c",
            "major": 10,
            "minor": 58,
            "permissions": "rw"
          }
        ],
        "mounts": [
          {
            "hostPath": "/opt/cni/bin/rdmashare",
            "containerPath": "/usr/local/bin/rdmashare",
            "options": [
              "ro",
              "bind"
            ]
          }
        ]
      }
    }
  ]
}
)");
}

TEST(RenderCdiSpecTest, OmitsUnknownNumbersAndEmptyFields) {
  CdiContainerEdits e;
  e.device_nodes = {{"/dev/infiniband/umad0", "", "c", 0, 0, ""}};
  ASSERT_OK_AND_ASSIGN(std::string text, RenderCdiSpec("a.b/c", e));
  EXPECT_EQ(text, R"({
  "cdiVersion": "0.5.0",
  "kind": "a.b/c",
  "devices": [
    {
      "name": "all",
      "containerEdits": {
        "deviceNodes": [
          {
            "path": "/dev/infiniband/umad0",
            "type": "c"
          }
        ]
      }
    }
  ]
}
)");
}

TEST(RenderCdiSpecTest, RejectsBadEdits) {
  struct Case {
    const char* what;
    CdiContainerEdits edits;
    const char* message;
  };
  std::vector<Case> cases = {
      {"relative path", {{}, {{"dev/x", "", "c", 0, 0, "rw"}}, {}}, "'dev/x' is not absolute"},
      {"relative host path",
       {{}, {{"/dev/x", "x", "c", 0, 0, "rw"}}, {}},
       "host path 'x' is not absolute"},
      {"bad type", {{}, {{"/dev/x", "", "char", 0, 0, "rw"}}, {}}, "type 'char'"},
      {"bad permissions", {{}, {{"/dev/x", "", "c", 0, 0, "rx"}}, {}}, "permissions 'rx'"},
      {"env without =", {{"FOO"}, {}, {}}, "env entry 'FOO'"},
      {"env with empty name", {{"=1"}, {}, {}}, "env entry '=1'"},
      {"relative mount", {{}, {}, {{"bin/x", "/x", {}}}}, "needs absolute paths"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(RenderCdiSpec(kKind, c.edits),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.what;
  }
}

TEST(ValidateCdiKindTest, AcceptsValidKinds) {
  for (const char* k : {"spidernet.io/shared_cx5_gpu1", "rdma/hca_shared_devices_a", "a/b",
                        "vendor.com/foo-bar123_B-az"}) {
    EXPECT_THAT(ValidateCdiKind(k), IsOk()) << k;
  }
}

TEST(ValidateCdiKindTest, RejectsInvalidKindsNamingTheRule) {
  struct Case {
    const char* kind;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"noslash", "not of the form <vendor>/<class>"},
           {"a/b/c", "not of the form <vendor>/<class>"},
           {"/b", "vendor (resource prefix) '' is empty"},
           {"a/", "class (resource name) '' is empty"},
           {"1vendor/b", "must start with a letter"},
           {"vendor-/b", "must end with a letter or digit"},
           {"vendor/rdma.shared", "class (resource name) 'rdma.shared' contains '.'"},
           {"ven dor/b", "contains ' '"},
           {"vendor/_b", "must start with a letter"},
       }) {
    EXPECT_THAT(ValidateCdiKind(c.kind),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.kind;
  }
}

TEST(RenderCdiSpecTest, RejectsBadKind) {
  EXPECT_THAT(RenderCdiSpec("vendor/rdma.shared", TwoNodes()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rdma.shared")));
}

TEST(CdiNamesTest, QualifiedNameAnnotationKeyAndFileName) {
  EXPECT_EQ(CdiQualifiedName(kKind), "spidernet.io/shared_cx5_gpu1=all");
  EXPECT_EQ(CdiAnnotationKey(kKind), "cdi.k8s.io/rdmashare_spidernet_io_shared_cx5_gpu1");
  EXPECT_EQ(CdiSpecFileName(kKind), "rdmashare-spidernet_io_shared_cx5_gpu1.json");
  EXPECT_EQ(CdiSpecFileName("rdma/hca-a"), "rdmashare-rdma_hca-a.json");
}

TEST(CdiNamesTest, LongKindsAreShortenedWithADistinguishingHash) {
  std::string prefix(240, 'a');
  std::string k1 = prefix + "/" + std::string(60, 'b');
  std::string k2 = prefix + "/" + std::string(59, 'b') + "c";
  std::string a1 = CdiAnnotationKey(k1), a2 = CdiAnnotationKey(k2);
  std::string name1 = a1.substr(std::string(kCdiAnnotationPrefix).size());
  EXPECT_THAT(name1, SizeIs(63));
  EXPECT_EQ(name1.substr(0, 10), "rdmashare_");
  EXPECT_NE(a1, a2);
  std::string f1 = CdiSpecFileName(k1), f2 = CdiSpecFileName(k2);
  EXPECT_THAT(f1, SizeIs(205));
  EXPECT_EQ(f1.substr(0, 10), "rdmashare-");
  EXPECT_EQ(f1.substr(f1.size() - 5), ".json");
  EXPECT_NE(f1, f2);
}

TEST(CdiDeviceNodesForTest, CarriesNumbersOfMatchingCharDevices) {
  rdma::RdmaDevice d;
  d.ibdev = "mlx5_0";
  d.uverbs = Char("uverbs0", 231, 192);
  rdma::RdmaPort p;
  p.number = 1;
  p.umad = Char("umad0", 231, 0);
  p.issm = Char("issm0", 231, 64);
  d.ports = {p};
  std::vector<DeviceNode> nodes = {
      {"/dev/infiniband/uverbs0", "/h/dev/infiniband/uverbs0", "rw"},
      {"/dev/infiniband/umad0", "/h/dev/infiniband/umad0", "rw"},
      {"/dev/infiniband/issm0", "/h/dev/infiniband/issm0", "rw"},
      {"/dev/infiniband/rdma_cm", "/h/dev/infiniband/rdma_cm", "rw"},
      {"/dev/infiniband/uverbs9", "/h/dev/infiniband/uverbs9", "rw"},
  };
  std::vector<CdiDeviceNode> out = CdiDeviceNodesFor(nodes, {d}, Char("rdma_cm", 10, 58));
  EXPECT_THAT(
      out,
      ElementsAre(
          CdiDeviceNode{"/dev/infiniband/uverbs0", "/h/dev/infiniband/uverbs0", "c", 231, 192,
                        "rw"},
          CdiDeviceNode{"/dev/infiniband/umad0", "/h/dev/infiniband/umad0", "c", 231, 0, "rw"},
          CdiDeviceNode{"/dev/infiniband/issm0", "/h/dev/infiniband/issm0", "c", 231, 64, "rw"},
          CdiDeviceNode{"/dev/infiniband/rdma_cm", "/h/dev/infiniband/rdma_cm", "c", 10, 58, "rw"},
          CdiDeviceNode{"/dev/infiniband/uverbs9", "/h/dev/infiniband/uverbs9", "c", 0, 0, "rw"}));
}

TEST(CdiEditsForSnapshotTest, AddsReadOnlyCliMountWhenConfigured) {
  PoolSnapshot s;
  s.nodes = {{"/dev/infiniband/rdma_cm", "/dev/infiniband/rdma_cm", "rw"}};
  s.cli_host_path = "/opt/cni/bin/rdmashare";
  CdiContainerEdits e = CdiEditsForSnapshot(s, Char("rdma_cm", 10, 58));
  EXPECT_THAT(e.device_nodes,
              ElementsAre(CdiDeviceNode{"/dev/infiniband/rdma_cm", "/dev/infiniband/rdma_cm", "c",
                                        10, 58, "rw"}));
  EXPECT_THAT(e.mounts,
              ElementsAre(CdiMount{
                  "/opt/cni/bin/rdmashare", kCliContainerPath, {"ro", "nosuid", "nodev", "bind"}}));
  s.cli_host_path.clear();
  EXPECT_THAT(CdiEditsForSnapshot(s, std::nullopt).mounts, IsEmpty());
}

TEST(CdiSpecWriterTest, WritesTheRenderedSpecWithMode0644AndNoTempFiles) {
  TempDir tmp;
  CdiSpecWriter w(tmp.Sub("run/cdi"));  // created on demand
  ASSERT_OK_AND_ASSIGN(bool wrote, w.Write(kKind, TwoNodes()));
  EXPECT_TRUE(wrote);
  EXPECT_EQ(w.PathFor(kKind), tmp.Sub("run/cdi/rdmashare-spidernet_io_shared_cx5_gpu1.json"));
  ASSERT_OK_AND_ASSIGN(std::string content, ReadFile(w.PathFor(kKind)));
  ASSERT_OK_AND_ASSIGN(std::string expected, RenderCdiSpec(kKind, TwoNodes()));
  EXPECT_EQ(content, expected);
  EXPECT_EQ(Stat(w.PathFor(kKind)).st_mode & 07777, 0644u);
  EXPECT_THAT(Names(w.dir()), ElementsAre("rdmashare-spidernet_io_shared_cx5_gpu1.json"));
}

TEST(CdiSpecWriterTest, UnchangedContentIsNotRewritten) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK_AND_ASSIGN(bool first, w.Write(kKind, TwoNodes()));
  ASSERT_TRUE(first);
  struct stat before = Stat(w.PathFor(kKind));
  ASSERT_OK_AND_ASSIGN(bool second, w.Write(kKind, TwoNodes()));
  EXPECT_FALSE(second);
  struct stat after = Stat(w.PathFor(kKind));
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}

TEST(CdiSpecWriterTest, ChangedContentReplacesTheFileAtomically) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK(w.Write(kKind, TwoNodes()).status());
  struct stat before = Stat(w.PathFor(kKind));
  CdiContainerEdits changed = TwoNodes();
  changed.device_nodes.pop_back();
  ASSERT_OK_AND_ASSIGN(bool wrote, w.Write(kKind, changed));
  EXPECT_TRUE(wrote);
  // A rename replaced the file: a new inode, and no temp file is left behind.
  EXPECT_NE(Stat(w.PathFor(kKind)).st_ino, before.st_ino);
  ASSERT_OK_AND_ASSIGN(std::string content, ReadFile(w.PathFor(kKind)));
  EXPECT_THAT(content, Not(HasSubstr("rdma_cm")));
  EXPECT_THAT(Names(w.dir()), SizeIs(1));
}

TEST(CdiSpecWriterTest, RewritesAFileThatWasDeletedOrEdited) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK(w.Write(kKind, TwoNodes()).status());
  WriteTestFile(w.PathFor(kKind), "{\"kind\": \"spidernet.io/shared_cx5_gpu1\"}");
  ASSERT_OK_AND_ASSIGN(bool rewrote, w.Write(kKind, TwoNodes()));
  EXPECT_TRUE(rewrote);
  ASSERT_EQ(::unlink(w.PathFor(kKind).c_str()), 0);
  ASSERT_OK_AND_ASSIGN(bool recreated, w.Write(kKind, TwoNodes()));
  EXPECT_TRUE(recreated);
  EXPECT_TRUE(PathExists(w.PathFor(kKind)));
}

TEST(CdiSpecWriterTest, RefusesToOverwriteTheSpecOfAnotherKindWithTheSameFileName) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK(w.Write("a.b/c", TwoNodes()).status());
  EXPECT_THAT(w.Write("a_b/c", TwoNodes()), StatusIs(absl::StatusCode::kAlreadyExists,
                                                     HasSubstr("holds the spec of kind a.b/c")));
}

TEST(CdiSpecWriterTest, BadKindWritesNothing) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  EXPECT_THAT(w.Write("bad", TwoNodes()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Names(tmp.path()), IsEmpty());
}

TEST(CdiSpecWriterTest, DirectoryThatIsAFileGivesAClearError) {
  TempDir tmp;
  WriteTestFile(tmp.Sub("notadir"), "x");
  CdiSpecWriter w(tmp.Sub("notadir"));
  EXPECT_THAT(w.Write(kKind, TwoNodes()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("CDI spec directory " + tmp.Sub("notadir"))));
  CdiSpecWriter below(tmp.Sub("notadir/cdi"));
  EXPECT_THAT(below.Write(kKind, TwoNodes()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("CDI spec directory")));
}

// Something else than a regular file where one kind's spec goes: that kind fails promptly, with
// the path and what is there; nothing is followed or replaced; another kind still writes.
TEST(CdiSpecWriterTest, ConflictingEntryAtASpecPathFailsOnlyThatKind) {
  struct Case {
    std::string name;
    std::function<void(const std::string& path, const std::string& outside)> plant;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"directory",
       [](const std::string& p, const std::string&) { ASSERT_EQ(::mkdir(p.c_str(), 0755), 0); },
       "is a directory, not a regular file"},
      {"fifo", [](const std::string& p, const std::string&) { MakeFifo(p); },
       "is a FIFO, not a regular file"},
      {"symlink",
       [](const std::string& p, const std::string& outside) {
         ASSERT_EQ(::symlink(outside.c_str(), p.c_str()), 0);
       },
       "is a symbolic link (not followed)"},
  };
  for (const Case& c : cases) {
    TempDir tmp;
    WriteTestFile(tmp.Sub("outside"), "precious");
    CdiSpecWriter w(tmp.Sub("cdi"));
    ASSERT_OK(MakeDirs(w.dir()));
    c.plant(w.PathFor(kKind), tmp.Sub("outside"));
    absl::StatusOr<bool> wrote = absl::UnknownError("not run");
    ASSERT_TRUE(FinishesWithin([&] { wrote = w.Write(kKind, TwoNodes()); }, {w.PathFor(kKind)}))
        << c.name;
    EXPECT_THAT(wrote, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr(w.PathFor(kKind) + ": " + c.text)))
        << c.name;
    ASSERT_OK_AND_ASSIGN(std::string outside, ReadFile(tmp.Sub("outside")));
    EXPECT_EQ(outside, "precious") << c.name;
    EXPECT_OK(w.Write("rdma/other", TwoNodes()).status()) << c.name;
  }
}

TEST(CdiSpecWriterTest, RemoveDeletesTheSpecAndIgnoresMissingOnes) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK(w.Write(kKind, TwoNodes()).status());
  EXPECT_OK(w.Remove(kKind));
  EXPECT_FALSE(PathExists(w.PathFor(kKind)));
  EXPECT_OK(w.Remove(kKind));
}

TEST(CdiSpecWriterTest, RemoveStaleDeletesOnlyOurUnusedFiles) {
  TempDir tmp;
  CdiSpecWriter w(tmp.path());
  ASSERT_OK(w.Write("rdma/a", TwoNodes()).status());
  ASSERT_OK(w.Write("rdma/b", TwoNodes()).status());
  ASSERT_OK(w.Write("rdma/c", TwoNodes()).status());
  WriteTestFile(tmp.Sub("nvidia.json"), "{\"cdiVersion\":\"0.5.0\",\"kind\":\"nvidia.com/gpu\"}");
  WriteTestFile(tmp.Sub("other-rdmashare-x.json"), "{}");
  WriteTestFile(tmp.Sub("rdmashare-rdma_d.json.tmp.4242"), "partial");
  WriteTestFile(tmp.Sub(".rdmashare-rdma_b.json.tmp-0123456789abcdef"), "partial");
  WriteTestFile(tmp.Sub(".nvidia.json.tmp-0123456789abcdef"), "theirs");
  ASSERT_EQ(::mkdir(tmp.Sub("rdmashare-dir").c_str(), 0755), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> removed, w.RemoveStale({"rdma/b"}));
  EXPECT_THAT(removed,
              ElementsAre(".rdmashare-rdma_b.json.tmp-0123456789abcdef", "rdmashare-rdma_a.json",
                          "rdmashare-rdma_c.json", "rdmashare-rdma_d.json.tmp.4242"));
  EXPECT_THAT(Names(tmp.path()),
              ElementsAre(".nvidia.json.tmp-0123456789abcdef", "nvidia.json",
                          "other-rdmashare-x.json", "rdmashare-dir", "rdmashare-rdma_b.json"));
}

TEST(CdiSpecWriterTest, RemoveStaleOnAMissingDirectoryDoesNothing) {
  TempDir tmp;
  CdiSpecWriter w(tmp.Sub("absent"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> removed, w.RemoveStale({}));
  EXPECT_THAT(removed, IsEmpty());
  EXPECT_FALSE(PathExists(tmp.Sub("absent")));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
