// Uses only the installed public API: a one-rank communicator and an all-reduce.
#include <plexus/plexus.h>

#include <cstdio>

int main() {
  auto id = plexus::UniqueId::generate();
  if (!id.ok()) return std::fprintf(stderr, "%s\n", id.status().toString().c_str()), 1;
  auto comm = plexus::Communicator::create(*id, 0, 1);
  if (!comm.ok()) return std::fprintf(stderr, "%s\n", comm.status().toString().c_str()), 1;
  float in[3] = {1, 2, 3}, out[3] = {};
  plexus::Status s =
      (*comm)->allReduce(in, out, 3, plexus::DataType::kFloat32, plexus::ReduceOp::kSum);
  if (!s.ok() || out[2] != 3) return std::fprintf(stderr, "%s\n", s.toString().c_str()), 1;
  std::printf("consumer: plexus %s OK\n", plexus::versionString());
  return 0;
}
