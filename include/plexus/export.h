// Symbol visibility for the public API: the library builds with hidden visibility and exports
// only what carries PLEXUS_API.
#pragma once

#if defined(PLEXUS_BUILDING_LIBRARY)
#define PLEXUS_API [[gnu::visibility("default")]]
#else
#define PLEXUS_API
#endif
