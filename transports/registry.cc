// The transports compiled into this build, registered by an explicit list (no static
// self-registration: the linker drops it from static libraries).
#include <string>
#include <vector>

#include "transports/transport.h"
#if PLEXUS_HAVE_UCX
#include "transports/ucx/ucx_transport.h"
#endif
#if PLEXUS_HAVE_OFI
#include "transports/ofi/ofi_transport.h"
#endif

namespace plexus {
namespace {

struct Entry {
  const char* name;
  StatusOr<std::unique_ptr<Transport>> (*create)(const TransportContext&);
  const char* enableHint;  // how to get it when this build lacks it
};

constexpr Entry kTransports[] = {
#if PLEXUS_HAVE_UCX
    {"ucx", createUcxTransport, nullptr},
#else
    {"ucx", nullptr, "install libucx-dev and configure with -DPLEXUS_WITH_UCX=ON"},
#endif
#if PLEXUS_HAVE_OFI
    {"ofi", createOfiTransport, nullptr},
#else
    {"ofi", nullptr, "install libfabric-dev and configure with -DPLEXUS_WITH_OFI=ON"},
#endif
};

}  // namespace

std::vector<std::string> availableTransports() {
  std::vector<std::string> names;
  for (const Entry& e : kTransports) {
    if (e.create != nullptr) names.emplace_back(e.name);
  }
  return names;
}

std::string transportSpecName(const std::string& spec) { return spec.substr(0, spec.find(':')); }

StatusOr<std::unique_ptr<Transport>> createTransport(const std::string& spec,
                                                     TransportContext context) {
  const std::string name = transportSpecName(spec);
  if (name.size() < spec.size()) {
    context.option = spec.substr(name.size() + 1);
    if (context.option.empty()) {
      return invalidArgument("transport spec '" + spec + "' has an empty option after ':'");
    }
  }
  std::string known;
  for (const Entry& e : kTransports) {
    if (name == e.name) {
      if (e.create == nullptr) {
        return unimplemented("transport '" + name + "' is not in this build: " + e.enableHint);
      }
      return e.create(context);
    }
    known += known.empty() ? e.name : std::string(", ") + e.name;
  }
  return invalidArgument("unknown transport '" + name + "' (known: " + known + ")");
}

}  // namespace plexus
