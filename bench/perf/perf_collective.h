// What plexus-perf needs to know about one collective: how many elements a size means, its
// bus-bandwidth factor (nccl-tests conventions), how to fill inputs, run it, and check outputs.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "plexus/communicator.h"

namespace plexus::perf {

struct PerfParams {
  DataType type = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;
  std::string algorithm;  // empty: the library's choice
};

/// The send and receive pointers of a call.
struct PerfBuffers {
  const void* send = nullptr;
  void* recv = nullptr;
};

class PerfCollective {
 public:
  virtual ~PerfCollective() = default;
  virtual const char* name() const = 0;
  /// Elements per rank for a message of `bytes` (nccl-tests' "count" column).
  virtual size_t countFor(size_t bytes, size_t elemSize, int ranks) const = 0;
  /// The message size of `count` (nccl-tests' "size" column; the inverse of countFor).
  virtual size_t bytesFor(size_t count, size_t elemSize, int ranks) const = 0;
  /// Elements of the send and of the receive buffer for `count`.
  virtual size_t sendElems(size_t count, int ranks) const = 0;
  virtual size_t recvElems(size_t count, int ranks) const = 0;
  /// Where the in-place variant puts send and receive inside one buffer `buf`, which holds
  /// max(sendElems, recvElems) elements.
  virtual PerfBuffers inPlace(void* buf, size_t count, size_t elemSize, int rank) const = 0;
  /// busbw = algbw × factor.
  virtual double busFactor(int ranks) const = 0;
  /// True when the root column applies (broadcast, reduce).
  virtual bool rooted() const { return false; }
  /// Writes this rank's deterministic input into `send` (count elements).
  virtual void fill(void* send, size_t count, const PerfParams& p, int rank, int ranks) const = 0;
  /// Runs the collective once.
  virtual Status run(Communicator& comm, const void* send, void* recv, size_t count,
                     const PerfParams& p) const = 0;
  /// Number of wrong elements in `recv` after a run on the fill() inputs.
  virtual size_t check(const void* recv, size_t count, const PerfParams& p, int rank,
                       int ranks) const = 0;
};

/// The collective named `name` ("allreduce", ...), or null.
const PerfCollective* findPerfCollective(const std::string& name);
/// Names of the collectives plexus-perf knows.
std::vector<std::string> perfCollectiveNames();

}  // namespace plexus::perf
