# bert_add_test(NAME SOURCES a.cc b.cc LIBS lib1 lib2 [TIMEOUT seconds] [LABELS l])
# One GoogleTest executable, registered with CTest (one CTest test per executable,
# so that expensive fixtures are set up once).
# BERT_TEST_BIN_DIR: where tests find bertd, bert-agent, bertctl and
# bert-worker ($BERT_BIN_DIR); this build's bin/ unless set, e.g. to another
# build's bin/ when this one builds only tests.
set(BERT_TEST_BIN_DIR "${CMAKE_BINARY_DIR}/bin" CACHE PATH
    "Directory with the binaries that tests run (BERT_BIN_DIR)")
function(bert_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  bert_target_warnings(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "BERT_SOURCE_DIR=${PROJECT_SOURCE_DIR};BERT_BIN_DIR=${BERT_TEST_BIN_DIR};BERT_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared")
  if(ARG_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
