#include "src/config.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "src/tuning.h"

namespace plexus {
namespace {

Status badVar(const char* name, const std::string& value, const char* expected) {
  return invalidArgument(std::string(name) + "='" + value + "' is not " + expected);
}

// Reads a positive integer variable; leaves *out alone when unset.
Status readPositive(const bootstrap::EnvLookup& env, const char* name, int64_t maxValue,
                    int64_t* out) {
  auto v = env(name);
  if (!v) return okStatus();
  errno = 0;
  char* end = nullptr;
  long long parsed = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || parsed <= 0 || parsed > maxValue) {
    return badVar(name, *v, "a positive integer in range");
  }
  *out = parsed;
  return okStatus();
}

}  // namespace

bool parseByteSize(const std::string& text, size_t* out) {
  if (text.empty()) return false;
  size_t i = 0;
  unsigned long long value = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (std::numeric_limits<unsigned long long>::max() - 9) / 10) return false;
    value = value * 10 + static_cast<unsigned>(text[i] - '0');
  }
  if (i == 0) return false;
  unsigned shift = 0;
  if (i < text.size()) {
    switch (text[i]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        return false;
    }
    ++i;
    if (i < text.size() && (text[i] == 'b' || text[i] == 'B')) ++i;  // "4MB"
    if (i != text.size()) return false;
  }
  if (shift != 0 && value > (std::numeric_limits<unsigned long long>::max() >> shift)) return false;
  *out = static_cast<size_t>(value << shift);
  return true;
}

StatusOr<Config> Config::fromEnv(const bootstrap::EnvLookup& env) {
  Config c;
  if (auto v = env("PLEXUS_TRANSPORT")) c.transport = *v;
  if (auto v = env("PLEXUS_TRANSPORT_INTRA")) c.transportIntra = *v;
  if (auto v = env("PLEXUS_TRANSPORT_INTER")) c.transportInter = *v;
  int64_t ms = c.timeout.count();
  PLEXUS_TRY(readPositive(env, "PLEXUS_TIMEOUT_MS", int64_t{1} << 40, &ms));
  c.timeout = std::chrono::milliseconds(ms);
  int64_t spin = -1;
  PLEXUS_TRY(readPositive(env, "PLEXUS_SPIN_US", 10'000'000, &spin));
  if (spin > 0) c.spin = std::chrono::microseconds(spin);
  if (auto v = env("PLEXUS_CHUNK_BYTES")) {
    size_t bytes = 0;
    if (!parseByteSize(*v, &bytes) || bytes < 1024 || bytes > (size_t{1} << 30)) {
      return badVar("PLEXUS_CHUNK_BYTES", *v, "a size between 1k and 1G (e.g. 256k)");
    }
    c.chunkBytes = bytes;
    c.chunkBytesExplicit = true;
  }
  if (auto v = env("PLEXUS_SHM_STORES")) {
    if (*v == "auto") {
      c.shmStores = ShmStores::kAuto;
    } else if (*v == "plain") {
      c.shmStores = ShmStores::kPlain;
    } else if (*v == "streaming") {
      c.shmStores = ShmStores::kStreaming;
    } else {
      return badVar("PLEXUS_SHM_STORES", *v, "auto, plain or streaming");
    }
  }
  if (auto v = env("PLEXUS_SHM_MAILBOXES")) {
    if (*v != "0" && *v != "1") return badVar("PLEXUS_SHM_MAILBOXES", *v, "0 or 1");
    c.shmMailboxes = *v == "1";
  }
  if (auto v = env("PLEXUS_BIND_ADDR")) c.bindAddress = *v;
  if (auto v = env("PLEXUS_ALGO")) c.algo = *v;
  if (auto v = env("PLEXUS_TUNING_FILE")) {
    c.tuningFile = *v == "none" ? "" : *v;
    c.tuningFileExplicit = true;
  } else {
    c.tuningFile = internal::defaultTuningPath(env);
  }
  return c;
}

void Config::apply(const CommOptions& options) {
  if (options.timeout) timeout = *options.timeout;
  if (options.transport) {
    transport = *options.transport;
    transportIntra.clear();
    transportInter.clear();
  }
}

const std::string& Config::transportFor(bool inter) const {
  const std::string& level = inter ? transportInter : transportIntra;
  return level.empty() ? transport : level;
}

}  // namespace plexus
