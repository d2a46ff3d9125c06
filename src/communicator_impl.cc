#include "src/communicator_impl.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>

#include "algorithms/builtin.h"
#include "src/bytes.h"
#include "src/check.h"
#include "src/coarse_clock.h"
#include "src/log.h"
#include "src/peer_record.h"
#include "src/topology_detect.h"

namespace plexus::internal {
namespace {

// Spin budgets before a waiting driver blocks: long when every rank of this host has a core
// (blocking costs a wake-up, several microseconds), near zero when ranks outnumber cores (a
// spinning rank steals the core the rank it waits for needs: 8 ranks on 2 cores ran 10x slower
// with 200 us of spin than with 1 us).
constexpr auto kSpinWhenCoresSuffice = std::chrono::microseconds(200);
constexpr auto kSpinWhenOversubscribed = std::chrono::microseconds(1);

// Goodbye barrier at destruction: bounded so a dead peer cannot stall teardown for long.
constexpr auto kGoodbyeTimeout = std::chrono::seconds(10);

// The store prefix of the world communicator; splits extend it.
constexpr const char* kWorldPrefix = "world/";

// A communicator as a hierarchical algorithm's phase runs on it.
class SubCommAdapter final : public SubCommunicator {
 public:
  explicit SubCommAdapter(CommunicatorImpl* comm) : comm_(comm) {}
  int rank() const override { return comm_->rank(); }
  int size() const override { return comm_->size(); }
  Status run(const CollectiveRequest& request) override { return comm_->run(request); }
  StatusOr<Work> runAsync(const CollectiveRequest& request) override {
    return comm_->runAsync(request);
  }
  void abort() override { comm_->abort(); }

 private:
  CommunicatorImpl* comm_;
};

// The link level of a link class: 0 inside a node, 1 between nodes.
int levelOf(LinkClass link) { return link == LinkClass::kCrossNode ? 1 : 0; }
constexpr const char* kLevelNames[2] = {"intra-node", "inter-node"};

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
      algorithms_(builtinAlgorithms(&hierarchy_, &shared_, config_.shmStores)) {
  worldRanks_.resize(size_);
  for (int r = 0; r < size_; ++r) worldRanks_[r] = r;
}

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
  if (s.ok()) s = comm->buildHierarchy();
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
  PLEXUS_TRY(learnTopology());
  auto rules = parseAlgoRules(config_.algo, algorithms_);
  PLEXUS_TRY(rules.status());
  PLEXUS_TRY(createTransports());
  bootstrap::StoreClient& store = *store_->client;
  // The tuning table is keyed by the link levels' specs, known once the transports are.
  auto tuning = loadJobTuning(config_, signatureOf(topology_, levelSpec_[0], levelSpec_[1]),
                              algorithms_, store, prefix_ + "tuning", rank_, size_);
  PLEXUS_TRY(tuning.status());
  if (rank_ == 0 && size_ > 1) publishedKeys_.push_back(prefix_ + "tuning");
  const CostModel links =
      tuning->tuning ? tuning->tuning->table.links.applyTo(defaultCostModel()) : defaultCostModel();
  hierarchy_.model = costModelFor(topology_, links);
  chunkBytes_ = choosePipelineChunk();
  hierarchy_.model.chunkBytes = static_cast<double>(chunkBytes_);
  selector_ = std::make_unique<Selector>(&algorithms_, std::move(rules).value(), hierarchy_.model,
                                         size_, tuning->tuning);
  PLEXUS_TRY(mapSharedRegion());
  auto peerKey = [this](int rank) { return prefix_ + "peer/" + std::to_string(rank); };
  PeerRecord self;
  self.rank = rank_;
  self.sharedRegion = shmRegion_ != nullptr;
  self.mailboxes = config_.shmMailboxes;
  self.worldSize = static_cast<uint32_t>(size_);
  for (int level = 0; level < 2; ++level) {
    self.spec[level] = levelSpec_[level];
    if (levelTransport_[level] != nullptr) {
      self.address[level] = levelTransport_[level]->localAddress();
    }
  }
  PLEXUS_TRY(publish(peerKey(rank_), self.encode()));

