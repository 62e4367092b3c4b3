// The HTTP endpoint of rdmashare-dp's observability: HttpServer serves GET (and HEAD) /metrics
// (a MetricsRegistry), /healthz (liveness callback) and /readyz (readiness callback); 404 for
// other paths, 405 for other methods, 400 for a malformed request, 431 for a request head over
// the size limit, 408 to a client whose request head is not complete within the header timeout.
// Any host that reaches the port may be hostile, and the kubelet liveness probe must still get
// through, so every connection is bounded: one request per connection ("Connection: close"; a
// body or a second request is read and discarded, at most 64 KiB), a deadline for the whole
// request head (from accept; a slow drip does not extend it), one for writing the response (a
// client that does not read is dropped) and one for the idle time after the response. At most
// max_clients connections are open; a new one is always accepted and, at the cap, replaces an
// open one: one already answered first, else one still sending its head, else one being written
// to -- in each class the oldest of the client address that holds the most connections, so a
// flood from one host evicts its own connections, not the probe's. One thread multiplexes all
// clients with poll(): a slow or silent client is cut off at its deadline and never delays
// another.
//
// Ownership and threading: the server borrows the registry (it must outlive the server) and owns
// its sockets and thread. Start/Stop from the owning thread; the callbacks and the registry's
// collect hooks run on the server thread; stats() from any thread. Heartbeat is thread-safe and
// lock-free. Request parsing is in http_message.h.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "deviceplugin/http_message.h"
#include "deviceplugin/metrics_registry.h"

namespace rdmashare::deviceplugin {

// Address and limits of an HttpServer.
struct HttpServerOptions {
  // "host:port"; port 0 picks a free port (see HttpServer::port()).
  std::string address = "127.0.0.1:0";
  // Largest request head accepted (request line + headers); bigger ones get 431.
  size_t max_request_bytes = 8192;
  // A client must send its complete request head within this time after the connection is
  // accepted (408 and close otherwise). Fixed at accept: bytes trickling in do not extend it.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(5);
  // The response must be taken by the client within this time after it is ready (close
  // otherwise), so a client that never reads cannot hold a connection.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  // After the response the server half-closes and waits this long for the client to close
  // (reading and discarding what it still sends) before it closes the connection itself.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(2);
  // Most connections open at once; at the cap a new connection replaces an old one (see above).
  int max_clients = 64;
};

// Counters of an HttpServer since Start, for tests and logs.
struct HttpServerStats {
  int open_connections = 0;      // open now
  int peak_connections = 0;      // most open at once
  uint64_t accepted = 0;         // connections accepted
  uint64_t evicted = 0;          // closed to make room for a new connection at the cap
  uint64_t responses = 0;        // responses started (one per connection at most)
  uint64_t header_timeouts = 0;  // closed with 408: no complete request head in time
  uint64_t write_timeouts = 0;   // closed with the response not taken in time
  uint64_t idle_timeouts = 0;    // closed after the response because the client kept it open
  uint64_t drain_limits = 0;     // closed after the response because the client sent too much

  bool operator==(const HttpServerStats& o) const {
    return open_connections == o.open_connections && peak_connections == o.peak_connections &&
           accepted == o.accepted && evicted == o.evicted && responses == o.responses &&
           header_timeouts == o.header_timeouts && write_timeouts == o.write_timeouts &&
           idle_timeouts == o.idle_timeouts && drain_limits == o.drain_limits;
  }
};

// Liveness/readiness probe: OK = healthy/ready; otherwise the message is the reason given in
// the 503 response body.
using ProbeFn = std::function<absl::Status()>;

// Heartbeat: the liveness signal of a loop. The loop calls Beat() on every iteration (including
// the wake-ups of its periodic timer); Check(), handed to HttpServer as the liveness probe,
// reports Unavailable once the last beat is older than `max_age`, i.e. the loop is stuck.
// Starts beaten at construction. Thread-safe and lock-free.
class Heartbeat {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `clock` is injectable for tests; the default is std::chrono::steady_clock::now.
  explicit Heartbeat(std::chrono::milliseconds max_age, Clock clock = nullptr);

  // Records a beat now.
  void Beat();
  // OK while the last beat is at most max_age old; otherwise Unavailable naming the age and
  // the limit ("no heartbeat from the main loop for 95.0 s (limit 90.0 s)").
  absl::Status Check() const;
  std::chrono::milliseconds max_age() const { return max_age_; }

 private:
  std::chrono::steady_clock::time_point Now() const;

  const std::chrono::milliseconds max_age_;
  const Clock clock_;
  std::atomic<int64_t> last_ns_;
};

// The /metrics, /healthz and /readyz server (see the top of this file).
class HttpServer {
 public:
  // `registry` must outlive the server. Null probes always report OK.
  HttpServer(HttpServerOptions options, const MetricsRegistry* registry, ProbeFn liveness,
             ProbeFn readiness);
  ~HttpServer();  // Stops.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the server thread. Errors name the address: InvalidArgument
  // (unparsable or unresolvable address, address not on this host, a limit in the options that
  // is not positive), Unavailable (address in use), PermissionDenied, Internal.
  // FailedPrecondition when already started.
  absl::Status Start();
  // The bound port (useful with port 0); 0 before Start.
  uint16_t port() const { return port_; }
  // Stops accepting, closes every connection and joins the thread. Idempotent.
  void Stop();
  // A snapshot of the counters, published by the server thread after every round of work.
  HttpServerStats stats() const ABSL_LOCKS_EXCLUDED(stats_mu_);

 private:
  struct Conn;
  using ConnList = std::list<Conn>;
  using Clock = std::chrono::steady_clock;

  void Loop();
  // Accepts pending connections (at most max_clients per call), evicting at the cap.
  void AcceptNew(ConnList& conns, Clock::time_point now);
  // Closes `c` (it is erased at the end of the round).
  void Close(Conn& c);
  // Closes the connection chosen to make room for a new one (see the header comment).
  void EvictOne(ConnList& conns);
  // Reads what the client sent; answers once the request head is complete or bad.
  void ReadFrom(Conn& c, Clock::time_point now);
  // Writes what the socket takes of the response; half-closes when it is all sent.
  void WriteTo(Conn& c, Clock::time_point now);
  // Switches `c` to writing `response`, with the write deadline.
  void StartResponse(Conn& c, std::string response, Clock::time_point now);
  // Closes connections past their deadline (408 to those still sending their head).
  void ExpireDeadlines(ConnList& conns, Clock::time_point now);
  // Builds the complete response for one request head.
  std::string Respond(const std::string& head) const;

  const HttpServerOptions options_;
  const MetricsRegistry* const registry_;
  const ProbeFn liveness_;
  const ProbeFn readiness_;

  UniqueFd listen_fd_;
  UniqueFd wake_fd_;  // eventfd: Stop() wakes poll()
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Owned by the server thread; published to stats_ after every round.
  HttpServerStats work_stats_;
  mutable absl::Mutex stats_mu_;
  HttpServerStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace rdmashare::deviceplugin
