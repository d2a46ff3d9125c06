// Fuzz target: the rendezvous store's wire parser, fed a byte stream as a peer could send it.
// Every frame the parser accepts is decoded as a hello, a request and a reply.
#include <cstddef>
#include <cstdint>
#include <span>

#include "src/bootstrap/store.h"
#include "src/bootstrap/store_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace plexus::bootstrap;
  std::span<const uint8_t> rest(data, size);
  while (!rest.empty()) {
    wire::ParseResult r = wire::parseFrame(rest, kMaxValueBytes + kMaxKeyBytes + 64);
    if (r.state != wire::ParseResult::State::kFrame) break;
    (void)wire::decodeHello(r.frame);
    (void)wire::decodeRequest(r.frame);
    (void)wire::decodeReply(r.frame);
    (void)wire::printable(std::string_view(reinterpret_cast<const char*>(r.frame.payload.data()),
                                           r.frame.payload.size()));
    rest = rest.subspan(r.consumed);
  }
  return 0;
}
