#include "common/testing/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/files.h"
#include "fmt/format.h"

extern char** environ;

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
  std::vector<std::string> env_strings;
  if (options_.inherit_env) {
    std::map<std::string, std::string> merged;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      size_t eq = kv.find('=');
      if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : options_.env) merged[k] = v;
    for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  } else {
    for (const auto& [k, v] : options_.env) env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> argv, envp;
  for (auto& a : options_.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int in_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return false;
  int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0 || err_fd < 0) return false;
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // Unblock signals a test harness may have blocked.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!options_.cwd.empty() && ::chdir(options_.cwd.c_str()) != 0) {
      std::fprintf(stderr, "chdir %s: %s\n", options_.cwd.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    std::fprintf(stderr, "execve %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_fd);
  ::close(err_fd);
  // Feed stdin from a thread so a child that reads nothing cannot block us on a full pipe.
  std::string data = options_.stdin_data;
  int wfd = in_pipe[1];
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
  Subprocess p(std::move(options));
  RunResult r;
  if (!p.Start()) return r;
  std::optional<int> code = p.Wait(timeout);
  if (!code) {
    p.Signal(SIGKILL);
    code = p.Wait(std::chrono::seconds(5));
  }
  r.exit_code = code.value_or(-1);
  r.out = p.Stdout();
  r.err = p.Stderr();
  return r;
}

}  // namespace rdmashare::testing
