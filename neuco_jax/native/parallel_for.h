// ParallelFor: the thread split shared by the FFI handlers (minibatch_step.cc, smo.cc).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace neuco {

// Runs fn(begin, end) over [0, n) in chunks, on the calling thread and XLA's intra-op pool:
// every thread takes chunks from one counter, so the call finishes even if no task ever
// runs. By default about four chunks per thread: a thread the pool wakes late still finds
// work; `chunk` > 0 sets the chunk size (1: items of very unequal cost, taken one at a time).
template <typename Fn>
void ParallelFor(xla::ffi::ThreadPool& pool, int64_t n, Fn fn, int64_t chunk = 0) {
  struct Shared {
    Shared(Fn f, int64_t n, int64_t chunk) : fn(std::move(f)), n(n), chunk(chunk), n_chunks((n + chunk - 1) / chunk) {}
    Fn fn;
    const int64_t n, chunk, n_chunks;
    std::atomic<int64_t> next{0}, done{0};
    void Work() {
      for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
        fn(c * chunk, std::min(n, (c + 1) * chunk));
        done.fetch_add(1, std::memory_order_release);
      }
    }
  };
  const int64_t workers = std::max<int64_t>(1, pool.num_threads());
  if (chunk <= 0) chunk = std::max<int64_t>(1, (n + 4 * workers - 1) / (4 * workers));
  auto sh = std::make_shared<Shared>(std::move(fn), n, chunk);
  for (int64_t t = 1; t < std::min(workers, sh->n_chunks); ++t) pool.Schedule([sh] { sh->Work(); });
  sh->Work();
  while (sh->done.load(std::memory_order_acquire) < sh->n_chunks) std::this_thread::yield();
}

}  // namespace neuco
