// Fuzz target: the two records a peer publishes at communicator creation — its host identity
// (decodeHostTopology) and its link record (PeerRecord) — decoded from arbitrary bytes. What
// decodes must encode back to the same bytes: a decoder that accepts more than it should, or
// drops something, breaks the round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "src/peer_record.h"
#include "src/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> blob(data, data + size);
  auto host = plexus::decodeHostTopology(blob);
  if (host.ok() && plexus::encodeHostTopology(*host) != blob) std::abort();
  // The expected rank is the blob's own first field when it has one, so that decoding goes
  // past the rank check and into the lengths.
  int rank = size >= 4 ? static_cast<int>(data[0] | data[1] << 8 | data[2] << 16 |
                                          static_cast<uint32_t>(data[3]) << 24)
                       : 0;
  auto record = plexus::internal::PeerRecord::decode(blob, rank);
  if (record.ok() && record->encode() != blob) std::abort();
  return 0;
}
