// StoreServer: one background thread polls the listening socket, a wake-up eventfd and every
// connection. Sockets are non-blocking; each connection has bounded input and output buffers,
// so a slow or hostile peer costs memory and time only in proportion to the caps below and never
// stalls the others. A get for an absent key is parked and answered when some rank sets it.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>
#include <unordered_map>

#include "src/bootstrap/socket.h"
#include "src/bootstrap/store.h"
#include "src/bootstrap/store_protocol.h"
#include "src/bootstrap/store_table.h"
#include "src/log.h"

namespace plexus::bootstrap {
namespace {

using namespace std::chrono_literals;

constexpr int kBacklog = 256;
// Connections that have not said hello yet; more are refused so a flood cannot exhaust fds.
constexpr size_t kMaxPendingHellos = 128;
constexpr size_t kReadChunk = 64 << 10;
// Bytes read from one connection per poll round, so a fast sender cannot starve the others.
constexpr size_t kReadBudget = 1 << 20;
// A peer that does not read its replies stops being read from once this much is queued for it.
constexpr size_t kMaxQueuedOutput = 32 << 20;
// How long a rejected peer gets to read its error frame before the socket is closed.
constexpr auto kLingerTime = 1s;
// Accepting pauses this long when the process is out of fds, instead of spinning on the listener.
constexpr auto kAcceptPause = 100ms;

struct Connection {
  uint64_t id = 0;
  UniqueFd fd;
  std::string peer;
  bool authenticated = false;
  int rank = -1;
  bool closing = false;  // an error reply is queued: flush it, then close
  bool dead = false;     // removed after this poll round
  Clock::time_point deadline = Clock::time_point::max();  // hello or linger deadline
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  size_t outSent = 0;

  size_t queuedOutput() const { return out.size() - outSent; }
};

class Server final : public StoreServer {
 public:
  Server(UniqueFd listener, UniqueFd wake, std::string address, uint16_t port, const Secret& secret,
         int worldSize, const StoreServerOptions& options)
      : listener_(std::move(listener)),
        wake_(std::move(wake)),
        address_(std::move(address)),
        port_(port),
        name_(address_ + ":" + std::to_string(port)),
        secret_(secret),
        worldSize_(worldSize),
        options_(options) {
    thread_ = std::thread([this] { serve(); });
  }

  ~Server() override {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
    (void)ignored;
    thread_.join();
  }

  uint16_t port() const override { return port_; }
  const std::string& address() const override { return address_; }
  uint64_t rejectedConnections() const override { return rejected_.load(); }

 private:
  void serve();
  void acceptAll();
  void onReadable(Connection& c);
  void processInput(Connection& c);
  void flush(Connection& c);
  void handleHello(Connection& c, const wire::Frame& frame);
  void handleRequest(Connection& c, const wire::Request& request);
  void answerWoken(const std::string& key, const std::vector<StoreTable::Waiter>& woken);
  void drop(Connection& c, const std::string& reason);
  void reject(Connection& c, const std::string& reason);
  void release(Connection& c);

  UniqueFd listener_;
  UniqueFd wake_;
  const std::string address_;
  const uint16_t port_;
  const std::string name_;  // "address:port" for log lines
  const Secret secret_;
  const int worldSize_;
  const StoreServerOptions options_;
  std::atomic<uint64_t> rejected_{0};

  // Owned by the serving thread.
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  uint64_t nextId_ = 1;
  size_t pendingHellos_ = 0;
  Clock::time_point acceptPausedUntil_{};
  StoreTable table_;
  std::unordered_map<int, uint64_t> rankConnections_;

