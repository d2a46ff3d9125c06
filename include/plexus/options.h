// Options for creating a communicator and for a single call. Everything here overrides the
// PLEXUS_* environment (see the README's table); unset fields keep the environment's value.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "plexus/types.h"

namespace plexus {

/// Communicator-wide settings, fixed at creation.
struct CommOptions {
  /// Deadline of every blocking wait inside a collective (PLEXUS_TIMEOUT_MS).
  std::optional<std::chrono::milliseconds> timeout;
  /// Transport spec for every link, e.g. "ucx" or "ucx:tcp" (PLEXUS_TRANSPORT); overrides the
  /// per-level PLEXUS_TRANSPORT_INTRA and PLEXUS_TRANSPORT_INTER too.
  std::optional<std::string> transport;
};

/// Settings of one collective call.
struct CallOptions {
  /// Where the buffers live. Host memory is the default.
  MemoryKind memory = MemoryKind::kHost;
  /// CUDA stream (a cudaStream_t) the call is ordered on, for kCuda buffers; ignored for host.
  void* stream = nullptr;
};

}  // namespace plexus
