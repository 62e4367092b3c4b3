// WaitFor: polls a condition until it holds or a deadline passes (tests wait on conditions,
// never sleep for a fixed time).
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace rdmashare::testing {

// Returns true as soon as `cond()` is true; false after `timeout`.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace rdmashare::testing