  std::thread thread_;  // started in the constructor body, once every member is built
};

// Constant-time comparison: how long a wrong secret takes to reject says nothing about how much
// of it was right.
bool sameSecret(const Secret& a, const Secret& b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// One poll round: expire deadlines and build the poll set (fds[0] the wake-up eventfd, fds[1] the
// listener, then one per connection), erase connections that died in the previous round, poll,
// then serve what is ready. Connections are only marked dead while a round runs and erased at
// the start of the next, so no handler ever holds a reference to a destroyed connection;
// connection ids are never reused, so a stale id in a parked get can only miss.
void Server::serve() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;  // connection id of fds[i + 2]
  while (true) {
    Clock::time_point now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    fds.assign({{wake_.get(), POLLIN, 0}, {listener_.get(), 0, 0}});
    if (now >= acceptPausedUntil_) {
      fds[1].events = POLLIN;
    } else {
      next = acceptPausedUntil_;
    }
    ids.clear();
    pendingHellos_ = 0;
    for (auto& [id, c] : connections_) {
      if (c->deadline <= now) {
        if (c->closing) {
          c->dead = true;
        } else {
          drop(*c, "sent no hello within " + std::to_string(options_.helloTimeout.count()) + " ms");
        }
      }
      if (c->dead) continue;
      if (!c->authenticated) ++pendingHellos_;
      next = std::min(next, c->deadline);
      short events = c->queuedOutput() > 0 ? POLLOUT : 0;
      if (c->closing || c->queuedOutput() <= kMaxQueuedOutput) events |= POLLIN;
      fds.push_back({c->fd.get(), events, 0});
      ids.push_back(id);
    }
    std::erase_if(connections_, [this](auto& entry) {
      if (entry.second->dead) release(*entry.second);
      return entry.second->dead;
    });

    int timeout = next == Clock::time_point::max() ? -1 : pollTimeoutMs(next);
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      PLEXUS_LOG(kError, "store %s: poll failed (%s); the store stops serving", name_.c_str(),
                 std::strerror(errno));
      return;
    }
    if (n <= 0) continue;
    if (fds[0].revents != 0) return;  // the destructor asks us to stop; connections close then
    if (fds[1].revents != 0) acceptAll();
    for (size_t i = 0; i < ids.size(); ++i) {
      short revents = fds[i + 2].revents;
      auto it = connections_.find(ids[i]);
      if (revents == 0 || it == connections_.end() || it->second->dead) continue;
      Connection& c = *it->second;
      if (revents & POLLOUT) {
        flush(c);
        // Frames held back while the peer was not reading its replies can go on now.
        if (!c.in.empty()) processInput(c);
      }
      if (!c.dead && (revents & (POLLIN | POLLHUP | POLLERR))) onReadable(c);
    }
  }
}

void Server::acceptAll() {
  while (true) {
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        PLEXUS_LOG(kWarn, "store %s: accept failed (%s); pausing new connections", name_.c_str(),
                   std::strerror(errno));
        acceptPausedUntil_ = Clock::now() + kAcceptPause;
      }
      return;
    }
    auto c = std::make_unique<Connection>();
    c->fd.reset(fd);
    c->peer = formatAddress(address);
    if (pendingHellos_ >= kMaxPendingHellos) {
      rejected_.fetch_add(1);
      PLEXUS_LOG(kWarn,
                 "store %s: dropped connection from %s: %zu connections already wait to say "
                 "hello",
                 name_.c_str(), c->peer.c_str(), pendingHellos_);
      continue;
    }
    setNoDelay(fd);
    c->id = nextId_++;
    c->deadline = Clock::now() + options_.helloTimeout;
    ++pendingHellos_;
    connections_.emplace(c->id, std::move(c));
  }
}

void Server::onReadable(Connection& c) {
  size_t budget = kReadBudget;
  while (budget > 0 && !c.dead) {
    // Before the hello, read no more than a hello frame: nothing else is acceptable anyway.
    size_t want = c.authenticated || c.closing
                      ? kReadChunk
                      : wire::kHeaderBytes + wire::kHelloBytes - c.in.size();
    if (want == 0 || (!c.closing && c.queuedOutput() > kMaxQueuedOutput)) return;
    size_t old = c.in.size();
    c.in.resize(old + want);
    ssize_t n = ::recv(c.fd.get(), c.in.data() + old, want, 0);
    int err = errno;
    c.in.resize(n > 0 ? old + static_cast<size_t>(n) : old);
    if (n < 0 && err == EINTR) continue;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (!c.authenticated && !c.closing) {
        drop(c, n == 0 ? "closed the connection without a hello"
                       : std::string("connection failed before its hello: ") + std::strerror(err));
      } else {
        PLEXUS_LOG(kTrace, "store %s: rank %d (%s) disconnected", name_.c_str(), c.rank,
                   c.peer.c_str());
        c.dead = true;
      }
      return;
    }
    budget -= std::min(budget, static_cast<size_t>(n));
    if (c.closing) {
      c.in.clear();  // a rejected peer: read only to see its end of stream
    } else {
      processInput(c);
    }
  }
}

