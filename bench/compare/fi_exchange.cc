// plexus-fi-exchange: what a libfabric provider moves between two processes of this host, with
// no Plexus in the data path: the ceiling the OFI transport's all-reduce is measured against.
//
//   plexus-fi-exchange [-p PROVIDER] [-b MIN] [-e MAX] [-f FACTOR] [-n ITERS] [-c CHUNK]
//
// The process forks a second one; each opens an endpoint on the same provider as Plexus would
// (ofi::chooseProvider: PLEXUS_OFI_PROVIDER's hints and preference order) and they swap
// addresses over a socketpair. Per size X, two patterns, each after a warm-up:
//  - pingpong: A sends X bytes, B sends them back, one message in flight. One-way rate
//    2·X·iters / time, fi_pingpong's convention (its MB/sec column), to check that this tool
//    sees the provider as fi_pingpong does.
//  - exchange: both processes send X bytes and receive X bytes at once, as CHUNK-byte messages
//    all posted together (CHUNK 0: one message). Rate per direction X·iters / time. A 2-rank
//    ring all-reduce of S bytes is two exchanges of S/2 (reduce-scatter, all-gather) plus a
//    reduction, so its busbw cannot pass this rate at X = S/2.
//  - allreduce: that all-reduce itself, unpipelined, with Plexus's reduction kernel: exchange X
//    bytes (each side's contribution to the other's half), sum the received half and the own
//    contribution as f32 into a third buffer, exchange the sums. busbw of an all-reduce of S = 2X
//    bytes: S·iters / time. On one host the copies and the reduction run on the same two cores,
//    so this is what the pattern reaches without a pipeline.
// Every buffer holds small whole f32 values; what is received is checked against the sender's
// values (after allreduce: the sums; whole f32 values only, so a size that is not a multiple of
// 4 leaves its last bytes unchecked); a mismatch exits non-zero.
// Output: one line per size, GB/s (10^9 B/s).
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/config.h"
#include "src/reduce_cpu.h"
#include "transports/ofi/ofi_resources.h"

namespace plexus::ofi {
namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "plexus-fi-exchange: %s\n", why.c_str());
  std::exit(1);
}

void check(int rc, const char* call) {
  if (rc < 0) die(std::string(call) + ": " + ofiError(rc));
}

// A size as plexus-perf and PLEXUS_CHUNK_BYTES take it ("4096", "256k", "4M").
size_t parseSize(const char* text) {
  size_t bytes = 0;
  if (!parseByteSize(text, &bytes))
    die(std::string("bad size '") + text + "' (e.g. 4096, 256k, 4M)");
  return bytes;
}

// One side of the pair: its endpoint, the peer's address and two registered buffers.
class Side {
 public:
  Side(const fi_info& info, int sock, size_t maxBytes) : sock_(sock) {
    Status s = openEndpoint(info, 1, false, &ep_);
    if (!s.ok()) die(s.toString());
    uint32_t len = static_cast<uint32_t>(ep_.name.size());
    std::vector<uint8_t> peer;
    if (::write(sock_, &len, sizeof(len)) != sizeof(len) ||
        ::write(sock_, ep_.name.data(), len) != static_cast<ssize_t>(len) ||
        ::read(sock_, &len, sizeof(len)) != sizeof(len)) {
      die("address exchange over the socketpair failed");
    }
    peer.resize(len);
    if (::read(sock_, peer.data(), len) != static_cast<ssize_t>(len)) die("short address read");
    if (fi_av_insert(ep_.av.get(), peer.data(), 1, &peer_, 0, nullptr) != 1) die("fi_av_insert");
    send_.assign(maxBytes / sizeof(float), 0);
    recv_.assign(maxBytes / sizeof(float), 0);
    sum_.assign(maxBytes / sizeof(float), 0);
    const uint64_t mode = static_cast<uint64_t>(info.domain_attr->mr_mode);
    if ((mode & FI_MR_LOCAL) != 0) {
      sendDesc_ = registerBuffer(send_, 1, mode);
      recvDesc_ = registerBuffer(recv_, 2, mode);
      sumDesc_ = registerBuffer(sum_, 3, mode);
    }
  }

  // Both processes reach this point before either goes on.
  void barrier() const {
    char c = 0;
    if (::write(sock_, &c, 1) != 1 || ::read(sock_, &c, 1) != 1) die("barrier failed");
  }

