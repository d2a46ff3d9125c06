// Plexus: collective communication for distributed training. The umbrella header.
#pragma once

#include "plexus/communicator.h"  // IWYU pragma: export
#include "plexus/memory.h"        // IWYU pragma: export
#include "plexus/options.h"       // IWYU pragma: export
#include "plexus/status.h"        // IWYU pragma: export
#include "plexus/types.h"         // IWYU pragma: export
#include "plexus/version.h"       // IWYU pragma: export
#include "plexus/work.h"          // IWYU pragma: export
