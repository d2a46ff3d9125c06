// The record every rank publishes through the bootstrap store once every rank's identity is
// known: the transport spec of each link level and the address of that level's transport
// (empty when the rank needs no transport at that level), whether it mapped the
// communicator's shared-memory region, and whether it would use its mailboxes. Peers control its
// bytes, so decoding caps every length and rejects anything truncated, trailing or for another
// rank.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "plexus/status.h"

namespace plexus::internal {

struct PeerRecord {
  /// Caps on what a peer's record may hold.
  static constexpr size_t kMaxSpecBytes = 256;
  static constexpr size_t kMaxAddressBytes = 64 * 1024;

  int rank = -1;
  uint32_t worldSize = 0;
  std::array<std::string, 2> spec;  ///< [intra-node, inter-node]
  std::array<std::vector<uint8_t>, 2> address;
  /// The rank mapped the communicator's shared-memory region (its ranks share a node).
  bool sharedRegion = false;
  /// The rank would send short messages through the region's mailboxes (PLEXUS_SHM_MAILBOXES):
  /// they are used only when every rank would.
  bool mailboxes = false;

  std::vector<uint8_t> encode() const;
  /// InvalidArgument for a malformed blob, or one that is not `expectedRank`'s.
  static StatusOr<PeerRecord> decode(const std::vector<uint8_t>& blob, int expectedRank);
};

}  // namespace plexus::internal
