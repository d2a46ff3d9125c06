# Install rules and the CMake package, so that another project can
#   find_package(plexus) and target_link_libraries(app PRIVATE plexus::plexus).
include(CMakePackageConfigHelpers)
install(TARGETS plexus EXPORT plexusTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/plexus DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT plexusTargets NAMESPACE plexus:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plexus)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/plexusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/plexusConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plexus)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/plexusConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/plexusConfig.cmake ${PROJECT_BINARY_DIR}/plexusConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/plexus)
foreach(tool plexusrun plexus-perf plexus-topo plexus-tune)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
