#include "common/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

SubprocessOptions Shell(const std::string& script) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.timeout = std::chrono::seconds(30);
  return o;
}

// True while `pid` names a process (running or a zombie nobody reaped).
bool ProcessExists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

TEST(RunSubprocessTest, ReportsTheExitCode) {
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(Shell("exit 3")));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
}

TEST(RunSubprocessTest, SignalDeathIs128PlusTheSignal) {
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(Shell("kill -TERM $$")));
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
}

TEST(RunSubprocessTest, ChildStartsWithAnEmptySignalMask) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Shell("kill -TERM $$; exit 0"));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->term_signal, SIGTERM);
}

TEST(RunSubprocessTest, TimeoutKillsAndReapsTheChild) {
  SubprocessOptions o = Shell("echo $$; exec sleep 30");
  o.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  // What the child wrote before the deadline is kept; the child is gone, not a zombie.
  ASSERT_FALSE(r.stdout_data.empty());
  pid_t pid = std::stoi(r.stdout_data);
  EXPECT_FALSE(ProcessExists(pid)) << pid;
}

TEST(RunSubprocessTest, DeadlineHoldsForAChildThatClosedItsOutput) {
  SubprocessOptions o = Shell("exec >&- 2>&-; exec sleep 30");
  o.timeout = std::chrono::milliseconds(300);
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_TRUE(r.timed_out);
}

TEST(RunSubprocessTest, LargeOutputIsCappedAndTheChildStillFinishes) {
  SubprocessOptions o = Shell("head -c 3000000 /dev/zero; echo tail >&2");
  o.max_output_bytes = 1000;
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data.size(), 1000u);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stderr_data, "tail\n");
  EXPECT_FALSE(r.stderr_truncated);
}

TEST(RunSubprocessTest, StdinLargerThanThePipeBufferArrivesWhole) {
  SubprocessOptions o;
  o.argv = {"/bin/cat"};
  for (int i = 0; i < (4 << 20) / 16; ++i) o.stdin_data += fmt::format("{:015}\n", i);
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.stdout_data == o.stdin_data) << r.stdout_data.size() << " bytes back";
}

TEST(RunSubprocessTest, ChildThatIgnoresStdinDoesNotKillUsWithSigpipe) {
  SubprocessOptions o = Shell("echo done");
  o.stdin_data.assign(4 << 20, 'x');
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, "done\n");
}

TEST(RunSubprocessTest, MissingProgramIsNotFoundNamingIt) {
  SubprocessOptions o;
  o.argv = {"/nonexistent/program"};
  EXPECT_THAT(RunSubprocess(o).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("exec /nonexistent/program")));
}

TEST(RunSubprocessTest, NonExecutableProgramIsPermissionDenied) {
  TempDir dir;
  WriteTestFile(dir.Sub("script"), "#!/bin/sh\nexit 0\n");
  ASSERT_EQ(::chmod(dir.Sub("script").c_str(), 0644), 0);
  SubprocessOptions o;
  o.argv = {dir.Sub("script")};
  EXPECT_THAT(RunSubprocess(o).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(dir.Sub("script"))));
}

TEST(RunSubprocessTest, EmptyArgvIsInvalidArgument) {
  EXPECT_THAT(RunSubprocess(SubprocessOptions()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RunSubprocessTest, MissingWorkingDirectoryIsNamed) {
  SubprocessOptions o = Shell("exit 0");
  o.cwd = "/nonexistent/dir";
  EXPECT_THAT(RunSubprocess(o).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("chdir /nonexistent/dir")));
}

TEST(RunSubprocessTest, EnvironmentIsExactlyTheGivenOne) {
  SubprocessOptions o;
  o.argv = {"/usr/bin/env"};
  o.env = {{"A", "1"}, {"B", "two words"}};
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_EQ(r.stdout_data, "A=1\nB=two words\n");
}

TEST(RunSubprocessTest, InheritedEnvironmentIsMergedUnderTheGivenOne) {
  ASSERT_EQ(::setenv("RS_SUBPROCESS_TEST_OURS", "ours", 1), 0);
  SubprocessOptions o = Shell("echo $RS_SUBPROCESS_TEST_OURS $RS_SUBPROCESS_TEST_GIVEN");
  o.inherit_env = true;
  o.env = {{"RS_SUBPROCESS_TEST_GIVEN", "given"}};
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  ::unsetenv("RS_SUBPROCESS_TEST_OURS");
  EXPECT_EQ(r.stdout_data, "ours given\n");
}

TEST(RunSubprocessTest, RunsInTheGivenWorkingDirectory) {
  TempDir dir;
  SubprocessOptions o = Shell("pwd -P");
  o.cwd = dir.path();
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir.path().c_str(), real), nullptr);
  EXPECT_EQ(r.stdout_data, std::string(real) + "\n");
}

TEST(RunSubprocessTest, GrandchildHoldingStdoutDoesNotHoldUs) {
  // The background sleep keeps the stdout pipe open after the shell exits.
  SubprocessOptions o = Shell("sleep 3 & echo hi");
  o.timeout = std::chrono::seconds(2);
  ASSERT_OK_AND_ASSIGN(SubprocessResult r, RunSubprocess(o));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.stdout_data, "hi\n");
}

TEST(SpawnProcessTest, ChildGetsTheGivenDescriptorsAndCallerReaps) {
  TempDir dir;
  int fd = ::open(dir.Sub("out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  SubprocessOptions o = Shell("echo to-file");
  absl::StatusOr<pid_t> pid = SpawnProcess(o, ChildStdio{-1, fd, -1});
  ::close(fd);
  ASSERT_OK(pid.status());
  int status = 0;
  ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFile(dir.Sub("out")));
  EXPECT_EQ(text, "to-file\n");
}

}  // namespace
}  // namespace rdmashare
