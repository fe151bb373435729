#pragma once
// An ONNX graph read for its weights: every initializer and Constant-node tensor by name, and the nodes (op,
// name, inputs, outputs, attributes), so the engine can find each layer's weights by the node that uses them —
// the export names many weights after their consumer (onnx::Conv_288), the module path names the node.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fc25::denoise::model {

struct Tensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;          // float tensors
  std::vector<std::int64_t> ints;   // integer tensors (shapes, axes)
  std::size_t size() const;
};

struct Node {
  std::string op, name;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, std::vector<std::int64_t>> ints;   // integer and integer-list attributes
  std::map<std::string, float> floats;
  std::map<std::string, std::string> strings;
};

struct ValueInfo {
  std::string name;
  std::vector<std::string> dims;   // a number, or the symbolic name of a dynamic dimension
};

struct Graph {
  std::filesystem::path file;
  std::map<std::string, Tensor> tensors;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs, outputs;

  const Node& node(const std::string& name) const;                    // throws ModelLoadError naming it
  const Tensor& tensor(const std::string& name) const;                // throws ModelLoadError naming it
  // The weight feeding input `index` of node `name`, checked against `shape`.
  const Tensor& weight(const std::string& node_name, std::size_t index, const std::vector<std::int64_t>& shape) const;
  const ValueInfo& input(const std::string& name) const;
};

// Reads an ONNX file. Throws ModelLoadError naming the file when it is missing or not an ONNX model.
Graph read_onnx(const std::filesystem::path& file);

std::string shape_string(const std::vector<std::int64_t>& shape);

}  // namespace fc25::denoise::model
