// makeCodec (spec parsing), decodePayload (dispatch by the header's codec id) and the checks every
// codec shares. Codecs are listed here explicitly, not self-registered (STYLE.md).
#include <charconv>
#include <cstdlib>
#include <map>
#include <string>

#include "compress/codecs.h"
#include "compress/quant_layout.h"

namespace plexus {
namespace {

// "name:key=value,key=value" -> name and a key map; InvalidArgument on malformed text.
Status parseSpec(const std::string& spec, std::string* name,
                 std::map<std::string, std::string>* kv) {
  const size_t colon = spec.find(':');
  *name = spec.substr(0, colon);
  if (colon == std::string::npos) return okStatus();
  std::string rest = spec.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    const size_t comma = std::min(rest.find(',', pos), rest.size());
    const std::string item = rest.substr(pos, comma - pos);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalidArgument("codec spec '" + spec + "': expected key=value, got '" + item + "'");
    }
    (*kv)[item.substr(0, eq)] = item.substr(eq + 1);
    pos = comma + 1;
  }
  return okStatus();
}

// Takes `key` from kv as an unsigned integer (default `def`).
Status takeUint(std::map<std::string, std::string>& kv, const char* key, uint64_t def,
                uint64_t* out) {
  *out = def;
  auto it = kv.find(key);
  if (it == kv.end()) return okStatus();
  const std::string& v = it->second;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return invalidArgument(std::string("codec spec: ") + key + "='" + v + "' is not an integer");
  }
  kv.erase(it);
  return okStatus();
}

Status takeChoice(std::map<std::string, std::string>& kv, const char* key, const char* a,
                  const char* b, bool* isB) {
  *isB = false;
  auto it = kv.find(key);
  if (it == kv.end()) return okStatus();
  if (it->second != a && it->second != b) {
    return invalidArgument(std::string("codec spec: ") + key + " must be " + a + " or " + b);
  }
  *isB = it->second == b;
  kv.erase(it);
  return okStatus();
}

Status checkUint32(uint64_t v, const char* what) {
  if (v > 0xffffffffull) return invalidArgument(std::string("codec spec: ") + what + " too large");
  return okStatus();
}

StatusOr<std::unique_ptr<Codec>> makeFromParts(const std::string& name,
                                               std::map<std::string, std::string>& kv) {
  uint64_t bits, bucket, k, rows, cols, rank, seed, level;
  bool flag;
  if (name == "fp16") return makeCastCodec(CodecId::kFp16);
  if (name == "bf16") return makeCastCodec(CodecId::kBf16);
  if (name == "quant") {
    PLEXUS_TRY(takeUint(kv, "bits", 8, &bits));
    PLEXUS_TRY(takeUint(kv, "bucket", codec::kDefaultBucket, &bucket));
    PLEXUS_TRY(checkUint32(bucket, "bucket"));
    PLEXUS_TRY(takeChoice(kv, "round", "nearest", "stochastic", &flag));
    return makeQuantCodec(bits > 64 ? 64 : static_cast<int>(bits), static_cast<uint32_t>(bucket),
                          flag);
  }
  if (name == "sign") {
    PLEXUS_TRY(takeUint(kv, "bucket", codec::kDefaultBucket, &bucket));
    PLEXUS_TRY(checkUint32(bucket, "bucket"));
    return makeSignCodec(static_cast<uint32_t>(bucket));
  }
  if (name == "topk") {
    PLEXUS_TRY(takeUint(kv, "k", 0, &k));
    double ratio = 0.0;
    if (auto it = kv.find("ratio"); it != kv.end()) {
      char* end = nullptr;
      ratio = std::strtod(it->second.c_str(), &end);
      if (it->second.empty() || *end != '\0') {
        return invalidArgument("codec spec: ratio='" + it->second + "' is not a number");
      }
      kv.erase(it);
    }
    PLEXUS_TRY(takeChoice(kv, "mode", "exact", "threshold", &flag));
    return makeTopKCodec(k, ratio, flag);
  }
  if (name == "powersgd") {
    PLEXUS_TRY(takeUint(kv, "rows", 0, &rows));
    PLEXUS_TRY(takeUint(kv, "cols", 0, &cols));
    PLEXUS_TRY(takeUint(kv, "rank", 4, &rank));
    PLEXUS_TRY(takeUint(kv, "seed", 0, &seed));
    PLEXUS_TRY(checkUint32(rows, "rows"));
    PLEXUS_TRY(checkUint32(cols, "cols"));
    PLEXUS_TRY(checkUint32(rank, "rank"));
    return makePowerSgdCodec(static_cast<uint32_t>(rows), static_cast<uint32_t>(cols),
                             static_cast<uint32_t>(rank), seed);
  }
  if (name == "zstd") {
    PLEXUS_TRY(takeUint(kv, "level", 3, &level));
    return makeZstdCodec(level > 1000 ? 1000 : static_cast<int>(level));
  }
  return invalidArgument("unknown codec '" + name +
                         "' (known: fp16, bf16, quant, sign, topk, powersgd, zstd)");
}

}  // namespace