void Server::processInput(Connection& c) {
  if (c.dead || c.closing) return;
  size_t offset = 0;
  while (!c.dead && !c.closing && c.queuedOutput() <= kMaxQueuedOutput) {
    std::span<const uint8_t> bytes = std::span<const uint8_t>(c.in).subspan(offset);
    wire::ParseResult r =
        wire::parseFrame(bytes, c.authenticated ? wire::kMaxPayloadBytes : wire::kHelloBytes);
    if (r.state == wire::ParseResult::State::kNeedMore) break;
    if (r.state == wire::ParseResult::State::kMalformed) {
      drop(c, r.error);
      return;
    }
    offset += r.consumed;
    if (!c.authenticated) {
      handleHello(c, r.frame);
      continue;
    }
    StatusOr<wire::Request> request = wire::decodeRequest(r.frame);
    if (!request.ok()) {
      drop(c, "rank " + std::to_string(c.rank) + ": " + request.status().message());
      return;
    }
    handleRequest(c, *request);
  }
  if (c.dead || c.closing) {
    c.in.clear();  // nothing more from this peer will be served
  } else {
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  flush(c);
}

void Server::flush(Connection& c) {
  while (c.queuedOutput() > 0 && !c.dead) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.outSent, c.queuedOutput(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      PLEXUS_LOG(kTrace, "store %s: lost %s: %s", name_.c_str(), c.peer.c_str(),
                 std::strerror(errno));
      c.dead = true;
      return;
    }
    c.outSent += static_cast<size_t>(n);
  }
  if (c.queuedOutput() == 0) {
    c.out.clear();
    c.outSent = 0;
    // The error reply is out: half-close so the peer reads it and then end of stream, rather
    // than a reset that could destroy it in flight.
    if (c.closing) ::shutdown(c.fd.get(), SHUT_WR);
  } else if (c.outSent > c.out.size() / 2) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.outSent));
    c.outSent = 0;
  }
}

void Server::handleHello(Connection& c, const wire::Frame& frame) {
  StatusOr<wire::Hello> hello = wire::decodeHello(frame);
  if (!hello.ok()) {
    drop(c, hello.status().message());
    return;
  }
  const int rank = hello->rank;
  if (!sameSecret(hello->secret, secret_)) {
    reject(c, "rank " + std::to_string(rank) +
                  " presented the wrong job secret (is PLEXUS_SECRET the same on every rank?)");
    return;
  }
  if (worldSize_ > 0) {
    if (hello->worldSize != worldSize_) {
      reject(c, "rank " + std::to_string(rank) + " says the world has " +
                    std::to_string(hello->worldSize) + " ranks but the store was started for " +
                    std::to_string(worldSize_));
      return;
    }
    if (rank < 0 || rank >= worldSize_) {
      reject(c, "rank " + std::to_string(rank) + " is outside [0, " + std::to_string(worldSize_) +
                    ")");
      return;
    }
    // A previous connection of this rank that already closed does not count (it is released
    // only at the end of the poll round).
    auto other = rankConnections_.find(rank);
    auto holder =
        other == rankConnections_.end() ? connections_.end() : connections_.find(other->second);
    if (holder != connections_.end() && !holder->second->dead) {
      reject(c, "rank " + std::to_string(rank) + " is already connected from " +
                    holder->second->peer + " (two processes with the same rank?)");
      return;
    }
    rankConnections_[rank] = c.id;
  }
  c.authenticated = true;
  c.rank = rank;
  c.deadline = Clock::time_point::max();
  wire::appendIdOnly(c.out, wire::FrameType::kOk, 0);
  PLEXUS_LOG(kTrace, "store %s: rank %d connected from %s", name_.c_str(), rank, c.peer.c_str());
}

