#include "deviceplugin/metrics_registry.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;

// ---------------------------------------------------------------------------------------------
// Registry and exposition format

TEST(MetricsRegistryTest, RendersExactExpositionTextSortedByNameAndLabels) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Gauge * devices,
                       r.AddGauge("rdmashare_devices", "Devices per resource.", {"resource"}));
  ASSERT_OK_AND_ASSIGN(Counter * allocs, r.AddCounter("rdmashare_allocate_calls_total",
                                                      "Allocate calls.", {"resource", "result"}));
  ASSERT_OK_AND_ASSIGN(Gauge * scan,
                       r.AddGauge("rdmashare_scan_duration_seconds", "Duration of the last scan."));
  devices->Set({"spidernet.io/rail2"}, 4);
  devices->Set({"spidernet.io/rail1"}, 1000);
  allocs->Increment({"spidernet.io/rail1", "ok"});
  allocs->Increment({"spidernet.io/rail1", "ok"}, 2);
  allocs->Increment({"spidernet.io/rail1", "error"});
  scan->Set(0.0125);
  EXPECT_EQ(r.Render(),
            "# HELP rdmashare_allocate_calls_total Allocate calls.\n"
            "# TYPE rdmashare_allocate_calls_total counter\n"
            "rdmashare_allocate_calls_total{resource=\"spidernet.io/rail1\",result=\"error\"} 1\n"
            "rdmashare_allocate_calls_total{resource=\"spidernet.io/rail1\",result=\"ok\"} 3\n"
            "# HELP rdmashare_devices Devices per resource.\n"
            "# TYPE rdmashare_devices gauge\n"
            "rdmashare_devices{resource=\"spidernet.io/rail1\"} 1000\n"
            "rdmashare_devices{resource=\"spidernet.io/rail2\"} 4\n"
            "# HELP rdmashare_scan_duration_seconds Duration of the last scan.\n"
            "# TYPE rdmashare_scan_duration_seconds gauge\n"
            "rdmashare_scan_duration_seconds 0.0125\n");
}

TEST(MetricsRegistryTest, FamilyWithoutLabelsStartsAtZero) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Counter * c, r.AddCounter("x_total", "X."));
  EXPECT_THAT(c->Value(), Optional(0.0));
  EXPECT_EQ(r.Render(), "# HELP x_total X.\n# TYPE x_total counter\nx_total 0\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Gauge * g, r.AddGauge("g", "Help with \\ and\nnewline \"quoted\".", {"l"}));
  g->Set({"a\\b\"c\nd"}, 1);
  EXPECT_EQ(r.Render(),
            "# HELP g Help with \\\\ and\\nnewline \"quoted\".\n"
            "# TYPE g gauge\n"
            "g{l=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, FormatsSpecialAndFractionalValues) {
  struct Case {
    double v;
    const char* text;
  };
  for (const Case& c : std::vector<Case>{{0, "0"},
                                         {1, "1"},
                                         {-2.5, "-2.5"},
                                         {1e21, "1e+21"},
                                         {123456789, "123456789"},
                                         {std::numeric_limits<double>::infinity(), "+Inf"},
                                         {-std::numeric_limits<double>::infinity(), "-Inf"},
                                         {std::nan(""), "NaN"}}) {
    EXPECT_EQ(FormatMetricValue(c.v), c.text);
  }
}

TEST(MetricsRegistryTest, CounterIgnoresNegativeDeltasGaugeGoesBothWays) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Counter * c, r.AddCounter("c_total", "C."));
  ASSERT_OK_AND_ASSIGN(Gauge * g, r.AddGauge("g", "G.", {"k"}));
  c->Increment({}, 5);
  c->Increment({}, -3);
  c->Increment({}, std::nan(""));
  EXPECT_THAT(c->Value(), Optional(5.0));
  g->Add({"a"}, 5);
  g->Add({"a"}, -7);
  EXPECT_THAT(g->Value({"a"}), Optional(-2.0));
}

TEST(MetricsRegistryTest, WrongNumberOfLabelValuesChangesNothing) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Gauge * g, r.AddGauge("g", "G.", {"a", "b"}));
  g->Set({"only-one"}, 1);
  g->Set({"1", "2", "3"}, 1);
  EXPECT_EQ(g->Value({"only-one"}), std::nullopt);
  EXPECT_EQ(r.Render(), "# HELP g G.\n# TYPE g gauge\n");
}

TEST(MetricsRegistryTest, RemoveAndRemoveMatchingDropSeries) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Gauge * g, r.AddGauge("g", "G.", {"resource", "hca"}));
  g->Set({"r1", "mlx5_0"}, 1);
  g->Set({"r1", "mlx5_1"}, 1);
  g->Set({"r2", "mlx5_0"}, 1);
  g->Remove({"r2", "mlx5_0"});
  EXPECT_EQ(g->Value({"r2", "mlx5_0"}), std::nullopt);
  g->RemoveMatching("resource", "r1");
  g->RemoveMatching("nolabel", "r1");
  EXPECT_EQ(r.Render(), "# HELP g G.\n# TYPE g gauge\n");
}

TEST(MetricsRegistryTest, RejectsBadAndDuplicateNames) {
  MetricsRegistry r;
  ASSERT_OK(r.AddCounter("ok_total", "ok").status());
  struct Case {
    const char* name;
    std::vector<std::string> labels;
    absl::StatusCode code;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"ok_total", {}, absl::StatusCode::kAlreadyExists, "ok_total is already registered"},
           {"", {}, absl::StatusCode::kInvalidArgument, "metric name ''"},
           {"1abc", {}, absl::StatusCode::kInvalidArgument, "metric name '1abc'"},
           {"a-b", {}, absl::StatusCode::kInvalidArgument, "metric name 'a-b'"},
           {"m", {"__reserved"}, absl::StatusCode::kInvalidArgument, "label name '__reserved'"},
           {"m", {"a:b"}, absl::StatusCode::kInvalidArgument, "label name 'a:b'"},
           {"m", {"x", "x"}, absl::StatusCode::kInvalidArgument, "label name x repeated"},
       }) {
    EXPECT_THAT(r.AddGauge(c.name, "h", c.labels), StatusIs(c.code, HasSubstr(c.message)))
        << c.name;
  }
}

TEST(MetricsRegistryTest, CollectHooksRunBeforeEachRender) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Gauge * g, r.AddGauge("g", "G."));
  int calls = 0;
  r.AddCollectHook([&] { g->Set(++calls); });
  EXPECT_THAT(r.Render(), HasSubstr("\ng 1\n"));
  EXPECT_THAT(r.Render(), HasSubstr("\ng 2\n"));
}

TEST(MetricsRegistryTest, ConcurrentIncrementsAreAllCounted) {
  MetricsRegistry r;
  ASSERT_OK_AND_ASSIGN(Counter * c, r.AddCounter("c_total", "C.", {"t"}));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([c] {
      for (int i = 0; i < 10000; ++i) c->Increment({"same"});
    });
  }
  std::atomic<bool> done{false};
  std::thread renderer([&] {
    while (!done) r.Render();
  });
  for (auto& t : threads) t.join();
  done = true;
  renderer.join();
  EXPECT_THAT(c->Value({"same"}), Optional(40000.0));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
