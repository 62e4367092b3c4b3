# Third-party dependencies, all from Debian 12 packages (tools/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
if(RDMASHARE_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()

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
add_library(rs_absl INTERFACE)
target_link_libraries(rs_absl INTERFACE ${_absl_libs} Threads::Threads)

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