  connections_.resize(size_);
  bool everyRankMapped = self.sharedRegion, everyRankBoxes = self.mailboxes;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    auto blob = store.get(peerKey(p), config_.timeout);
    if (!blob.ok()) return blob.status().withContext("waiting for rank " + std::to_string(p));
    auto rec = PeerRecord::decode(*blob, p);
    PLEXUS_TRY(rec.status());
    everyRankMapped = everyRankMapped && rec->sharedRegion;
    everyRankBoxes = everyRankBoxes && rec->mailboxes;
    const int level = levelOf(topology_.link(rank_, p));
    const HostTopology& host = topology_.host(p);
    if (rec->spec[level] != levelSpec_[level]) {
      return invalidArgument("rank " + std::to_string(p) + " uses transport '" + rec->spec[level] +
                             "' for " + kLevelNames[level] + " links but this rank uses '" +
                             levelSpec_[level] + "' (PLEXUS_TRANSPORT" +
                             (level == 0 ? "_INTRA" : "_INTER") + " or PLEXUS_TRANSPORT)");
    }
    Transport* transport = levelTransport_[level];
    PLEXUS_CHECK(transport != nullptr);
    if (!transport->canConnect(PeerInfo{p, host.hostname, host.nodeId})) {
      return unavailable(std::string(transport->name()) + " cannot reach rank " +
                         std::to_string(p) + " on " + host.hostname);
    }
    auto conn = transport->connect(p, rec->address[level]);
    PLEXUS_TRY(conn.status());
    connections_[p] = std::move(conn).value();
  }
  settleSharedRegion(everyRankMapped, everyRankBoxes);
  // A split child sees only its own ranks, but competes for the cores with its parent's.
  int ranksOnThisHost = ranksOnHost_;
  for (int p = 0, own = 0; p < size_; ++p) {
    own += topology_.sameHost(rank_, p) ? 1 : 0;
    ranksOnThisHost = std::max(ranksOnThisHost, own);
  }
  ranksOnHost_ = ranksOnThisHost;
  chooseSpin(ranksOnThisHost);
  PLEXUS_LOG(kInfo,
             "communicator %s up: rank %d of %d (node %d of %d, local rank %d of %d) over %s; "
             "%d ranks on this host, spin %lld us, pipeline chunk %zu KiB; shared-memory region: "
             "%s",
             prefix_.c_str(), rank_, size_, topology_.nodeOf(rank_), topology_.numNodes(),
             topology_.localRank(rank_), topology_.localSize(rank_), describeTransports().c_str(),
             ranksOnThisHost, static_cast<long long>(spin_.count()), chunkBytes_ >> 10,
             shared_.base == nullptr ? shared_.missing
             : mailboxes_ != nullptr
                 ? (std::to_string(shared_.bytes >> 10) + " KiB, mailboxes for messages up to " +
                    std::to_string(ShmMailboxes::messageBytes(size_) >> 10) + " KiB")
                       .c_str()
                 : (std::to_string(shared_.bytes >> 10) + " KiB, no mailboxes").c_str());
  std::vector<Transport*> drive;
  for (auto& t : transports_) drive.push_back(t.get());
  context_ = std::make_unique<CollectiveContext>(rank_, size_, std::move(drive), &connections_,
                                                 &aborted_, chunkBytes_);
  context_->setWorldRanks(&worldRanks_);
  context_->setRankCpus(shared_.rankCpus);
  context_->setMailboxes(mailboxes_.get());
  engine_ = std::make_unique<ProgressEngine>(spin_);
  return okStatus();
}

// Called with store_->mu held. Every rank publishes who it is (host, boot id, node id, pid),
// and all build the same JobTopology from the records.
Status CommunicatorImpl::learnTopology() {
  bootstrap::StoreClient& store = *store_->client;
  HostTopology self;
  topology_detail::fillIdentity(nodeId_, &self);
  auto key = [this](int rank) { return prefix_ + "host/" + std::to_string(rank); };
  PLEXUS_TRY(publish(key(rank_), encodeHostTopology(self)));
  std::vector<HostTopology> hosts(size_);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) {
      hosts[p] = self;
      continue;
    }
    auto blob = store.get(key(p), config_.timeout);
    if (!blob.ok()) return blob.status().withContext("waiting for rank " + std::to_string(p));
    auto host = decodeHostTopology(*blob);
    if (!host.ok()) return host.status().withContext("host record of rank " + std::to_string(p));
    hosts[p] = std::move(host).value();
  }
  auto job = JobTopology::build(std::move(hosts));
  PLEXUS_TRY(job.status());
  topology_ = std::move(job).value();
  return okStatus();
}

