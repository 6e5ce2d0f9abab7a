# Runs one CLI invocation and checks its exit code and output.
#   cmake -DCMD="prog|arg|..." -DEXPECT_RC=N [-DEXPECT_OUT=regex] [-DEXPECT_ERR=regex]
#         [-DREJECT_OUT=regex] -P run_cli.cmake
string(REPLACE "|" ";" CMD "${CMD}")
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 120)
set(problems "")
if(NOT "${rc}" STREQUAL "${EXPECT_RC}")
  string(APPEND problems "exit code ${rc}, expected ${EXPECT_RC}\n")
endif()
if(DEFINED EXPECT_OUT AND NOT out MATCHES "${EXPECT_OUT}")
  string(APPEND problems "stdout does not match '${EXPECT_OUT}'\n")
endif()
if(DEFINED EXPECT_ERR AND NOT err MATCHES "${EXPECT_ERR}")
  string(APPEND problems "stderr does not match '${EXPECT_ERR}'\n")
endif()
if(DEFINED REJECT_OUT AND out MATCHES "${REJECT_OUT}")
  string(APPEND problems "stdout matches '${REJECT_OUT}', which it must not\n")
endif()
if(problems)
  message(FATAL_ERROR "${CMD}\n${problems}--- stdout:\n${out}\n--- stderr:\n${err}")
endif()
