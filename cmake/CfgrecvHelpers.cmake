# Every test runs with the project's LeakSanitizer suppressions (nng's own
# leaks around a wedged listener; tests/lsan.supp says which).
set(CR_TEST_ENV "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")

# cr_test(NAME SOURCES src... LIBS lib...)
#   A criterion unit test. Skipped under TSan (criterion cannot run there,
#   see NOTES.md); the TSan build runs the standalone drivers instead.
function(cr_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(CFGRECV_TSAN)
    return()
  endif()
  if(NOT TARGET PkgConfig::CRITERION)
    pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET GLOBAL criterion)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CRITERION)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_test(NAME ${name} COMMAND ${name} --jobs 2)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS unit
    ENVIRONMENT "${CR_TEST_ENV}")
endfunction()

# cr_driver(NAME SOURCES src... LIBS lib... [ARGS args...])
#   A standalone test driver (plain main, non-zero exit on failure). Runs in
#   every build, including TSan.
function(cr_driver name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS driver
    ENVIRONMENT "${CR_TEST_ENV}")
endfunction()

# cr_e2e(NAME SCRIPT path)
#   An end-to-end shell test run against the built programs in a temp dir.
function(cr_e2e name script)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  if(CFGRECV_TSAN)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
           COMMAND bash ${script}
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS e2e
    ENVIRONMENT "CFGRECV_BIN=${PROJECT_BINARY_DIR}/tools;CFGRECV_SRC=${PROJECT_SOURCE_DIR};CFGRECV_SHARED=${PROJECT_SOURCE_DIR}/../shared;${CR_TEST_ENV}")
endfunction()