// One transport per link level this rank has, shared when both levels use the same spec.
Status CommunicatorImpl::createTransports() {
  std::vector<std::string> names = availableTransports();
  const std::string fallback = names.empty() ? "" : names.front();
  bool needed[2] = {size_ == 1, false};  // a lone rank still has a transport (memory checks)
  for (int p = 0; p < size_; ++p) {
    if (p != rank_) needed[levelOf(topology_.link(rank_, p))] = true;
  }
  for (int level = 0; level < 2; ++level) {
    const std::string& spec = config_.transportFor(level == 1);
    levelSpec_[level] = spec.empty() ? fallback : spec;
    if (levelSpec_[level].empty()) {
      return unimplemented("this build has no transport: install libucx-dev and rebuild");
    }
  }
  for (int level = 0; level < 2; ++level) {
    if (!needed[level]) continue;
    if (level == 1 && levelTransport_[0] != nullptr && levelSpec_[1] == levelSpec_[0]) {
      levelTransport_[1] = levelTransport_[0];
      continue;
    }
    auto made = createTransport(levelSpec_[level], TransportContext{rank_, size_, &config_, {}});
    if (!made.ok()) {
      return made.status().withContext(std::string(kLevelNames[level]) + " transport '" +
                                       levelSpec_[level] + "'");
    }
    transports_.push_back(std::move(made).value());
    levelTransport_[level] = transports_.back().get();
  }
  transportName_.clear();
  for (auto& t : transports_) {
    if (transportName_ == t->name()) continue;  // "ucx", not "ucx+ucx", for two UCX levels
    transportName_ += std::string(transportName_.empty() ? "" : "+") + t->name();
  }
  return okStatus();
}

// Why a communicator on one node has no shared-memory region (SharedRegion::missing).
constexpr const char* kRegionNotMapped =
    "a rank could not map the shared-memory region (see its WARN line)";

Status CommunicatorImpl::mapSharedRegion() {
  if (size_ == 1) return okStatus();
  if (topology_.numNodes() > 1) {
    shared_.missing = "the communicator's ranks span nodes";
    return okStatus();
  }
  for (int p = 0; p < size_; ++p) {
    if (!topology_.sameHost(rank_, p)) {
      shared_.missing = "the communicator's ranks are not all on one host";
      return okStatus();
    }
  }
  bootstrap::StoreClient& store = *store_->client;
  const size_t bytes = regionBytes();
  const std::string key = prefix_ + "shm";
  StatusOr<std::unique_ptr<ShmRegion>> region = unavailable("rank 0 could not create it");
  if (rank_ == 0) {
    region = ShmRegion::create(bytes);
    const std::string name = region.ok() ? (*region)->name() : "";
    PLEXUS_TRY(publish(key, std::vector<uint8_t>(name.begin(), name.end())));
  } else {
    auto name = store.get(key, config_.timeout);
    if (!name.ok()) return name.status().withContext("waiting for rank 0's shared-memory region");
    if (!name->empty()) region = ShmRegion::open(std::string(name->begin(), name->end()), bytes);
  }
  if (!region.ok()) {
    shared_.missing = kRegionNotMapped;
    PLEXUS_LOG(kWarn, "communicator %s: no shared-memory region (%s); the shm algorithms are off",
               prefix_.c_str(), region.status().toString().c_str());
    return okStatus();
  }
  shmRegion_ = std::move(region).value();
  return okStatus();
}

