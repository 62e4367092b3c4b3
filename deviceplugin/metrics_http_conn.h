// HttpServer's per-connection state (HttpServer::Conn), shared by the server loop
// (metrics_http.cc) and the connection state machine (metrics_http_conn.cc: accept and evict,
// read the request head, write the response, drain, expire deadlines). Private to those two
// files. A Conn is owned by the server thread's connection list and touched only on that thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "common/unique_fd.h"
#include "deviceplugin/metrics_http.h"

namespace rdmashare::deviceplugin {

// One client connection of an HttpServer.
struct HttpServer::Conn {
  // kReading: waiting for the request head (header deadline); kWriting: sending the response
  // (write deadline); kDraining: answered and half-closed, discarding input until the client
  // closes (idle deadline); kClosed: fd closed, erased at the end of the round.
  enum class State { kReading, kWriting, kDraining, kClosed };
  UniqueFd fd;
  std::string peer;
  State state = State::kReading;
  std::string in;             // the request head so far
  bool line_checked = false;  // the request line is complete and was validated
  std::string out;            // the response
  size_t out_off = 0;         // bytes of `out` already sent
  size_t drained = 0;         // bytes discarded after the head
  std::chrono::steady_clock::time_point deadline;
};

}  // namespace rdmashare::deviceplugin
