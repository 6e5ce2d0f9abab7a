// Internal to search: a bounded selection of the k best (key, index) pairs, smaller key first,
// ties by smaller index. The k best of a set under this total order are unique, so the result
// does not depend on the order of push() calls.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/distance.h"

namespace mmembed::search {

struct Neighbour {
  float key;
  std::int64_t index;
};

inline bool closer(const Neighbour& a, const Neighbour& b) {
  return a.key < b.key || (a.key == b.key && a.index < b.index);
}

class TopK {
 public:
  explicit TopK(std::int64_t k) : k_(k) { heap_.reserve(k); }
  void clear() { heap_.clear(); }
  std::int64_t size() const { return static_cast<std::int64_t>(heap_.size()); }
  bool full() const { return size() == k_; }
  // The worst kept entry (valid when full()).
  const Neighbour& worst() const { return heap_.front(); }

  void push(float key, std::int64_t index) {
    const Neighbour e{key, index};
    if (size() < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), closer);
    } else if (k_ > 0 && closer(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), closer);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), closer);
    }
  }

  // Sorted closest first; consumes the heap.
  std::vector<Neighbour>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), closer);
    return heap_;
  }

  // labels/values [k]: closest first, values in the metric's units; tail -1 / NaN.
  void write_sorted(kernels::Metric m, std::int64_t* labels, float* values) {
    std::sort_heap(heap_.begin(), heap_.end(), closer);
    for (std::int64_t r = 0; r < k_; ++r) {
      if (r < size()) {
        labels[r] = heap_[r].index;
        values[r] = kernels::higher_is_closer(m) ? -heap_[r].key : heap_[r].key;
      } else {
        labels[r] = -1;
        values[r] = std::numeric_limits<float>::quiet_NaN();
      }
    }
    heap_.clear();
  }

 private:
  std::int64_t k_;
  std::vector<Neighbour> heap_;
};

}  // namespace mmembed::search
