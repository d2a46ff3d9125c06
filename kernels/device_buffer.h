// RAII owner of a cudaMalloc'd buffer, for tests, benchmarks and host code that stages codec
// payloads.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace plexus::kernels {

/// Device memory of `bytes` bytes, freed on destruction. ok() is false when cudaMalloc failed.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes) != cudaSuccess) ptr_ = nullptr;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }

  /// True when the allocation succeeded.
  bool ok() const { return ptr_ != nullptr; }
  /// The memory, typed.
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  /// Size in bytes.
  size_t bytes() const { return bytes_; }

  /// Copies a host vector in (synchronously); false on error.
  template <typename T>
  bool upload(const std::vector<T>& v) {
    return cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess;
  }
  /// Copies `count` elements out (synchronously).
  template <typename T>
  std::vector<T> download(size_t count) const {
    std::vector<T> v(count);
    if (cudaMemcpy(v.data(), ptr_, count * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) {
      v.clear();
    }
    return v;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace plexus::kernels
