// The end of every Google Benchmark program here: the processor's model and the code path the program chose, on
// standard error and in the report's context, then the benchmarks the command line selects.
#pragma once

#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "cpuinfo.hpp"

namespace fc25::bench {

// context: (name, value) pairs after the CPU model, e.g. {"kernels", "avx512"}. Returns main's exit code.
inline int run_benchmarks(int argc, char** argv, const std::vector<std::pair<std::string, std::string>>& context) {
  const std::string cpu = cpu_model();
  std::cerr << "cpu: " << cpu;
  benchmark::AddCustomContext("cpu", cpu);
  for (const auto& [name, value] : context) {
    std::cerr << ", " << name << ": " << value;
    benchmark::AddCustomContext(name, value);
  }
  std::cerr << "\n";
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace fc25::bench
