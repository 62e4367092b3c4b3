// Metrics and the observability HTTP endpoint of rdmashare-dp.
//
// MetricsRegistry holds counter and gauge families (name, help, label names) and their series
// (one value per label-value tuple) and renders them in the Prometheus text exposition format
// 0.0.4: families sorted by name, series sorted by label values, "# HELP" and "# TYPE" lines,
// label values escaped (\\, \", \n). The registry owns its families; the Counter*/Gauge*
// handles it returns stay valid for the registry's lifetime. Everything is thread-safe.
//
// HttpServer serves GET (and HEAD) /metrics (the registry), /healthz (liveness callback) and
// /readyz (readiness callback); 404 for other paths, 405 for other methods, 400 for a malformed
// request, 431 for a request head over the size limit, 408 to a client whose request head is not
// complete within the header timeout. Any host that reaches the port may be hostile, and the
// kubelet liveness probe must still get through, so every connection is bounded: one request per
// connection ("Connection: close"; a body or a second request is read and discarded, at most
// 64 KiB), a deadline for the whole request head (from accept; a slow drip does not extend it),
// one for writing the response (a client that does not read is dropped) and one for the idle
// time after the response. At most max_clients connections are open; a new one is always
// accepted and, at the cap, replaces an open one: one already answered first, else one still
// sending its head, else one being written to -- in each class the oldest of the client address
// that holds the most connections, so a flood from one host evicts its own connections, not the
// probe's. One thread multiplexes all clients with poll(): a slow or silent client is cut off at
// its deadline and never delays another. Start/Stop from the owning thread; the callbacks and the
// registry's collect hooks run on the server thread; stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace rdmashare::deviceplugin {

// Content-Type of /metrics.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge };

class MetricsRegistry;

// One metric family: a name, help text, label names and a value per label-value tuple.
// Label values are given in the order of the family's label names. A call whose number of
// values differs from the number of label names changes nothing (it is a programming error; it
// is logged once per family).
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names);
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // The value of one series, nullopt when it does not exist.
  std::optional<double> Value(const std::vector<std::string>& label_values = {}) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes one series (e.g. of a resource that was removed from the config).
  void Remove(const std::vector<std::string>& label_values) ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes every series whose value for label `label_name` is `label_value`.
  void RemoveMatching(const std::string& label_name, const std::string& label_value)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Replaces every series at once: for values mirrored from elsewhere at scrape time (e.g. the
  // kernel's RDMA port counters), so series of vanished objects go and a scrape never sees half
  // an update. Series whose arity is wrong are dropped (and logged once).
  void ReplaceAll(std::map<std::vector<std::string>, double> series) ABSL_LOCKS_EXCLUDED(mu_);

  // Appends this family in exposition format to `out`.
  void Render(std::string* out) const ABSL_LOCKS_EXCLUDED(mu_);

 protected:
  // Adds `delta` to a series (creating it at 0).
  void AddTo(const std::vector<std::string>& label_values, double delta) ABSL_LOCKS_EXCLUDED(mu_);
  // Sets a series (creating it).
  void SetTo(const std::vector<std::string>& label_values, double value) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool CheckArity(const std::vector<std::string>& label_values) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;

  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, double> series_ ABSL_GUARDED_BY(mu_);
  mutable bool arity_error_logged_ ABSL_GUARDED_BY(mu_) = false;
};

// A monotonically increasing count ("..._total").
class Counter : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  // Adds `delta` (negative deltas are ignored: counters never go down).
  void Increment(const std::vector<std::string>& label_values = {}, double delta = 1.0);
};

// A value that goes up and down.
class Gauge : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  void Set(const std::vector<std::string>& label_values, double value);
  void Set(double value) { Set({}, value); }
  void Add(const std::vector<std::string>& label_values, double delta);
};

// The set of families a process exports.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Creates a family. Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
  // [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" and without duplicates; InvalidArgument naming
  // the bad name otherwise, AlreadyExists when the metric name is taken. A family without labels
  // starts with its single series at 0.
  absl::StatusOr<Counter*> AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names = {})
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Gauge*> AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names = {})
      ABSL_LOCKS_EXCLUDED(mu_);

  // Registers a function run at the start of every Render (outside the registry lock), to
  // refresh gauges that are cheaper to read on demand (e.g. devices per resource).
  void AddCollectHook(std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_);

  // The whole exposition text (families sorted by name).
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status CheckNew(const std::string& name, const std::vector<std::string>& label_names) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mu_);
};

// Escapes a label value for the exposition format (\\ -> \\\\, " -> \", newline -> \n).
std::string EscapeLabelValue(const std::string& value);
// Formats a sample value as the exposition format expects ("1", "0.25", "+Inf", "NaN").
std::string FormatMetricValue(double value);

// Splits "host:port" ("127.0.0.1:9090", "[::1]:0", "localhost:9090", ":9090" = all
// interfaces) into host and port. InvalidArgument naming the address otherwise.
absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address);

// A parsed HTTP/1.x request head.
struct HttpRequestHead {
  std::string method;   // "GET"
  std::string path;     // "/metrics" (the target without its query)
  std::string query;    // what followed '?', without it; may be empty
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"

  bool operator==(const HttpRequestHead& o) const {
    return method == o.method && path == o.path && query == o.query && version == o.version;
  }
};

// Parses an untrusted request head: the request line and the header lines (CRLF or bare LF line
// ends; a trailing blank line is optional). InvalidArgument naming the problem: a request line
// that is not "<method> <target> HTTP/1.x", a method that is not a token, a target that is not
// an absolute path or holds control characters or spaces, another HTTP version, a header line
// without "name:".
absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(const std::string& head);

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
