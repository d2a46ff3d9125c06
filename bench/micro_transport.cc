// plexus-micro-transport: the transport's own cost, below any algorithm. Two UCX transports live
// in this one process (rank 0 and rank 1 of a pretend two-rank job), connected both ways over
// the addresses they would publish through bootstrap, and one thread drives both, so the numbers
// are the software path (request setup, tag matching, progress, shared-memory copy) without
// scheduling noise between processes.
//
//   BM_PingPong/SIZE  one round trip: 0 sends SIZE bytes to 1, 1 sends them back. Time per
//                     iteration is the round trip; half of it is the one-way latency.
//   BM_Stream/SIZE    kWindow messages from 0 to 1 in flight at once; bytes/s is the one-way
//                     bandwidth the ring's pipelined chunks can expect.
#include <benchmark/benchmark.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "transports/transport.h"

namespace plexus {
namespace {

// Messages in flight in BM_Stream: enough to hide the per-message completion round trip.
constexpr int kWindow = 16;
constexpr uint64_t kTag = 7;

/// Two connected transports, built once for all benchmarks (UCX start-up costs milliseconds).
struct TransportPair {
  std::unique_ptr<Transport> a, b;
  std::unique_ptr<Connection> aToB, bToA;
  Status status;  // why the pair is unusable, if it is

  TransportPair() {
    auto ta = createTransport("ucx", TransportContext{0, 2, nullptr, {}});
    auto tb = createTransport("ucx", TransportContext{1, 2, nullptr, {}});
    if (!ta.ok() || !tb.ok()) {
      status = ta.ok() ? tb.status() : ta.status();
      return;
    }
    a = std::move(*ta);
    b = std::move(*tb);
    auto ab = a->connect(1, b->localAddress());
    auto ba = b->connect(0, a->localAddress());
    if (!ab.ok() || !ba.ok()) {
      status = ab.ok() ? ba.status() : ab.status();
      return;
    }
    aToB = std::move(*ab);
    bToA = std::move(*ba);
  }
  ~TransportPair() {
    // Connections before their transports (transport.h's lifetime rule).
    aToB.reset();
    bToA.reset();
  }

  static TransportPair& get() {
    static TransportPair pair;
    return pair;
  }

  /// Drives both sides until every request in `reqs` is done; the first failure, if any.
  Status wait(std::initializer_list<TransferRequest*> reqs) {
    for (;;) {
      bool all = true;
      for (TransferRequest* r : reqs) all = all && r->done;
      if (all) break;
      a->progress();
      b->progress();
    }
    for (TransferRequest* r : reqs) {
      if (!r->status.ok()) return r->status;
    }
    return okStatus();
  }
};

// Returns false (and marks the benchmark failed) when `s` is an error.
bool ok(benchmark::State& state, const Status& s) {
  if (s.ok()) return true;
  state.SkipWithError(s.toString().c_str());
  return false;
}

void BM_PingPong(benchmark::State& state) {
  TransportPair& p = TransportPair::get();
  if (!ok(state, p.status)) return;
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<unsigned char> bufA(size, 1), bufB(size);
  TransferRequest send, recv;
  for (auto _ : state) {
    for (int leg = 0; leg < 2; ++leg) {
      Connection& from = leg == 0 ? *p.aToB : *p.bToA;
      Connection& to = leg == 0 ? *p.bToA : *p.aToB;
      unsigned char* src = leg == 0 ? bufA.data() : bufB.data();
      unsigned char* dst = leg == 0 ? bufB.data() : bufA.data();
      send.reset();
      recv.reset();
      if (!ok(state, to.irecv(dst, size, kTag, &recv)) ||
          !ok(state, from.isend(src, size, kTag, &send)) || !ok(state, p.wait({&send, &recv}))) {
        return;
      }
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * size));
}

void BM_Stream(benchmark::State& state) {
  TransportPair& p = TransportPair::get();
  if (!ok(state, p.status)) return;
  const size_t size = static_cast<size_t>(state.range(0));
  // One source and one destination per slot: in-flight receives must not share memory.
  std::vector<unsigned char> src(size * kWindow, 1), dst(size * kWindow);
  std::vector<TransferRequest> sends(kWindow), recvs(kWindow);
  for (auto _ : state) {
    for (int i = 0; i < kWindow; ++i) {
      sends[i].reset();
      recvs[i].reset();
      if (!ok(state, p.bToA->irecv(dst.data() + i * size, size, kTag, &recvs[i])) ||
          !ok(state, p.aToB->isend(src.data() + i * size, size, kTag, &sends[i]))) {
        return;
      }
    }
    for (int i = 0; i < kWindow; ++i) {
      if (!ok(state, p.wait({&sends[i], &recvs[i]}))) return;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kWindow * size));
}

BENCHMARK(BM_PingPong)->RangeMultiplier(8)->Range(8, 1 << 20);
BENCHMARK(BM_Stream)->RangeMultiplier(4)->Range(4 << 10, 4 << 20);

}  // namespace
}  // namespace plexus

BENCHMARK_MAIN();
