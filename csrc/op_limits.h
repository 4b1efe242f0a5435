// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
//
// Limits of the op shared by every backend (plain C++, no ATen: the CUDA kernels include it).
#pragma once

namespace memvit {

// Key/value segments per call (memory clips + the current clip): the CUDA parameter block
// holds this many segment descriptors.
constexpr int kMaxSegments = 16;

}  // namespace memvit
