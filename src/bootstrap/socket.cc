#include "src/bootstrap/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>

namespace plexus::bootstrap {
namespace {

std::string errnoText(int err) { return std::strerror(err); }

// True for the errors of a peer that went away, as opposed to a local failure.
bool isPeerGone(int err) {
  return err == EPIPE || err == ECONNRESET || err == ECONNABORTED || err == ETIMEDOUT ||
         err == EHOSTUNREACH || err == ENETUNREACH;
}

// Waits for `events` on fd until the deadline: OK when ready (or an error is pending, which the
// following call reports), DeadlineExceeded otherwise.
Status waitFor(int fd, short events, Clock::time_point deadline, const char* what) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, pollTimeoutMs(deadline));
    if (n > 0) return okStatus();
    if (n < 0 && errno != EINTR) return internalError(std::string("poll: ") + errnoText(errno));
    if (n == 0 && Clock::now() >= deadline) {
      return deadlineExceeded(std::string("timed out waiting to ") + what);
    }
  }
}

}  // namespace

int pollTimeoutMs(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

std::string formatAddress(const sockaddr_in& address) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  return std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
}

std::string peerAddress(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      address.sin_family != AF_INET) {
    return "unknown peer";
  }
  return formatAddress(address);
}

StatusOr<sockaddr_in> parseIpv4(const std::string& address, uint16_t port) {
  sockaddr_in result{};
  result.sin_family = AF_INET;
  result.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &result.sin_addr) != 1) {
    return invalidArgument("'" + address + "' is not a dotted IPv4 address");
  }
  return result;
}

StatusOr<sockaddr_in> resolveIpv4(const std::string& host, uint16_t port) {
  // A literal needs no resolver (and no resolver failure can delay it).
  StatusOr<sockaddr_in> literal = parseIpv4(host, port);
  if (literal.ok()) return literal;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  if (rc == EAI_AGAIN) return unavailable("cannot resolve '" + host + "' yet: " + gai_strerror(rc));
  if (rc != 0 || found == nullptr) {
    return invalidArgument("cannot resolve host '" + host +
                           "' to an IPv4 address: " + (rc != 0 ? gai_strerror(rc) : "no address"));
  }
  sockaddr_in result{};
  std::memcpy(&result, found->ai_addr, sizeof(result));
  result.sin_port = htons(port);
  return result;
}

StatusOr<UniqueFd> listenTcp(const sockaddr_in& address, int backlog) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return internalError("socket: " + errnoText(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    std::string message = "cannot bind " + formatAddress(address) + ": " + errnoText(err);
    if (err == EADDRINUSE) return unavailable(message);
    if (err == EADDRNOTAVAIL) return invalidArgument(message + " (not an address of this host)");
    return internalError(message);
  }
  if (::listen(fd.get(), backlog) != 0) {
    return internalError("listen on " + formatAddress(address) + ": " + errnoText(errno));
  }
  return fd;
}

StatusOr<uint16_t> localPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return internalError("getsockname: " + errnoText(errno));
  }
  return static_cast<uint16_t>(ntohs(address.sin_port));
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

StatusOr<UniqueFd> connectTcp(const sockaddr_in& address, Clock::time_point deadline) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return internalError("socket: " + errnoText(errno));
  const std::string where = formatAddress(address);
  // Non-blocking connect, so an unreachable host costs at most the deadline rather than the
  // kernel's SYN retry schedule (minutes); the outcome is read from SO_ERROR once writable.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) {
      return unavailable("connect to " + where + ": " + errnoText(errno));
    }
    PLEXUS_TRY(waitFor(fd.get(), POLLOUT, deadline, ("connect to " + where).c_str()));
    int err = 0;
    socklen_t length = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &length);
    if (err != 0) return unavailable("connect to " + where + ": " + errnoText(err));
  }
  setNoDelay(fd.get());
  return fd;
}

Status sendAll(int fd, std::span<const uint8_t> bytes, Clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes.size()) {
    // MSG_NOSIGNAL: a peer that went away is an Unavailable status, not a SIGPIPE that kills
    // the process.
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      PLEXUS_TRY(waitFor(fd, POLLOUT, deadline, "send"));
      continue;
    }
    int err = n < 0 ? errno : EPIPE;
    if (isPeerGone(err)) return unavailable("connection lost while sending: " + errnoText(err));
    return internalError("send: " + errnoText(err));
  }
  return okStatus();
}

Status recvAll(int fd, std::span<uint8_t> bytes, Clock::time_point deadline) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::recv(fd, bytes.data() + done, bytes.size() - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return unavailable("connection closed by the peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      PLEXUS_TRY(waitFor(fd, POLLIN, deadline, "receive"));
      continue;
    }
    if (isPeerGone(errno)) return unavailable("connection lost: " + errnoText(errno));
    return internalError("recv: " + errnoText(errno));
  }
  return okStatus();
}

}  // namespace plexus::bootstrap
