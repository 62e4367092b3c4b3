// FIFO helpers for tests of hostile trees: plant a FIFO where a file is expected, and run code
// that must not block on it under a deadline that turns a hang into a failure.
//
// Free functions; each call is independent. The code under test runs on a helper thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rdmashare::testing {

// Creates a FIFO at `path` (mode 0600). Aborts the test binary on failure (tests only).
void MakeFifo(const std::string& path);

// Runs `fn` on a helper thread and returns true when it returns within `timeout`. Otherwise
// keeps opening each of `fifos` for writing and closing it again (a reader blocked in open(2) or
// read(2) on it then gets EOF) and for reading (a writer blocked in open(2) proceeds) until `fn`
// returns, and returns false: a regression fails the test instead of hanging it.
bool FinishesWithin(const std::function<void()>& fn, const std::vector<std::string>& fifos,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace rdmashare::testing
