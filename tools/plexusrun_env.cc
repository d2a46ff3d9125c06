#include "tools/plexusrun_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "src/unique_fd.h"

namespace plexus::run {

namespace {

constexpr size_t kSecretBytes = 32;  // 64 hex characters
constexpr size_t kJobIdBytes = 8;    // 16 hex characters

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

StatusOr<std::string> randomHex(size_t numBytes) {
  std::vector<unsigned char> bytes(numBytes);
  size_t filled = 0;
  while (filled < numBytes) {
    // Blocks only until the kernel's pool is first initialised, which is long past at boot.
    ssize_t n = ::getrandom(bytes.data() + filled, numBytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return internalError(errnoText("getrandom"));
    }
    filled += static_cast<size_t>(n);
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * numBytes);
  for (unsigned char b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

StatusOr<uint16_t> findFreePort() {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return internalError(errnoText("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return internalError(errnoText("bind 127.0.0.1:0 for MASTER_PORT"));
  }
  socklen_t len = sizeof(addr);
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return internalError(errnoText("getsockname"));
  }
  // Never listened on, so closing leaves no TIME_WAIT and rank 0 can bind the port at once.
  return ntohs(addr.sin_port);
}

}  // namespace

StatusOr<JobIdentity> makeJobIdentity() {
  JobIdentity identity;
  StatusOr<uint16_t> port = findFreePort();
  if (!port.ok()) return port.status();
  identity.masterPort = *port;
  StatusOr<std::string> secret = randomHex(kSecretBytes);
  if (!secret.ok()) return secret.status();
  identity.secret = std::move(*secret);
  StatusOr<std::string> jobId = randomHex(kJobIdBytes);
  if (!jobId.ok()) return jobId.status();
  identity.jobId = std::move(*jobId);
  return identity;
}

std::vector<std::pair<std::string, std::string>> rankVariables(const RankPlacement& placement,
                                                               const JobIdentity& identity) {
  return {
      {"RANK", std::to_string(placement.rank)},
      {"WORLD_SIZE", std::to_string(placement.worldSize)},
      {"LOCAL_RANK", std::to_string(placement.localRank)},
      {"LOCAL_WORLD_SIZE", std::to_string(placement.localWorldSize)},
      {"GROUP_RANK", std::to_string(placement.node)},
      {"GROUP_WORLD_SIZE", std::to_string(placement.numNodes)},
      {"MASTER_ADDR", "127.0.0.1"},
      {"MASTER_PORT", std::to_string(identity.masterPort)},
      {"PLEXUS_SECRET", identity.secret},
      {"PLEXUS_NODE_ID", "node" + std::to_string(placement.node)},
      {"PLEXUS_JOB_ID", identity.jobId},
  };
}

// Variables plexusrun removes from the ranks' environment: each would override the store
// address plexusrun chose (bootstrap prefers them to MASTER_*), so a value left over in the
// user's shell could point the job at a foreign store.
constexpr std::string_view kDropped[] = {"PLEXUS_STORE_ADDR", "PLEXUS_STORE_PORT",
                                         "PLEXUS_STORE_HOSTED"};

std::vector<std::string> mergeEnvironment(
    char** base, const std::vector<std::pair<std::string, std::string>>& variables) {
  auto owned = [&](std::string_view entry) {
    std::string_view name = entry.substr(0, entry.find('='));
    return std::any_of(variables.begin(), variables.end(),
                       [&](const auto& var) { return var.first == name; }) ||
           std::find(std::begin(kDropped), std::end(kDropped), name) != std::end(kDropped);
  };
  std::vector<std::string> merged;
  for (char** entry = base; entry != nullptr && *entry != nullptr; ++entry) {
    if (!owned(*entry)) merged.emplace_back(*entry);
  }
  for (const auto& [name, value] : variables) merged.push_back(name + "=" + value);
  return merged;
}

}  // namespace plexus::run
