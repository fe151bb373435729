#include "denoise/model/onnx_graph.hpp"

#include <cstring>
#include <fstream>
#include <numeric>

#include <onnx/onnx_pb.h>

#include "denoise/denoise.hpp"

namespace fc25::denoise::model {

std::size_t Tensor::size() const {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1},
                         [](std::size_t a, std::int64_t b) { return a * static_cast<std::size_t>(b); });
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

Tensor convert(const onnx::TensorProto& t, const std::filesystem::path& file) {
  Tensor out;
  out.shape.assign(t.dims().begin(), t.dims().end());
  const auto n = out.size();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (t.has_raw_data()) {
        if (t.raw_data().size() != n * sizeof(float)) {
          throw ModelLoadError(file.string() + ": tensor '" + t.name() + "' holds " +
                               std::to_string(t.raw_data().size()) + " bytes, expected " +
                               std::to_string(n * sizeof(float)) + " for shape " + shape_string(out.shape));
        }
        out.data.resize(n);
        std::memcpy(out.data.data(), t.raw_data().data(), n * sizeof(float));
      } else {
        out.data.assign(t.float_data().begin(), t.float_data().end());
      }
      break;
    case onnx::TensorProto::INT64:
      if (t.has_raw_data()) {
        out.ints.resize(t.raw_data().size() / sizeof(std::int64_t));
        std::memcpy(out.ints.data(), t.raw_data().data(), out.ints.size() * sizeof(std::int64_t));
      } else {
        out.ints.assign(t.int64_data().begin(), t.int64_data().end());
      }
      break;
    case onnx::TensorProto::INT32:
      out.ints.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    default:
      break;  // not a weight the engine reads
  }
  return out;
}

ValueInfo convert(const onnx::ValueInfoProto& v) {
  ValueInfo out{v.name(), {}};
  for (auto& d : v.type().tensor_type().shape().dim())
    out.dims.push_back(d.has_dim_value() ? std::to_string(d.dim_value()) : d.dim_param());
  return out;
}

}  // namespace

Graph read_onnx(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ModelLoadError(file.string() + ": cannot be read (missing, or no permission)");
  onnx::ModelProto proto;
  if (!proto.ParseFromIstream(&in) || !proto.has_graph() || proto.graph().node_size() == 0) {
    throw ModelLoadError(file.string() + ": not a valid ONNX model (the file is damaged or of another kind)");
  }
  Graph g;
  g.file = file;
  const auto& graph = proto.graph();
  for (auto& t : graph.initializer()) g.tensors[t.name()] = convert(t, file);
  for (auto& n : graph.node()) {
    Node node{n.op_type(), n.name(), {n.input().begin(), n.input().end()}, {n.output().begin(), n.output().end()}, {}, {}, {}};
    for (auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::INT) node.ints[a.name()] = {a.i()};
      else if (a.type() == onnx::AttributeProto::INTS) node.ints[a.name()].assign(a.ints().begin(), a.ints().end());
      else if (a.type() == onnx::AttributeProto::FLOAT) node.floats[a.name()] = a.f();
      else if (a.type() == onnx::AttributeProto::STRING) node.strings[a.name()] = a.s();
      else if (a.type() == onnx::AttributeProto::TENSOR && n.op_type() == "Constant" && n.output_size() == 1) {
        g.tensors[n.output(0)] = convert(a.t(), file);
      }
    }
    g.nodes.push_back(std::move(node));
  }
  for (auto& v : graph.input()) g.inputs.push_back(convert(v));
  for (auto& v : graph.output()) g.outputs.push_back(convert(v));
  return g;
}

const Node& Graph::node(const std::string& name) const {
  for (auto& n : nodes)
    if (n.name == name) return n;
  throw ModelLoadError(file.string() + ": has no node '" + name + "' (is this the DeepFilterNet3 export?)");
}

const Tensor& Graph::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw ModelLoadError(file.string() + ": has no tensor '" + name + "'");
  return it->second;
}

const Tensor& Graph::weight(const std::string& node_name, std::size_t index,
                            const std::vector<std::int64_t>& shape) const {
  const auto& n = node(node_name);
  if (index >= n.inputs.size()) {
    throw ModelLoadError(file.string() + ": node '" + node_name + "' has no input " + std::to_string(index));
  }
  const auto& t = tensor(n.inputs[index]);
  if (t.shape != shape) {
    throw ModelLoadError(file.string() + ": tensor '" + n.inputs[index] + "' (input " + std::to_string(index) +
                         " of " + node_name + ") has wrong shape " + shape_string(t.shape) + ", expected " +
                         shape_string(shape));
  }
  return t;
}

const ValueInfo& Graph::input(const std::string& name) const {
  for (auto& v : inputs)
    if (v.name == name) return v;
  throw ModelLoadError(file.string() + ": has no input '" + name + "'");
}

}  // namespace fc25::denoise::model