void Server::handleRequest(Connection& c, const wire::Request& request) {
  const std::string key(request.key);
  const StoreTable::Waiter self{c.id, request.id};
  switch (request.type) {
    case wire::FrameType::kSet: {
      auto woken =
          table_.set(key, std::vector<uint8_t>(request.value.begin(), request.value.end()));
      if (!woken.ok()) {
        wire::appendError(c.out, request.id, woken.status().code(), woken.status().message());
        return;
      }
      wire::appendIdOnly(c.out, wire::FrameType::kOk, request.id);
      answerWoken(key, *woken);
      return;
    }
    case wire::FrameType::kAdd: {
      std::vector<StoreTable::Waiter> woken;
      StatusOr<int64_t> sum = table_.add(key, request.delta, &woken);
      if (!sum.ok()) {
        wire::appendError(c.out, request.id, sum.status().code(), sum.status().message());
        return;
      }
      wire::appendCount(c.out, request.id, *sum);
      answerWoken(key, woken);
      return;
    }
    case wire::FrameType::kCancel:
      table_.cancel(self);
      return;
    case wire::FrameType::kErase:
      table_.erase(key);
      wire::appendIdOnly(c.out, wire::FrameType::kOk, request.id);
      return;
    default:
      break;  // kGet: decodeRequest returns no other types
  }
  if (const std::vector<uint8_t>* value = table_.find(key)) {
    wire::appendValue(c.out, request.id, *value);
    return;
  }
  Status parked = table_.park(key, self);
  if (!parked.ok()) {
    wire::appendError(c.out, request.id, parked.code(),
                      "rank " + std::to_string(c.rank) + ": " + parked.message());
  }
}

// Answers the gets that a set or add of `key` unparked. Flushing at once keeps latency low for
// ranks blocked in get(); what does not fit in the socket buffer goes out on POLLOUT.
void Server::answerWoken(const std::string& key, const std::vector<StoreTable::Waiter>& woken) {
  const std::vector<uint8_t>* value = table_.find(key);
  for (const StoreTable::Waiter& w : woken) {
    auto it = connections_.find(w.connection);
    if (value == nullptr || it == connections_.end() || it->second->dead) continue;
    wire::appendValue(it->second->out, w.request, *value);
    flush(*it->second);
  }
}

// Drops a peer that broke the protocol: no reply, since it may not even speak it.
void Server::drop(Connection& c, const std::string& reason) {
  if (!c.authenticated) rejected_.fetch_add(1);
  PLEXUS_LOG(kWarn, "store %s: dropped connection from %s: %s", name_.c_str(), c.peer.c_str(),
             reason.c_str());
  c.dead = true;
}

// Rejects a well-formed hello: the peer is one of ours but misconfigured, so tell it why.
void Server::reject(Connection& c, const std::string& reason) {
  rejected_.fetch_add(1);
  PLEXUS_LOG(kWarn, "store %s: rejected connection from %s: %s", name_.c_str(), c.peer.c_str(),
             reason.c_str());
  wire::appendError(c.out, 0, StatusCode::kInvalidArgument, reason);
  c.closing = true;
  c.deadline = Clock::now() + kLingerTime;
}

void Server::release(Connection& c) {
  table_.forgetConnection(c.id);
  auto it = rankConnections_.find(c.rank);
  if (c.authenticated && it != rankConnections_.end() && it->second == c.id) {
    rankConnections_.erase(it);
  }
}

}  // namespace

StatusOr<std::unique_ptr<StoreServer>> StoreServer::start(const std::string& bindAddress,
                                                          uint16_t port, const Secret& secret,
                                                          int worldSize) {
  return start(bindAddress, port, secret, worldSize, StoreServerOptions{});
}

StatusOr<std::unique_ptr<StoreServer>> StoreServer::start(const std::string& bindAddress,
                                                          uint16_t port, const Secret& secret,
                                                          int worldSize,
                                                          const StoreServerOptions& options) {
  if (worldSize < 0) {
    return invalidArgument("store world size must be >= 0, got " + std::to_string(worldSize));
  }
  StatusOr<sockaddr_in> address = parseIpv4(bindAddress, port);
  if (!address.ok()) return address.status().withContext("store bind address");
  StatusOr<UniqueFd> listener = listenTcp(*address, kBacklog);
  if (!listener.ok()) return listener.status().withContext("store");
  StatusOr<uint16_t> bound = localPort(listener->get());
  if (!bound.ok()) return bound.status();
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return internalError(std::string("eventfd: ") + std::strerror(errno));
  std::unique_ptr<StoreServer> server = std::make_unique<Server>(
      std::move(*listener), std::move(wake), bindAddress, *bound, secret, worldSize, options);
  return server;
}

}  // namespace plexus::bootstrap
