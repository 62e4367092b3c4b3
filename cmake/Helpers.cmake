# rdmashare_test(NAME SOURCES... LIBS ...): a GoogleTest binary whose cases are discovered
# when ctest runs (so each case is its own ctest entry and the counts are honest).
function(rdmashare_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} rs_testing GTest::gmock GTest::gtest_main)
  # The test sources themselves at -O0 (the code under test keeps the tree's optimization, or
  # the sanitizer trees' -O1): gmock and nlohmann::json templates cost about 40 % less to
  # compile unoptimized, the largest part of a fresh-clone CI run, and the harness code gains
  # nothing from -O2.
  target_compile_options(${name} PRIVATE -O0)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  # NO_PRETTY_VALUES: ctest names are the gtest names alone, not "# GetParam() = <bytes>" dumps
  # that hold heap pointers and change on every listing.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 NO_PRETTY_VALUES
                       PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# rdmashare_static(TARGET): link TARGET as a fully static executable when static tools are on.
function(rdmashare_static target)
  if(RDMASHARE_STATIC_TOOLS)
    target_link_options(${target} PRIVATE -static)
  endif()
endfunction()
