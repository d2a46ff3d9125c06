// Library version.
#pragma once

#include "plexus/export.h"

namespace plexus {

/// "MAJOR.MINOR.PATCH" of the library this program runs against.
PLEXUS_API const char* versionString();

}  // namespace plexus
