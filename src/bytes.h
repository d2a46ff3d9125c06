// Little-endian byte writer and bounds-checked reader for the small records ranks exchange
// through bootstrap. The reader never reads past its input and caps every length it is given.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace plexus {

class ByteWriter {
 public:
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void bytes(const void* data, size_t len) {
    u32(static_cast<uint32_t>(len));
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + len);
  }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t len) : p_(data), left_(len) {}
  explicit ByteReader(const std::vector<uint8_t>& v) : ByteReader(v.data(), v.size()) {}
  /// False once any read ran out of input or over its cap; later reads keep failing.
  bool ok() const { return ok_; }
  bool atEnd() const { return left_ == 0; }
  uint32_t u32() {
    if (!ok_ || left_ < 4) return fail<uint32_t>();
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p_[i]) << (8 * i);
    p_ += 4;
    left_ -= 4;
    return v;
  }
  std::vector<uint8_t> bytes(size_t cap) {
    uint32_t len = u32();
    if (!ok_ || len > cap || len > left_) return fail<std::vector<uint8_t>>();
    std::vector<uint8_t> v(p_, p_ + len);
    p_ += len;
    left_ -= len;
    return v;
  }
  std::string str(size_t cap) {
    std::vector<uint8_t> v = bytes(cap);
    return std::string(v.begin(), v.end());
  }

 private:
  template <typename T>
  T fail() {
    ok_ = false;
    return T{};
  }
  const uint8_t* p_;
  size_t left_;
  bool ok_ = true;
};

}  // namespace plexus
