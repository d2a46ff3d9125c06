// Grouped point-to-point: a batch of sends and receives to many peers (NCCL's group
// start/end) run as one operation. Every receive is posted, then every send, and only then
// does the rank wait, so no order of sends and receives across ranks can deadlock: each
// message finds either its posted receive or the transport's unexpected queue.
//
// The k-th send from rank a to rank b matches the k-th receive of b from a, counted over the
// communicator's life (the tag carries k, in a tag space of its own: only the two ranks take
// part, so the collectives' sequence cannot number them); a mismatch in size fails the
// receive with a clear error.
// Sends to self are matched with receives from self in the same group and become copies
// (validation rejects a group where they do not pair up). Bytes: exactly what was asked; one
// α of latency for the whole group.
#include <cstring>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/builtin.h"
#include "algorithms/primitives.h"

namespace plexus {
namespace {

class GroupSendRecv final : public Algorithm {
 public:
  const char* name() const override { return "group"; }
  const char* description() const override {
    return "grouped sends and receives, all posted before waiting";
  }
  CollectiveKind collective() const override { return CollectiveKind::kSendRecv; }
  Status supports(const CollectiveRequest& request, int) const override {
    return requireHostMemory(request, "send/recv");
  }
  Status run(const CollectiveRequest& req, CollectiveContext& ctx) override {
    const int n = ctx.size(), r = ctx.rank();
    if (!req.transfers) return okStatus();
    const auto& all = *req.transfers;
    // Per-pair ordinals live as long as the communicator (one algorithm object per
    // communicator; one collective runs at a time). The other vectors are reused scratch.
    sendOrdinal_.resize(n, 0);
    recvOrdinal_.resize(n, 0);
    ops_.clear();
    selfSends_.clear();
    selfRecvs_.clear();
    for (const PeerTransfer& t : all) {
      if (t.peer == r) {
        (t.isSend ? selfSends_ : selfRecvs_).push_back(&t);
        continue;
      }
      uint64_t& ordinal = (t.isSend ? sendOrdinal_ : recvOrdinal_)[t.peer];
      ops_.push_back(
          {t.peer, t.isSend, t.buffer, t.bytes(), CollectiveContext::pointToPointTag(ordinal++)});
    }
    for (size_t i = 0; i < selfSends_.size() && i < selfRecvs_.size(); ++i) {
      copyUnlessSame(selfRecvs_[i]->buffer, selfSends_[i]->buffer, selfSends_[i]->bytes());
    }
    reqs_.resize(ops_.size());
    return transferAll(ctx, ops_.data(), reqs_.data(), ops_.size());
  }

 private:
  std::vector<uint64_t> sendOrdinal_, recvOrdinal_;  // next ordinal, per peer
  std::vector<Transfer> ops_;
  std::vector<TransferRequest> reqs_;
  std::vector<const PeerTransfer*> selfSends_, selfRecvs_;
};

}  // namespace

std::unique_ptr<Algorithm> makeGroupSendRecv() { return std::make_unique<GroupSendRecv>(); }

}  // namespace plexus
