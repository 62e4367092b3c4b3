#include "common/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/spdlog.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

// Sends what this process writes to `fd` (1 or 2) into a file until Text().
class Redirect {
 public:
  Redirect(int fd, const std::string& path) : fd_(fd), path_(path), saved_(::dup(fd)) {
    std::fflush(nullptr);
    UniqueFd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    EXPECT_TRUE(file.valid() && saved_.valid());
    ::dup2(file.get(), fd_);
  }
  ~Redirect() { Restore(); }
  // Restores the descriptor and returns what was written to it.
  std::string Text() {
    Restore();
    absl::StatusOr<std::string> text = ReadFile(path_);
    return text.ok() ? *text : "";
  }

 private:
  void Restore() {
    if (!saved_.valid()) return;
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    ::dup2(saved_.get(), fd_);
    saved_.Reset();
  }
  int fd_;
  std::string path_;
  UniqueFd saved_;
};

PluginLogOptions Options(const std::string& file) {
  PluginLogOptions o;
  o.program = "rdmashare-test";
  o.file = file;
  o.file_level = "debug";
  o.stderr_level = "warn";
  return o;
}

TEST(SetupPluginLoggingTest, FileGetsLinesFromItsLevelAndStdoutNothing) {
  TempDir dir;
  Redirect out(1, dir.Sub("stdout"));
  Redirect err(2, dir.Sub("stderr"));
  SetupPluginLogging(Options(dir.Sub("plugin.log")));
  spdlog::trace("trace-line");
  spdlog::debug("debug-line key={}", 1);
  spdlog::warn("warn-line");
  EXPECT_EQ(out.Text(), "");
  EXPECT_EQ(err.Text(), "");
  absl::StatusOr<std::string> log = ReadFile(dir.Sub("plugin.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr(fmt::format("debug rdmashare-test[{}] debug-line key=1", getpid())));
  EXPECT_THAT(*log, HasSubstr("warn-line"));
  EXPECT_THAT(*log, Not(HasSubstr("trace-line")));
}

TEST(SetupPluginLoggingTest, FileIsAppendedTo) {
  TempDir dir;
  WriteTestFile(dir.Sub("plugin.log"), "earlier run\n");
  SetupPluginLogging(Options(dir.Sub("plugin.log")));
  spdlog::info("this run");
  absl::StatusOr<std::string> log = ReadFile(dir.Sub("plugin.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->rfind("earlier run\n", 0), 0u) << *log;
  EXPECT_THAT(*log, HasSubstr("this run"));
}

TEST(SetupPluginLoggingTest, WithoutFileStderrGetsLinesFromItsLevel) {
  TempDir dir;
  Redirect out(1, dir.Sub("stdout"));
  Redirect err(2, dir.Sub("stderr"));
  SetupPluginLogging(Options(""));
  spdlog::info("info-line");
  spdlog::warn("warn-line");
  EXPECT_EQ(out.Text(), "");
  std::string text = err.Text();
  EXPECT_THAT(text, HasSubstr("warning rdmashare-test["));
  EXPECT_THAT(text, HasSubstr("warn-line"));
  EXPECT_THAT(text, Not(HasSubstr("info-line")));
}

TEST(SetupPluginLoggingTest, UnopenableFileFallsBackToStderrWithAMessage) {
  TempDir dir;
  Redirect out(1, dir.Sub("stdout"));
  Redirect err(2, dir.Sub("stderr"));
  // Under a regular file: no directory spdlog could create makes this path openable.
  WriteTestFile(dir.Sub("file"), "");
  SetupPluginLogging(Options(dir.Sub("file/plugin.log")));
  spdlog::error("error-line");
  EXPECT_EQ(out.Text(), "");
  std::string text = err.Text();
  EXPECT_THAT(text, HasSubstr("rdmashare-test: cannot open logFile " + dir.Sub("file/plugin.log")));
  EXPECT_THAT(text, HasSubstr("logging to stderr"));
  EXPECT_THAT(text, HasSubstr("error-line"));
}

TEST(SetupPluginLoggingTest, MayBeCalledAgain) {
  TempDir dir;
  SetupPluginLogging(Options(""));
  SetupPluginLogging(Options(dir.Sub("plugin.log")));
  spdlog::info("second setup");
  absl::StatusOr<std::string> log = ReadFile(dir.Sub("plugin.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr("second setup"));
}

}  // namespace
}  // namespace rdmashare
