// Writes the seed corpora: valid frames, ids and payloads of every kind, which the fuzzer
// mutates and ctest replays. Run by the build into <build>/fuzz-corpus/<target>/.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compress/codec.h"
#include "src/bootstrap/store_protocol.h"
#include "src/peer_record.h"
#include "src/topology.h"

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const void* data,
           size_t size) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(static_cast<const char*>(data), size);
}

void write(const std::filesystem::path& dir, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  write(dir, name, bytes.data(), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace plexus;
  using namespace plexus::bootstrap;
  if (argc != 2) return std::fprintf(stderr, "usage: make_seeds DIR\n"), 2;
  std::filesystem::path root = argv[1];

  // Store frames: a hello followed by each request, and each reply.
  std::vector<uint8_t> stream;
  wire::Hello hello;
  hello.rank = 1;
  hello.worldSize = 4;
  wire::appendHello(stream, hello);
  const uint8_t value[] = {1, 2, 3, 4};
  wire::appendRequest(stream, wire::FrameType::kSet, 1, "world/peer/1", value);
  wire::appendRequest(stream, wire::FrameType::kGet, 2, "world/size");
  wire::appendAdd(stream, 3, "counter", -5);
  wire::appendRequest(stream, wire::FrameType::kErase, 4, "world/split0/1");
  write(root / "store_frames", "session", stream);
  std::vector<uint8_t> replies;
  wire::appendValue(replies, 2, value);
  wire::appendCount(replies, 3, 42);
  wire::appendError(replies, 4, StatusCode::kInvalidArgument, "rank 2 says the world has 3 ranks");
  write(root / "store_frames", "replies", replies);

  // Peer records: a host identity as ranks publish it, a full host (hwloc or /sys), and a link
  // record with both levels.
  HostTopology identity;
  identity.hostname = "node-a";
  identity.bootId = "0b9e6f3c-1d2e-4f50-8a7b-6c5d4e3f2a1b";
  identity.nodeId = "node0";
  identity.nodeIdOverridden = true;
  identity.pid = 4242;
  write(root / "peer_records", "identity", encodeHostTopology(identity));
  // Regression: a node-id flag of 2 once decoded as true and re-encoded as 1. The flag follows
  // magic, version and three length-prefixed strings.
  std::vector<uint8_t> badFlag = encodeHostTopology(identity);
  const size_t flagAt =
      8 + 3 * 4 + identity.hostname.size() + identity.bootId.size() + identity.nodeId.size();
  badFlag.at(flagAt) = 2;
  write(root / "peer_records", "regression-flag", badFlag);
  // The /sys detector: hwloc's dlopen'ed plugins leak at exit, which ASan builds report.
  if (auto host = detectHostTopologyFromSysfs(); host.ok()) {
    write(root / "peer_records", "host", encodeHostTopology(*host));
  }
  internal::PeerRecord record;
  record.rank = 3;
  record.worldSize = 8;
  record.spec = {"ucx:sm,self", "ucx:tcp"};
  record.address = {std::vector<uint8_t>(40, 7), std::vector<uint8_t>(120, 9)};
  write(root / "peer_records", "links", record.encode());

  // Unique ids: hex text of a well-formed id layout.
  const char kId[] = "504c585501093930";
  write(root / "unique_id", "prefix", kId, sizeof(kId) - 1);

  // Codec payloads: one of each codec family, from a small gradient.
  std::vector<float> grad(1000);
  for (size_t i = 0; i < grad.size(); ++i) grad[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1;
  const char* specs[] = {"fp16",
                         "bf16",
                         "quant:bits=4,bucket=64",
                         "quant:bits=1",
                         "sign:bucket=128",
                         "topk:k=20",
                         "topk:k=20,mode=threshold",
                         "powersgd:rows=25,cols=40,rank=2",
                         "zstd"};
  int n = 0;
  for (const char* spec : specs) {
    auto codec = makeCodec(spec);
    if (!codec.ok()) continue;  // e.g. zstd absent from this build
    std::vector<uint8_t> out((*codec)->maxEncodedBytes(grad.size()) + 1);
    auto bytes = (*codec)->encode(grad, {}, std::span<uint8_t>(out).subspan(1), {});
    if (!bytes.ok()) continue;
    out[0] = static_cast<uint8_t>(((grad.size() / 37 + 1) << 1) & 0xff);  // see the target
    out.resize(*bytes + 1);
    write(root / "codec_payload", "seed" + std::to_string(n++), out);
  }
  return 0;
}
