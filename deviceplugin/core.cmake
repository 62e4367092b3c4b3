# The device plugin proper: pools, gRPC service, registration, daemon, flags, main.
# (Guarded while the pieces it depends on land from parallel work.)
if(TARGET rs_dp_config AND EXISTS ${PROJECT_SOURCE_DIR}/rdma/device_scanner.h)
  add_library(rs_dp STATIC
    resource_pool.cc plugin_service.cc plugin_server.cc daemon.cc flags.cc)
  target_link_libraries(rs_dp PUBLIC rs_dp_config rs_rdma rs_api rs_common)

  add_executable(rdmashare-dp main.cc)
  target_link_libraries(rdmashare-dp PRIVATE rs_dp)
  # gRPC, protobuf and abseil from static archives (see cmake/Deps.cmake).
  set_target_properties(rdmashare-dp PROPERTIES RS_STATIC_GRPC ON)

  if(TARGET rs_fakenode AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/resource_pool_test.cc)
    rdmashare_test(dp_core_test
      SOURCES resource_pool_test.cc plugin_service_test.cc flags_test.cc
      LIBS rs_dp rs_fakenode)
  endif()
endif()
