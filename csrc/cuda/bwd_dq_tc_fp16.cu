// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// Backward tensor-core kernels of the query side, fp16, every tensor-core head dim of kernel_table.h:
// the exact delta (sum P dP) and dQ / d_rel_bias.
#include "bwd_dq_tc.cuh"
#include "launch_util.cuh"

namespace memvit {
namespace cuda {

MEMVIT_DEFINE_TC_LAUNCH(kDeltaTc, kFloat16, delta_tc_kernel, DqTc::kThreads)
MEMVIT_DEFINE_TC_LAUNCH(kDqTc, kFloat16, dq_tc_kernel, DqTc::kThreads)

}  // namespace cuda
}  // namespace memvit
