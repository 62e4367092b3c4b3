// Subprocess execution: fork + execve of a program (no shell, no PATH lookup) with an exact
// argv and environment, bytes on its stdin, its stdout (and optionally stderr) captured up to a
// cap, and a deadline after which the child is killed with SIGKILL and reaped.
//
// SpawnProcess is the one fork/exec of the project: everything the child needs is built before
// fork, and the child makes only async-signal-safe calls (dup2, fcntl, sigprocmask, chdir,
// execve, write, _exit). An exec failure travels back over an O_CLOEXEC pipe, so the caller gets
// a Status naming the program instead of a child exiting 127. RunSubprocess builds the pipes
// (O_CLOEXEC, parent ends non-blocking: a child that writes a lot before reading its stdin
// cannot deadlock against us) and the poll loop on top of it.
//
// No global state; each call forks its own child and reaps it: thread-safe. Writing stdin blocks
// SIGPIPE for the calling thread only (a child that exits without reading gives EPIPE, not a
// dead caller). No gRPC, no threads: safe for the static CNI binaries.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rdmashare {

// What to run and how.
struct SubprocessOptions {
  // argv[0] is the path of the program (not looked up in PATH). Must not be empty.
  std::vector<std::string> argv;
  // The child's environment: exactly `env` (inherit_env false), or ours with `env` merged over
  // it (inherit_env true).
  std::map<std::string, std::string> env;
  bool inherit_env = false;
  // Working directory of the child; empty = ours.
  std::string cwd;

  // RunSubprocess only:
  // Written to the child's stdin, which is then closed (empty: closed at once).
  std::string stdin_data;
  // Capture the child's stderr (true) or let it write to ours (false).
  bool capture_stderr = true;
  // Bytes kept of each captured stream; the rest is read and dropped (the *_truncated flags say
  // so), so a chatty child never blocks on a full pipe.
  size_t max_output_bytes = 16 << 20;
  // From the start; past it the child is killed (SIGKILL) and reaped.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

// How a child ended and what it wrote.
struct SubprocessResult {
  // The exit status, or 128 + the signal number when a signal ended the child (as a shell
  // reports it; 137 after the timeout's SIGKILL).
  int exit_code = 0;
  // The signal that ended the child; 0 when it exited.
  int term_signal = 0;
  // The deadline passed and the child was killed.
  bool timed_out = false;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
};

// The child's standard streams for SpawnProcess: the descriptors it gets as 0, 1 and 2 (any
// flags; -1 = ours).
struct ChildStdio {
  int in = -1;
  int out = -1;
  int err = -1;
};

// Forks and execs `options.argv` with `options`' environment and working directory, the given
// standard streams and an empty signal mask. Returns the child's pid: the caller owns it and
// must reap it (waitpid). InvalidArgument for an empty argv; when exec (or chdir) fails the
// child is reaped and the error names the program: NotFound for a missing program,
// PermissionDenied for one we may not execute, Internal for anything else (and for pipe/fork
// failures).
absl::StatusOr<pid_t> SpawnProcess(const SubprocessOptions& options, const ChildStdio& stdio);

// Runs `options.argv` to completion or to the deadline (see SubprocessOptions). A child that
// exits is done even when something it started still holds its stdout open: what is in the
// pipes then is read and the rest is not waited for. Errors as SpawnProcess's; how the child
// ended (exit code, signal, timeout) is in the result, never an error.
absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

}  // namespace rdmashare
