#include "src/peer_record.h"

#include "src/bytes.h"

namespace plexus::internal {

std::vector<uint8_t> PeerRecord::encode() const {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(rank));
  w.u32(worldSize);
  for (int level = 0; level < 2; ++level) {
    w.str(spec[level]);
    w.bytes(address[level].data(), address[level].size());
  }
  w.u32((sharedRegion ? 1u : 0u) | (mailboxes ? 2u : 0u));
  return w.take();
}

StatusOr<PeerRecord> PeerRecord::decode(const std::vector<uint8_t>& blob, int expectedRank) {
  ByteReader r(blob);
  PeerRecord rec;
  rec.rank = static_cast<int>(r.u32());
  rec.worldSize = r.u32();
  for (int level = 0; level < 2; ++level) {
    rec.spec[level] = r.str(kMaxSpecBytes);
    rec.address[level] = r.bytes(kMaxAddressBytes);
  }
  const uint32_t flags = r.u32();
  rec.sharedRegion = (flags & 1) != 0;
  rec.mailboxes = (flags & 2) != 0;
  if (!r.ok() || !r.atEnd() || rec.rank != expectedRank || flags > 3) {
    return invalidArgument("malformed bootstrap record for rank " + std::to_string(expectedRank));
  }
  return rec;
}

}  // namespace plexus::internal
