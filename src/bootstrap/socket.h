// Small POSIX TCP helpers for the bootstrap store: an owning fd, IPv4 listen/connect, and
// send/receive loops bounded by a deadline. Every socket made here is non-blocking and CLOEXEC,
// and every wait is a poll() with a timeout, so nothing in bootstrap can block forever.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "plexus/status.h"
#include "src/unique_fd.h"

namespace plexus::bootstrap {

using Clock = std::chrono::steady_clock;

using ::plexus::UniqueFd;

/// Milliseconds left until `deadline` for poll(): rounded up, 0 when past, capped to int.
int pollTimeoutMs(Clock::time_point deadline);

/// "a.b.c.d:port" of an IPv4 socket address.
std::string formatAddress(const sockaddr_in& address);
/// The remote address of a connected socket as "a.b.c.d:port", or "unknown peer".
std::string peerAddress(int fd);

/// Parses a dotted IPv4 address (no host names, no wildcard unless "0.0.0.0" is written).
StatusOr<sockaddr_in> parseIpv4(const std::string& address, uint16_t port);
/// Resolves `host` (dotted IPv4 or a host name) to its first IPv4 address. An unknown name is
/// InvalidArgument; a temporary resolver failure is Unavailable (worth retrying).
StatusOr<sockaddr_in> resolveIpv4(const std::string& host, uint16_t port);

/// A non-blocking CLOEXEC listening socket bound to `address` (SO_REUSEADDR so a restarted job
/// can rebind a port left in TIME_WAIT).
StatusOr<UniqueFd> listenTcp(const sockaddr_in& address, int backlog);
/// The local port a socket is bound to.
StatusOr<uint16_t> localPort(int fd);
/// Disables Nagle: store frames are small request/response pairs where latency matters.
void setNoDelay(int fd);

/// Starts a non-blocking connect and waits for it until `deadline`. Refused or unreachable is
/// Unavailable (the server may not be up yet: the caller retries); running past the deadline is
/// DeadlineExceeded. The returned socket is non-blocking, CLOEXEC, TCP_NODELAY.
StatusOr<UniqueFd> connectTcp(const sockaddr_in& address, Clock::time_point deadline);

/// Sends all of `bytes`, waiting for buffer space until `deadline`. A closed or reset peer is
/// Unavailable; the deadline is DeadlineExceeded. Never raises SIGPIPE.
Status sendAll(int fd, std::span<const uint8_t> bytes, Clock::time_point deadline);
/// Receives exactly `bytes.size()` bytes, waiting until `deadline`. End of stream or a reset is
/// Unavailable; the deadline is DeadlineExceeded.
Status recvAll(int fd, std::span<uint8_t> bytes, Clock::time_point deadline);

}  // namespace plexus::bootstrap
