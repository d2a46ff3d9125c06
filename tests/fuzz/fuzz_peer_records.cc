// Fuzz target: the two records a peer publishes at communicator creation — its host identity
// (decodeHostTopology) and its link record (PeerRecord) — decoded from arbitrary bytes. What
// decodes must survive a round trip: a link record re-encodes to the same bytes; a host record
// (whose CPU lists are text, so "1-1" and "1" mean the same) decodes again to an equal value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "src/peer_record.h"
#include "src/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> blob(data, data + size);
  auto host = plexus::decodeHostTopology(blob);
  if (host.ok()) {
    auto again = plexus::decodeHostTopology(plexus::encodeHostTopology(*host));
    if (!again.ok() || !(*again == *host)) std::abort();
  }
  // The expected rank is the blob's own first field when it has one, so that decoding goes
  // past the rank check and into the lengths.
  int rank = size >= 4 ? static_cast<int>(data[0] | data[1] << 8 | data[2] << 16 |
                                          static_cast<uint32_t>(data[3]) << 24)
                       : 0;
  auto record = plexus::internal::PeerRecord::decode(blob, rank);
  if (record.ok() && record->encode() != blob) std::abort();
  return 0;
}
