// CUDA kernels of Plexus: host launch functions taking a cudaStream_t.
#pragma once

#include "kernels/codec_kernels.h"
