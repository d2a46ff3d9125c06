// The collectives plexus-perf measures, with nccl-tests' counts and bus-bandwidth factors:
//
//   collective     count (per rank)   size (column)     busbw factor   in place
//   allreduce      bytes / elem       count · elem      2(n−1)/n       send == recv
//   broadcast      bytes / elem       count · elem      1              send == recv
//   reduce         bytes / elem       count · elem      1              send == recv
//   allgather      bytes / elem / n   n · count · elem  (n−1)/n        send = recv + r · count
//   reducescatter  bytes / elem / n   n · count · elem  (n−1)/n        recv = send + r · count
//   alltoall       bytes / elem / n   n · count · elem  (n−1)/n        send == recv
//   sendrecv       bytes / elem       count · elem      1              halves of one buffer
//
// sendrecv sends to rank r+1 and receives from rank r−1 in one group, as nccl-tests does.
#include <memory>

#include "bench/perf/perf_collective.h"
#include "bench/perf/perf_values.h"
#include "src/communicator_impl.h"

namespace plexus::perf {
namespace {

class CollectivePerf final : public PerfCollective {
 public:
  explicit CollectivePerf(CollectiveKind kind) : kind_(kind) {}
  const char* name() const override { return collectiveName(kind_); }
  bool rooted() const override {
    return kind_ == CollectiveKind::kBroadcast || kind_ == CollectiveKind::kReduce;
  }
  size_t countFor(size_t bytes, size_t elemSize, int n) const override {
    return bytes / elemSize / (perRank() ? n : 1);
  }
  size_t bytesFor(size_t count, size_t elemSize, int n) const override {
    return count * elemSize * (perRank() ? n : 1);
  }
  size_t sendElems(size_t count, int n) const override {
    const bool all = kind_ == CollectiveKind::kReduceScatter || kind_ == CollectiveKind::kAllToAll;
    return all ? count * n : count;
  }
  size_t recvElems(size_t count, int n) const override {
    if (kind_ == CollectiveKind::kSendRecv) return 2 * count;  // room for the in-place halves
    return perRank() && kind_ != CollectiveKind::kReduceScatter ? count * n : count;
  }
  PerfBuffers inPlace(void* buf, size_t count, size_t elemSize, int rank) const override {
    auto* b = static_cast<uint8_t*>(buf);
    const size_t mine = count * elemSize * rank;
    switch (kind_) {
      case CollectiveKind::kAllGather:
        return {b + mine, b};
      case CollectiveKind::kReduceScatter:
        return {b, b + mine};
      case CollectiveKind::kSendRecv:
        return {b, b + count * elemSize};
      default:
        return {b, b};
    }
  }
  double busFactor(int n) const override {
    if (n == 1) return 0.0;
    if (kind_ == CollectiveKind::kAllReduce) return 2.0 * (n - 1) / n;
    return perRank() ? (n - 1.0) / n : 1.0;
  }

  void fill(void* send, size_t count, const PerfParams& p, int rank, int n) const override {
    for (size_t i = 0; i < sendElems(count, n); ++i) {
      storeValue(p.type, send, i, sent(p, rank, n, i, count));
    }
  }

  Status run(Communicator& comm, const void* send, void* recv, size_t count,
             const PerfParams& p) const override {
    CollectiveRequest req;
    req.kind = kind_;
    req.type = p.type;
    req.op = p.op;
    req.count = count;
    req.send = send;
    req.recv = recv;
    req.root = p.root;
    if (kind_ == CollectiveKind::kSendRecv) {
      const int n = comm.size(), r = comm.rank();
      req.transfers = std::make_shared<const std::vector<PeerTransfer>>(
          std::vector<PeerTransfer>{{true, (r + 1) % n, p.type, count, const_cast<void*>(send)},
                                    {false, (r + n - 1) % n, p.type, count, recv}});
    }
    return comm.impl()->run(req, p.algorithm);
  }

  size_t check(const void* recv, size_t count, const PerfParams& p, int rank,
               int n) const override {
    if (kind_ == CollectiveKind::kReduce && rank != p.root) return 0;
    size_t wrong = 0;
    const size_t elems = kind_ == CollectiveKind::kSendRecv ? count : recvElems(count, n);
    for (size_t i = 0; i < elems; ++i) {
      if (!matchesValue(p.type, recv, i, received(p, rank, n, i, count))) ++wrong;
    }
    return wrong;
  }

 private:
  // Collectives whose nccl-tests size is the whole n-block buffer.
  bool perRank() const {
    return kind_ == CollectiveKind::kAllGather || kind_ == CollectiveKind::kReduceScatter ||
           kind_ == CollectiveKind::kAllToAll;
  }
  // Rank `rank`'s input at send element i.
  double sent(const PerfParams& p, int rank, int n, size_t i, size_t count) const {
    if (kind_ == CollectiveKind::kAllToAll) {
      return inputValue(ReduceOp::kSum, rank * n + static_cast<int>(i / count), i % count);
    }
    return inputValue(reduces() ? p.op : ReduceOp::kSum, rank, i);
  }
  // What rank `rank` must hold at receive element i.
  double received(const PerfParams& p, int rank, int n, size_t i, size_t count) const {
    switch (kind_) {
      case CollectiveKind::kBroadcast:
        return inputValue(ReduceOp::kSum, p.root, i);
      case CollectiveKind::kAllGather:
        return inputValue(ReduceOp::kSum, static_cast<int>(i / count), i % count);
      case CollectiveKind::kReduceScatter:
        return expectedValue(p.op, n, rank * count + i, p.type);
      case CollectiveKind::kAllToAll:
        return inputValue(ReduceOp::kSum, static_cast<int>(i / count) * n + rank, i % count);
      case CollectiveKind::kSendRecv:
        return inputValue(ReduceOp::kSum, (rank + n - 1) % n, i);
      default:
        return expectedValue(p.op, n, i, p.type);
    }
  }
  bool reduces() const {
    return kind_ == CollectiveKind::kAllReduce || kind_ == CollectiveKind::kReduce ||
           kind_ == CollectiveKind::kReduceScatter;
  }

  CollectiveKind kind_;
};

const CollectivePerf kAll[] = {
    CollectivePerf(CollectiveKind::kAllReduce),     CollectivePerf(CollectiveKind::kBroadcast),
    CollectivePerf(CollectiveKind::kReduce),        CollectivePerf(CollectiveKind::kAllGather),
    CollectivePerf(CollectiveKind::kReduceScatter), CollectivePerf(CollectiveKind::kAllToAll),
    CollectivePerf(CollectiveKind::kSendRecv)};

}  // namespace

const PerfCollective* findPerfCollective(const std::string& name) {
  for (const PerfCollective& c : kAll) {
    if (name == c.name()) return &c;
  }
  return nullptr;
}

std::vector<std::string> perfCollectiveNames() {
  std::vector<std::string> names;
  for (const PerfCollective& c : kAll) names.emplace_back(c.name());
  return names;
}

}  // namespace plexus::perf
