// See shm_zero_copy.h.
#include "algorithms/shm_zero_copy.h"

#include <unistd.h>

#include <cstring>

namespace plexus {
namespace {

// A Place packed into a note: the pid, then each SharedBufferRef's fd, inode and offset.
constexpr size_t kRefBytes = sizeof(int32_t) + 2 * sizeof(uint64_t);
static_assert(sizeof(int32_t) + 2 * kRefBytes <= ShmPieces::kInlineBytes);

void packRef(const SharedBufferRef& r, uint8_t* out) {
  std::memcpy(out, &r.fd, sizeof(int32_t));
  std::memcpy(out + sizeof(int32_t), &r.inode, sizeof(uint64_t));
  std::memcpy(out + sizeof(int32_t) + sizeof(uint64_t), &r.offset, sizeof(uint64_t));
}

SharedBufferRef unpackRef(const uint8_t* in) {
  SharedBufferRef r;
  std::memcpy(&r.fd, in, sizeof(int32_t));
  std::memcpy(&r.inode, in + sizeof(int32_t), sizeof(uint64_t));
  std::memcpy(&r.offset, in + sizeof(int32_t) + sizeof(uint64_t), sizeof(uint64_t));
  return r;
}

}  // namespace

bool ShmBufferPlaces::note(ShmPieces& pieces, const void* send, size_t sendBytes, const void* recv,
                           size_t recvBytes) const {
  const auto pid = static_cast<int32_t>(::getpid());
  const SharedBufferRef in = findSharedBuffer(send, sendBytes);
  const SharedBufferRef out = findSharedBuffer(recv, recvBytes);
  uint8_t* at = pieces.note();
  std::memcpy(at, &pid, sizeof(int32_t));
  packRef(in, at + sizeof(int32_t));
  packRef(out, at + sizeof(int32_t) + kRefBytes);
  return hasShared(Place{pid, in, out});
}

ShmBufferPlaces::Verdict ShmBufferPlaces::read(const ShmPieces& pieces, int n) {
  places_.resize(static_cast<size_t>(n));
  int shared = 0;
  for (int j = 0; j < n; ++j) {
    const uint8_t* at = pieces.noteOf(j);
    Place& p = places_[j];
    std::memcpy(&p.pid, at, sizeof(int32_t));
    p.send = unpackRef(at + sizeof(int32_t));
    p.recv = unpackRef(at + sizeof(int32_t) + kRefBytes);
    shared += hasShared(p);
  }
  if (shared == n) return Verdict::kZeroCopy;
  return shared == 0 ? Verdict::kGoOn : Verdict::kStartAgain;  // some left their part out
}

Status ShmBufferPlaces::mapAll(ShmChannel& channel, CollectiveContext& ctx,
                               const CollectiveRequest& req, size_t sendBytes, size_t recvBytes,
                               ShmPieces& rounds, bool* mapped) {
  const int n = ctx.size(), me = ctx.rank();
  rounds.inlineSlots();
  ins_.assign(static_cast<size_t>(n), nullptr);
  outs_.assign(static_cast<size_t>(n), nullptr);
  PeerMappings& peers = channel.peers();
  peers.makeRoom(2 * static_cast<size_t>(n - 1));
  bool mine = true;
  for (int j = 0; j < n; ++j) {
    const auto pid = static_cast<pid_t>(places_[j].pid);
    if (j == me) {
      ins_[j] = static_cast<const uint8_t*>(req.send);
      outs_[j] = static_cast<uint8_t*>(req.recv);
      continue;
    }
    ins_[j] = peers.map(pid, places_[j].send, sendBytes);
    mine = mine && ins_[j] != nullptr;
    if (needs_ == Shared::kInputs) continue;
    outs_[j] = peers.map(pid, places_[j].recv, recvBytes);
    mine = mine && outs_[j] != nullptr;
  }
  // A round: whether this rank mapped every other's buffers.
  PLEXUS_TRY(rounds.next());
  rounds.slot(me)[0] = mine ? 1 : 0;
  PLEXUS_TRY(rounds.share());
  *mapped = true;
  for (int j = 0; j < n; ++j) *mapped = *mapped && rounds.slot(j)[0] == 1;
  rounds.finish();
  return okStatus();
}

}  // namespace plexus
