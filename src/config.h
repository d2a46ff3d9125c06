// Configuration: one typed struct read once from the PLEXUS_* environment (the README's table),
// then adjusted by CommOptions. Bad values are errors, not silent defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "algorithms/algorithm.h"
#include "plexus/options.h"
#include "plexus/status.h"
#include "src/bootstrap/launch_env.h"

namespace plexus {

struct Config {
  /// PLEXUS_TRANSPORT: transport spec for every link; empty = the build's first available.
  /// A spec is NAME[:OPTION], the option being the transport's own (see TransportContext).
  std::string transport;
  /// PLEXUS_TRANSPORT_INTRA / PLEXUS_TRANSPORT_INTER: the spec for links inside a node / between
  /// nodes; empty = `transport`. Example: INTRA=ucx:sm,self INTER=ucx:tcp.
  std::string transportIntra;
  std::string transportInter;
  /// PLEXUS_TIMEOUT_MS: deadline of every blocking wait inside a collective and of bootstrap.
  std::chrono::milliseconds timeout{300000};
  /// PLEXUS_CHUNK_BYTES: pipeline chunk of the ring algorithms. Unset (`chunkBytesExplicit`
  /// false): this default, raised to what the communicator's transports ask for
  /// (Transport::pipelineChunkBytes).
  size_t chunkBytes = 256 * 1024;
  bool chunkBytesExplicit = false;
  /// PLEXUS_SPIN_US: how long a waiting thread spins before it blocks. Unset: chosen per
  /// communicator, long when this host's ranks fit its cores, near zero when they do not.
  std::optional<std::chrono::microseconds> spin;
  /// PLEXUS_BIND_ADDR: address the rendezvous store listens on when this process hosts it.
  std::string bindAddress;
  /// PLEXUS_ALGO: algorithm override, e.g. "allreduce:0-64k:rhd;64k-inf:ring".
  std::string algo;
  /// PLEXUS_TUNING_FILE: the tuning table plexus-tune writes and the selector reads (see
  /// src/tuning.h). Unset: $XDG_CACHE_HOME/plexus/tuning.json, else
  /// $HOME/.cache/plexus/tuning.json. Empty or "none": no table. `tuningFileExplicit`: the
  /// variable named it, so its absence is worth a warning.
  std::string tuningFile;
  bool tuningFileExplicit = false;
  /// PLEXUS_SHM_STORES: auto (default), plain or streaming; see ShmStores.
  ShmStores shmStores = ShmStores::kAuto;
  /// PLEXUS_SHM_MAILBOXES: 1 (default) or 0; whether a one-node communicator's algorithms send
  /// their short messages through mailboxes in its shared region (algorithms/shm_mailbox.h)
  /// instead of the transport.
  bool shmMailboxes = true;

  /// Reads the PLEXUS_* variables through `env`. InvalidArgument names a malformed variable.
  static StatusOr<Config> fromEnv(const bootstrap::EnvLookup& env);
  /// Applies the communicator's options on top.
  void apply(const CommOptions& options);
  /// The transport spec of links inside a node (`inter` false) or between nodes; may be empty
  /// (the build's default).
  const std::string& transportFor(bool inter) const;
};

/// Parses "256k", "4M", "1g", "4096" into bytes. False on junk or overflow.
bool parseByteSize(const std::string& text, size_t* out);

}  // namespace plexus
