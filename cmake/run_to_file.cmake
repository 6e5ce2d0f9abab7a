# cmake -DCMD="prog;arg;..." -DOUT=file -P run_to_file.cmake: runs CMD, its stdout into OUT
# (written whole or not at all), failing the build when CMD fails.
execute_process(COMMAND ${CMD} OUTPUT_FILE "${OUT}.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "${CMD} failed (${rc})")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
