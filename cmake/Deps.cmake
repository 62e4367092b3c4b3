# Third-party dependencies, all from Debian 12 packages (tools/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)

find_program(PROTOC protoc REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# Abseil and libnl are linked by library name (-l), not through the imported targets that point
# at the .so files: the same names then resolve to the .a archives in executables linked with
# -static (CNI plugins, CLI) and to the shared objects everywhere else.
execute_process(
  COMMAND ${PKG_CONFIG_EXECUTABLE} --static --libs-only-l
          absl_statusor absl_status absl_synchronization absl_str_format absl_strings absl_time
  OUTPUT_VARIABLE _absl_libs OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
separate_arguments(_absl_libs UNIX_COMMAND "${_absl_libs}")

# Executables with the property RS_STATIC_GRPC (rdmashare-dp) link gRPC, protobuf and abseil from
# their static archives: no dynamic loading of some 60 shared objects at start and about half the
# resident memory. Everything else links the shared libraries. (glibc and libstdc++ stay shared.)
execute_process(
  COMMAND ${PKG_CONFIG_EXECUTABLE} --static --libs-only-l grpc++_unsecure grpc protobuf
          absl_statusor absl_status absl_synchronization absl_str_format absl_strings absl_time
  OUTPUT_VARIABLE _grpc_libs OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
separate_arguments(_grpc_libs UNIX_COMMAND "${_grpc_libs}")
set(_grpc_archives)
set(_grpc_system_libs)
foreach(_item IN LISTS _grpc_libs)
  if(NOT _item MATCHES "^-l(.+)$")
    continue()
  endif()
  set(_name ${CMAKE_MATCH_1})
  # The secure gRPC core and OpenSSL are listed only to pull in grpc's other dependencies; the
  # unsecure build is enough for unix sockets.
  if(_name MATCHES "^(grpc|ssl|crypto)$")
    continue()
  endif()
  unset(_archive)
  find_library(_archive NAMES lib${_name}.a NO_CACHE)
  if(_archive AND NOT _name MATCHES "^(atomic|dl|rt|m|pthread)$")
    list(APPEND _grpc_archives ${_archive})
  else()
    list(APPEND _grpc_system_libs ${_name})
  endif()
endforeach()
list(REMOVE_DUPLICATES _grpc_archives)
list(REMOVE_DUPLICATES _grpc_system_libs)
list(JOIN _grpc_archives "," _grpc_archive_group)
set(_static_grpc "$<BOOL:$<TARGET_PROPERTY:RS_STATIC_GRPC>>")

add_library(rs_absl INTERFACE)
target_link_libraries(rs_absl INTERFACE "$<$<NOT:${_static_grpc}>:${_absl_libs}>"
                                        "$<${_static_grpc}:rs_grpc_static>" Threads::Threads)

# gRPC + protobuf for the kubelet APIs (linked through rs_api).
add_library(rs_grpc_shared INTERFACE)
target_link_libraries(rs_grpc_shared INTERFACE gRPC::grpc++ protobuf::libprotobuf)
add_library(rs_grpc_static INTERFACE)
target_link_libraries(rs_grpc_static INTERFACE
  "$<LINK_GROUP:RESCAN,${_grpc_archive_group}>" ${_grpc_system_libs})
add_library(rs_grpc INTERFACE)
target_link_libraries(rs_grpc INTERFACE
  "$<IF:${_static_grpc},rs_grpc_static,rs_grpc_shared>" Threads::Threads)

pkg_check_modules(LIBNL REQUIRED libnl-route-3.0)
add_library(rs_nl INTERFACE)
target_include_directories(rs_nl SYSTEM INTERFACE ${LIBNL_INCLUDE_DIRS})
target_link_libraries(rs_nl INTERFACE nl-route-3 nl-3 Threads::Threads)

# spdlog + fmt, header-only (FMT_HEADER_ONLY is set globally; spdlog is header-only unless
# SPDLOG_COMPILED_LIB is defined, which we never do).
add_library(rs_log INTERFACE)
target_compile_definitions(rs_log INTERFACE SPDLOG_FMT_EXTERNAL)

add_library(rs_json INTERFACE)
target_link_libraries(rs_json INTERFACE nlohmann_json::nlohmann_json)
