// The rendezvous store: a small TCP key-value service that ranks use to exchange addresses
// before any transport is up. One process hosts a StoreServer (rank 0, the launcher, or whoever
// generated a UniqueId); every rank talks to it through a StoreClient.
//
// Wire protocol (all integers little-endian):
//   frame   = u32 magic 'PLXS' | u16 version | u16 type | u32 payload length | payload
//   hello   = client's first frame: 32-byte secret | i32 rank | i32 world size
//   set/get/add/... as in store_protocol.h; every length a peer controls is capped (kMaxKeyBytes,
//   kMaxValueBytes), and a peer that sends anything but a correct hello first is dropped and
//   logged without disturbing the others.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus::bootstrap {

/// Per-job shared secret. Clients prove they belong to the job by sending it first.
using Secret = std::array<uint8_t, 32>;

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxValueBytes = 16u << 20;
/// How long set() and add() wait for the server before DeadlineExceeded (a live server answers
/// at once; this only bounds a hung one).
inline constexpr std::chrono::seconds kStoreRequestTimeout{60};

/// Derives a Secret from text (hex of 64 digits is taken as is; anything else is hashed).
Secret secretFromString(const std::string& text);
/// A fresh random secret from the OS (getrandom).
StatusOr<Secret> randomSecret();

/// Tunables of a StoreServer; the defaults suit real jobs (tests shorten them).
struct StoreServerOptions {
  /// How long a new connection may take to send its hello before it is dropped.
  std::chrono::milliseconds helloTimeout{5000};
};

/// Hosts the store. Serves clients from a background thread until destroyed.
class StoreServer {
 public:
  /// Binds `bindAddress` (dotted IPv4) at `port` (0: an ephemeral port) and starts serving.
  /// `worldSize` > 0 makes the server reject hellos that claim another world size or a rank
  /// outside [0, worldSize), or a rank that is already connected; 0 accepts any.
  static StatusOr<std::unique_ptr<StoreServer>> start(const std::string& bindAddress, uint16_t port,
                                                      const Secret& secret, int worldSize);
  /// As above, with explicit tunables.
  static StatusOr<std::unique_ptr<StoreServer>> start(const std::string& bindAddress, uint16_t port,
                                                      const Secret& secret, int worldSize,
                                                      const StoreServerOptions& options);
  virtual ~StoreServer() = default;
  /// The port actually bound.
  virtual uint16_t port() const = 0;
  /// The address bound.
  virtual const std::string& address() const = 0;
  /// Number of connections dropped because they failed the hello (tests, logs).
  virtual uint64_t rejectedConnections() const = 0;
};

/// A connection to the store. Not thread-safe: one thread at a time.
class StoreClient {
 public:
  /// Connects to host:port, retrying until `timeout` (the server may not be up yet), and says
  /// hello as `rank` of `worldSize`. A rejected hello returns InvalidArgument with the server's
  /// reason (wrong secret, world size mismatch, duplicate rank); no server within the timeout
  /// returns DeadlineExceeded.
  static StatusOr<std::unique_ptr<StoreClient>> connect(const std::string& host, uint16_t port,
                                                        const Secret& secret, int rank,
                                                        int worldSize,
                                                        std::chrono::milliseconds timeout);
  virtual ~StoreClient() = default;
  /// Sets key to value (overwrites). Like add(), waits at most kStoreRequestTimeout for the
  /// server's answer.
  virtual Status set(const std::string& key, const std::vector<uint8_t>& value) = 0;
  /// Returns the value of key, waiting up to `timeout` for some rank to set it.
  virtual StatusOr<std::vector<uint8_t>> get(const std::string& key,
                                             std::chrono::milliseconds timeout) = 0;
  /// Atomically adds `delta` to the integer stored at key (absent = 0) and returns the result.
  virtual StatusOr<int64_t> add(const std::string& key, int64_t delta) = 0;
  /// Removes key (absent: nothing). For records every rank has read: a get parked on it later
  /// waits for the next set.
  virtual Status erase(const std::string& key) = 0;
};

}  // namespace plexus::bootstrap
