// The public Communicator and Work: argument plumbing into CommunicatorImpl. No exception
// crosses this boundary.
#include "plexus/communicator.h"

#include <arpa/inet.h>
#include <netdb.h>

#include "src/bootstrap/launch_env.h"
#include "src/communicator_impl.h"
#include "src/unique_id_registry.h"

namespace plexus {
namespace {

// Spin before sleeping in Work::wait: catches operations about to finish.
constexpr auto kWorkSpin = std::chrono::microseconds(20);

// The IPv4 address rank 0 binds the store to when it hosts it for a launcher.
StatusOr<std::string> storeBindAddress(const std::string& configured, const std::string& host) {
  if (!configured.empty()) return configured;
  if (host.empty() || host == "localhost") return std::string("127.0.0.1");
  in_addr addr{};
  if (inet_pton(AF_INET, host.c_str(), &addr) == 1) return host;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
    return invalidArgument("cannot resolve the store host '" + host +
                           "' (MASTER_ADDR); set PLEXUS_BIND_ADDR to this host's address");
  }
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, text, sizeof(text));
  freeaddrinfo(res);
  return std::string(text);
}

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

CollectiveRequest allReduceRequest(const void* send, void* recv, size_t count, DataType type,
                                   ReduceOp op, const CallOptions& call) {
  CollectiveRequest req;
  req.kind = CollectiveKind::kAllReduce;
  req.type = type;
  req.op = op;
  req.count = count;
  req.send = send;
  req.recv = recv;
  req.memory = call.memory;
  req.stream = call.stream;
  return req;
}

CollectiveRequest barrierRequest() {
  CollectiveRequest req;
  req.kind = CollectiveKind::kBarrier;
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
  if (launch->rank == 0 && !launch->storeHostedByLauncher) {
    auto bind = storeBindAddress(config->bindAddress, launch->storeHost);
    PLEXUS_TRY(bind.status());
    auto server = bootstrap::StoreServer::start(*bind, launch->storePort, rv.secret, launch->size);
    if (!server.ok()) {
      return server.status().withContext("rank 0 could not host the rendezvous store on " + *bind +
                                         ":" + std::to_string(launch->storePort) +
                                         " (is MASTER_PORT free?)");
    }
    rv.server = std::move(server).value();
  }
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

Status Communicator::allReduce(const void* sendbuf, void* recvbuf, size_t count, DataType type,
                               ReduceOp op, const CallOptions& call) {
  return impl_->run(allReduceRequest(sendbuf, recvbuf, count, type, op, call));
}

StatusOr<Work> Communicator::allReduceAsync(const void* sendbuf, void* recvbuf, size_t count,
                                            DataType type, ReduceOp op, const CallOptions& call) {
  return impl_->runAsync(allReduceRequest(sendbuf, recvbuf, count, type, op, call));
}

Status Communicator::barrier() { return impl_->run(barrierRequest()); }
StatusOr<Work> Communicator::barrierAsync() { return impl_->runAsync(barrierRequest()); }

Work::Work(std::shared_ptr<internal::WorkState> state) : state_(std::move(state)) {}
Status Work::wait(std::chrono::milliseconds timeout) const {
  return state_->wait(timeout, kWorkSpin);
}
bool Work::test() const { return state_->test(); }
Status Work::error() const { return state_->error(); }

}  // namespace plexus
