#include "src/communicator_impl.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "src/bytes.h"
#include "src/check.h"
#include "src/log.h"

namespace plexus::internal {
namespace {

// Caps on what a peer's published record may hold.
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxAddressBytes = 64 * 1024;
// Spin budgets before a waiting driver blocks: long when every rank of this host has a core
// (blocking costs a wake-up, several microseconds), near zero when ranks outnumber cores (a
// spinning rank steals the core the rank it waits for needs: 8 ranks on 2 cores ran 10x slower
// with 200 us of spin than with 1 us).
constexpr auto kSpinWhenCoresSuffice = std::chrono::microseconds(200);
constexpr auto kSpinWhenOversubscribed = std::chrono::microseconds(1);

// Goodbye barrier at destruction: bounded so a dead peer cannot stall teardown for long.
constexpr auto kGoodbyeTimeout = std::chrono::seconds(10);

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string peerKey(int rank) { return "world/peer/" + std::to_string(rank); }

// What every rank publishes about itself.
struct PeerRecord {
  PeerInfo info;
  std::string transport;
  uint32_t worldSize = 0;
  std::vector<uint8_t> address;

  std::vector<uint8_t> encode() const {
    ByteWriter w;
    w.u32(static_cast<uint32_t>(info.rank));
    w.u32(worldSize);
    w.str(info.hostname);
    w.str(info.nodeId);
    w.str(transport);
    w.bytes(address.data(), address.size());
    return w.take();
  }
  static StatusOr<PeerRecord> decode(const std::vector<uint8_t>& blob, int expectedRank) {
    ByteReader r(blob);
    PeerRecord rec;
    rec.info.rank = static_cast<int>(r.u32());
    rec.worldSize = r.u32();
    rec.info.hostname = r.str(kMaxNameBytes);
    rec.info.nodeId = r.str(kMaxNameBytes);
    rec.transport = r.str(kMaxNameBytes);
    rec.address = r.bytes(kMaxAddressBytes);
    if (!r.ok() || !r.atEnd() || rec.info.rank != expectedRank) {
      return invalidArgument("malformed bootstrap record for rank " + std::to_string(expectedRank));
    }
    return rec;
  }
};

bool overlapsPartially(const void* a, const void* b, size_t bytes) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  if (x == y || bytes == 0) return false;
  return x < y + bytes && y < x + bytes;
}

}  // namespace

CommunicatorImpl::CommunicatorImpl(int rank, int size, Config config)
    : rank_(rank), size_(size), config_(std::move(config)), algorithms_(builtinAlgorithms()) {}

StatusOr<std::unique_ptr<CommunicatorImpl>> CommunicatorImpl::create(Rendezvous rendezvous,
                                                                     int rank, int size,
                                                                     Config config) {
  if (size < 1) return invalidArgument("world size " + std::to_string(size) + " is not positive");
  if (rank < 0 || rank >= size) {
    return invalidArgument("rank " + std::to_string(rank) + " is outside [0, " +
                           std::to_string(size) + ")");
  }
  setLogRank(rank);
  std::unique_ptr<CommunicatorImpl> comm(new CommunicatorImpl(rank, size, std::move(config)));
  Status s = comm->bootstrap(rendezvous);
  if (!s.ok()) return s.withContext("rank " + std::to_string(rank) + ": bootstrap");
  return comm;
}

