// The public Communicator and Work: argument plumbing into CommunicatorImpl. No exception
// crosses this boundary.
#include "plexus/communicator.h"

#include "src/bootstrap/job_store.h"
#include "src/bootstrap/launch_env.h"
#include "src/communicator_impl.h"
#include "src/unique_id_registry.h"

namespace plexus {
namespace {

// Spin before sleeping in Work::wait: catches operations about to finish.
constexpr auto kWorkSpin = std::chrono::microseconds(20);

StatusOr<Config> configFor(const CommOptions& options) {
  auto config = Config::fromEnv(bootstrap::processEnv());
  PLEXUS_TRY(config.status());
  config->apply(options);
  return config;
}

StatusOr<std::unique_ptr<Communicator>> wrap(
    StatusOr<std::unique_ptr<internal::CommunicatorImpl>> impl) {
  PLEXUS_TRY(impl.status());
  return std::make_unique<Communicator>(std::move(impl).value());
}

CollectiveRequest makeRequest(CollectiveKind kind, const void* send, void* recv, size_t count,
                              DataType type, ReduceOp op, int root, const CallOptions& call) {
  CollectiveRequest req;
  req.kind = kind;
  req.type = type;
  req.op = op;
  req.count = count;
  req.send = send;
  req.recv = recv;
  req.root = root;
  req.memory = call.memory;
  req.stream = call.stream;
  return req;
}

}  // namespace

StatusOr<std::unique_ptr<Communicator>> Communicator::createFromEnv(const CommOptions& options) {
  auto config = configFor(options);
  PLEXUS_TRY(config.status());
  auto launch = bootstrap::detectLaunch(bootstrap::processEnv());
  PLEXUS_TRY(launch.status());
  internal::Rendezvous rv;
  rv.host = launch->storeHost;
  rv.port = launch->storePort;
  rv.secret = bootstrap::secretFromString(launch->secret);
  rv.nodeId = launch->nodeId;
  auto server = bootstrap::hostStoreIfRankZero(*launch, config->bindAddress);
  PLEXUS_TRY(server.status());
  rv.server = std::move(server).value();
  return wrap(internal::CommunicatorImpl::create(std::move(rv), launch->rank, launch->size,
                                                 std::move(config).value()));
}

StatusOr<std::unique_ptr<Communicator>> Communicator::create(const UniqueId& id, int rank, int size,
                                                             const CommOptions& options) {
  auto config = configFor(options);
  PLEXUS_TRY(config.status());
  auto rv = internal::decodeUniqueId(id);
  PLEXUS_TRY(rv.status());
  if (rank == 0) rv->server = internal::adoptStoreServer(id);
  if (auto node = bootstrap::processEnv()("PLEXUS_NODE_ID")) rv->nodeId = *node;
  return wrap(internal::CommunicatorImpl::create(std::move(rv).value(), rank, size,
                                                 std::move(config).value()));
}

Communicator::Communicator(std::unique_ptr<internal::CommunicatorImpl> impl)
    : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;

int Communicator::rank() const { return impl_->rank(); }
int Communicator::size() const { return impl_->size(); }
const std::string& Communicator::transportName() const { return impl_->transportName(); }
int Communicator::numNodes() const { return impl_->topology().numNodes(); }
int Communicator::localRank() const { return impl_->topology().localRank(impl_->rank()); }
int Communicator::localSize() const { return impl_->topology().localSize(impl_->rank()); }
void Communicator::abort() { impl_->abort(); }
Status Communicator::asyncError() const { return impl_->asyncError(); }

Status Communicator::allReduce(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                               ReduceOp op, const CallOptions& call) {
  return impl_->run(
      makeRequest(CollectiveKind::kAllReduce, sendbuf, recvbuf, count, type, op, -1, call));
}
StatusOr<Work> Communicator::allReduceAsync(const void* sendbuf, void* recvbuf, size_t count,
                                            DataType type, ReduceOp op, const CallOptions& call) {
  return impl_->runAsync(
      makeRequest(CollectiveKind::kAllReduce, sendbuf, recvbuf, count, type, op, -1, call));
}

Status Communicator::broadcast(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                               int root, const CallOptions& call) {
  return impl_->run(makeRequest(CollectiveKind::kBroadcast, sendbuf, recvbuf, count, type,
                                ReduceOp::kSum, root, call));
}
StatusOr<Work> Communicator::broadcastAsync(const void* sendbuf, void* recvbuf, size_t count,
                                            DataType type, int root, const CallOptions& call) {
  return impl_->runAsync(makeRequest(CollectiveKind::kBroadcast, sendbuf, recvbuf, count, type,
                                     ReduceOp::kSum, root, call));
}

Status Communicator::reduce(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                            ReduceOp op, int root, const CallOptions& call) {
  return impl_->run(
      makeRequest(CollectiveKind::kReduce, sendbuf, recvbuf, count, type, op, root, call));
}
StatusOr<Work> Communicator::reduceAsync(const void* sendbuf, void* recvbuf, size_t count,
                                         DataType type, ReduceOp op, int root,
                                         const CallOptions& call) {
  return impl_->runAsync(
      makeRequest(CollectiveKind::kReduce, sendbuf, recvbuf, count, type, op, root, call));
}

Status Communicator::allGather(const void* sendbuf, void* recvbuf, size_t sendcount, DataType type,
                               const CallOptions& call) {
  return impl_->run(makeRequest(CollectiveKind::kAllGather, sendbuf, recvbuf, sendcount, type,
                                ReduceOp::kSum, -1, call));
}
StatusOr<Work> Communicator::allGatherAsync(const void* sendbuf, void* recvbuf, size_t sendcount,
                                            DataType type, const CallOptions& call) {
  return impl_->runAsync(makeRequest(CollectiveKind::kAllGather, sendbuf, recvbuf, sendcount, type,
                                     ReduceOp::kSum, -1, call));
}

Status Communicator::reduceScatter(const void* sendbuf, void* recvbuf, size_t recvcount,
                                   DataType type, ReduceOp op, const CallOptions& call) {
  return impl_->run(
      makeRequest(CollectiveKind::kReduceScatter, sendbuf, recvbuf, recvcount, type, op, -1, call));
}
StatusOr<Work> Communicator::reduceScatterAsync(const void* sendbuf, void* recvbuf,
                                                size_t recvcount, DataType type, ReduceOp op,
                                                const CallOptions& call) {
  return impl_->runAsync(
      makeRequest(CollectiveKind::kReduceScatter, sendbuf, recvbuf, recvcount, type, op, -1, call));
}

Status Communicator::allToAll(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                              const CallOptions& call) {
  return impl_->run(makeRequest(CollectiveKind::kAllToAll, sendbuf, recvbuf, count, type,
                                ReduceOp::kSum, -1, call));
}
StatusOr<Work> Communicator::allToAllAsync(const void* sendbuf, void* recvbuf, size_t count,
                                           DataType type, const CallOptions& call) {
  return impl_->runAsync(makeRequest(CollectiveKind::kAllToAll, sendbuf, recvbuf, count, type,
                                     ReduceOp::kSum, -1, call));
}

Status Communicator::send(const void* buf, size_t count, DataType type, int peer,
                          const CallOptions& call) {
  return impl_->groupAdd({true, peer, type, count, const_cast<void*>(buf)}, call);
}
Status Communicator::recv(void* buf, size_t count, DataType type, int peer,
                          const CallOptions& call) {
  return impl_->groupAdd({false, peer, type, count, buf}, call);
}
Status Communicator::groupStart() { return impl_->groupStart(); }
Status Communicator::groupEnd() { return impl_->groupEnd(); }
StatusOr<Work> Communicator::groupEndAsync() { return impl_->groupEndAsync(); }

Status Communicator::barrier() {
  return impl_->run(makeRequest(CollectiveKind::kBarrier, nullptr, nullptr, 0, DataType::kUInt8,
                                ReduceOp::kSum, -1, {}));
}
StatusOr<Work> Communicator::barrierAsync() {
  return impl_->runAsync(makeRequest(CollectiveKind::kBarrier, nullptr, nullptr, 0,
                                     DataType::kUInt8, ReduceOp::kSum, -1, {}));
}

StatusOr<std::unique_ptr<Communicator>> Communicator::split(int color, int key) {
  auto child = impl_->split(color, key);
  PLEXUS_TRY(child.status());
  if (*child == nullptr) return std::unique_ptr<Communicator>();
  return std::make_unique<Communicator>(std::move(child).value());
}

Work::Work(std::shared_ptr<internal::WorkState> state) : state_(std::move(state)) {}
Status Work::wait(std::chrono::milliseconds timeout) const {
  return state_->wait(timeout, kWorkSpin);
}
bool Work::test() const { return state_->test(); }
Status Work::error() const { return state_->error(); }

}  // namespace plexus
