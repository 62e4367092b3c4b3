# CDI spec writer (no gRPC: only the plain records of resource_pool.h and rdma/device.h).
# Included by deviceplugin/CMakeLists.txt.
add_library(rs_dp_cdi STATIC cdi.cc)
target_link_libraries(rs_dp_cdi PUBLIC rs_common rs_json)

rdmashare_test(dp_cdi_test SOURCES cdi_test.cc LIBS rs_dp_cdi)
