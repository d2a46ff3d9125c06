// The built-in algorithms, registered by an explicit list (no static self-registration).
#include "algorithms/builtin.h"

namespace plexus {

const char* collectiveName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return "allreduce";
    case CollectiveKind::kBarrier:
      return "barrier";
  }
  return "unknown";
}

std::vector<std::unique_ptr<Algorithm>> builtinAlgorithms() {
  std::vector<std::unique_ptr<Algorithm>> all;
  all.push_back(makeRingAllReduce());
  all.push_back(makeDisseminationBarrier());
  return all;
}

}  // namespace plexus
