// Internal invariants. A failed CHECK is a Plexus bug: it prints file:line and aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#define PLEXUS_CHECK(cond)                                                                    \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "plexus: CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
