// SpawnProcess and RunSubprocess (declared in subprocess.h).
#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"
#include "fmt/format.h"

extern char** environ;

namespace rdmashare {
namespace {

using Clock = std::chrono::steady_clock;

// Reads of one stream per poll wakeup, and after the child ended: enough for a full pipe (at most
// 1 MiB, /proc/sys/fs/pipe-max-size's default) of what the child left.
constexpr int kReadsPerWakeup = 8;
constexpr int kReadsAfterExit = 64;

// What the child reports over the exec-error pipe when it cannot become the program.
struct ChildFailure {
  // 0 dup2, 1 chdir, 2 execve.
  int stage = 0;
  int error = 0;
};

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(fmt::format("{}: {}", what, std::strerror(err)));
}

// A copy of `fd` numbered 3 or above, O_CLOEXEC: dup2 of it onto 0, 1 or 2 in the child then
// never clobbers another descriptor the child still has to dup, and always clears O_CLOEXEC.
absl::StatusOr<UniqueFd> DupAboveStdio(int fd) {
  if (fd < 0) return UniqueFd();
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ErrnoStatus("fcntl F_DUPFD_CLOEXEC", errno);
  return UniqueFd(copy);
}

// write(2) that turns a closed pipe into EPIPE instead of killing the process with SIGPIPE:
// SIGPIPE is blocked for this thread during the call and a signal it raised is consumed.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t len) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t w = ::write(fd, data, len);
  int err = errno;
  if (w < 0 && err == EPIPE) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = err;
  return w;
}

void Reap(pid_t pid, int* wstatus) {
  while (::waitpid(pid, wstatus, 0) < 0 && errno == EINTR) {
  }
}

// A pidfd of `pid` (readable once it exits), or invalid where the kernel has none (< 5.3).
UniqueFd PidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
#endif
  return UniqueFd();
}

// One captured stream of the child.
struct Capture {
  UniqueFd fd;
  std::string* data = nullptr;
  bool* truncated = nullptr;
  size_t cap = 0;

  // Reads what is available, at most `max_reads` times (a writer faster than us cannot hold us
  // here); closes the fd at EOF or on a read error.
  void ReadAvailable(int max_reads) {
    char buf[32768];
    for (int i = 0; i < max_reads; ++i) {
      ssize_t got = ::read(fd.get(), buf, sizeof(buf));
      if (got > 0) {
        size_t keep = std::min(static_cast<size_t>(got), cap - std::min(cap, data->size()));
        data->append(buf, keep);
        if (keep < static_cast<size_t>(got)) *truncated = true;
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      if (got == 0 || errno != EAGAIN) fd.Reset();
      return;
    }
  }
};

}  // namespace

