// The store's wire format as pure functions over bytes: no sockets, no state, no allocation
// beyond the results. The server and client both parse through here, and so can a fuzz target.
//
// Every frame is a 12-byte header (u32 magic "PLXS", u16 version, u16 type, u32 payload length,
// all little-endian) and the payload. Payloads, by type:
//   hello   32-byte secret | i32 rank | i32 world size           (first frame of a client)
//   set     u32 request id | u32 key length | key | value        (value: the rest)
//   get     u32 request id | u32 key length | key                (server parks until key is set)
//   add     u32 request id | u32 key length | key | i64 delta
//   cancel  u32 request id                                       (client gave up on a get)
//   erase   u32 request id | u32 key length | key                (absent keys too; ok reply)
//   ok      u32 request id                                       (hello: id 0)
//   value   u32 request id | value
//   count   u32 request id | i64
//   error   u32 request id | u32 status code | reason text
// Request ids let a client discard the late answer of a get it already gave up on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plexus/status.h"
#include "src/bootstrap/store.h"

namespace plexus::bootstrap::wire {

inline constexpr uint32_t kMagic = 0x53584C50;  // the bytes "PLXS" read as little-endian
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderBytes = 12;
inline constexpr size_t kHelloBytes = 32 + 4 + 4;
inline constexpr size_t kMaxReasonBytes = 1024;
/// The largest payload a request or reply may have: a set of the largest key and value.
inline constexpr size_t kMaxPayloadBytes = 4 + 4 + kMaxKeyBytes + kMaxValueBytes;

enum class FrameType : uint16_t {
  kHello = 1,
  kSet = 2,
  kGet = 3,
  kAdd = 4,
  kCancel = 5,
  kErase = 6,
  kOk = 16,
  kValue = 17,
  kCount = 18,
  kError = 19,
};

/// Short name of a frame type for messages ("set", "type 77" for unknown ones).
std::string frameTypeName(uint16_t type);

/// One frame, viewing the bytes it was parsed from.
struct Frame {
  uint16_t type = 0;
  std::span<const uint8_t> payload;
};

/// What parseFrame found at the start of a buffer.
struct ParseResult {
  enum class State { kNeedMore, kFrame, kMalformed };
  State state = State::kNeedMore;
  Frame frame;            ///< valid when kFrame
  size_t consumed = 0;    ///< bytes of the frame (header and payload) when kFrame
  size_t frameBytes = 0;  ///< once the header is in (kNeedMore too): the whole frame's size
  std::string error;      ///< why, when kMalformed
};

/// Looks for one frame at the start of `bytes`. Rejects as soon as the bytes seen can no longer
/// start a valid frame: a wrong magic (even after 1 byte), another version, or a payload length
/// over `maxPayload` (checked on the header alone, before the payload arrives).
ParseResult parseFrame(std::span<const uint8_t> bytes, size_t maxPayload);

/// The client's hello.
struct Hello {
  Secret secret{};
  int32_t rank = 0;
  int32_t worldSize = 0;
};

/// A client request after the hello. `key` and `value` view the frame's payload.
struct Request {
  FrameType type = FrameType::kGet;
  uint32_t id = 0;
  std::string_view key;            ///< set, get, add, erase
  std::span<const uint8_t> value;  ///< set
  int64_t delta = 0;               ///< add
};

/// A server reply. `value` views the frame's payload.
struct Reply {
  FrameType type = FrameType::kOk;
  uint32_t id = 0;
  std::span<const uint8_t> value;  ///< value
  int64_t count = 0;               ///< count
  Status error;                    ///< error: the server's code and reason
};

/// Decodes a hello frame; InvalidArgument says what is wrong with it.
StatusOr<Hello> decodeHello(const Frame& frame);
/// Decodes a set/get/add/cancel/erase frame; InvalidArgument for any other type or a bad payload.
StatusOr<Request> decodeRequest(const Frame& frame);
/// Decodes an ok/value/count/error frame; InvalidArgument for any other type or a bad payload.
StatusOr<Reply> decodeReply(const Frame& frame);

/// Appends a complete frame of `type` whose payload is the concatenation of `parts`.
void appendFrame(std::vector<uint8_t>& out, FrameType type,
                 std::initializer_list<std::span<const uint8_t>> parts);
/// Encoders of each frame, appending to `out`.
void appendHello(std::vector<uint8_t>& out, const Hello& hello);
void appendRequest(std::vector<uint8_t>& out, FrameType type, uint32_t id, std::string_view key,
                   std::span<const uint8_t> value = {});
void appendAdd(std::vector<uint8_t>& out, uint32_t id, std::string_view key, int64_t delta);
void appendIdOnly(std::vector<uint8_t>& out, FrameType type, uint32_t id);
void appendValue(std::vector<uint8_t>& out, uint32_t id, std::span<const uint8_t> value);
void appendCount(std::vector<uint8_t>& out, uint32_t id, int64_t count);
/// An error reply; the reason is cut to kMaxReasonBytes.
void appendError(std::vector<uint8_t>& out, uint32_t id, StatusCode code, std::string_view reason);

/// Printable form of peer-controlled text for logs: non-printable bytes become '?', and long
/// text is cut with "...".
std::string printable(std::string_view text, size_t maxChars = 80);

}  // namespace plexus::bootstrap::wire
