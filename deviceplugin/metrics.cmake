# Metrics registry (Prometheus text format) and the /metrics, /healthz, /readyz HTTP server.
# Included by deviceplugin/CMakeLists.txt. No gRPC.
add_library(rs_dp_metrics STATIC metrics_registry.cc http_message.cc metrics_http.cc
                               metrics_http_conn.cc)
target_link_libraries(rs_dp_metrics PUBLIC rs_common)

rdmashare_test(dp_metrics_test SOURCES metrics_registry_test.cc metrics_http_test.cc
               LIBS rs_dp_metrics)

# RoCE port counters mirrored into /metrics at scrape time.
add_library(rs_dp_port_metrics STATIC port_metrics.cc)
target_link_libraries(rs_dp_port_metrics PUBLIC rs_dp_metrics rs_rdma)
rdmashare_test(dp_port_metrics_test SOURCES port_metrics_test.cc LIBS rs_dp_port_metrics
               rs_fakenode)
