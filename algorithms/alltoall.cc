// Pairwise all-to-all. Rank r copies its own block locally; then in step s (1 ≤ s < n) it
// sends block (r+s) mod n to rank r+s and receives block (r−s) mod n from rank r−s. Steps run
// kWindow at a time, all of a window's transfers posted before any is waited for, so the
// links stay busy without flooding the transport with n messages at once on large worlds.
//
// Bytes per rank: (n−1) · count sent and received, the optimum. Latency: ⌈(n−1)/kWindow⌉ · α
// (more when a window's messages serialise on one link). In place (send == recv), the input is
// first copied to scratch: each block would otherwise be overwritten before it is sent.
#include <algorithm>
#include <array>
#include <cstring>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"

namespace plexus {
namespace {

constexpr int kWindow = 8;

class PairwiseAllToAll final : public Algorithm {
 public:
  const char* name() const override { return "pairwise"; }
  const char* description() const override {
    return "pairwise exchange: n−1 steps, windows of 8 posted at once";
  }
  CollectiveKind collective() const override { return CollectiveKind::kAllToAll; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "pairwise all-to-all");
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    const size_t bytes = req.bytes();
    auto* out = static_cast<uint8_t*>(req.recv);
    if (bytes == 0) return okStatus();
    const auto* in = static_cast<const uint8_t*>(req.send);
    if (req.send == req.recv) {
      auto* copy = static_cast<uint8_t*>(ctx.scratch(bytes * n));
      std::memcpy(copy, in, bytes * n);
      in = copy;
    }
    std::memcpy(out + r * bytes, in + r * bytes, bytes);
    std::array<Transfer, 2 * kWindow> ops;
    std::array<TransferRequest, 2 * kWindow> reqs;
    for (int first = 1; first < n; first += kWindow) {
      const int last = std::min(n, first + kWindow);
      size_t k = 0;
      for (int s = first; s < last; ++s) {
        const int to = (r + s) % n, from = (r - s + n) % n;
        const uint64_t tag = ctx.tag(static_cast<uint32_t>(s), 0);
        ops[k++] = {from, false, out + from * bytes, bytes, tag};
        ops[k++] = {to, true, const_cast<uint8_t*>(in + to * bytes), bytes, tag};
      }
      PLEXUS_TRY(transferAll(ctx, ops.data(), reqs.data(), k));
    }
    return okStatus();
  }
};

}  // namespace

std::unique_ptr<Algorithm> makePairwiseAllToAll() { return std::make_unique<PairwiseAllToAll>(); }

}  // namespace plexus
