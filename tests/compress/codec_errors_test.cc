// Bad input to the codecs: parameters out of range, short buffers, and truncated, corrupted or
// mismatched payloads, which must fail with a clear Status and never touch memory out of bounds
// (run under ASan to check the latter).
#include <cstring>

#include "compress/payload.h"
#include "tests/compress/codec_test_util.h"

namespace plexus {
namespace {

using testing::codecOrDie;
using testing::encodeOrDie;
using testing::gaussian;

void expectInvalid(const Status& s, const char* what) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << what << ": " << s.toString();
  EXPECT_FALSE(s.message().empty()) << what;
}

TEST(CodecErrors, BadParameters) {
  for (const char* spec :
       {"quant:bits=0", "quant:bits=9", "quant:bucket=0", "sign:bucket=0", "topk", "topk:ratio=2",
        "powersgd:rows=4,cols=4,rank=5", "powersgd:rows=0,cols=4", "nosuch", "quant:bits=x",
        "quant:color=red", "quant:round=up", "quant:bits"}) {
    expectInvalid(makeCodec(spec).status(), spec);
  }
}

TEST(CodecErrors, KLargerThanTheTensor) {
  std::unique_ptr<Codec> c = codecOrDie("topk:k=101");
  const std::vector<float> in(100, 1.0f);
  std::vector<uint8_t> out(4096);
  expectInvalid(c->encode(in, {}, out, {}).status(), "k > n");
}

TEST(CodecErrors, ShortEncodeBuffers) {
  std::unique_ptr<Codec> c = codecOrDie("quant:bits=4");
  const std::vector<float> in(1000, 1.0f);
  std::vector<uint8_t> out(c->maxEncodedBytes(in.size()) - 1);
  expectInvalid(c->encode(in, {}, out, {}).status(), "short output");
  std::vector<float> ef(999);
  out.resize(out.size() + 1);
  expectInvalid(c->encode(in, ef, out, {}).status(), "short error feedback");
  std::unique_ptr<Codec> p = codecOrDie("powersgd:rows=10,cols=10,rank=2");
  expectInvalid(p->encode(in, {}, out, {}).status(), "powersgd shape");
}

const char* kAllSpecs[] = {"fp16",
                           "bf16",
                           "quant:bits=3,bucket=100",
                           "sign",
                           "topk:k=20",
                           "topk:k=20,mode=threshold",
                           "powersgd:rows=25,cols=40,rank=3",
                           "zstd"};

TEST(CodecErrors, DecodeBufferTooSmall) {
  for (const char* spec : kAllSpecs) {
    std::unique_ptr<Codec> c = codecOrDie(spec);
    const std::vector<float> in = gaussian(1000, 1);
    const std::vector<uint8_t> p = encodeOrDie(*c, in);
    std::vector<float> out(999);
    expectInvalid(c->decode(p, out), spec);
    expectInvalid(c->decodeAccumulate(p, out), spec);
  }
}

TEST(CodecErrors, EveryTruncationIsDetected) {
  for (const char* spec : kAllSpecs) {
    std::unique_ptr<Codec> c = codecOrDie(spec);
    const std::vector<float> in = gaussian(1000, 2);
    const std::vector<uint8_t> p = encodeOrDie(*c, in);
    std::vector<float> out(1000);
    for (size_t len = 0; len < p.size(); ++len) {
      // A fresh heap copy of exactly `len` bytes, so ASan catches any read past the end.
      const std::vector<uint8_t> cut(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(len));
      ASSERT_FALSE(c->decode(cut, out).ok()) << spec << " truncated to " << len;
    }
    std::vector<uint8_t> longer = p;
    longer.push_back(0);
    expectInvalid(c->decode(longer, out), "trailing byte");
  }
}

TEST(CodecErrors, CorruptedHeadersAreDetected) {
  // The header check covers every byte, informational ones included.
  for (const char* spec : kAllSpecs) {
    std::unique_ptr<Codec> c = codecOrDie(spec);
    const std::vector<float> in = gaussian(1000, 3);
    const std::vector<uint8_t> p = encodeOrDie(*c, in);
    std::vector<float> out(1000);
    for (size_t byte = 0; byte < kPayloadHeaderBytes; ++byte) {
      std::vector<uint8_t> bad = p;
      bad[byte] ^= 0x40;
      EXPECT_FALSE(c->decode(bad, out).ok()) << spec << " header byte " << byte;
    }
  }
}

TEST(CodecErrors, CorruptedTopKIndicesAreDetected) {
  std::unique_ptr<Codec> c = codecOrDie("topk:k=5");
  const std::vector<float> in = gaussian(100, 4);
  const std::vector<uint8_t> p = encodeOrDie(*c, in);
  std::vector<float> out(100, 1.0f);
  std::vector<uint8_t> bad = p;
  const uint32_t huge = 1000000;
  std::memcpy(bad.data() + 32 + 4, &huge, 4);
  expectInvalid(c->decode(bad, out), "index out of range");
  EXPECT_EQ(out, std::vector<float>(100, 1.0f)) << "a rejected payload must not write";
  bad = p;
  std::memcpy(bad.data() + 32 + 4, bad.data() + 32, 4);  // duplicate index
  expectInvalid(c->decode(bad, out), "index repeated");
}

TEST(CodecErrors, CorruptedZstdFrameIsDetected) {
  std::unique_ptr<Codec> c = codecOrDie("zstd");
  const std::vector<float> in = gaussian(1000, 5);
  const std::vector<uint8_t> p = encodeOrDie(*c, in);
  std::vector<float> out(1000);
  for (size_t byte = 32; byte < p.size(); byte += 7) {
    std::vector<uint8_t> bad = p;
    bad[byte] ^= 0xff;
    (void)c->decode(bad, out);  // may or may not be detected (no checksum); must not crash
  }
  std::vector<uint8_t> bad = p;
  bad[33] ^= 0xff;  // the frame magic
  expectInvalid(c->decode(bad, out), "zstd magic");
}

TEST(CodecErrors, MismatchedCodecIsDetected) {
  std::unique_ptr<Codec> a = codecOrDie("fp16");
  std::unique_ptr<Codec> b = codecOrDie("bf16");
  const std::vector<uint8_t> p = encodeOrDie(*a, gaussian(10, 6));
  std::vector<float> out(10);
  const Status s = b->decode(p, out);
  expectInvalid(s, "mismatch");
  EXPECT_NE(s.message().find("fp16"), std::string::npos) << s.message();
  EXPECT_TRUE(decodePayload(p, out, false).ok());
}

}  // namespace
}  // namespace plexus
