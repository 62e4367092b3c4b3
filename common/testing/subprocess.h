// Subprocess: runs a program (common/subprocess.h's SpawnProcess: fork + execve, no shell) with
// arguments, environment and stdin, capturing stdout and stderr to files, for tests that drive
// our real binaries and long-running daemons. RunProgram, for a program run to completion, is
// common/subprocess.h's RunSubprocess.
//
// One object per child; not thread-safe. The destructor kills (SIGKILL) and reaps a child still
// running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rdmashare::testing {

class Subprocess {
 public:
  struct Options {
    std::vector<std::string> argv;  // argv[0] is the program path
    // Environment; when empty the child inherits ours.
    std::map<std::string, std::string> env;
    bool inherit_env = true;  // merge `env` over ours (true) or use `env` alone (false)
    std::string stdin_data;
    // Directory for the captured output files (a TempDir path).
    std::string work_dir = "/tmp";
    // Working directory of the child; empty = ours.
    std::string cwd;
  };

  explicit Subprocess(Options options);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts the child. Returns false when it could not be started (start_error() says why: a
  // missing program, fork failure, ...).
  bool Start();
  const std::string& start_error() const { return start_error_; }
  pid_t pid() const { return pid_; }
  // Sends a signal to the child.
  void Signal(int sig);
  // Waits up to `timeout` for the child to exit; returns its exit code (128+signal when
  // killed), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0 && !exit_code_; }

  // Everything the child wrote so far.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  Options options_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string out_path_;
  std::string err_path_;
  std::string start_error_;
};

// Runs to completion (with a 60 s limit, then SIGKILL: exit code 137) and returns {exit code,
// stdout, stderr} (each kept up to 64 MiB). A program that could not be started: exit code -1
// and the reason in `err`.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunProgram(Subprocess::Options options,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace rdmashare::testing
