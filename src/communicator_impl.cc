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

// The store prefix of the world communicator; splits extend it.
constexpr const char* kWorldPrefix = "world/";

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

// True when [a, a + an) and [b, b + bn) share a byte.
bool overlaps(const void* a, size_t an, const void* b, size_t bn) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  if (an == 0 || bn == 0) return false;
  return x < y + bn && y < x + an;
}

// Buffer extents of a request, in bytes, and where its send buffer sits when in place.
struct Extents {
  size_t send = 0, recv = 0;
  bool needSend = true, needRecv = true;
  const void* inPlaceSend = nullptr;  // the send address that means "in place"
};

Extents extentsOf(const CollectiveRequest& req, int rank, int size) {
  const size_t b = req.bytes(), all = b * static_cast<size_t>(size);
  const auto* recv = static_cast<const uint8_t*>(req.recv);
  Extents e{b, b, true, true, req.recv};
  switch (req.kind) {
    case CollectiveKind::kBroadcast:
      e.needSend = rank == req.root;
      break;
    case CollectiveKind::kReduce:
      e.needRecv = rank == req.root;
      break;
    case CollectiveKind::kAllGather:
      e.recv = all;
      e.inPlaceSend = recv == nullptr ? nullptr : recv + b * rank;
      break;
    case CollectiveKind::kReduceScatter:
      // In place: recv == send + rank × b, i.e. send == recv − rank × b.
      e.send = all;
      e.inPlaceSend = recv == nullptr ? nullptr : recv - b * rank;
      break;
    case CollectiveKind::kAllToAll:
      e.send = e.recv = all;
      break;
    default:
      break;
  }
  return e;
}

}  // namespace

CommunicatorImpl::CommunicatorImpl(int rank, int size, Config config, std::string prefix)
    : rank_(rank),
      size_(size),
      config_(std::move(config)),
      prefix_(std::move(prefix)),
      algorithms_(builtinAlgorithms()) {}

StatusOr<std::unique_ptr<CommunicatorImpl>> CommunicatorImpl::create(Rendezvous rendezvous,
                                                                     int rank, int size,
                                                                     Config config) {
  if (size < 1) return invalidArgument("world size " + std::to_string(size) + " is not positive");
  if (rank < 0 || rank >= size) {
    return invalidArgument("rank " + std::to_string(rank) + " is outside [0, " +
                           std::to_string(size) + ")");
  }
  setLogRank(rank);
  std::unique_ptr<CommunicatorImpl> comm(
      new CommunicatorImpl(rank, size, std::move(config), kWorldPrefix));
  Status s = comm->bootstrap(rendezvous);
  if (!s.ok()) return s.withContext("rank " + std::to_string(rank) + ": bootstrap");
  return comm;
}

Status CommunicatorImpl::bootstrap(Rendezvous& rv) {
  storeServer_ = std::move(rv.server);
  nodeId_ = rv.nodeId;
  auto client =
      bootstrap::StoreClient::connect(rv.host, rv.port, rv.secret, rank_, size_, config_.timeout);
  PLEXUS_TRY(client.status());
  store_ = std::make_shared<SharedStore>();
  store_->client = std::move(client).value();
  std::lock_guard<std::mutex> lock(store_->mu);
  bootstrap::StoreClient& store = *store_->client;

  // Every rank checks its world size against rank 0's before anything else.
  if (rank_ == 0) {
    PLEXUS_TRY(store.set(prefix_ + "size",
                         {static_cast<uint8_t>(size_), static_cast<uint8_t>(size_ >> 8),
                          static_cast<uint8_t>(size_ >> 16), static_cast<uint8_t>(size_ >> 24)}));
  }
  auto sizeBlob = store.get(prefix_ + "size", config_.timeout);
  PLEXUS_TRY(sizeBlob.status());
  ByteReader sizeReader(*sizeBlob);
  uint32_t rootSize = sizeReader.u32();
  if (!sizeReader.ok() || rootSize != static_cast<uint32_t>(size_)) {
    return invalidArgument("this rank was told the world has " + std::to_string(size_) +
                           " ranks but rank 0 says " + std::to_string(rootSize));
  }
  return connectPeers();
}