absl::StatusOr<pid_t> SpawnProcess(const SubprocessOptions& options, const ChildStdio& stdio) {
  if (options.argv.empty()) return absl::InvalidArgumentError("subprocess: empty argv");
  const std::string& program = options.argv.front();

  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::map<std::string, std::string> env_map;
  if (options.inherit_env) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      size_t eq = kv.find('=');
      if (eq != std::string::npos) env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<std::string> arg_strings = options.argv;
  std::vector<char*> argv, envp;
  for (std::string& a : arg_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  sigset_t no_signals;
  sigemptyset(&no_signals);

  UniqueFd sources[3];
  const int wanted[3] = {stdio.in, stdio.out, stdio.err};
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<UniqueFd> copy = DupAboveStdio(wanted[i]);
    if (!copy.ok())
      return absl::InternalError(
          fmt::format("exec {}: {}", program, std::string(copy.status().message())));
    sources[i] = *std::move(copy);
  }
  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) return ErrnoStatus("exec " + program + ": pipe", errno);
  UniqueFd error_read(error_pipe[0]), error_write(error_pipe[1]);
  absl::StatusOr<UniqueFd> error_write_high = DupAboveStdio(error_write.get());
  if (!error_write_high.ok()) {
    return absl::InternalError(
        fmt::format("exec {}: {}", program, std::string(error_write_high.status().message())));
  }
  error_write.Reset();
  const int report_fd = error_write_high->get();

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("exec " + program + ": fork", errno);
  if (pid == 0) {
    ChildFailure failure;
    for (int i = 0; i < 3; ++i) {
      if (sources[i].valid() && ::dup2(sources[i].get(), i) < 0) {
        failure = {0, errno};
        break;
      }
    }
    if (failure.error == 0) {
      ::sigprocmask(SIG_SETMASK, &no_signals, nullptr);
      if (cwd != nullptr && ::chdir(cwd) != 0) {
        failure = {1, errno};
      } else {
        ::execve(argv[0], argv.data(), envp.data());
        failure = {2, errno};
      }
    }
    ssize_t ignored = ::write(report_fd, &failure, sizeof(failure));
    (void)ignored;
    ::_exit(127);
  }
  error_write_high->Reset();
  ChildFailure failure;
  ssize_t got;
  do {
    got = ::read(error_read.get(), &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return pid;  // EOF: execve closed the O_CLOEXEC pipe
  int wstatus = 0;
  Reap(pid, &wstatus);
  if (got != static_cast<ssize_t>(sizeof(failure)) || failure.stage < 0 || failure.stage > 2) {
    return absl::InternalError(fmt::format("exec {}: the child failed before exec", program));
  }
  std::string message =
      failure.stage == 2 ? fmt::format("exec {}: {}", program, std::strerror(failure.error))
      : failure.stage == 1
          ? fmt::format("exec {}: chdir {}: {}", program, options.cwd, std::strerror(failure.error))
          : fmt::format("exec {}: dup2: {}", program, std::strerror(failure.error));
  if (failure.stage == 2 && failure.error == ENOENT) return absl::NotFoundError(message);
  if (failure.stage == 2 && failure.error == EACCES) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  const auto deadline = Clock::now() + options.timeout;
  const std::string program = options.argv.empty() ? "" : options.argv.front();
  SubprocessResult result;

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("exec " + program + ": pipe", errno);
  UniqueFd in_read(fds[0]), in_write(fds[1]);
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("exec " + program + ": pipe", errno);
  UniqueFd out_read(fds[0]), out_write(fds[1]);
  UniqueFd err_read, err_write;
  if (options.capture_stderr) {
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("exec " + program + ": pipe", errno);
    err_read = UniqueFd(fds[0]);
    err_write = UniqueFd(fds[1]);
  }
  absl::StatusOr<pid_t> spawned = SpawnProcess(
      options,
      ChildStdio{in_read.get(), out_write.get(), options.capture_stderr ? err_write.get() : -1});
  if (!spawned.ok()) return spawned.status();
  const pid_t pid = *spawned;
  in_read.Reset();
  out_write.Reset();
  err_write.Reset();
  // Non-blocking parent ends: a child that writes a lot before reading all of its stdin must
  // not deadlock against us.
  for (const UniqueFd* fd : {&in_write, &out_read, &err_read}) {
    if (fd->valid()) ::fcntl(fd->get(), F_SETFL, O_NONBLOCK);
  }
  Capture out{std::move(out_read), &result.stdout_data, &result.stdout_truncated,
              options.max_output_bytes};
  Capture err{std::move(err_read), &result.stderr_data, &result.stderr_truncated,
              options.max_output_bytes};
  UniqueFd pidfd = PidFd(pid);

  size_t written = 0;
  if (options.stdin_data.empty()) in_write.Reset();
  std::optional<int> wstatus;
  auto try_reap = [&] {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid) wstatus = status;
  };
  while (!wstatus) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd polled[4];
    int n = 0, out_i = -1, err_i = -1, in_i = -1, pid_i = -1;
    if (out.fd.valid()) {
      out_i = n;
      polled[n++] = {out.fd.get(), POLLIN, 0};
    }
    if (err.fd.valid()) {
      err_i = n;
      polled[n++] = {err.fd.get(), POLLIN, 0};
    }
    if (in_write.valid()) {
      in_i = n;
      polled[n++] = {in_write.get(), POLLOUT, 0};
    }
    if (pidfd.valid()) {
      pid_i = n;
      polled[n++] = {pidfd.get(), POLLIN, 0};
    }
    // Without a pidfd the exit is noticed by polling waitpid every few milliseconds.
    int wait_ms = static_cast<int>(left.count());
    if (!pidfd.valid()) wait_ms = std::min(wait_ms, 5);
    int r = ::poll(polled, static_cast<nfds_t>(n), wait_ms);
    if (r < 0 && errno != EINTR) {
      int saved = errno;
      ::kill(pid, SIGKILL);
      int status = 0;
      Reap(pid, &status);
      return ErrnoStatus("exec " + program + ": poll", saved);
    }
    if (r <= 0) {
      if (!pidfd.valid()) try_reap();
      continue;
    }
    if (in_i >= 0 && (polled[in_i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = WriteNoSigpipe(in_write.get(), options.stdin_data.data() + written,
                                 options.stdin_data.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EINTR && errno != EAGAIN) || written == options.stdin_data.size()) {
        in_write.Reset();
      }
    }
    if (out_i >= 0 && (polled[out_i].revents & (POLLIN | POLLERR | POLLHUP)))
      out.ReadAvailable(kReadsPerWakeup);
    if (err_i >= 0 && (polled[err_i].revents & (POLLIN | POLLERR | POLLHUP)))
      err.ReadAvailable(kReadsPerWakeup);
    if (pid_i < 0 || (polled[pid_i].revents & POLLIN)) try_reap();
  }
  in_write.Reset();
  if (result.timed_out) {
    ::kill(pid, SIGKILL);
    int status = 0;
    Reap(pid, &status);
    wstatus = status;
  }
  // What the child wrote before it ended is in the pipes; a grandchild holding them open is not
  // waited for.
  if (out.fd.valid()) out.ReadAvailable(kReadsAfterExit);
  if (err.fd.valid()) err.ReadAvailable(kReadsAfterExit);
  if (WIFEXITED(*wstatus)) {
    result.exit_code = WEXITSTATUS(*wstatus);
  } else if (WIFSIGNALED(*wstatus)) {
    result.term_signal = WTERMSIG(*wstatus);
    result.exit_code = 128 + result.term_signal;
  }
  return result;
}

}  // namespace rdmashare
