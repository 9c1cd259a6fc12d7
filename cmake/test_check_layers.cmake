# Proves the layering check bites: the real tree passes, and a copy with
# one upward include planted in store/ (store may use only base) fails
# with a message naming the file and the module.
#   cmake -DSRC=<src dir> -DWORK=<scratch dir> -P cmake/test_check_layers.cmake
cmake_minimum_required(VERSION 3.20)
set(check ${CMAKE_CURRENT_LIST_DIR}/check_layers.cmake)

execute_process(COMMAND ${CMAKE_COMMAND} -DSRC=${SRC} -P ${check}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the tree itself fails the check:\n${err}")
endif()

file(REMOVE_RECURSE ${WORK})
file(COPY ${SRC}/ DESTINATION ${WORK}/src)
file(APPEND ${WORK}/src/store/store.c "#include \"smtp/smtp.h\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -DSRC=${WORK}/src -P ${check}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
file(REMOVE_RECURSE ${WORK})
if(rc EQUAL 0)
  message(FATAL_ERROR "a planted upward include (store -> smtp) passed the check")
endif()
if(NOT err MATCHES "src/store/store.c: store may not include smtp/")
  message(FATAL_ERROR "the check failed, but not for the planted include:\n${err}")
endif()
message(STATUS "planted upward include refused, as it must be")