  // Sends `bytes` from the send buffer (when `sending`) and receives `bytes` into the receive
  // buffer (when `receiving`), as messages of `chunk` bytes (0: one), all posted at once.
  void transfer(size_t bytes, size_t chunk, bool sending, bool receiving) {
    transfer(send_.data(), sendDesc_, bytes, chunk, sending, receiving);
  }

  // One all-reduce of 2·`bytes` (the opening comment's third pattern).
  void allReduce(size_t bytes, size_t chunk) {
    transfer(bytes, chunk, true, true);
    reduceCpu(DataType::kFloat32, ReduceOp::kSum, sum_.data(), send_.data(), recv_.data(),
              bytes / sizeof(float));
    transfer(sum_.data(), sumDesc_, bytes, chunk, true, true);
  }

  // transfer() with the bytes sent from `from` (registered as `fromDesc`).
  void transfer(const float* from, void* fromDesc, size_t bytes, size_t chunk, bool sending,
                bool receiving) {
    const size_t step = chunk == 0 || chunk > bytes ? bytes : chunk;
    const size_t pieces = bytes == 0 ? 1 : (bytes + step - 1) / step;
    contexts_.resize(2 * pieces);
    size_t expected = 0, done = 0;
    for (size_t i = 0; i < pieces && receiving; ++i, ++expected) {
      const size_t at = i * step, n = std::min(step, bytes - at);
      post(done, [&] {
        return fi_trecv(ep_.ep.get(), bytesOf(recv_.data()) + at, n, recvDesc_, peer_, kTag, 0,
                        &contexts_[i]);
      });
    }
    for (size_t i = 0; i < pieces && sending; ++i, ++expected) {
      const size_t at = i * step, n = std::min(step, bytes - at);
      post(done, [&] {
        return fi_tsend(ep_.ep.get(), bytesOf(from) + at, n, fromDesc, peer_, kTag,
                        &contexts_[pieces + i]);
      });
    }
    while (done < expected) done += reap();
  }

  static float value(int seed, size_t i) { return static_cast<float>(seed + i % 13); }
  void fill(int seed) {
    for (size_t i = 0; i < send_.size(); ++i) send_[i] = value(seed, i);
  }
  // The first `bytes` received are what the peer's fill(seed) wrote, or with `summed` the sums
  // of the peer's and this side's (`own`) values.
  bool received(size_t bytes, int seed, bool summed = false, int own = 0) const {
    for (size_t i = 0; i < bytes / sizeof(float); ++i) {
      if (recv_[i] != value(seed, i) + (summed ? value(own, i) : 0.0f)) return false;
    }
    return true;
  }

 private:
  static constexpr uint64_t kTag = 1;

  static uint8_t* bytesOf(const float* p) {
    return reinterpret_cast<uint8_t*>(const_cast<float*>(p));
  }

  void* registerBuffer(std::vector<float>& buf, uint64_t key, uint64_t mode) {
    fid_mr* mr = nullptr;
    check(fi_mr_reg(ep_.domain.get(), buf.data(), buf.size() * sizeof(float), FI_SEND | FI_RECV, 0,
                    key, 0, &mr, nullptr),
          "fi_mr_reg");
    mrs_.emplace_back(mr);
    if ((mode & FI_MR_ENDPOINT) != 0) {
      check(fi_mr_bind(mr, &ep_.ep->fid, 0), "fi_mr_bind");
      check(fi_mr_enable(mr), "fi_mr_enable");
    }
    return fi_mr_desc(mr);
  }

  // Posts with `op`; while the provider has no room, drives it, counting what completes in `done`.
  template <typename Post>
  void post(size_t& done, Post&& op) {
    for (;;) {
      ssize_t rc = op();
      if (rc == 0) return;
      if (rc != -FI_EAGAIN) check(static_cast<int>(rc), "fi_tsend/fi_trecv");
      done += reap();
    }
  }

