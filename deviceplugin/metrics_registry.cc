#include "deviceplugin/metrics_registry.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

bool IsMetricNameChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsLabelNameChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  return !first && c >= '0' && c <= '9';
}

bool ValidName(const std::string& s, bool (*ok)(char, bool)) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!ok(s[i], i == 0)) return false;
  }
  return true;
}

// HELP text escaping: only backslash and newline.
std::string EscapeHelp(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

// ---------------------------------------------------------------------------------------------
// MetricFamily

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type,
                           std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  if (label_names_.empty()) {
    absl::MutexLock lock(&mu_);
    series_[{}] = 0;
  }
}

bool MetricFamily::CheckArity(const std::vector<std::string>& label_values) const {
  if (label_values.size() == label_names_.size()) return true;
  if (!arity_error_logged_) {
    arity_error_logged_ = true;
    spdlog::error("metric {}: got {} label values for {} label names; sample dropped", name_,
                  label_values.size(), label_names_.size());
  }
  return false;
}

std::optional<double> MetricFamily::Value(const std::vector<std::string>& label_values) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(label_values);
  if (it == series_.end()) return std::nullopt;
  return it->second;
}

void MetricFamily::Remove(const std::vector<std::string>& label_values) {
  absl::MutexLock lock(&mu_);
  series_.erase(label_values);
}

void MetricFamily::ReplaceAll(std::map<std::vector<std::string>, double> series) {
  absl::MutexLock lock(&mu_);
  for (auto it = series.begin(); it != series.end();) {
    it = CheckArity(it->first) ? std::next(it) : series.erase(it);
  }
  series_ = std::move(series);
}

void MetricFamily::RemoveMatching(const std::string& label_name, const std::string& label_value) {
  auto pos = std::find(label_names_.begin(), label_names_.end(), label_name);
  if (pos == label_names_.end()) return;
  size_t idx = static_cast<size_t>(pos - label_names_.begin());
  absl::MutexLock lock(&mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    if (it->first[idx] == label_value) {
      it = series_.erase(it);
    } else {
      ++it;
    }
  }
}

void MetricFamily::AddTo(const std::vector<std::string>& label_values, double delta) {
  absl::MutexLock lock(&mu_);
  if (!CheckArity(label_values)) return;
  series_[label_values] += delta;
}

void MetricFamily::SetTo(const std::vector<std::string>& label_values, double value) {
  absl::MutexLock lock(&mu_);
  if (!CheckArity(label_values)) return;
  series_[label_values] = value;
}

void MetricFamily::Render(std::string* out) const {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name_, EscapeHelp(help_),
                 name_, type_ == MetricType::kCounter ? "counter" : "gauge");
  absl::MutexLock lock(&mu_);
  for (const auto& [values, v] : series_) {
    out->append(name_);
    if (!values.empty()) {
      out->push_back('{');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out->push_back(',');
        fmt::format_to(std::back_inserter(*out), "{}=\"{}\"", label_names_[i],
                       EscapeLabelValue(values[i]));
      }
      out->push_back('}');
    }
    out->push_back(' ');
    out->append(FormatMetricValue(v));
    out->push_back('\n');
  }
}

void Counter::Increment(const std::vector<std::string>& label_values, double delta) {
  if (!(delta >= 0)) return;
  AddTo(label_values, delta);
}

void Gauge::Set(const std::vector<std::string>& label_values, double value) {
  SetTo(label_values, value);
}

void Gauge::Add(const std::vector<std::string>& label_values, double delta) {
  AddTo(label_values, delta);
}

// ---------------------------------------------------------------------------------------------
// MetricsRegistry

absl::Status MetricsRegistry::CheckNew(const std::string& name,
                                       const std::vector<std::string>& label_names) const {
  if (!ValidName(name, IsMetricNameChar)) {
    return absl::InvalidArgumentError(
        fmt::format("metric name '{}' does not match [a-zA-Z_:][a-zA-Z0-9_:]*", name));
  }
  if (families_.count(name) != 0) {
    return absl::AlreadyExistsError(fmt::format("metric {} is already registered", name));
  }
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    if (!ValidName(l, IsLabelNameChar) || l.rfind("__", 0) == 0) {
      return absl::InvalidArgumentError(fmt::format(
          "metric {}: label name '{}' does not match [a-zA-Z_][a-zA-Z0-9_]* or starts with '__'",
          name, l));
    }
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(fmt::format("metric {}: label name {} repeated", name, l));
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T*> MetricsRegistry::AddFamily(const std::string& name, const std::string& help,
                                              MetricType type,
                                              std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names));
  auto family = std::make_unique<T>(name, help, type, std::move(label_names));
  T* raw = family.get();
  families_[name] = std::move(family);
  return raw;
}

absl::StatusOr<Counter*> MetricsRegistry::AddCounter(const std::string& name,
                                                     const std::string& help,
                                                     std::vector<std::string> label_names) {
  return AddFamily<Counter>(name, help, MetricType::kCounter, std::move(label_names));
}

absl::StatusOr<Gauge*> MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                                 std::vector<std::string> label_names) {
  return AddFamily<Gauge>(name, help, MetricType::kGauge, std::move(label_names));
}

void MetricsRegistry::AddCollectHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(hook));
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->Render(&out);
  return out;
}

}  // namespace rdmashare::deviceplugin
