// Dissemination barrier. In round k (k = 0 … ⌈log2 n⌉−1) rank r sends an empty message to rank
// (r + 2^k) mod n and waits for one from rank (r − 2^k) mod n. After the last round every rank
// has heard, directly or transitively, from every other, so none leaves before all arrived.
// ⌈log2 n⌉ · α latency, no payload; works for any n.
#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/context.h"

namespace plexus {
namespace {

class DisseminationBarrier final : public Algorithm {
 public:
  const char* name() const override { return "dissemination"; }
  const char* description() const override {
    return "dissemination barrier: log2(n) rounds of empty messages";
  }
  CollectiveKind collective() const override { return CollectiveKind::kBarrier; }
  Status supports(const CollectiveRequest&, int) const override { return okStatus(); }

  Status run(const CollectiveRequest&, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    uint32_t round = 0;
    for (int dist = 1; dist < n; dist *= 2, ++round) {
      const int to = (r + dist) % n, from = (r - dist + n) % n;
      TransferRequest reqs[2];
      const int peers[2] = {from, to};
      PLEXUS_TRY(ctx.peer(from).irecv(nullptr, 0, ctx.tag(round, 0), &reqs[0]));
      Status s = ctx.peer(to).isend(nullptr, 0, ctx.tag(round, 0), &reqs[1]);
      if (!s.ok()) {
        ctx.cancelAll(reqs, 1);
        return s;
      }
      PLEXUS_TRY(ctx.waitAll(reqs, peers, 2));
    }
    return okStatus();
  }
};

}  // namespace

std::unique_ptr<Algorithm> makeDisseminationBarrier() {
  return std::make_unique<DisseminationBarrier>();
}

}  // namespace plexus
