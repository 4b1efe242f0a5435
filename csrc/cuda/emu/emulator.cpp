// Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
#include "cuda/emu/emulator.h"

#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace emu {
namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "memvit CUDA emulator: %s\n", what);
  std::abort();
}

struct Barrier {
  int size = 0;
  int count = 0;
  long generation = 0;
};

struct Copy {
  void* dst;
  const void* src;
  int bytes, src_bytes;
};

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  int tid = 0;
  bool done = false;
  std::vector<std::vector<Copy>> groups;  // committed cp.async groups, oldest first
  std::vector<Copy> open;                 // not yet committed
};

struct Warp {
  Barrier bar;
  float f[32];
  const void* ptr[32];
  uint32_t a[32][4];
  uint32_t b[32][2];
  float c[32][4];
};

struct State {
  int block = 0, grid = 0, threads = 0, order = 0;
  std::vector<unsigned char> smem_storage;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  Barrier bar;
  std::vector<Warp> warps;
  std::vector<std::unique_ptr<Fiber>> fibers;
  Fiber* current = nullptr;
  ucontext_t scheduler;
  const std::function<void()>* body = nullptr;
  long progress = 0;
};

State g;

void yield() { swapcontext(&g.current->ctx, &g.scheduler); }

void wait(Barrier& b) {
  const long gen = b.generation;
  ++g.progress;
  if (++b.count == b.size) {
    b.count = 0;
    ++b.generation;
    ++g.progress;
    return;
  }
  while (b.generation == gen) yield();
}

Warp& my_warp() { return g.warps[g.current->tid / 32]; }
int lane() { return g.current->tid % 32; }

void entry() {
  (*g.body)();
  g.current->done = true;
  ++g.progress;
}

bool in_smem(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  return c >= g.smem && c + bytes <= g.smem + g.smem_bytes;
}

void run_copies(std::vector<Copy>& copies) {
  for (const Copy& c : copies) {
    std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
  }
  copies.clear();
}

float bits_to_float(uint16_t bits, bool bf16) { return bf16 ? to_float(BF16{bits}) : to_float(F16{bits}); }

}  // namespace

int thread_index() { return g.current->tid; }
int block_index() { return g.block; }
int grid_size() { return g.grid; }
void* shared_memory() { return g.smem; }
void set_schedule(int order) { g.order = order; }

void sync_threads() { wait(g.bar); }
void sync_warp() { wait(my_warp().bar); }

float shfl_xor(float v, int mask) {
  Warp& w = my_warp();
  w.f[lane()] = v;
  wait(w.bar);
  const float r = w.f[lane() ^ mask];
  wait(w.bar);
  return r;
}

void cp_async(void* dst, const void* src, int bytes, int src_bytes) {
  if (!in_smem(dst, bytes)) fail("cp.async destination outside shared memory");
  if (reinterpret_cast<uintptr_t>(dst) % bytes || reinterpret_cast<uintptr_t>(src) % bytes)
    fail("cp.async address not aligned to its size");
  g.current->open.push_back(Copy{dst, src, bytes, src_bytes});
}

void cp_async_commit() {
  g.current->groups.push_back(std::move(g.current->open));
  g.current->open.clear();
}

void cp_async_wait(int pending) {
  auto& groups = g.current->groups;
  while (static_cast<int>(groups.size()) > pending) {
    run_copies(groups.front());
    groups.erase(groups.begin());
  }
}

void ldmatrix_x4(uint32_t (&r)[4], const void* p, bool trans) {
  if (!in_smem(p, 16)) fail("ldmatrix address outside shared memory");
  if (reinterpret_cast<uintptr_t>(p) % 16) fail("ldmatrix row address not 16-byte aligned");
  Warp& w = my_warp();
  const int l = lane();
  w.ptr[l] = p;
  wait(w.bar);
  for (int i = 0; i < 4; ++i) {
    // Matrix i's rows come from lanes 8i .. 8i+7. Plain: this lane gets row l/4, elements
    // 2(l%4), 2(l%4)+1. Transposed: elements (2(l%4), l/4) and (2(l%4)+1, l/4).
    uint16_t lo, hi;
    if (!trans) {
      const auto* row = static_cast<const uint16_t*>(w.ptr[8 * i + l / 4]);
      lo = row[2 * (l % 4)];
      hi = row[2 * (l % 4) + 1];
    } else {
      lo = static_cast<const uint16_t*>(w.ptr[8 * i + 2 * (l % 4)])[l / 4];
      hi = static_cast<const uint16_t*>(w.ptr[8 * i + 2 * (l % 4) + 1])[l / 4];
    }
    r[i] = uint32_t(lo) | (uint32_t(hi) << 16);
  }
  wait(w.bar);
}

