#include "cni/protocol/delegate.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "cni/protocol/error.h"
#include "cni/protocol/netconf.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status ErrnoError(const std::string& what) {
  return CniError(kIoFailure, fmt::format("{}: {}", what, std::strerror(errno)));
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
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

}  // namespace

absl::StatusOr<std::string> FindPlugin(const std::string& type, const std::string& cni_path) {
  if (type.empty() || type == "." || type == ".." || type.find('/') != std::string::npos) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("plugin type '{}' is not a plain file name", type));
  }
  CniRequest dirs_holder;
  dirs_holder.path = cni_path;
  for (const std::string& dir : dirs_holder.PathDirs()) {
    std::string candidate = JoinPath(dir, type);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return CniError(kInvalidNetworkConfig,
                  fmt::format("plugin '{}' not found in CNI_PATH '{}'", type, cni_path));
}

absl::StatusOr<ExecOutput> ExecPlugin(const std::string& binary,
                                      const std::map<std::string, std::string>& env,
                                      const std::string& stdin_data,
                                      std::chrono::milliseconds timeout) {
  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = binary;
  char* argv[] = {arg0.data(), nullptr};

  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return ErrnoError("exec " + binary + ": pipe");
  UniqueFd in_read(in_pipe[0]), in_write(in_pipe[1]);
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("exec " + binary + ": pipe");
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("exec " + binary + ": fork");
  if (pid == 0) {
    if (::dup2(in_read.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0) ::_exit(127);
    ::execve(binary.c_str(), argv, envp.data());
    ::_exit(127);
  }
  in_read.Reset();
  out_write.Reset();
  // Non-blocking parent ends: a plugin that writes a lot before reading all of its stdin must
  // not deadlock against us.
  ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);

  ExecOutput out;
  size_t written = 0;
  if (stdin_data.empty()) in_write.Reset();
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (out_read.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2];
    int n = 0;
    fds[n++] = {out_read.get(), POLLIN, 0};
    if (in_write.valid()) fds[n++] = {in_write.get(), POLLOUT, 0};
    int r = ::poll(fds, n, static_cast<int>(left.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w =
          WriteNoSigpipe(in_write.get(), stdin_data.data() + written, stdin_data.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EINTR && errno != EAGAIN) in_write.Reset();
      if (written == stdin_data.size()) in_write.Reset();
    }
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      char buf[4096];
      ssize_t got = ::read(out_read.get(), buf, sizeof(buf));
      if (got > 0) {
        out.stdout_data.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        out_read.Reset();
      }
    }
  }
  in_write.Reset();
  if (timed_out) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return CniError(kTryAgainLater,
                    fmt::format("plugin {} did not finish within {} ms", binary, timeout.count()));
  }
  if (WIFEXITED(wstatus)) {
    out.exit_code = WEXITSTATUS(wstatus);
  } else {
    out.exit_code = 128 + (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
  }
  return out;
}

std::map<std::string, std::string> DelegateEnv(const CniRequest& request,
                                               const std::string& command) {
  std::map<std::string, std::string> env;
  auto put = [&env](const char* key, const std::string& value) {
    if (!value.empty()) env[key] = value;
  };
  put("CNI_COMMAND", command);
  put("CNI_CONTAINERID", request.container_id);
  put("CNI_NETNS", request.netns);
  put("CNI_IFNAME", request.ifname);
  put("CNI_ARGS", request.args);
  put("CNI_PATH", request.path);
  return env;
}

absl::StatusOr<std::string> DelegateCommand(const std::string& type, const std::string& command,
                                            const CniRequest& request,
                                            const std::string& netconf_json) {
  ASSIGN_OR_RETURN(std::string binary, FindPlugin(type, request.path));
  ASSIGN_OR_RETURN(ExecOutput out, ExecPlugin(binary, DelegateEnv(request, command), netconf_json));
  if (out.exit_code == 0) return out.stdout_data;
  absl::StatusOr<nlohmann::json> parsed = ParseCniJson(out.stdout_data, type + " output");
  nlohmann::json err = parsed.ok() ? *std::move(parsed) : nlohmann::json();
  if (err.is_object() && err.contains("msg") && err["msg"].is_string()) {
    int code = kIoFailure;
    if (err.contains("code") && err["code"].is_number_integer() && err["code"].get<int>() > 0) {
      code = err["code"].get<int>();
    }
    std::string details;
    if (err.contains("details") && err["details"].is_string()) details = err["details"];
    return CniError(code, fmt::format("{} {}: {}", type, command, err["msg"].get<std::string>()),
                    details);
  }
  return CniError(kIoFailure,
                  fmt::format("{} {} exited with status {} without an error object on stdout", type,
                              command, out.exit_code),
                  out.stdout_data.substr(0, 512));
}

absl::StatusOr<Result> DelegateAdd(const std::string& type, const CniRequest& request,
                                   const std::string& netconf_json) {
  ASSIGN_OR_RETURN(std::string out, DelegateCommand(type, kCmdAdd, request, netconf_json));
  absl::StatusOr<nlohmann::json> parsed = ParseCniJson(out, type + " ADD output");
  if (!parsed.ok()) return CniError(kDecodeFailure, std::string(parsed.status().message()));
  nlohmann::json doc = *std::move(parsed);
  if (!doc.is_object()) {
    return CniError(kDecodeFailure, fmt::format("{} ADD: output is not a JSON result object", type),
                    out.substr(0, 512));
  }
  auto result = ParseResult(doc);
  if (!result.ok()) {
    return CniError(kDecodeFailure, fmt::format("{} ADD: output is not a valid result: {}", type,
                                                result.status().message()));
  }
  return result;
}

absl::Status DelegateDel(const std::string& type, const CniRequest& request,
                         const std::string& netconf_json) {
  return DelegateCommand(type, kCmdDel, request, netconf_json).status();
}

absl::Status DelegateCheck(const std::string& type, const CniRequest& request,
                           const std::string& netconf_json) {
  return DelegateCommand(type, kCmdCheck, request, netconf_json).status();
}

}  // namespace rdmashare::cni
