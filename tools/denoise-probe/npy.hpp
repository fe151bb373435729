#pragma once
// Minimal NPY (NumPy array file) reading and writing for float32, C order — the exchange format with the
// ONNX Runtime reference runner.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fc25::probe {

struct Array {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

inline void write_npy(const std::filesystem::path& file, const Array& a) {
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(file, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  out.write("\x93NUMPY\x01\x00", 8);
  std::uint16_t len = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(a.data.data()), static_cast<std::streamsize>(a.data.size() * sizeof(float)));
}

inline Array read_npy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  char magic[8];
  in.read(magic, 8);
  if (std::string(magic, 6) != "\x93NUMPY") throw std::runtime_error(file.string() + ": not an NPY file");
  std::uint32_t len = 0;
  if (magic[6] == 1) {
    std::uint16_t l16;
    in.read(reinterpret_cast<char*>(&l16), 2);
    len = l16;
  } else {
    in.read(reinterpret_cast<char*>(&len), 4);
  }
  std::string header(len, '\0');
  in.read(header.data(), len);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(file.string() + ": expected float32 in C order");
  }
  Array a;
  auto s = header.find('(') + 1, e = header.find(')');
  std::stringstream dims(header.substr(s, e - s));
  std::string d;
  while (std::getline(dims, d, ','))
    if (d.find_first_not_of(' ') != std::string::npos) a.shape.push_back(std::stoll(d));
  std::size_t n = 1;
  for (auto x : a.shape) n *= static_cast<std::size_t>(x);
  a.data.resize(n);
  in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(n * sizeof(float)));
  if (!in) throw std::runtime_error(file.string() + ": shorter than its shape says");
  return a;
}

}  // namespace fc25::probe
