# Helpers shared by every Plexus target.

# Warnings and visibility for code that goes into the library.
function(plexus_compile_settings target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra $<$<BOOL:${PLEXUS_WERROR}>:-Werror>>
    # GCC 12 at -O3 reports -Wrestrict inside libstdc++'s string concatenation, a false
    # positive (GCC bug 105329, fixed in 13): silence it there only.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
endfunction()

# An object library whose objects go into both libplexus (shared) and plexus_internal (static,
# for tests and tools that reach internals). `LIBS` are its dependencies.
function(plexus_add_objects target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${target} OBJECT ${ARG_SOURCES})
  plexus_compile_settings(${target})
  set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden
                                             VISIBILITY_INLINES_HIDDEN ON)
  target_compile_definitions(${target} PRIVATE PLEXUS_BUILDING_LIBRARY)
  target_link_libraries(${target} PUBLIC ${ARG_LIBS} Threads::Threads)
  set_property(GLOBAL APPEND PROPERTY PLEXUS_OBJECT_LIBS ${target})
  set_property(GLOBAL APPEND PROPERTY PLEXUS_DEP_LIBS ${ARG_LIBS})
endfunction()

# Builds libplexus (shared, exported API only) and plexus_internal (static, everything).
function(plexus_assemble_libraries)
  get_property(objs GLOBAL PROPERTY PLEXUS_OBJECT_LIBS)
  get_property(deps GLOBAL PROPERTY PLEXUS_DEP_LIBS)
  add_library(plexus SHARED)
  add_library(plexus_internal STATIC)
  foreach(obj IN LISTS objs)
    target_sources(plexus PRIVATE $<TARGET_OBJECTS:${obj}>)
    target_sources(plexus_internal PRIVATE $<TARGET_OBJECTS:${obj}>)
  endforeach()
  target_link_libraries(plexus PRIVATE ${deps} Threads::Threads)
  target_link_libraries(plexus_internal PUBLIC ${deps} Threads::Threads)
  foreach(lib plexus plexus_internal)
    target_include_directories(${lib} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_compile_features(${lib} PUBLIC cxx_std_17)
  endforeach()
  target_include_directories(plexus_internal PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  set_target_properties(plexus PROPERTIES VERSION ${PROJECT_VERSION}
                                          SOVERSION ${PROJECT_VERSION_MAJOR}
                                          CXX_VISIBILITY_PRESET hidden)
  add_library(plexus::plexus ALIAS plexus)
endfunction()

# A program of Plexus's own (tools, benchmarks) linked against the internal library.
function(plexus_add_program target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  plexus_compile_settings(${target})
  target_link_libraries(${target} PRIVATE plexus_internal ${ARG_LIBS})
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