Status CommunicatorImpl::bootstrap(Rendezvous& rv) {
  storeServer_ = std::move(rv.server);
  auto store =
      bootstrap::StoreClient::connect(rv.host, rv.port, rv.secret, rank_, size_, config_.timeout);
  PLEXUS_TRY(store.status());
  store_ = std::move(store).value();

  // Every rank checks its world size against rank 0's before anything else.
  if (rank_ == 0) {
    PLEXUS_TRY(store_->set("world/size",
                           {static_cast<uint8_t>(size_), static_cast<uint8_t>(size_ >> 8),
                            static_cast<uint8_t>(size_ >> 16), static_cast<uint8_t>(size_ >> 24)}));
  }
  auto sizeBlob = store_->get("world/size", config_.timeout);
  PLEXUS_TRY(sizeBlob.status());
  ByteReader sizeReader(*sizeBlob);
  uint32_t rootSize = sizeReader.u32();
  if (!sizeReader.ok() || rootSize != static_cast<uint32_t>(size_)) {
    return invalidArgument("this rank was told the world has " + std::to_string(size_) +
                           " ranks but rank 0 says " + std::to_string(rootSize));
  }

  std::vector<std::string> names = availableTransports();
  transportName_ =
      config_.transport.empty() ? (names.empty() ? "" : names.front()) : config_.transport;
  if (transportName_.empty()) {
    return unimplemented("this build has no transport: install libucx-dev and rebuild");
  }
  TransportContext tctx{rank_, size_, &config_};
  auto transport = createTransport(transportName_, tctx);
  PLEXUS_TRY(transport.status());
  transport_ = std::move(transport).value();

  PeerRecord self;
  self.info = {rank_, hostName(), rv.nodeId.empty() ? hostName() : rv.nodeId};
  self.transport = transportName_;
  self.worldSize = static_cast<uint32_t>(size_);
  self.address = transport_->localAddress();
  PLEXUS_TRY(store_->set(peerKey(rank_), self.encode()));

  connections_.resize(size_);
  int ranksOnThisHost = 1;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    auto blob = store_->get(peerKey(p), config_.timeout);
    if (!blob.ok()) return blob.status().withContext("waiting for rank " + std::to_string(p));
    auto rec = PeerRecord::decode(*blob, p);
    PLEXUS_TRY(rec.status());
    if (rec->info.hostname == self.info.hostname) ++ranksOnThisHost;
    if (rec->transport != transportName_) {
      return invalidArgument("rank " + std::to_string(p) + " uses transport '" + rec->transport +
                             "' but this rank uses '" + transportName_ + "' (PLEXUS_TRANSPORT)");
    }
    if (!transport_->canConnect(rec->info)) {
      return unavailable(std::string(transport_->name()) + " cannot reach rank " +
                         std::to_string(p) + " on " + rec->info.hostname);
    }
    auto conn = transport_->connect(p, rec->address);
    PLEXUS_TRY(conn.status());
    connections_[p] = std::move(conn).value();
  }
  chooseSpin(ranksOnThisHost);
  PLEXUS_LOG(kInfo, "communicator up: rank %d of %d over %s; %d ranks on this host, spin %lld us",
             rank_, size_, transport_->describe().c_str(), ranksOnThisHost,
             static_cast<long long>(spin_.count()));
  context_ = std::make_unique<CollectiveContext>(rank_, size_, transport_.get(), &connections_,
                                                 &aborted_, config_.chunkBytes);
  engine_ = std::make_unique<ProgressEngine>(spin_);
  return okStatus();
}

