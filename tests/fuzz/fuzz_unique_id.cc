// Fuzz target: a unique id arriving as text (environment, file) or as raw bytes from an
// application, parsed and decoded into a rendezvous address.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "plexus/communicator.h"
#include "src/unique_id_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)plexus::UniqueId::fromHex(std::string(reinterpret_cast<const char*>(data), size));
  plexus::UniqueId id;
  std::memcpy(id.bytes.data(), data, std::min(size, id.bytes.size()));
  (void)plexus::internal::decodeUniqueId(id);
  return 0;
}
