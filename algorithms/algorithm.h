// The Algorithm seam: a named schedule for one collective, written only against the primitives
// of CollectiveContext (context.h). Algorithms describe themselves (name, one-line description,
// what they support) so the selector and users can see and steer the choice.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "plexus/status.h"
#include "plexus/types.h"

namespace plexus {

class CollectiveContext;

/// The collectives Plexus implements.
enum class CollectiveKind : uint8_t {
  kAllReduce,
  kBarrier,
};

/// "allreduce", "barrier".
const char* collectiveName(CollectiveKind kind);

/// One typed collective call, validated at the API boundary before it reaches an algorithm.
struct CollectiveRequest {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  size_t count = 0;  ///< elements per rank
  const void* send = nullptr;
  void* recv = nullptr;
  int root = -1;
  MemoryKind memory = MemoryKind::kHost;
  void* stream = nullptr;

  size_t bytes() const { return count * dataTypeSize(type); }
};

/// A schedule for one collective.
class Algorithm {
 public:
  virtual ~Algorithm() = default;
  /// Short name used by PLEXUS_ALGO and `plexus-perf -a`, e.g. "ring".
  virtual const char* name() const = 0;
  /// One line: what it does and when it wins.
  virtual const char* description() const = 0;
  /// The collective it implements.
  virtual CollectiveKind collective() const = 0;
  /// OK when it can run `request` on `worldSize` ranks; otherwise why not (InvalidArgument or
  /// Unimplemented), so that forcing it gives a clear error.
  virtual Status supports(const CollectiveRequest& request, int worldSize) const = 0;
  /// Runs this rank's part of the schedule. Called on the progress engine's driver.
  virtual Status run(const CollectiveRequest& request, CollectiveContext& context) = 0;
};

/// The built-in algorithms, in order of preference, registered explicitly (builtin.cc).
std::vector<std::unique_ptr<Algorithm>> builtinAlgorithms();

}  // namespace plexus