void CommunicatorImpl::settleSharedRegion(bool everyRankMapped, bool everyRankBoxes) {
  if (shmRegion_ == nullptr) return;
  // Every rank maps the region before it publishes its record, and every record has been read:
  // nobody opens the name any more.
  shmRegion_->unlinkName();
  if (!everyRankMapped) {
    shmRegion_.reset();
    shared_.missing = kRegionNotMapped;
    return;
  }
  shared_.base = shmRegion_->base();
  shared_.bytes = shmRegionBytes(size_);
  shared_.rankCpus =
      reinterpret_cast<RankCpuLine*>(static_cast<uint8_t*>(shmRegion_->base()) + rankCpusOffset());
  if (everyRankBoxes && ShmMailboxes::regionBytes(size_) != 0) {
    mailboxes_ = std::make_unique<ShmMailboxes>(
        static_cast<uint8_t*>(shmRegion_->base()) + mailboxesOffset(), size_, rank_);
  }
}

size_t CommunicatorImpl::rankCpusOffset() const {
  const size_t line = alignof(RankCpuLine);
  return (shmRegionBytes(size_) + line - 1) / line * line;
}

size_t CommunicatorImpl::mailboxesOffset() const {
  return rankCpusOffset() + static_cast<size_t>(size_) * sizeof(RankCpuLine);
}

size_t CommunicatorImpl::regionBytes() const {
  return mailboxesOffset() + ShmMailboxes::regionBytes(size_);
}

std::string CommunicatorImpl::describeTransports() const {
  std::string text;
  for (int level = 0; level < 2; ++level) {
    if (levelTransport_[level] == nullptr) continue;
    if (!text.empty()) text += ", ";
    text += std::string(kLevelNames[level]) + " " + levelTransport_[level]->describe();
  }
  return text;
}

const std::string& CommunicatorImpl::transportSpecFor(int peer) const {
  return levelSpec_[levelOf(topology_.link(rank_, peer))];
}

