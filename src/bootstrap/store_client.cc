// StoreClient: one connection, one request in flight. Every wait is bounded: connect retries
// until its timeout, get() waits until the caller's timeout, set() and add() until
// kStoreRequestTimeout. A get the client gives up on is cancelled on the server, and a late
// answer to it is recognised by its request id and skipped.
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "src/bootstrap/socket.h"
#include "src/bootstrap/store.h"
#include "src/bootstrap/store_protocol.h"

namespace plexus::bootstrap {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Once a frame has started to arrive, the rest is on its way: allow this long for it.
constexpr auto kFrameTimeout = 30s;
constexpr auto kFirstRetryDelay = 10ms;
constexpr auto kMaxRetryDelay = 200ms;

// Waits until fd is readable (or closed) without consuming anything, so that a timeout leaves
// the stream in sync.
Status waitReadable(int fd, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, pollTimeoutMs(deadline));
    if (n > 0) return okStatus();
    if (n == 0 && Clock::now() >= deadline) return deadlineExceeded("no answer");
    if (n < 0 && errno != EINTR) return internalError(std::string("poll: ") + std::strerror(errno));
  }
}

// Reads one whole frame into `buffer` (after waitReadable said one is coming).
StatusOr<wire::Frame> readFrame(int fd, std::vector<uint8_t>& buffer) {
  const Clock::time_point deadline = Clock::now() + kFrameTimeout;
  buffer.resize(wire::kHeaderBytes);
  PLEXUS_TRY(recvAll(fd, buffer, deadline));
  wire::ParseResult r = wire::parseFrame(buffer, wire::kMaxPayloadBytes);
  if (r.state == wire::ParseResult::State::kMalformed) return invalidArgument(r.error);
  if (r.state == wire::ParseResult::State::kNeedMore) {
    buffer.resize(r.frameBytes);
    PLEXUS_TRY(recvAll(fd, std::span<uint8_t>(buffer).subspan(wire::kHeaderBytes), deadline));
    r = wire::parseFrame(buffer, wire::kMaxPayloadBytes);
  }
  if (r.state != wire::ParseResult::State::kFrame) return internalError("incomplete frame");
  return r.frame;
}

// Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict) on "'" + std::string.
std::string quoted(const std::string& key) {
  std::string out = "'";
  out += wire::printable(key);
  out += '\'';
  return out;
}

class Client final : public StoreClient {
 public:
  Client(UniqueFd fd, std::string where, int rank)
      : fd_(std::move(fd)), where_(std::move(where)), rank_(rank) {}

  Status set(const std::string& key, const std::vector<uint8_t>& value) override {
    PLEXUS_TRY(checkKey(key));
    if (value.size() > kMaxValueBytes) {
      return invalidArgument("store set of key " + quoted(key) + ": value of " +
                             std::to_string(value.size()) + " bytes exceeds the limit of " +
                             std::to_string(kMaxValueBytes));
    }
    uint32_t id = nextId();
    std::vector<uint8_t> request;
    wire::appendRequest(request, wire::FrameType::kSet, id, key, value);
    StatusOr<wire::Reply> reply = roundTrip(request, id, Clock::now() + kStoreRequestTimeout);
    if (!reply.ok()) return reply.status().withContext("store set of key " + quoted(key));
    return expect(*reply, wire::FrameType::kOk, "set of key " + quoted(key));
  }

  StatusOr<std::vector<uint8_t>> get(const std::string& key, milliseconds timeout) override {
    PLEXUS_TRY(checkKey(key));
    uint32_t id = nextId();
    std::vector<uint8_t> request;
    wire::appendRequest(request, wire::FrameType::kGet, id, key);
    StatusOr<wire::Reply> reply = roundTrip(request, id, Clock::now() + timeout);
    if (!reply.ok() && reply.status().code() == StatusCode::kDeadlineExceeded && !broken_) {
      // Tell the server to stop holding the get; its answer, if already sent, is skipped later.
      std::vector<uint8_t> cancel;
      wire::appendIdOnly(cancel, wire::FrameType::kCancel, id);
      Status sent = sendAll(fd_.get(), cancel, Clock::now() + kFrameTimeout);
      if (!sent.ok()) broken_ = true;
      return deadlineExceeded("store get of key " + quoted(key) + " from " + where_ +
                              " timed out after " + std::to_string(timeout.count()) +
                              " ms: no rank set it (did every rank start?)");
    }
    if (!reply.ok()) return reply.status().withContext("store get of key " + quoted(key));
    PLEXUS_TRY(expect(*reply, wire::FrameType::kValue, "get of key " + quoted(key)));
    return std::vector<uint8_t>(reply->value.begin(), reply->value.end());
  }

  Status erase(const std::string& key) override {
    PLEXUS_TRY(checkKey(key));
    uint32_t id = nextId();
    std::vector<uint8_t> request;
    wire::appendRequest(request, wire::FrameType::kErase, id, key);
    StatusOr<wire::Reply> reply = roundTrip(request, id, Clock::now() + kStoreRequestTimeout);
    if (!reply.ok()) return reply.status().withContext("store erase of key " + quoted(key));
    return expect(*reply, wire::FrameType::kOk, "erase of key " + quoted(key));
  }

  StatusOr<int64_t> add(const std::string& key, int64_t delta) override {
    PLEXUS_TRY(checkKey(key));
    uint32_t id = nextId();
    std::vector<uint8_t> request;
    wire::appendAdd(request, id, key, delta);
    StatusOr<wire::Reply> reply = roundTrip(request, id, Clock::now() + kStoreRequestTimeout);
    if (!reply.ok()) return reply.status().withContext("store add to key " + quoted(key));
    PLEXUS_TRY(expect(*reply, wire::FrameType::kCount, "add to key " + quoted(key)));
    return reply->count;
  }