StatusOr<std::unique_ptr<Codec>> makeCodec(const std::string& spec) {
  std::string name;
  std::map<std::string, std::string> kv;
  PLEXUS_TRY(parseSpec(spec, &name, &kv));
  StatusOr<std::unique_ptr<Codec>> codec = makeFromParts(name, kv);
  if (codec.ok() && !kv.empty()) {
    return invalidArgument("codec spec '" + spec + "': unknown parameter '" + kv.begin()->first +
                           "'");
  }
  return codec;
}

Status decodePayload(std::span<const uint8_t> payload, std::span<float> out, bool accumulate) {
  StatusOr<PayloadHeader> h = readPayloadHeader(payload);
  if (!h.ok()) return h.status();
  PLEXUS_TRY(checkPayload(payload, h->codec, out.size()).status());
  const uint8_t* body = payload.data() + kPayloadHeaderBytes;
  switch (h->codec) {
    case CodecId::kFp16:
    case CodecId::kBf16:
      return decodeCastBody(*h, body, out, accumulate);
    case CodecId::kQuant:
      return decodeQuantBody(*h, body, out, accumulate);
    case CodecId::kSign:
      return decodeSignBody(*h, body, out, accumulate);
    case CodecId::kTopK:
      return decodeTopKBody(*h, body, out, accumulate);
    case CodecId::kPowerSgd:
      return decodePowerSgdBody(*h, body, out, accumulate);
    case CodecId::kZstd:
      return decodeZstdBody(*h, body, out, accumulate);
  }
  return internalError("decodePayload: unhandled codec id");
}

Status Codec::decode(std::span<const uint8_t> payload, std::span<float> out) const {
  PLEXUS_TRY(checkPayload(payload, id(), out.size()).status());
  return decodePayload(payload, out, false);
}

Status Codec::decodeAccumulate(std::span<const uint8_t> payload, std::span<float> out) const {
  PLEXUS_TRY(checkPayload(payload, id(), out.size()).status());
  return decodePayload(payload, out, true);
}

Status checkEncodeArgs(const Codec& codec, std::span<const float> input,
                       std::span<float> errorFeedback, std::span<uint8_t> out) {
  if (!errorFeedback.empty() && errorFeedback.size() != input.size()) {
    return invalidArgument(codec.spec() + ": error-feedback buffer has " +
                           std::to_string(errorFeedback.size()) + " elements, input has " +
                           std::to_string(input.size()));
  }
  const size_t need = codec.maxEncodedBytes(input.size());
  if (out.size() < need) {
    return invalidArgument(codec.spec() + ": output buffer of " + std::to_string(out.size()) +
                           " bytes, need " + std::to_string(need));
  }
  return okStatus();
}

}  // namespace plexus
