// Factories of the built-in algorithms; builtin.cc lists them in order of preference.
#pragma once

#include <memory>

#include "algorithms/algorithm.h"

namespace plexus {

/// Pipelined ring all-reduce (ring_allreduce.cc).
std::unique_ptr<Algorithm> makeRingAllReduce();
/// Dissemination barrier (barrier.cc).
std::unique_ptr<Algorithm> makeDisseminationBarrier();

}  // namespace plexus