 private:
  uint32_t nextId() {
    if (++lastId_ == 0) lastId_ = 1;  // 0 belongs to the hello
    return lastId_;
  }

  Status checkKey(const std::string& key) const {
    if (key.size() > kMaxKeyBytes) {
      return invalidArgument("store key of " + std::to_string(key.size()) +
                             " bytes exceeds the limit of " + std::to_string(kMaxKeyBytes));
    }
    return okStatus();
  }

  // An error reply becomes its Status; any other unexpected type is a protocol error.
  Status expect(const wire::Reply& reply, wire::FrameType type, const std::string& what) const {
    if (reply.type == wire::FrameType::kError) {
      return reply.error.withContext("store " + what + " (rank " + std::to_string(rank_) + ")");
    }
    if (reply.type != type) {
      return internalError("store " + what + ": answered with a " +
                           wire::frameTypeName(static_cast<uint16_t>(reply.type)) + " frame");
    }
    return okStatus();
  }

  // Sends a request and reads replies until the one with `id`, skipping the late answers of
  // cancelled gets. Connection failures leave the client broken: later calls fail at once.
  StatusOr<wire::Reply> roundTrip(const std::vector<uint8_t>& request, uint32_t id,
                                  Clock::time_point deadline) {
    if (broken_) return unavailable("connection to the store at " + where_ + " was lost earlier");
    Status sent = sendAll(fd_.get(), request, std::max(deadline, Clock::now() + kFrameTimeout));
    if (!sent.ok()) return fail(sent);
    while (true) {
      Status ready = waitReadable(fd_.get(), deadline);
      if (!ready.ok()) return ready.code() == StatusCode::kDeadlineExceeded ? ready : fail(ready);
      StatusOr<wire::Frame> frame = readFrame(fd_.get(), buffer_);
      if (!frame.ok()) return fail(frame.status());
      StatusOr<wire::Reply> reply = wire::decodeReply(*frame);
      if (!reply.ok()) return fail(reply.status());
      if (reply->id == id) return reply;
    }
  }

  Status fail(const Status& status) {
    broken_ = true;
    StatusCode code = status.code() == StatusCode::kInvalidArgument ? StatusCode::kInternal
                                                                    : StatusCode::kUnavailable;
    return Status(code, "store at " + where_ + ": " + status.message());
  }

  UniqueFd fd_;
  const std::string where_;
  const int rank_;
  uint32_t lastId_ = 0;
  bool broken_ = false;
  std::vector<uint8_t> buffer_;  // the last frame read; replies view into it
};

// One attempt to connect and say hello. Unavailable means "try again"; anything else is final.
StatusOr<UniqueFd> tryHello(const std::string& host, uint16_t port,
                            const std::vector<uint8_t>& hello, Clock::time_point deadline) {
  StatusOr<sockaddr_in> address = resolveIpv4(host, port);
  if (!address.ok()) return address.status();
  StatusOr<UniqueFd> fd = connectTcp(*address, deadline);
  if (!fd.ok()) return fd.status();
  PLEXUS_TRY(sendAll(fd->get(), hello, deadline));
  PLEXUS_TRY(waitReadable(fd->get(), deadline));
  std::vector<uint8_t> buffer;
  StatusOr<wire::Frame> frame = readFrame(fd->get(), buffer);
  if (!frame.ok()) return frame.status();
  StatusOr<wire::Reply> reply = wire::decodeReply(*frame);
  if (!reply.ok()) return invalidArgument("not a Plexus store: " + reply.status().message());
  if (reply->type == wire::FrameType::kError) return reply->error;
  if (reply->type != wire::FrameType::kOk || reply->id != 0) {
    return invalidArgument("not a Plexus store: it answered the hello with a " +
                           wire::frameTypeName(static_cast<uint16_t>(reply->type)));
  }
  return fd;
}

}  // namespace

StatusOr<std::unique_ptr<StoreClient>> StoreClient::connect(const std::string& host, uint16_t port,
                                                            const Secret& secret, int rank,
                                                            int worldSize, milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + timeout;
  std::vector<uint8_t> hello;
  wire::appendHello(hello, wire::Hello{secret, rank, worldSize});
  auto delay = std::chrono::duration_cast<Clock::duration>(kFirstRetryDelay);
  Status last;
  while (true) {
    StatusOr<UniqueFd> fd = tryHello(host, port, hello, deadline);
    if (fd.ok()) {
      std::unique_ptr<StoreClient> client = std::make_unique<Client>(std::move(*fd), where, rank);
      return client;
    }
    last = fd.status();
    if (last.code() != StatusCode::kUnavailable && last.code() != StatusCode::kDeadlineExceeded) {
      return last.withContext("rank " + std::to_string(rank) + " cannot join the store at " +
                              where);
    }
    // Refused, reset or closed: the server may not be up yet (or is between restarts).
    const Clock::duration left = deadline - Clock::now();
    if (last.code() == StatusCode::kDeadlineExceeded || left <= Clock::duration::zero()) break;
    std::this_thread::sleep_for(std::min(delay, left));
    delay = std::min<Clock::duration>(delay * 2, kMaxRetryDelay);
  }
  auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  return deadlineExceeded("no store answered at " + where + " within " +
                          std::to_string(timeout.count()) + " ms (waited " +
                          std::to_string(waited) + " ms; last error: " + last.message() + ")");
}

}  // namespace plexus::bootstrap
