#include "common/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/files.h"
#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare::testing {
namespace {
std::atomic<int> g_counter{0};
}  // namespace

Subprocess::Subprocess(Options options) : options_(std::move(options)) {
  int n = g_counter.fetch_add(1);
  out_path_ = fmt::format("{}/sub.{}.{}.out", options_.work_dir, ::getpid(), n);
  err_path_ = fmt::format("{}/sub.{}.{}.err", options_.work_dir, ::getpid(), n);
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  ::unlink(out_path_.c_str());
  ::unlink(err_path_.c_str());
}

bool Subprocess::Start() {
  int in_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    start_error_ = fmt::format("pipe: {}", std::strerror(errno));
    return false;
  }
  UniqueFd in_read(in_pipe[0]), in_write(in_pipe[1]);
  UniqueFd out_fd(::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd err_fd(::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out_fd.valid() || !err_fd.valid()) {
    start_error_ = fmt::format("open {}: {}", out_path_, std::strerror(errno));
    return false;
  }
  SubprocessOptions spawn;
  spawn.argv = options_.argv;
  spawn.env = options_.env;
  spawn.inherit_env = options_.inherit_env;
  spawn.cwd = options_.cwd;
  absl::StatusOr<pid_t> pid =
      SpawnProcess(spawn, ChildStdio{in_read.get(), out_fd.get(), err_fd.get()});
  if (!pid.ok()) {
    start_error_ = std::string(pid.status().message());
    return false;
  }
  pid_ = *pid;
  // Feed stdin from a thread so a child that reads nothing cannot block us on a full pipe. Tests
  // talk to their children over pipes and sockets: one that died must give EPIPE, not kill the
  // test, so SIGPIPE is ignored from here on.
  std::string data = options_.stdin_data;
  int wfd = in_write.Release();
  std::thread([data, wfd] {
    signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(wfd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(wfd);
  }).detach();
  return true;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string Subprocess::Stdout() const {
  auto s = ReadFile(out_path_, 64 << 20);
  return s.ok() ? *s : "";
}

std::string Subprocess::Stderr() const {
  auto s = ReadFile(err_path_, 64 << 20);
  return s.ok() ? *s : "";
}

RunResult RunProgram(Subprocess::Options options, std::chrono::milliseconds timeout) {
  SubprocessOptions run;
  run.argv = std::move(options.argv);
  run.env = std::move(options.env);
  run.inherit_env = options.inherit_env;
  run.cwd = std::move(options.cwd);
  run.stdin_data = std::move(options.stdin_data);
  run.max_output_bytes = 64 << 20;
  run.timeout = timeout;
  RunResult r;
  absl::StatusOr<SubprocessResult> done = RunSubprocess(run);
  if (!done.ok()) {
    r.err = std::string(done.status().message());
    return r;
  }
  r.exit_code = done->exit_code;
  r.out = std::move(done->stdout_data);
  r.err = std::move(done->stderr_data);
  return r;
}

}  // namespace rdmashare::testing
