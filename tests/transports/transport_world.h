// Transport-level test worlds: N forked ranks, each with its own Transport (by name, through
// createTransport) and a Connection to every other rank. Ranks swap address blobs through files
// in a private temporary directory, so no communicator or bootstrap code is involved: the
// conformance suite tests the Transport contract alone.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "transports/transport.h"

namespace plexus::testing {

/// One rank of a transport world: its transport and its connections.
class TransportRank {
 public:
  TransportRank(int rank, int size, std::unique_ptr<Transport> transport)
      : rank_(rank), size_(size), transport_(std::move(transport)), connections_(size) {}
  ~TransportRank();

  int rank() const { return rank_; }
  int size() const { return size_; }
  Transport& transport() { return *transport_; }
  /// The connection to `peer` (never this rank).
  Connection& peer(int peer) { return *connections_[peer]; }
  std::vector<std::unique_ptr<Connection>>& connections() { return connections_; }

  /// Drives the transport (spinning briefly, then waitForEvent) until every request is done;
  /// DeadlineExceeded, naming how many are pending, when `timeout` passes first. Request
  /// statuses are the caller's to check.
  Status wait(TransferRequest* reqs, size_t n,
              std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Exchanges a zero-byte message with every peer.
  Status barrier(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  int rank_;
  int size_;
  std::unique_ptr<Transport> transport_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

struct TransportWorldOptions {
  /// Whole-world deadline: past it every rank is SIGKILLed and the world fails.
  std::chrono::seconds deadline{120};
  /// Environment set in every rank before its transport is created.
  std::map<std::string, std::string> env;
  /// Ranks allowed to end by SIGKILL (peer-failure tests).
  std::set<int> mayDie;
  /// Whether ranks meet in a barrier after the body, before tearing their transport down.
  bool finalBarrier = true;
};

/// Forks `n` ranks; each creates transport `name`, connects to every peer and runs body. Success
/// when every rank exited 0 (no gtest failure, no crash) within the deadline.
::testing::AssertionResult runTransportRanks(const std::string& name, int n,
                                             const std::function<void(TransportRank&)>& body,
                                             const TransportWorldOptions& options = {});

}  // namespace plexus::testing
