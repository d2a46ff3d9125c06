#include "src/bootstrap/store_protocol.h"

#include <algorithm>
#include <cstring>

namespace plexus::bootstrap::wire {
namespace {

// Assembles integers byte by byte so the format is little-endian on any host and no read is
// ever unaligned.
uint64_t loadLe(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void storeLe(std::vector<uint8_t>& out, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// Reads fields front to back, failing (instead of reading past the end) when the payload is too
// short. Every length it takes from the payload is checked against what is left first.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  bool u32(uint32_t* v) { return fixed(v, 4); }
  bool i32(int32_t* v) {
    uint32_t u = 0;
    if (!u32(&u)) return false;
    *v = static_cast<int32_t>(u);
    return true;
  }
  bool i64(int64_t* v) {
    uint64_t u = 0;
    if (!fixed(&u, 8)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool take(size_t n, std::span<const uint8_t>* out) {
    if (n > left()) return false;
    *out = bytes_.subspan(offset_, n);
    offset_ += n;
    return true;
  }
  std::span<const uint8_t> rest() {
    std::span<const uint8_t> r = bytes_.subspan(offset_);
    offset_ = bytes_.size();
    return r;
  }
  size_t left() const { return bytes_.size() - offset_; }

 private:
  template <typename T>
  bool fixed(T* v, size_t n) {
    if (n > left()) return false;
    *v = static_cast<T>(loadLe(bytes_.data() + offset_, n));
    offset_ += n;
    return true;
  }

  std::span<const uint8_t> bytes_;
  size_t offset_ = 0;
};

std::span<const uint8_t> asBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Reads "u32 key length | key" with the key capped at kMaxKeyBytes.
bool readKey(Reader& reader, std::string_view* key) {
  uint32_t length = 0;
  std::span<const uint8_t> bytes;
  if (!reader.u32(&length) || length > kMaxKeyBytes || !reader.take(length, &bytes)) return false;
  *key = std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return true;
}

Status badPayload(const Frame& frame) {
  return invalidArgument("malformed " + frameTypeName(frame.type) + " frame (" +
                         std::to_string(frame.payload.size()) + " payload bytes)");
}

}  // namespace

std::string frameTypeName(uint16_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kSet:
      return "set";
    case FrameType::kGet:
      return "get";
    case FrameType::kAdd:
      return "add";
    case FrameType::kCancel:
      return "cancel";
    case FrameType::kErase:
      return "erase";
    case FrameType::kOk:
      return "ok";
    case FrameType::kValue:
      return "value";
    case FrameType::kCount:
      return "count";
    case FrameType::kError:
      return "error";
  }
  return "type " + std::to_string(type);
}

ParseResult parseFrame(std::span<const uint8_t> bytes, size_t maxPayload) {
  ParseResult result;
  if (bytes.empty()) return result;
  // Compare the magic byte by byte as it arrives: an HTTP request or random bytes are rejected
  // on their first byte rather than after the peer has sent a whole header.
  const uint8_t magic[4] = {'P', 'L', 'X', 'S'};
  size_t seen = std::min<size_t>(bytes.size(), 4);
  if (std::memcmp(bytes.data(), magic, seen) != 0) {
    result.state = ParseResult::State::kMalformed;
    result.error = "not a Plexus store frame (starts with \"" +
                   printable({reinterpret_cast<const char*>(bytes.data()), seen}) + "\")";
    return result;
  }
  if (bytes.size() < kHeaderBytes) return result;
  const uint64_t version = loadLe(bytes.data() + 4, 2);
  const uint16_t type = static_cast<uint16_t>(loadLe(bytes.data() + 6, 2));
  const uint64_t length = loadLe(bytes.data() + 8, 4);
  if (version != kVersion) {
    result.state = ParseResult::State::kMalformed;
    result.error = "protocol version " + std::to_string(version) + ", expected " +
                   std::to_string(kVersion) + " (a different Plexus release?)";
    return result;
  }
  if (length > maxPayload) {
    result.state = ParseResult::State::kMalformed;
    result.error = frameTypeName(type) + " frame of " + std::to_string(length) +
                   " payload bytes exceeds the limit of " + std::to_string(maxPayload);
    return result;
  }
  result.frameBytes = kHeaderBytes + length;  // length <= maxPayload: no overflow
  if (bytes.size() < result.frameBytes) return result;
  result.state = ParseResult::State::kFrame;
  result.frame.type = type;
  result.frame.payload = bytes.subspan(kHeaderBytes, length);
  result.consumed = kHeaderBytes + length;
  return result;
}

StatusOr<Hello> decodeHello(const Frame& frame) {
  if (frame.type != static_cast<uint16_t>(FrameType::kHello)) {
    return invalidArgument("first frame is a " + frameTypeName(frame.type) + ", not a hello");
  }
  if (frame.payload.size() != kHelloBytes) return badPayload(frame);
  Reader reader(frame.payload);
  Hello hello;
  std::span<const uint8_t> secret;
  if (!reader.take(hello.secret.size(), &secret) || !reader.i32(&hello.rank) ||
      !reader.i32(&hello.worldSize)) {
    return badPayload(frame);
  }
  std::copy(secret.begin(), secret.end(), hello.secret.begin());
  return hello;
}

StatusOr<Request> decodeRequest(const Frame& frame) {
  Request request;
  request.type = static_cast<FrameType>(frame.type);
  Reader reader(frame.payload);
  if (!reader.u32(&request.id)) return badPayload(frame);
  bool ok = false;
  switch (request.type) {
    case FrameType::kSet:
      ok = readKey(reader, &request.key) && reader.left() <= kMaxValueBytes;
      request.value = reader.rest();
      break;
    case FrameType::kGet:
    case FrameType::kErase:
      ok = readKey(reader, &request.key);
      break;
    case FrameType::kAdd:
      ok = readKey(reader, &request.key) && reader.i64(&request.delta);
      break;
    case FrameType::kCancel:
      ok = true;
      break;
    default:
      return invalidArgument("unexpected " + frameTypeName(frame.type) + " frame from a client");
  }
  if (!ok || reader.left() != 0) return badPayload(frame);
  return request;
}

// The client's side of the same care: a server (or something posing as one) controls these
// bytes too.
StatusOr<Reply> decodeReply(const Frame& frame) {
  Reply reply;
  reply.type = static_cast<FrameType>(frame.type);
  Reader reader(frame.payload);
  if (!reader.u32(&reply.id)) return badPayload(frame);
  switch (reply.type) {
    case FrameType::kOk:
      break;
    case FrameType::kValue:
      if (reader.left() > kMaxValueBytes) return badPayload(frame);
      reply.value = reader.rest();
      break;
    case FrameType::kCount:
      if (!reader.i64(&reply.count)) return badPayload(frame);
      break;
    case FrameType::kError: {
      uint32_t code = 0;
      if (!reader.u32(&code) || reader.left() > kMaxReasonBytes) return badPayload(frame);
      std::span<const uint8_t> reason = reader.rest();
      // An unknown or OK code from the server still has to come out as an error.
      StatusCode statusCode = code >= 1 && code <= static_cast<uint32_t>(StatusCode::kUnimplemented)
                                  ? static_cast<StatusCode>(code)
                                  : StatusCode::kInternal;
      reply.error = Status(statusCode,
                           printable({reinterpret_cast<const char*>(reason.data()), reason.size()},
                                     kMaxReasonBytes));
      break;
    }
    default:
      return invalidArgument("unexpected " + frameTypeName(frame.type) + " frame from the store");
  }
  if (reader.left() != 0) return badPayload(frame);
  return reply;
}

void appendFrame(std::vector<uint8_t>& out, FrameType type,
                 std::initializer_list<std::span<const uint8_t>> parts) {
  size_t length = 0;
  for (const auto& part : parts) length += part.size();
  storeLe(out, kMagic, 4);
  storeLe(out, kVersion, 2);
  storeLe(out, static_cast<uint16_t>(type), 2);
  storeLe(out, length, 4);
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
}

void appendHello(std::vector<uint8_t>& out, const Hello& hello) {
  std::vector<uint8_t> tail;
  storeLe(tail, static_cast<uint32_t>(hello.rank), 4);
  storeLe(tail, static_cast<uint32_t>(hello.worldSize), 4);
  appendFrame(out, FrameType::kHello, {hello.secret, tail});
}

void appendRequest(std::vector<uint8_t>& out, FrameType type, uint32_t id, std::string_view key,
                   std::span<const uint8_t> value) {
  std::vector<uint8_t> head;
  storeLe(head, id, 4);
  storeLe(head, key.size(), 4);
  appendFrame(out, type, {head, asBytes(key), value});
}

void appendAdd(std::vector<uint8_t>& out, uint32_t id, std::string_view key, int64_t delta) {
  std::vector<uint8_t> tail;
  storeLe(tail, static_cast<uint64_t>(delta), 8);
  appendRequest(out, FrameType::kAdd, id, key, tail);
}

void appendIdOnly(std::vector<uint8_t>& out, FrameType type, uint32_t id) {
  std::vector<uint8_t> head;
  storeLe(head, id, 4);
  appendFrame(out, type, {head});
}

void appendValue(std::vector<uint8_t>& out, uint32_t id, std::span<const uint8_t> value) {
  std::vector<uint8_t> head;
  storeLe(head, id, 4);
  appendFrame(out, FrameType::kValue, {head, value});
}

void appendCount(std::vector<uint8_t>& out, uint32_t id, int64_t count) {
  std::vector<uint8_t> body;
  storeLe(body, id, 4);
  storeLe(body, static_cast<uint64_t>(count), 8);
  appendFrame(out, FrameType::kCount, {body});
}

void appendError(std::vector<uint8_t>& out, uint32_t id, StatusCode code, std::string_view reason) {
  std::vector<uint8_t> head;
  storeLe(head, id, 4);
  storeLe(head, static_cast<uint32_t>(code), 4);
  appendFrame(out, FrameType::kError, {head, asBytes(reason.substr(0, kMaxReasonBytes))});
}

std::string printable(std::string_view text, size_t maxChars) {
  std::string out;
  for (char c : text.substr(0, maxChars)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > maxChars) out += "...";
  return out;
}

}  // namespace plexus::bootstrap::wire
