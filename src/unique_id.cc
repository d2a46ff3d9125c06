// UniqueId: layout, generation (which starts a store server here) and hex form.
//
// Layout of the 128 bytes: "PLXU" | version (1) | host length | port (u16 LE) | 32-byte secret
// | host text (at most 88 bytes) | zeros.
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>

#include "src/config.h"
#include "src/unique_id_registry.h"

namespace plexus {
namespace {

constexpr uint8_t kMagic[4] = {'P', 'L', 'X', 'U'};
constexpr uint8_t kVersion = 1;
constexpr size_t kSecretAt = 8;
constexpr size_t kHostAt = kSecretAt + 32;
constexpr size_t kMaxHost = UniqueId::kBytes - kHostAt;

// A server generate() started, with the process that started it: a forked child inherits the
// object but not its thread, so only the starting process may adopt it.
struct HostedServer {
  pid_t pid;
  std::unique_ptr<bootstrap::StoreServer> server;
};

std::mutex gServersMu;
std::map<std::array<uint8_t, UniqueId::kBytes>, HostedServer>& servers() {
  // Leaked on purpose: servers outlive static destruction order and die with the process.
  static auto* m = new std::map<std::array<uint8_t, UniqueId::kBytes>, HostedServer>();
  return *m;
}

}  // namespace

StatusOr<UniqueId> UniqueId::generate(const std::string& bindAddress) {
  auto config = Config::fromEnv(bootstrap::processEnv());
  PLEXUS_TRY(config.status());
  std::string host = !bindAddress.empty()           ? bindAddress
                     : !config->bindAddress.empty() ? config->bindAddress
                                                    : "127.0.0.1";
  if (host.size() > kMaxHost) return invalidArgument("bind address '" + host + "' is too long");
  auto secret = bootstrap::randomSecret();
  PLEXUS_TRY(secret.status());
  auto server = bootstrap::StoreServer::start(host, 0, *secret, 0);
  PLEXUS_TRY(server.status());
  UniqueId id;
  std::memcpy(id.bytes.data(), kMagic, 4);
  id.bytes[4] = kVersion;
  id.bytes[5] = static_cast<uint8_t>(host.size());
  uint16_t port = (*server)->port();
  id.bytes[6] = static_cast<uint8_t>(port);
  id.bytes[7] = static_cast<uint8_t>(port >> 8);
  std::memcpy(id.bytes.data() + kSecretAt, secret->data(), 32);
  std::memcpy(id.bytes.data() + kHostAt, host.data(), host.size());
  std::lock_guard<std::mutex> lock(gServersMu);
  servers()[id.bytes] = HostedServer{::getpid(), std::move(server).value()};
  return id;
}

std::string UniqueId::toHex() const {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * kBytes);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

StatusOr<UniqueId> UniqueId::fromHex(const std::string& hex) {
  if (hex.size() != 2 * kBytes) {
    return invalidArgument("a unique id is " + std::to_string(2 * kBytes) + " hex digits, not " +
                           std::to_string(hex.size()));
  }
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  UniqueId id;
  for (size_t i = 0; i < kBytes; ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return invalidArgument("unique id has a non-hex character");
    id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

namespace internal {

StatusOr<Rendezvous> decodeUniqueId(const UniqueId& id) {
  const auto& b = id.bytes;
  if (std::memcmp(b.data(), kMagic, 4) != 0 || b[4] != kVersion || b[5] == 0 || b[5] > kMaxHost) {
    return invalidArgument("not a Plexus unique id (bad magic, version or host length)");
  }
  Rendezvous rv;
  rv.host.assign(reinterpret_cast<const char*>(b.data() + kHostAt), b[5]);
  rv.port = static_cast<uint16_t>(b[6] | b[7] << 8);
  std::memcpy(rv.secret.data(), b.data() + kSecretAt, 32);
  if (rv.port == 0) return invalidArgument("unique id names port 0");
  return rv;
}

std::unique_ptr<bootstrap::StoreServer> adoptStoreServer(const UniqueId& id) {
  std::lock_guard<std::mutex> lock(gServersMu);
  auto it = servers().find(id.bytes);
  if (it == servers().end() || it->second.pid != ::getpid()) return nullptr;
  auto server = std::move(it->second.server);
  servers().erase(it);
  return server;
}

}  // namespace internal
}  // namespace plexus
