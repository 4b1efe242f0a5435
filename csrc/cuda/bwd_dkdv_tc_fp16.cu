// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// Backward dK / dV tensor-core kernels (and the reduction of their splits), fp16, every tensor-core head dim of kernel_table.h.
#include "bwd_dkdv_tc.cuh"
#include "launch_util.cuh"

namespace memvit {
namespace cuda {

MEMVIT_DEFINE_TC_LAUNCH(kDkvTc, kFloat16, dkdv_tc_kernel, DkvTc::kThreads)
MEMVIT_DEFINE_LAUNCH(kReduce, kFloat16, dkdv_reduce_kernel, DkvReduce::kThreads)

}  // namespace cuda
}  // namespace memvit
