# Metrics registry (Prometheus text format) and the /metrics, /healthz, /readyz HTTP server.
# Included by deviceplugin/CMakeLists.txt. No gRPC.
add_library(rs_dp_metrics STATIC metrics.cc)
target_link_libraries(rs_dp_metrics PUBLIC rs_common)

rdmashare_test(dp_metrics_test SOURCES metrics_test.cc LIBS rs_dp_metrics)
