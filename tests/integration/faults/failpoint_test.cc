// common/failpoint.h: spec parsing and the real process-level actions (in forked children).
#include "common/failpoint.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "gtest/gtest.h"

namespace rdmashare {
namespace {

struct ParseCase {
  const char* spec;
  const char* name;
  FailpointAction want;
};

TEST(FailpointTest, SpecSelectsTheNamedStepAndItsAction) {
  const ParseCase cases[] = {
      {nullptr, "a", FailpointAction::kNone},  {"", "a", FailpointAction::kNone},
      {"a", "a", FailpointAction::kKill},      {"a", "ab", FailpointAction::kNone},
      {"ab", "a", FailpointAction::kNone},     {"x,a", "a", FailpointAction::kKill},
      {"a=exit", "a", FailpointAction::kExit}, {"x=kill,a=abort", "a", FailpointAction::kAbort},
      {"a=kill", "a", FailpointAction::kKill}, {"a=explode", "a", FailpointAction::kNone},
      {",,a,", "a", FailpointAction::kKill},   {"a", "", FailpointAction::kNone},
  };
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(std::string(c.spec ? c.spec : "(null)") + " / " + c.name);
    EXPECT_EQ(FailpointActionFor(c.spec, c.name), c.want);
  }
}

// Runs Failpoint(name) in a child with RDMASHARE_FAILPOINT=spec; returns the wait status.
int RunChild(const char* spec, const char* name) {
  pid_t pid = fork();
  if (pid == 0) {
    if (spec != nullptr) setenv(kFailpointEnv, spec, 1);
    Failpoint(name);
    _exit(0);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

TEST(FailpointTest, ArmedFailpointKillsTheProcess) {
  if (!FailpointsCompiledIn()) GTEST_SKIP() << "built with RDMASHARE_FAILPOINTS=OFF";
  int status = RunChild("step.one", "step.one");
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(FailpointTest, ExitActionExitsWithItsCode) {
  if (!FailpointsCompiledIn()) GTEST_SKIP() << "built with RDMASHARE_FAILPOINTS=OFF";
  int status = RunChild("step.one=exit", "step.one");
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kFailpointExitCode);
}

TEST(FailpointTest, UnarmedOrOtherFailpointReturns) {
  for (const char* spec : {static_cast<const char*>(nullptr), "", "step.two", "step.one=bogus"}) {
    int status = RunChild(spec, "step.one");
    ASSERT_TRUE(WIFEXITED(status)) << (spec ? spec : "(null)");
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
}

}  // namespace
}  // namespace rdmashare
