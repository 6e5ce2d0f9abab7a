# The installable library: libmmembed.so (every layer's objects in one shared library, with a
# SONAME), the public headers, a CMake package (find_package(mmembed) -> mmembed::mmembed) and a
# pkg-config file. Included from the top-level CMakeLists.txt after the layers.
#
# The layers stay static libraries: the CLI, the tests and the benchmarks link them directly, so
# nothing in the build depends on the shared library but the install and the examples.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MMEMBED_LAYERS core kernels ops io hub data text vision nn models embed search index retrieval reduce plot)

# The shared library's sources are the layers' object files; linking the layer targets as well
# brings their third-party libraries (oneDNN, libjpeg, libcurl, ...) and the GEMM backend, and
# pulls nothing twice, because an archive member is only taken for a symbol still undefined.
set(_mmembed_objects "")
set(_mmembed_layer_targets "")
foreach(layer ${MMEMBED_LAYERS})
  list(APPEND _mmembed_objects $<TARGET_OBJECTS:mmembed_${layer}>)
  list(APPEND _mmembed_layer_targets mmembed_${layer})
endforeach()
add_library(mmembed_shared SHARED ${_mmembed_objects})
target_link_libraries(mmembed_shared PRIVATE ${_mmembed_layer_targets})
# Only the mmembed:: namespace is exported (cmake/mmembed.map); a version script, so the symbols
# carry the version node MMEMBED_<major>.<minor> as well.
set(_mmembed_map ${CMAKE_BINARY_DIR}/generated/mmembed.map)
configure_file(${PROJECT_SOURCE_DIR}/cmake/mmembed.map.in ${_mmembed_map} @ONLY)
target_link_options(mmembed_shared PRIVATE "LINKER:--version-script=${_mmembed_map}")
# Every symbol resolved at link time, so a missing library fails here and not in a consumer;
# not under sanitizers, whose runtime clang links into executables only.
if(NOT MMEMBED_SANITIZE)
  target_link_options(mmembed_shared PRIVATE "LINKER:--no-undefined")
endif()
set_property(TARGET mmembed_shared APPEND PROPERTY LINK_DEPENDS ${_mmembed_map})
# 0.x: any minor release may change the ABI, so the SONAME carries major.minor.
set_target_properties(mmembed_shared PROPERTIES
  OUTPUT_NAME mmembed
  EXPORT_NAME mmembed
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_include_directories(mmembed_shared INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<BUILD_INTERFACE:${CMAKE_BINARY_DIR}/generated>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# The public headers use std::span and other C++20 parts.
target_compile_features(mmembed_shared INTERFACE cxx_std_20)
add_library(mmembed::mmembed ALIAS mmembed_shared)

install(TARGETS mmembed_shared EXPORT mmembedTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mmembed
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/generated/mmembed/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mmembed COMPONENT dev)

set(MMEMBED_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mmembed)
install(EXPORT mmembedTargets NAMESPACE mmembed:: DESTINATION ${MMEMBED_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mmembedConfig.cmake.in
  ${CMAKE_BINARY_DIR}/generated/mmembedConfig.cmake INSTALL_DESTINATION ${MMEMBED_CMAKE_DIR})
# Same major.minor only, as the SONAME says.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/generated/mmembedConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/generated/mmembedConfig.cmake
  ${CMAKE_BINARY_DIR}/generated/mmembedConfigVersion.cmake
  DESTINATION ${MMEMBED_CMAKE_DIR} COMPONENT dev)

# pkg-config: the prefix is found from where the .pc file lies (pkgconf's ${pcfiledir}), so the
# file is right for whatever `cmake --install --prefix P` (or DESTDIR) puts it under.
set(_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MMEMBED_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/p/${_pc_dir}" "/p")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(MMEMBED_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(MMEMBED_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(MMEMBED_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/mmembed.pc.in
  ${CMAKE_BINARY_DIR}/generated/mmembed.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/generated/mmembed.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
