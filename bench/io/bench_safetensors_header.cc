// Safetensors header parsing with many small tensors (issue #18, item 9): the JSON parse, the
// entry checks and the contiguity check must stay linear-ish in the number of tensors.
//
//   build/bench/bench_safetensors_header --benchmark_filter='/1000000'
//
// Each case builds a file image in memory (8-byte length, the JSON header, then one F32 element
// per tensor) once, outside the timed loop, and times parse_safetensors on it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace {

std::vector<std::uint8_t> many_tensors(std::int64_t count) {
  std::string header = "{";
  for (std::int64_t i = 0; i < count; ++i) {
    if (i > 0) header += ',';
    header += "\"encoder.layer." + std::to_string(i) + ".bias\":{\"dtype\":\"F32\",\"shape\":[1],";
    header += "\"data_offsets\":[" + std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<std::uint8_t> file(8 + header.size() + 4 * static_cast<std::size_t>(count), 0);
  for (int b = 0; b < 8; ++b) file[b] = static_cast<std::uint8_t>(header.size() >> (8 * b));
  std::copy(header.begin(), header.end(), file.begin() + 8);
  return file;
}

void BM_ParseSafetensorsHeader(benchmark::State& state) {
  const std::vector<std::uint8_t> file = many_tensors(state.range(0));
  for (auto _ : state) {
    mmembed::io::SafetensorsHeader h = mmembed::io::parse_safetensors(file, "bench.safetensors");
    benchmark::DoNotOptimize(h.entries.data());
  }
  state.counters["header_MiB"] = static_cast<double>(file.size()) / (1 << 20);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_ParseSafetensorsHeader)
    ->Arg(10000)
    ->Arg(40000)
    ->Arg(300000)
    ->Arg(1000000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

BENCHMARK_MAIN();
