# Device plugin config.json parsing/validation and device selectors. Included by
# deviceplugin/CMakeLists.txt. No gRPC: rs_dp_config links into the static CLI too.
add_library(rs_dp_config STATIC config.cc config_fields.cc resource_name.cc selectors.cc)
target_link_libraries(rs_dp_config PUBLIC rs_rdma rs_json rs_common)

rdmashare_test(dp_config_test SOURCES config_test.cc LIBS rs_dp_config)
target_compile_definitions(dp_config_test
                           PRIVATE RS_DP_TESTDATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/testdata")
rdmashare_test(dp_selectors_test SOURCES selectors_test.cc LIBS rs_dp_config)