void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, bool bf16) {
  Warp& w = my_warp();
  const int l = lane();
  for (int i = 0; i < 4; ++i) {
    w.a[l][i] = a[i];
    w.c[l][i] = d[i];
  }
  w.b[l][0] = b0;
  w.b[l][1] = b1;
  wait(w.bar);
  // PTX ISA, mma.m16n8k16 (.bf16/.f16): lane = 4 * group + t.
  //   A: reg0 (row g, cols 2t, 2t+1), reg1 (row g+8, same cols), reg2 (row g, cols 2t+8, +9), reg3 (row g+8, ...)
  //   B: reg0 (rows k = 2t, 2t+1, col n = g), reg1 (rows 2t+8, 2t+9)
  //   C/D: (row g, cols 2t, 2t+1), (row g+8, cols 2t, 2t+1)
  float A[16][16], B[16][8];
  for (int x = 0; x < 32; ++x) {
    const int gg = x / 4, t = x % 4;
    auto lo = [&](uint32_t v) { return bits_to_float(uint16_t(v & 0xffff), bf16); };
    auto hi = [&](uint32_t v) { return bits_to_float(uint16_t(v >> 16), bf16); };
    A[gg][2 * t] = lo(w.a[x][0]);
    A[gg][2 * t + 1] = hi(w.a[x][0]);
    A[gg + 8][2 * t] = lo(w.a[x][1]);
    A[gg + 8][2 * t + 1] = hi(w.a[x][1]);
    A[gg][2 * t + 8] = lo(w.a[x][2]);
    A[gg][2 * t + 9] = hi(w.a[x][2]);
    A[gg + 8][2 * t + 8] = lo(w.a[x][3]);
    A[gg + 8][2 * t + 9] = hi(w.a[x][3]);
    B[2 * t][gg] = lo(w.b[x][0]);
    B[2 * t + 1][gg] = hi(w.b[x][0]);
    B[2 * t + 8][gg] = lo(w.b[x][1]);
    B[2 * t + 9][gg] = hi(w.b[x][1]);
  }
  const int gg = l / 4, t = l % 4;
  const int rows[4] = {gg, gg, gg + 8, gg + 8};
  const int cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int i = 0; i < 4; ++i) {
    float acc = w.c[l][i];
    for (int k = 0; k < 16; ++k) acc += A[rows[i]][k] * B[k][cols[i]];
    d[i] = acc;
  }
  wait(w.bar);
}

void launch(long long grid, int threads, size_t smem, const std::function<void()>& body) {
  if (threads % 32) fail("block size must be a multiple of 32");
  constexpr size_t kStack = 512 * 1024;
  g.grid = static_cast<int>(grid);
  g.threads = threads;
  g.body = &body;
  g.smem_bytes = smem;
  g.smem_storage.assign(smem + 128, 0);
  g.smem = g.smem_storage.data() + (128 - reinterpret_cast<uintptr_t>(g.smem_storage.data()) % 128) % 128;
  g.fibers.resize(threads);
  for (int t = 0; t < threads; ++t) {
    if (!g.fibers[t]) g.fibers[t] = std::make_unique<Fiber>();
    g.fibers[t]->stack.resize(kStack);
  }
  for (int blk = 0; blk < grid; ++blk) {
    g.block = blk;
    std::memset(g.smem, 0xff, smem);
    g.bar = Barrier{threads, 0, 0};
    g.warps.assign(threads / 32, Warp{});
    for (auto& w : g.warps) w.bar = Barrier{32, 0, 0};
    for (int t = 0; t < threads; ++t) {
      Fiber& f = *g.fibers[t];
      f.tid = t;
      f.done = false;
      f.groups.clear();
      f.open.clear();
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack.data();
      f.ctx.uc_stack.ss_size = f.stack.size();
      f.ctx.uc_link = &g.scheduler;
      makecontext(&f.ctx, entry, 0);
    }
    int alive = threads;
    while (alive > 0) {
      const long before = g.progress;
      for (int i = 0; i < threads; ++i) {
        Fiber& f = *g.fibers[g.order == 0 ? i : threads - 1 - i];
        if (f.done) continue;
        g.current = &f;
        swapcontext(&g.scheduler, &f.ctx);
        if (f.done) --alive;
      }
      if (alive > 0 && g.progress == before) fail("deadlock: every live thread waits at a barrier");
    }
    g.current = nullptr;
  }
}

}  // namespace emu