void CommunicatorImpl::chooseSpin(int ranksOnThisHost) {
  if (config_.spin) {
    spin_ = *config_.spin;
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  spin_ = ranksOnThisHost <= cores ? kSpinWhenCoresSuffice : kSpinWhenOversubscribed;
}

CommunicatorImpl::~CommunicatorImpl() {
  engine_.reset();  // runs what is queued, then stops
  if (context_ != nullptr && size_ > 1 && !aborted_.load()) {
    // Spin budgets before a waiting driver blocks: long when every rank of this host has a core
    // (blocking costs a wake-up, several microseconds), near zero when ranks outnumber cores (a
    // spinning rank steals the core the rank it waits for needs: 8 ranks on 2 cores ran 10x slower
    // with 200 us of spin than with 1 us).
    constexpr auto kSpinWhenCoresSuffice = std::chrono::microseconds(200);
    constexpr auto kSpinWhenOversubscribed = std::chrono::microseconds(1);

    // Goodbye barrier: no rank tears down its endpoints while a peer may still be talking to
    // it. Bounded, so a dead peer delays teardown by at most kGoodbyeTimeout.
    CollectiveRequest bye;
    bye.kind = CollectiveKind::kBarrier;
    context_->begin(sequence_++, "goodbye barrier",
                    std::min<std::chrono::milliseconds>(config_.timeout, kGoodbyeTimeout), spin_);
    for (auto& algo : algorithms_) {
      if (algo->collective() != CollectiveKind::kBarrier) continue;
      Status s = algo->run(bye, *context_);
      if (!s.ok()) PLEXUS_LOG(kInfo, "teardown: %s", s.toString().c_str());
      break;
    }
  }
  context_.reset();
  connections_.clear();
  transport_.reset();
  store_.reset();
  storeServer_.reset();
}

Status CommunicatorImpl::validate(const CollectiveRequest& req) const {
  const char* op = collectiveName(req.kind);
  auto where = [&](const std::string& what) {
    return std::string(op) + " on rank " + std::to_string(rank_) + ": " + what;
  };
  if (aborted_.load()) return aborted(where("the communicator was aborted"));
  if (req.kind == CollectiveKind::kBarrier) return okStatus();
  if (!isValidDataType(req.type)) {
    return invalidArgument(
        where("unknown data type " + std::to_string(static_cast<int>(req.type))));
  }
  if (!isValidReduceOp(req.op)) {
    return invalidArgument(where("unknown reduce op " + std::to_string(static_cast<int>(req.op))));
  }
  const size_t elem = dataTypeSize(req.type);
  if (req.count > SIZE_MAX / 4 / elem) {
    return invalidArgument(where("count " + std::to_string(req.count) + " is too large"));
  }
  if (req.count > 0 && req.send == nullptr) return invalidArgument(where("sendbuf is null"));
  if (req.count > 0 && req.recv == nullptr) return invalidArgument(where("recvbuf is null"));
  if (overlapsPartially(req.send, req.recv, req.bytes())) {
    return invalidArgument(where("sendbuf and recvbuf overlap without being the same buffer"));
  }
  if (req.memory != MemoryKind::kHost && req.memory != MemoryKind::kCuda) {
    return invalidArgument(where("unknown memory kind"));
  }
  if (!transport_->supportsMemory(req.memory)) {
    return unimplemented(where(std::string("transport ") + transport_->name() + " cannot move " +
                               (req.memory == MemoryKind::kCuda ? "CUDA" : "host") +
                               " memory in this build"));
  }
  return okStatus();
}

StatusOr<Algorithm*> CommunicatorImpl::select(const CollectiveRequest& req,
                                              const std::string& forced) const {
  std::string known;
  for (const auto& algo : algorithms_) {
    if (algo->collective() != req.kind) continue;
    known += known.empty() ? algo->name() : std::string(", ") + algo->name();
    if (!forced.empty() && forced != algo->name()) continue;
    Status s = algo->supports(req, size_);
    if (s.ok()) return algo.get();
    if (!forced.empty()) return s;
  }
  if (!forced.empty()) {
    return invalidArgument(std::string("no ") + collectiveName(req.kind) + " algorithm named '" +
                           forced + "' (known: " + known + ")");
  }
  return unimplemented(std::string("no ") + collectiveName(req.kind) +
                       " algorithm supports this request");
}

Status CommunicatorImpl::execute(const CollectiveRequest& req, Algorithm* algorithm) {
  context_->begin(sequence_++, collectiveName(req.kind), config_.timeout, spin_);
  PLEXUS_LOG(kTrace, "%s #%llu: %zu x %s with %s", collectiveName(req.kind),
             static_cast<unsigned long long>(context_->sequence()), req.count,
             dataTypeName(req.type), algorithm->name());
  Status s = algorithm->run(req, *context_);
  if (!s.ok()) PLEXUS_LOG(kWarn, "%s", s.toString().c_str());
  return s;
}

Status CommunicatorImpl::run(const CollectiveRequest& req, const std::string& algorithm) {
  PLEXUS_TRY(validate(req));
  auto algo = select(req, algorithm);
  PLEXUS_TRY(algo.status());
  Algorithm* chosen = *algo;
  return engine_->runBlocking([this, &req, chosen] { return execute(req, chosen); });
}

StatusOr<Work> CommunicatorImpl::runAsync(const CollectiveRequest& req,
                                          const std::string& algorithm) {
  PLEXUS_TRY(validate(req));
  auto algo = select(req, algorithm);
  PLEXUS_TRY(algo.status());
  Algorithm* chosen = *algo;
  return Work(engine_->submit([this, req, chosen] { return execute(req, chosen); }));
}

}  // namespace plexus::internal
