# The device plugin proper: pools, gRPC service, registration, events, daemon, flags, main.
add_library(rs_dp STATIC
  resource_pool.cc plugin_service.cc plugin_server.cc daemon.cc daemon_reload.cc
  daemon_registration.cc daemon_metrics.cc kubelet_watch.cc config_watch.cc registration.cc
  gid_room_check.cc flags.cc)
target_link_libraries(rs_dp PUBLIC rs_dp_config rs_dp_cdi rs_dp_metrics rs_dp_port_metrics rs_rdma rs_api
                                   rs_common)

add_executable(rdmashare-dp main.cc)
target_link_libraries(rdmashare-dp PRIVATE rs_dp rs_rdma_udev)
# gRPC, protobuf and abseil from static archives (see cmake/Deps.cmake).
set_target_properties(rdmashare-dp PROPERTIES RS_STATIC_GRPC ON)

rdmashare_test(dp_core_test
  SOURCES resource_pool_test.cc plugin_service_test.cc flags_test.cc
  LIBS rs_dp rs_fakenode)