  // How many operations completed since the last call; never blocks.
  size_t reap() {
    fi_cq_tagged_entry entries[16];
    ssize_t n = fi_cq_read(ep_.cq.get(), entries, 16);
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};
      fi_cq_readerr(ep_.cq.get(), &err, 0);
      die(std::string("completion error: ") + ofiError(err.err));
    }
    if (n != -FI_EAGAIN) check(static_cast<int>(n), "fi_cq_read");
    return n > 0 ? static_cast<size_t>(n) : 0;
  }

  int sock_;
  Endpoint ep_;
  fi_addr_t peer_ = FI_ADDR_UNSPEC;
  std::vector<float> send_, recv_, sum_;
  std::vector<FidPtr<fid_mr>> mrs_;
  void* sendDesc_ = nullptr;
  void* recvDesc_ = nullptr;
  void* sumDesc_ = nullptr;
  std::vector<fi_context2> contexts_;
};

struct Options {
  std::string provider;
  size_t minBytes = 4 << 20, maxBytes = 64 << 20, factor = 4, chunk = 0;
  int iters = 20;
};

Options parse(int argc, char** argv) {
  Options o;
  if (const char* p = std::getenv("PLEXUS_OFI_PROVIDER")) o.provider = p;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc)
      die("usage: plexus-fi-exchange [-p PROVIDER] [-b MIN] [-e MAX] [-f F] "
          "[-n ITERS] [-c CHUNK]");
    const char* v = argv[++i];
    if (a == "-p")
      o.provider = v;
    else if (a == "-b")
      o.minBytes = parseSize(v);
    else if (a == "-e")
      o.maxBytes = parseSize(v);
    else if (a == "-f")
      o.factor = parseSize(v);
    else if (a == "-c")
      o.chunk = parseSize(v);
    else if (a == "-n")
      o.iters = std::atoi(v);
    else
      die("unknown option " + a);
  }
  if (o.minBytes == 0 || o.minBytes > o.maxBytes || o.factor < 2 || o.iters < 1) {
    die("need 0 < MIN <= MAX, FACTOR >= 2, ITERS >= 1");
  }
  return o;
}

// Seconds for `iters` rounds of `round`, after two unmeasured ones, both sides starting together.
template <typename Round>
double timed(const Side& side, int iters, Round&& round) {
  round();
  round();
  side.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) round();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Options& o, bool first, int sock) {
  StatusOr<InfoPtr> info = chooseProvider(o.provider, 64);
  if (!info.ok()) die(info.status().toString());
  Side side(**info, sock, o.maxBytes);
  side.fill(first ? 11 : 29);
  if (first) {
    std::printf("# plexus-fi-exchange: %s; chunk %zu B (0: one message); GB/s\n",
                describeInfo(**info).c_str(), o.chunk);
    std::printf("# %12s %12s %18s %18s\n", "bytes", "pingpong", "exchange/dir", "allreduce(2x)");
  }
  int wrong = 0;
  for (size_t x = o.minBytes; x <= o.maxBytes; x *= o.factor) {
    double pp = timed(side, o.iters, [&] {
      side.transfer(x, o.chunk, first, !first);
      side.transfer(x, o.chunk, !first, first);
    });
    if (!side.received(x, first ? 29 : 11)) ++wrong;
    double ex = timed(side, o.iters, [&] { side.transfer(x, o.chunk, true, true); });
    if (!side.received(x, first ? 29 : 11)) ++wrong;
    double ar = timed(side, o.iters, [&] { side.allReduce(x, o.chunk); });
    if (!side.received(x, first ? 29 : 11, true, first ? 11 : 29)) ++wrong;
    if (first) {
      std::printf("  %12zu %12.2f %18.2f %18.2f\n", x, 2.0 * x * o.iters / pp / 1e9,
                  static_cast<double>(x) * o.iters / ex / 1e9, 2.0 * x * o.iters / ar / 1e9);
      std::fflush(stdout);
    }
  }
  side.barrier();
  if (wrong > 0) std::fprintf(stderr, "plexus-fi-exchange: %d wrong transfers\n", wrong);
  return wrong > 0 ? 2 : 0;
}

}  // namespace
}  // namespace plexus::ofi

int main(int argc, char** argv) {
  const plexus::ofi::Options o = plexus::ofi::parse(argc, argv);
  int socks[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, socks) != 0) plexus::ofi::die("socketpair");
  const pid_t child = ::fork();
  if (child < 0) plexus::ofi::die("fork");
  if (child == 0) {
    ::close(socks[0]);
    std::exit(plexus::ofi::run(o, false, socks[1]));
  }
  ::close(socks[1]);
  int rc = plexus::ofi::run(o, true, socks[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = rc != 0 ? rc : 3;
  return rc;
}
