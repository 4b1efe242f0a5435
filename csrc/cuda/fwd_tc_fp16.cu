// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
// Forward tensor-core kernels, fp16, every tensor-core head dim of kernel_table.h.
#include "fwd_tc.cuh"
#include "launch_util.cuh"

namespace memvit {
namespace cuda {

MEMVIT_DEFINE_TC_LAUNCH(kFwdTc, kFloat16, fwd_tc_kernel, FwdTc::kThreads)

}  // namespace cuda
}  // namespace memvit