Status CommunicatorImpl::buildHierarchy() {
  const int nodes = topology_.numNodes();
  if (nodes <= 1 || nodes == size_) return okStatus();  // one node, or one rank per node
  // Both splits are collective over this communicator; every rank makes them in this order.
  auto local = split(topology_.nodeOf(rank_), rank_);
  if (!local.ok()) return local.status().withContext("creating the node-local communicator");
  auto cross = split(topology_.localRank(rank_), rank_);
  if (!cross.ok()) return cross.status().withContext("creating the cross-node communicator");
  localComm_ = std::move(local).value();
  crossComm_ = std::move(cross).value();
  localSub_ = std::make_unique<SubCommAdapter>(localComm_.get());
  crossSub_ = std::make_unique<SubCommAdapter>(crossComm_.get());
  bool uniform = true;
  for (int node = 0; node < nodes; ++node) {
    uniform = uniform && topology_.ranksOfNode(node).size() == topology_.ranksOfNode(0).size();
  }
  hierarchy_.numNodes = nodes;
  hierarchy_.worldSize = size_;
  hierarchy_.uniform = uniform;
  hierarchy_.cross = crossSub_.get();
  hierarchy_.local = localSub_.get();  // last: a non-null local means the hierarchy is ready
  if (selector_ != nullptr) selector_->forgetChoices();  // hier can run now
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

size_t CommunicatorImpl::choosePipelineChunk() const {
  if (config_.chunkBytesExplicit) return config_.chunkBytes;
  // A ring across nodes runs at the pace of its inter-node links, so their transport's wish
  // decides (OFI's shm provider wants no pipeline on one host; a tcp link behind it still needs
  // one); with no peer on another node, the intra-node transport's.
  const Transport* t = levelTransport_[1] != nullptr ? levelTransport_[1] : levelTransport_[0];
  return std::max(config_.chunkBytes, t != nullptr ? t->pipelineChunkBytes() : 0);
}

CommunicatorImpl::~CommunicatorImpl() {
  engine_.reset();  // runs what is queued, then stops
  if (context_ != nullptr && size_ > 1 && !aborted_.load()) {
    // Goodbye barrier: no rank tears down its endpoints while a peer may still be talking to
    // it. Bounded, so a dead peer delays teardown by at most kGoodbyeTimeout.
    CollectiveRequest bye;
    bye.kind = CollectiveKind::kBarrier;
    context_->begin(sequence_++, "goodbye barrier",
                    std::min<std::chrono::milliseconds>(config_.timeout, kGoodbyeTimeout), spin_,
                    TagSpace::kTeardown);
    for (auto& algo : algorithms_) {
      if (algo->collective() != CollectiveKind::kBarrier) continue;
      Status s = algo->run(bye, *context_);
      if (!s.ok()) PLEXUS_LOG(kInfo, "teardown: %s", s.toString().c_str());
      if (s.ok()) removeRecords();
      break;
    }
  }
  // Every rank of a sub-communicator destroys them in the same order (their goodbye barriers).
  hierarchy_ = Hierarchy();
  if (selector_ != nullptr) selector_->forgetChoices();
  localSub_.reset();
  crossSub_.reset();
  localComm_.reset();
  crossComm_.reset();
  context_.reset();
  shared_ = SharedRegion();
  mailboxes_.reset();
  shmRegion_.reset();
  connections_.clear();
  levelTransport_[0] = levelTransport_[1] = nullptr;
  transports_.clear();
  store_.reset();
  storeServer_.reset();
}

Status CommunicatorImpl::publish(const std::string& key, const std::vector<uint8_t>& value) {
  PLEXUS_TRY(store_->client->set(key, value));
  publishedKeys_.push_back(key);
  return okStatus();
}

void CommunicatorImpl::removeRecords() {
  if (store_ == nullptr) return;
  std::vector<std::string> keys;
  // A world communicator's records live as long as its store (the launcher's or its own).
  if (splitChild_) keys = publishedKeys_;
  if (!lastSplitRecord_.empty()) keys.push_back(lastSplitRecord_);
  std::lock_guard<std::mutex> lock(store_->mu);
  for (const std::string& key : keys) {
    Status s = store_->client->erase(key);
    if (s.ok()) continue;
    PLEXUS_LOG(kTrace, "teardown: %s", s.toString().c_str());
    return;  // the store is gone or broken: the rest would fail alike
  }
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
  for (const auto& transport : transports_) {
    if (!transport->supportsMemory(req.memory)) {
      return unimplemented(where(std::string("transport ") + transport->name() + " cannot move " +
                                 (req.memory == MemoryKind::kCuda ? "CUDA" : "host") +
                                 " memory in this build"));
    }
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
    // Built only for an error: per transfer on every call it was ~5% of a 2-rank 8 B exchange.
    auto what = [&] {
      return std::string(t.isSend ? "send to" : "recv from") + " peer " + std::to_string(t.peer) +
             " on rank " + std::to_string(rank_) + ": ";
    };
    if (t.peer < 0 || t.peer >= size_) {
      return invalidArgument(what() + "peer is outside [0, " + std::to_string(size_) + ")");
    }
    if (!isValidDataType(t.type)) return invalidArgument(what() + "unknown data type");
    if (t.count > SIZE_MAX / 4 / dataTypeSize(t.type)) {
      return invalidArgument(what() + "count " + std::to_string(t.count) + " is too large");
    }
    if (t.count > 0 && t.buffer == nullptr) return invalidArgument(what() + "buffer is null");
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
  // Point-to-point groups involve only some ranks, so they cannot use up a number of the
  // collective sequence that every rank must agree on: they are numbered apart (their tags
  // come from per-pair ordinals, in a tag space of their own).
  const bool p2p = req.kind == CollectiveKind::kSendRecv;
  const uint64_t seq = p2p ? p2pSequence_++ : sequence_++;
  context_->begin(seq, collectiveName(req.kind), config_.timeout, spin_,
                  p2p ? TagSpace::kPointToPoint : TagSpace::kCollective);
  flight_.begin(seq, req.kind, req.bytes(), algorithm->name(), coarseNow());
  PLEXUS_LOG(kTrace, "%s #%llu: %zu x %s with %s", collectiveName(req.kind),
             static_cast<unsigned long long>(seq), req.count, dataTypeName(req.type),
             algorithm->name());
  Status s = algorithm->run(req, *context_);
  flight_.end(seq, s);
  if (s.ok()) return s;
  if (s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kUnavailable) {
    s = Status(s.code(), s.message() + deadPeersOnThisHost());
  }
  PLEXUS_LOG(kWarn, "%s", s.toString().c_str());
  {
    std::lock_guard<std::mutex> lock(errorMu_);
    if (firstError_.ok()) firstError_ = s;
  }
  if (s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kUnavailable) {
    // Every rank numbers its collectives alike: the rank whose last number is lowest is the
    // one the others wait for.
    PLEXUS_LOG(kWarn,
               "flight recorder of communicator %s, rank %d (last operations, oldest first):",
               prefix_.c_str(), rank_);
    const std::string dump = flight_.dump();
    for (size_t at = 0, nl; at < dump.size(); at = nl + 1) {  // a line each: logs cap lines
      nl = dump.find('\n', at);
      if (nl == std::string::npos) nl = dump.size();
      PLEXUS_LOG(kWarn, "%s", dump.substr(at, nl - at).c_str());
    }
  }
  return s;
}

namespace {

// True when `pid` is gone or a zombie (exited, not yet reaped by its parent: a launcher that
// reaps late, or a shell's background job, leaves one for a while).
bool processHasExited(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t comm = line.rfind(')');  // "pid (comm) S ...": comm may hold spaces and ')'
  return comm != std::string::npos && comm + 2 < line.size() && line[comm + 2] == 'Z';
}

}  // namespace

std::string CommunicatorImpl::deadPeersOnThisHost() const {
  // A rank far from a dead one times out waiting for a live neighbour that waits in turn; the
  // process table names the dead one directly, for every rank of its host.
  std::string dead;
  int count = 0;
  for (int p = 0; p < size_; ++p) {
    if (p == rank_ || !topology_.sameHost(rank_, p)) continue;
    const auto pid = static_cast<pid_t>(topology_.host(p).pid);
    if (pid <= 0 || !processHasExited(pid)) continue;
    dead += std::string(count++ == 0 ? "" : ", ") + "rank " + context_->who(p) + " (pid " +
            std::to_string(pid) + ")";
  }
  if (count == 0) return dead;
  return (count == 1 ? "; on this host, the process of " : "; on this host, the processes of ") +
         dead + (count == 1 ? " has exited" : " have exited");
}

void CommunicatorImpl::abort() {
  if (aborted_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(errorMu_);
    if (firstError_.ok()) {
      firstError_ =
          aborted("communicator " + prefix_ + " on rank " + std::to_string(rank_) + " was aborted");
    }
  }
  if (localComm_ != nullptr) localComm_->abort();
  if (crossComm_ != nullptr) crossComm_->abort();
}

Status CommunicatorImpl::asyncError() const {
  std::lock_guard<std::mutex> lock(errorMu_);
  return firstError_;
}

Status CommunicatorImpl::run(const CollectiveRequest& req, std::string_view algorithm) {
  PLEXUS_TRY(validate(req));
  auto algo = selector_->select(req, algorithm);
  PLEXUS_TRY(algo.status());
  Algorithm* chosen = *algo;
  return engine_->runBlocking([this, &req, chosen] { return execute(req, chosen); });
}

StatusOr<Work> CommunicatorImpl::runAsync(const CollectiveRequest& req,
                                          std::string_view algorithm) {
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
  std::unique_lock<std::mutex> lock(store_->mu);
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
  // Every rank has written this split's record, so all have read the previous split's.
  if (!lastSplitRecord_.empty()) {
    Status erased = store.erase(lastSplitRecord_);
    if (!erased.ok()) PLEXUS_LOG(kInfo, "%s: %s", what.c_str(), erased.toString().c_str());
  }
  lastSplitRecord_ = base + std::to_string(rank_);
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
  child->splitChild_ = true;
  child->ranksOnHost_ = ranksOnHost_;
  for (size_t i = 0; i < members.size(); ++i)
    child->worldRanks_[i] = worldRanks_[members[i].second];
  child->store_ = store_;
  Status s = child->connectPeers();
  lock.unlock();
  if (s.ok()) s = child->buildHierarchy();
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
