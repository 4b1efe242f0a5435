// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// SIMT kernels (any element type of kernel_table.h, any head dim up to Simt::kMaxD) and the
// backward pre-pass, for every element type of the table.
#include "bwd_prepass.cuh"
#include "launch_util.cuh"
#include "simt.cuh"

namespace memvit {
namespace cuda {

#define MEMVIT_X(tag, scalar, name, type, tc)                               \
  MEMVIT_DEFINE_LAUNCH(kFwdSimt, tag, simt_fwd_kernel, Simt::kThreads)      \
  MEMVIT_DEFINE_LAUNCH(kDqSimt, tag, simt_dq_kernel, Simt::kThreads)        \
  MEMVIT_DEFINE_LAUNCH(kDkvSimt, tag, simt_dkdv_kernel, Simt::kThreads)     \
  MEMVIT_DEFINE_LAUNCH(kPrepass, tag, bwd_prepass_kernel, Prepass::kThreads)
MEMVIT_CUDA_DTYPES(MEMVIT_X)
#undef MEMVIT_X

}  // namespace cuda
}  // namespace memvit