// Called with store_->mu held.
Status CommunicatorImpl::connectPeers() {
  auto rules = parseAlgoRules(config_.algo, algorithms_);
  PLEXUS_TRY(rules.status());
  selector_ =
      std::make_unique<Selector>(&algorithms_, std::move(rules).value(), defaultCostModel(), size_);
  bootstrap::StoreClient& store = *store_->client;
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

  auto peerKey = [this](int rank) { return prefix_ + "peer/" + std::to_string(rank); };
  PeerRecord self;
  self.info = {rank_, hostName(), nodeId_.empty() ? hostName() : nodeId_};
  self.transport = transportName_;
  self.worldSize = static_cast<uint32_t>(size_);
  self.address = transport_->localAddress();
  PLEXUS_TRY(store.set(peerKey(rank_), self.encode()));

  connections_.resize(size_);
  int ranksOnThisHost = 1;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    auto blob = store.get(peerKey(p), config_.timeout);
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
  PLEXUS_LOG(kInfo,
             "communicator %s up: rank %d of %d over %s; %d ranks on this host, spin %lld us",
             prefix_.c_str(), rank_, size_, transport_->describe().c_str(), ranksOnThisHost,
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
  if (req.memory != MemoryKind::kHost && req.memory != MemoryKind::kCuda) {
    return invalidArgument(where("unknown memory kind"));
  }
  if (!transport_->supportsMemory(req.memory)) {
    return unimplemented(where(std::string("transport ") + transport_->name() + " cannot move " +
                               (req.memory == MemoryKind::kCuda ? "CUDA" : "host") +
                               " memory in this build"));
  }
  if (req.kind == CollectiveKind::kSendRecv) return validateTransfers(req);
  if (!isValidDataType(req.type)) {
    return invalidArgument(
        where("unknown data type " + std::to_string(static_cast<int>(req.type))));
  }
  if (!isValidReduceOp(req.op)) {
    return invalidArgument(where("unknown reduce op " + std::to_string(static_cast<int>(req.op))));
  }
  if ((req.kind == CollectiveKind::kBroadcast || req.kind == CollectiveKind::kReduce) &&
      (req.root < 0 || req.root >= size_)) {
    return invalidArgument(where("root " + std::to_string(req.root) + " is outside [0, " +
                                 std::to_string(size_) + ")"));
  }
  const size_t elem = dataTypeSize(req.type);
  if (req.count > SIZE_MAX / 4 / elem / static_cast<size_t>(size_)) {
    return invalidArgument(where("count " + std::to_string(req.count) + " is too large"));
  }
  const Extents e = extentsOf(req, rank_, size_);
  if (req.count > 0 && e.needSend && req.send == nullptr) {
    return invalidArgument(where("sendbuf is null"));
  }
  if (req.count > 0 && e.needRecv && req.recv == nullptr) {
    return invalidArgument(where("recvbuf is null"));
  }
  if (e.needSend && e.needRecv && req.send != e.inPlaceSend &&
      overlaps(req.send, e.send, req.recv, e.recv)) {
    return invalidArgument(where("sendbuf and recvbuf overlap without being in place"));
  }
  return okStatus();
}

Status CommunicatorImpl::validateTransfers(const CollectiveRequest& req) const {
  int selfSends = 0, selfRecvs = 0;
  std::vector<size_t> sendBytes, recvBytes;  // of the transfers to and from self, in order
  for (const PeerTransfer& t : *req.transfers) {
    const std::string what = std::string(t.isSend ? "send to" : "recv from") + " peer " +
                             std::to_string(t.peer) + " on rank " + std::to_string(rank_) + ": ";
    if (t.peer < 0 || t.peer >= size_) {
      return invalidArgument(what + "peer is outside [0, " + std::to_string(size_) + ")");
    }
    if (!isValidDataType(t.type)) return invalidArgument(what + "unknown data type");
    if (t.count > SIZE_MAX / 4 / dataTypeSize(t.type)) {
      return invalidArgument(what + "count " + std::to_string(t.count) + " is too large");
    }
    if (t.count > 0 && t.buffer == nullptr) return invalidArgument(what + "buffer is null");
    if (t.peer != rank_) continue;
    (t.isSend ? sendBytes : recvBytes).push_back(t.bytes());
    ++(t.isSend ? selfSends : selfRecvs);
  }
  if (selfSends != selfRecvs) {
    return invalidArgument("send/recv group on rank " + std::to_string(rank_) + ": " +
                           std::to_string(selfSends) + " sends to self but " +
                           std::to_string(selfRecvs) +
                           " receives from self (each send to self needs a matching recv from "
                           "self in the same group)");
  }
  for (size_t i = 0; i < sendBytes.size(); ++i) {
    if (sendBytes[i] != recvBytes[i]) {
      return invalidArgument(
          "send/recv group on rank " + std::to_string(rank_) + ": send to self #" +
          std::to_string(i) + " has " + std::to_string(sendBytes[i]) +
          " bytes but its matching recv from self has " + std::to_string(recvBytes[i]));
    }
  }
  return okStatus();
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
  auto algo = selector_->select(req, algorithm);
  PLEXUS_TRY(algo.status());
  Algorithm* chosen = *algo;
  return engine_->runBlocking([this, &req, chosen] { return execute(req, chosen); });
}

StatusOr<Work> CommunicatorImpl::runAsync(const CollectiveRequest& req,
                                          const std::string& algorithm) {
  PLEXUS_TRY(validate(req));
  auto algo = selector_->select(req, algorithm);
  PLEXUS_TRY(algo.status());
  Algorithm* chosen = *algo;
  return Work(engine_->submit([this, req, chosen] { return execute(req, chosen); }));
}

StatusOr<std::unique_ptr<CommunicatorImpl>> CommunicatorImpl::split(int color, int key) {
  if (aborted_.load()) return aborted("split on rank " + std::to_string(rank_) + ": aborted");
  // Every rank numbers its splits the same way (split is collective), so the sequence number
  // names this split in the store; a rank that skipped one waits on the wrong keys and times
  // out with a message saying so.
  const uint64_t seq = splitSequence_++;
  const std::string base = prefix_ + "split" + std::to_string(seq) + "/";
  const std::string what = "split #" + std::to_string(seq) + " on rank " + std::to_string(rank_);
  std::lock_guard<std::mutex> lock(store_->mu);
  bootstrap::StoreClient& store = *store_->client;
  ByteWriter w;
  w.u32(static_cast<uint32_t>(color));
  w.u32(static_cast<uint32_t>(key));
  w.u32(static_cast<uint32_t>(size_));
  PLEXUS_TRY(store.set(base + std::to_string(rank_), w.take()));

  // (key, rank here) of every rank with this color, read from the store.
  std::vector<std::pair<int, int>> members;
  for (int p = 0; p < size_; ++p) {
    auto blob = store.get(base + std::to_string(p), config_.timeout);
    if (!blob.ok()) {
      return blob.status().withContext(what + ": rank " + std::to_string(p) +
                                       " did not join (do all ranks call split the same number "
                                       "of times?)");
    }
    ByteReader r(*blob);
    const auto theirColor = static_cast<int>(r.u32()), theirKey = static_cast<int>(r.u32());
    const auto theirSize = r.u32();
    if (!r.ok() || !r.atEnd() || theirSize != static_cast<uint32_t>(size_)) {
      return invalidArgument(what + ": rank " + std::to_string(p) +
                             " published an inconsistent split record");
    }
    if (color >= 0 && theirColor == color) members.emplace_back(theirKey, p);
  }
  if (color < 0) return std::unique_ptr<CommunicatorImpl>();
  std::sort(members.begin(), members.end());
  int childRank = 0;
  while (members[childRank].second != rank_) ++childRank;
  PLEXUS_LOG(kInfo, "%s: color %d key %d -> rank %d of %d", what.c_str(), color, key, childRank,
             static_cast<int>(members.size()));
  std::unique_ptr<CommunicatorImpl> child(
      new CommunicatorImpl(childRank, static_cast<int>(members.size()), config_,
                           base + "color" + std::to_string(color) + "/"));
  child->nodeId_ = nodeId_;
  child->store_ = store_;
  Status s = child->connectPeers();
  if (!s.ok()) return s.withContext(what + ": creating the new communicator");
  return child;
}

Status CommunicatorImpl::groupStart() {
  std::lock_guard<std::mutex> lock(groupMu_);
  if (groupDepth_++ == 0) group_.clear();
  return okStatus();
}

Status CommunicatorImpl::groupAdd(const PeerTransfer& transfer, const CallOptions& call) {
  {
    std::lock_guard<std::mutex> lock(groupMu_);
    if (groupDepth_ > 0) {
      group_.push_back(transfer);
      groupCall_ = call;
      return okStatus();
    }
  }
  CollectiveRequest req;
  req.kind = CollectiveKind::kSendRecv;
  req.memory = call.memory;
  req.stream = call.stream;
  req.transfers = std::make_shared<const std::vector<PeerTransfer>>(1, transfer);
  return run(req);
}

StatusOr<CollectiveRequest> CommunicatorImpl::closeGroup() {
  std::lock_guard<std::mutex> lock(groupMu_);
  if (groupDepth_ == 0) {
    return invalidArgument("groupEnd on rank " + std::to_string(rank_) + " without groupStart");
  }
  CollectiveRequest req;
  req.kind = CollectiveKind::kSendRecv;
  if (--groupDepth_ > 0) return req;  // an inner group: the outermost end runs everything
  req.memory = groupCall_.memory;
  req.stream = groupCall_.stream;
  req.transfers = std::make_shared<const std::vector<PeerTransfer>>(std::move(group_));
  group_.clear();
  groupCall_ = CallOptions();
  return req;
}

Status CommunicatorImpl::groupEnd() {
  auto req = closeGroup();
  PLEXUS_TRY(req.status());
  if (!req->transfers) return okStatus();
  return run(*req);
}

StatusOr<Work> CommunicatorImpl::groupEndAsync() {
  auto req = closeGroup();
  PLEXUS_TRY(req.status());
  if (!req->transfers) {
    auto done = std::make_shared<WorkState>();
    done->finish(okStatus());
    return Work(done);
  }
  return runAsync(*req);
}

}  // namespace plexus::internal
