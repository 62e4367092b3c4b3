// The metrics registry of rdmashare-dp: counter and gauge families (name, help, label names) and
// their series (one value per label-value tuple), rendered in the Prometheus text exposition
// format 0.0.4: families sorted by name, series sorted by label values, "# HELP" and "# TYPE"
// lines, label values escaped (\\, \", \n). The registry owns its families; the Counter*/Gauge*
// handles it returns stay valid for the registry's lifetime. Everything is thread-safe; collect
// hooks run on the thread that calls Render (the HTTP server's, see metrics_http.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rdmashare::deviceplugin {

// Content-Type of /metrics.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The Prometheus type of a family ("# TYPE" line).
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
  // AddCounter / AddGauge: checks the names and stores a new family of type T.
  template <typename T>
  absl::StatusOr<T*> AddFamily(const std::string& name, const std::string& help, MetricType type,
                               std::vector<std::string> label_names) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mu_);
};

// Escapes a label value for the exposition format (\\ -> \\\\, " -> \", newline -> \n).
std::string EscapeLabelValue(const std::string& value);
// Formats a sample value as the exposition format expects ("1", "0.25", "+Inf", "NaN").
std::string FormatMetricValue(double value);

}  // namespace rdmashare::deviceplugin
