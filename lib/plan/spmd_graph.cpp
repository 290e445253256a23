// Model graphs for spmd-plan: JSON reading with shape inference and checks, generators.
#include "plan/spmd_graph.hpp"

#include <numeric>

#include "core/error.hpp"

namespace mlsys::plan {

namespace {

using core::Json;

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

int64_t prod(const std::vector<int64_t>& s, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < s.size() && i < to; ++i) p *= s[i];
  return p;
}

// Builds a graph op by op; every op's inputs are checked and its output shape inferred.
// Errors are core::InputError "<where>: expected ..., found ...".
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string name) { g_.name = std::move(name); }

  int tensor(const std::string& where, const std::string& name, SpmdTensorKind kind, std::vector<int64_t> shape,
             int64_t elem_bytes, std::vector<int64_t> granule = {}, int data_dims = 1) {
    if (name.empty()) fail(where + ".name", "a non-empty tensor name", "\"\"");
    if (g_.find(name) >= 0) fail(where + ".name", "a tensor name not used before", "'" + core::excerpt(name) + "' again");
    if (shape.size() > 6) fail(where + ".shape", "at most 6 dims", std::to_string(shape.size()) + " dims");
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] < 1 || shape[i] > (int64_t{1} << 40)) {
        fail(where + ".shape[" + std::to_string(i) + "]", "a length in [1, 2^40]", std::to_string(shape[i]));
      }
    }
    if (granule.empty()) granule.assign(shape.size(), 1);
    if (granule.size() != shape.size()) {
      fail(where + ".granule", "one granule per dim (" + std::to_string(shape.size()) + ")", std::to_string(granule.size()));
    }
    for (size_t i = 0; i < shape.size(); ++i) {
      if (granule[i] < 1 || shape[i] % granule[i] != 0) {
        fail(where + ".granule[" + std::to_string(i) + "]", "a divisor of the dim's length " + std::to_string(shape[i]),
             std::to_string(granule[i]));
      }
    }
    if (data_dims < 0 || data_dims > static_cast<int>(shape.size())) {
      fail(where + ".data_dims", "a count in [0, " + std::to_string(shape.size()) + "]", std::to_string(data_dims));
    }
    SpmdTensor t;
    t.name = name;
    t.kind = kind;
    t.shape = std::move(shape);
    t.elem_bytes = elem_bytes;
    t.granule = std::move(granule);
    t.data_dims = data_dims;
    g_.tensors.push_back(std::move(t));
    int64_t total = 1;
    for (auto d : g_.tensors.back().shape) {
      if (total > (int64_t{1} << 50) / d) fail(where + ".shape", "at most 2^50 elements", shape_str(g_.tensors.back().shape));
      total *= d;
    }
    return static_cast<int>(g_.tensors.size()) - 1;
  }

  // Adds an op reading `inputs` (names) and producing `output`; returns its index.
  int op(const std::string& where, SpmdOp o, const std::vector<std::string>& inputs, const std::string& output) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      const int t = g_.find(inputs[i]);
      if (t < 0) {
        fail(where + ".inputs[" + std::to_string(i) + "]", "the name of an input, parameter or earlier op output",
             "'" + core::excerpt(inputs[i]) + "'");
      }
      if (g_.tensors[static_cast<size_t>(t)].kind == SpmdTensorKind::param &&
          !g_.tensors[static_cast<size_t>(t)].consumers.empty()) {
        fail(where + ".inputs[" + std::to_string(i) + "]", "a parameter used by one op only",
             "'" + core::excerpt(inputs[i]) + "' already used by op '" +
                 g_.ops[static_cast<size_t>(g_.tensors[static_cast<size_t>(t)].consumers[0])].name + "'");
      }
      o.inputs.push_back(t);
    }
    if (g_.loss >= 0) fail(where, "no op after the loss (cross_entropy ends the graph)", "op '" + core::excerpt(o.name) + "'");
    infer(where, o, output);
    const int idx = static_cast<int>(g_.ops.size());
    for (int t : o.inputs) g_.tensors[static_cast<size_t>(t)].consumers.push_back(idx);
    g_.tensors[static_cast<size_t>(o.output)].producer = idx;
    g_.ops.push_back(std::move(o));
    return idx;
  }

  SpmdGraph finish(const std::string& where) {
    if (g_.ops.empty()) fail(where + ": ops", "at least one op", "none");
    if (g_.loss < 0) fail(where + ": ops", "a last op of kind cross_entropy (the loss)", to_string(g_.ops.back().kind));
    for (const auto& t : g_.tensors) {
      if (t.kind != SpmdTensorKind::activation && t.consumers.empty()) {
        fail(where, "every input and parameter used by an op", "'" + core::excerpt(t.name) + "' unused");
      }
    }
    return std::move(g_);
  }

  [[noreturn]] static void fail(const std::string& where, const std::string& expected, const std::string& found) {
    throw core::InputError(where + ": expected " + expected + ", found " + found);
  }

 private:
  const SpmdTensor& in(const SpmdOp& o, size_t i) const { return g_.tensors[static_cast<size_t>(o.inputs[i])]; }

  void expect_shape(const std::string& where, size_t i, const SpmdTensor& t, const std::vector<int64_t>& want,
                    const std::string& role) const {
    if (t.shape != want) {
      fail(where + ".inputs[" + std::to_string(i) + "]", role + " of shape " + shape_str(want),
           "'" + t.name + "' of shape " + shape_str(t.shape));
    }
  }
  void expect_granule(const std::string& where, size_t i, const SpmdTensor& t, size_t dim, int64_t want) const {
    if (t.granule[dim] != want) {
      fail(where + ".inputs[" + std::to_string(i) + "]", "granule " + std::to_string(want) + " on dim " +
               std::to_string(dim) + " (shards of linked dims must match)",
           "'" + t.name + "' with granule " + std::to_string(t.granule[dim]));
    }
  }
  void expect_count(const std::string& where, const SpmdOp& o, size_t n) const {
    if (o.inputs.size() != n) {
      fail(where + ".inputs", std::to_string(n) + " inputs for " + to_string(o.kind), std::to_string(o.inputs.size()));
    }
  }
  void expect_rank(const std::string& where, size_t i, const SpmdTensor& t, int lo, int hi, const std::string& role) const {
    if (t.rank() < lo || t.rank() > hi) {
      fail(where + ".inputs[" + std::to_string(i) + "]",
           role + " with " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)) + " dims",
           "'" + t.name + "' of shape " + shape_str(t.shape));
    }
  }
  void expect_float(const std::string& where, size_t i, const SpmdTensor& t) const {
    if (t.kind == SpmdTensorKind::label) {
      fail(where + ".inputs[" + std::to_string(i) + "]", "a floating-point tensor", "label '" + t.name + "'");
    }
  }

  void infer(const std::string& where, SpmdOp& o, const std::string& output) {
    std::vector<int64_t> shape, gran;
    int data_dims = 1;
    int64_t elem = 4;
    const auto k = o.kind;
    if (k != SpmdOpKind::embedding && k != SpmdOpKind::cross_entropy) {
      for (size_t i = 0; i < o.inputs.size(); ++i) expect_float(where, i, in(o, i));
    }
    if (!o.inputs.empty()) elem = in(o, 0).elem_bytes;
    switch (k) {
      case SpmdOpKind::linear: {
        expect_count(where, o, 3);
        const auto& x = in(o, 0);
        const auto& w = in(o, 1);
        expect_rank(where, 0, x, 1, 5, "x");
        expect_rank(where, 1, w, 2, 2, "a weight [out, in]");
        const int64_t fin = x.shape.back();
        const int64_t fout = w.shape[0];
        expect_shape(where, 1, w, {fout, fin}, "a weight [out, in]");
        expect_shape(where, 2, in(o, 2), {fout}, "a bias [out]");
        expect_granule(where, 1, w, 1, x.granule.back());
        expect_granule(where, 2, in(o, 2), 0, w.granule[0]);
        shape = x.shape;
        shape.back() = fout;
        gran = x.granule;
        gran.back() = w.granule[0];
        data_dims = std::min(x.data_dims, x.rank() - 1);
        o.flops = 2.0 * static_cast<double>(x.numel()) * static_cast<double>(fout);
        elem = x.elem_bytes;
        break;
      }
      case SpmdOpKind::matmul: {
        expect_count(where, o, 2);
        const auto& a = in(o, 0);
        const auto& b = in(o, 1);
        expect_rank(where, 0, a, 2, 5, "A [..., m, k]");
        std::vector<int64_t> want(a.shape.begin(), a.shape.end() - 1);
        want.back() = a.shape.back();
        want.push_back(b.rank() == a.rank() ? b.shape.back() : 1);
        expect_shape(where, 1, b, want, "B [..., k, n]");
        expect_granule(where, 1, b, static_cast<size_t>(b.rank() - 2), a.granule.back());
        shape = a.shape;
        shape.back() = b.shape.back();
        gran = a.granule;
        gran.back() = b.granule.back();
        data_dims = std::min(a.data_dims, a.rank() - 2);
        o.flops = 2.0 * static_cast<double>(a.numel()) * static_cast<double>(b.shape.back());
        break;
      }
      case SpmdOpKind::attention: {
        expect_count(where, o, 3);
        const auto& q = in(o, 0);
        expect_rank(where, 0, q, 3, 3, "q [batch, seq, embed]");
        for (size_t i = 1; i < 3; ++i) {
          expect_shape(where, i, in(o, i), q.shape, "k/v like q");
          expect_granule(where, i, in(o, i), 2, q.granule[2]);
        }
        if (o.heads < 1 || q.shape[2] % o.heads != 0) {
          fail(where + ".heads", "a divisor of the embedding size " + std::to_string(q.shape[2]), std::to_string(o.heads));
        }
        const int64_t hd = q.shape[2] / o.heads;
        if (q.granule[2] % hd != 0) {
          fail(where + ".inputs[0]", "granule a multiple of the head size " + std::to_string(hd) + " on dim 2",
               "'" + q.name + "' with granule " + std::to_string(q.granule[2]));
        }
        shape = q.shape;
        gran = q.granule;
        data_dims = q.data_dims;
        const auto B = static_cast<double>(q.shape[0]), S = static_cast<double>(q.shape[1]),
                   E = static_cast<double>(q.shape[2]);
        o.flops = 4.0 * B * S * S * E + 5.0 * B * static_cast<double>(o.heads) * S * S;
        break;
      }
      case SpmdOpKind::layer_norm: {
        expect_count(where, o, 3);
        const auto& x = in(o, 0);
        expect_rank(where, 0, x, 1, 5, "x");
        expect_shape(where, 1, in(o, 1), {x.shape.back()}, "a scale [features]");
        expect_shape(where, 2, in(o, 2), {x.shape.back()}, "a shift [features]");
        shape = x.shape;
        gran = x.granule;
        data_dims = x.data_dims;
        o.flops = 5.0 * static_cast<double>(x.numel());
        break;
      }
      case SpmdOpKind::gelu:
      case SpmdOpKind::relu: {
        expect_count(where, o, 1);
        shape = in(o, 0).shape;
        gran = in(o, 0).granule;
        data_dims = in(o, 0).data_dims;
        o.flops = (k == SpmdOpKind::gelu ? 8.0 : 1.0) * static_cast<double>(in(o, 0).numel());
        break;
      }
      case SpmdOpKind::add: {
        expect_count(where, o, 2);
        expect_shape(where, 1, in(o, 1), in(o, 0).shape, "b like a");
        for (size_t d = 0; d < in(o, 0).shape.size(); ++d) expect_granule(where, 1, in(o, 1), d, in(o, 0).granule[d]);
        shape = in(o, 0).shape;
        gran = in(o, 0).granule;
        data_dims = in(o, 0).data_dims;
        o.flops = static_cast<double>(in(o, 0).numel());
        break;
      }
      case SpmdOpKind::embedding: {
        expect_count(where, o, 2);
        const auto& ids = in(o, 0);
        const auto& w = in(o, 1);
        if (ids.kind == SpmdTensorKind::param || ids.kind == SpmdTensorKind::activation) {
          fail(where + ".inputs[0]", "an input of token ids", "'" + ids.name + "'");
        }
        expect_rank(where, 0, ids, 1, 3, "token ids");
        expect_rank(where, 1, w, 2, 2, "a table [vocab, embed]");
        expect_float(where, 1, w);
        shape = ids.shape;
        shape.push_back(w.shape[1]);
        gran = ids.granule;
        gran.push_back(w.granule[1]);
        data_dims = ids.rank();
        elem = w.elem_bytes;
        o.flops = static_cast<double>(ids.numel() * w.shape[1]);
        break;
      }
      case SpmdOpKind::conv2d: {
        expect_count(where, o, 3);
        const auto& x = in(o, 0);
        const auto& w = in(o, 1);
        expect_rank(where, 0, x, 4, 4, "x [N, C, H, W]");
        expect_rank(where, 1, w, 4, 4, "a weight [out, in, k, k]");
        if (o.kernel < 1 || o.stride < 1 || o.padding < 0) {
          fail(where + ".kernel", "kernel >= 1, stride >= 1, padding >= 0",
               std::to_string(o.kernel) + ", " + std::to_string(o.stride) + ", " + std::to_string(o.padding));
        }
        expect_shape(where, 1, w, {w.shape[0], x.shape[1], o.kernel, o.kernel}, "a weight [out, in, k, k]");
        expect_shape(where, 2, in(o, 2), {w.shape[0]}, "a bias [out]");
        expect_granule(where, 1, w, 1, x.granule[1]);
        expect_granule(where, 2, in(o, 2), 0, w.granule[0]);
        const int64_t h = (x.shape[2] + 2 * o.padding - o.kernel) / o.stride + 1;
        const int64_t wd = (x.shape[3] + 2 * o.padding - o.kernel) / o.stride + 1;
        if (h < 1 || wd < 1) fail(where + ".kernel", "a kernel that fits the image", std::to_string(o.kernel));
        shape = {x.shape[0], w.shape[0], h, wd};
        gran = {x.granule[0], w.granule[0], 1, 1};
        o.flops = 2.0 * static_cast<double>(prod(shape)) * static_cast<double>(x.shape[1] * o.kernel * o.kernel);
        break;
      }
      case SpmdOpKind::max_pool2d: {
        expect_count(where, o, 1);
        const auto& x = in(o, 0);
        expect_rank(where, 0, x, 4, 4, "x [N, C, H, W]");
        if (o.kernel < 1 || o.stride < 1) fail(where + ".kernel", "kernel and stride >= 1", std::to_string(o.kernel));
        const int64_t h = (x.shape[2] - o.kernel) / o.stride + 1;
        const int64_t wd = (x.shape[3] - o.kernel) / o.stride + 1;
        if (x.shape[2] < o.kernel || x.shape[3] < o.kernel) {
          fail(where + ".kernel", "a window that fits the image " + shape_str(x.shape), std::to_string(o.kernel));
        }
        shape = {x.shape[0], x.shape[1], h, wd};
        gran = {x.granule[0], x.granule[1], 1, 1};
        o.flops = static_cast<double>(x.numel());
        break;
      }
      case SpmdOpKind::flatten: {
        expect_count(where, o, 1);
        const auto& x = in(o, 0);
        expect_rank(where, 0, x, 2, 6, "x [N, ...]");
        shape = {x.shape[0], prod(x.shape, 1)};
        gran = {x.granule[0], x.granule[1] * prod(x.shape, 2)};
        o.flops = 0;
        break;
      }
      case SpmdOpKind::mean: {
        expect_count(where, o, 1);
        const auto& x = in(o, 0);
        expect_rank(where, 0, x, 2, 6, "x");
        if (o.dim < 0 || o.dim >= x.rank()) {
          fail(where + ".dim", "a dim in [0, " + std::to_string(x.rank()) + ")", std::to_string(o.dim));
        }
        shape = x.shape;
        gran = x.granule;
        shape.erase(shape.begin() + o.dim);
        gran.erase(gran.begin() + o.dim);
        data_dims = x.data_dims - (o.dim < x.data_dims ? 1 : 0);
        o.flops = static_cast<double>(x.numel());
        break;
      }
      case SpmdOpKind::cross_entropy: {
        expect_count(where, o, 2);
        const auto& x = in(o, 0);
        const auto& y = in(o, 1);
        expect_float(where, 0, x);
        expect_rank(where, 0, x, 2, 4, "logits [..., classes]");
        if (y.kind != SpmdTensorKind::label) fail(where + ".inputs[1]", "a label input", "'" + y.name + "'");
        expect_shape(where, 1, y, std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1), "labels");
        for (size_t d = 0; d + 1 < x.shape.size(); ++d) expect_granule(where, 1, y, d, x.granule[d]);
        data_dims = 0;
        o.flops = 5.0 * static_cast<double>(x.numel());
        break;
      }
      case SpmdOpKind::moe: {
        expect_count(where, o, 4);
        const auto& x = in(o, 0);
        expect_rank(where, 0, x, 2, 4, "tokens [..., embed]");
        const int64_t e = x.shape.back();
        expect_rank(where, 1, in(o, 1), 2, 2, "a gate [embed, experts]");
        const int64_t nx = in(o, 1).shape[1];
        expect_shape(where, 1, in(o, 1), {e, nx}, "a gate [embed, experts]");
        expect_rank(where, 2, in(o, 2), 3, 3, "expert weights [experts, embed, ffn]");
        const int64_t f = in(o, 2).shape[2];
        expect_shape(where, 2, in(o, 2), {nx, e, f}, "expert weights [experts, embed, ffn]");
        expect_shape(where, 3, in(o, 3), {nx, f, e}, "expert weights [experts, ffn, embed]");
        expect_granule(where, 3, in(o, 3), 0, in(o, 2).granule[0]);
        if (o.top_k < 1 || o.top_k > nx) fail(where + ".top_k", "a value in [1, experts]", std::to_string(o.top_k));
        shape = x.shape;
        gran = x.granule;
        data_dims = x.data_dims;
        const double t = static_cast<double>(x.numel() / e);
        o.flops = 2.0 * t * static_cast<double>(e * nx) +
                  static_cast<double>(o.top_k) * 4.0 * t * static_cast<double>(e * f);
        break;
      }
    }
    if (k == SpmdOpKind::cross_entropy) {
      o.output = tensor(where + ".output", output, SpmdTensorKind::activation, {}, elem, {}, 0);
      g_.loss = o.output;
    } else {
      o.output = tensor(where + ".output", output, SpmdTensorKind::activation, shape, elem, gran,
                        std::max(0, std::min(data_dims, static_cast<int>(shape.size()))));
    }
  }

  SpmdGraph g_;
};

SpmdOpKind parse_op_kind(const std::string& s, const std::string& where) {
  static const std::vector<std::pair<std::string, SpmdOpKind>> kinds = {
      {"linear", SpmdOpKind::linear},       {"matmul", SpmdOpKind::matmul},
      {"attention", SpmdOpKind::attention}, {"layer_norm", SpmdOpKind::layer_norm},
      {"gelu", SpmdOpKind::gelu},           {"relu", SpmdOpKind::relu},
      {"add", SpmdOpKind::add},             {"embedding", SpmdOpKind::embedding},
      {"conv2d", SpmdOpKind::conv2d},       {"max_pool2d", SpmdOpKind::max_pool2d},
      {"flatten", SpmdOpKind::flatten},     {"mean", SpmdOpKind::mean},
      {"cross_entropy", SpmdOpKind::cross_entropy}, {"moe", SpmdOpKind::moe}};
  for (const auto& [n, k] : kinds) {
    if (n == s) return k;
  }
  GraphBuilder::fail(where, "one of linear, matmul, attention, layer_norm, gelu, relu, add, embedding, conv2d, "
                            "max_pool2d, flatten, mean, cross_entropy, moe",
                     "'" + core::excerpt(s) + "'");
}

// "file.json: inputs[0]" + "shape" -> "file.json: inputs[0].shape"; "file.json:" + "ops" -> "file.json: ops".
std::string join(const std::string& where, const std::string& key) {
  return !where.empty() && where.back() == ':' ? where + " " + key : where + "." + key;
}

// Typed field readers for the JSON model file: InputError naming the field.
const Json* field(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}
std::string get_string(const Json& obj, const std::string& key, const std::string& where, const std::string* dflt = nullptr) {
  const Json* v = field(obj, key);
  if (v == nullptr) {
    if (dflt) return *dflt;
    GraphBuilder::fail(join(where, key), "a string (the field is required)", "nothing");
  }
  if (!v->is_string()) GraphBuilder::fail(join(where, key), "a string", core::describe_json(*v));
  return v->get<std::string>();
}
int64_t get_int(const Json& obj, const std::string& key, const std::string& where, int64_t dflt, int64_t lo, int64_t hi) {
  const Json* v = field(obj, key);
  if (v == nullptr) return dflt;
  if (!v->is_number_integer()) GraphBuilder::fail(join(where, key), "an integer", core::describe_json(*v));
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    GraphBuilder::fail(join(where, key), "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                       std::to_string(x));
  }
  return x;
}
std::vector<int64_t> get_ints(const Json& obj, const std::string& key, const std::string& where, bool required) {
  const Json* v = field(obj, key);
  if (v == nullptr) {
    if (required) GraphBuilder::fail(join(where, key), "an array of integers (the field is required)", "nothing");
    return {};
  }
  if (!v->is_array()) GraphBuilder::fail(join(where, key), "an array of integers", core::describe_json(*v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_number_integer()) {
      GraphBuilder::fail(join(where, key) + "[" + std::to_string(i) + "]", "an integer", core::describe_json((*v)[i]));
    }
    out.push_back((*v)[i].get<int64_t>());
  }
  return out;
}
const Json& get_array(const Json& obj, const std::string& key, const std::string& where) {
  const Json* v = field(obj, key);
  if (v == nullptr || !v->is_array()) {
    GraphBuilder::fail(join(where, key), "an array", v ? core::describe_json(*v) : "nothing");
  }
  return *v;
}
void only_keys(const Json& obj, const std::vector<std::string>& keys, const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const auto& k : keys) ok = ok || k == it.key();
    if (!ok) GraphBuilder::fail(where, "only the keys of the model format", "unknown key '" + core::excerpt(it.key()) + "'");
  }
}

}  // namespace

int64_t SpmdTensor::numel() const { return prod(shape); }

int SpmdGraph::find(const std::string& tensor) const {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == tensor) return static_cast<int>(i);
  }
  return -1;
}

int64_t SpmdGraph::param_bytes() const {
  int64_t b = 0;
  for (const auto& t : tensors) {
    if (t.kind == SpmdTensorKind::param) b += t.bytes();
  }
  return b;
}

double SpmdGraph::total_flops() const {
  double f = 0;
  for (const auto& o : ops) f += o.flops;
  return f;
}

std::string to_string(SpmdOpKind k) {
  switch (k) {
    case SpmdOpKind::linear: return "linear";
    case SpmdOpKind::matmul: return "matmul";
    case SpmdOpKind::attention: return "attention";
    case SpmdOpKind::layer_norm: return "layer_norm";
    case SpmdOpKind::gelu: return "gelu";
    case SpmdOpKind::relu: return "relu";
    case SpmdOpKind::add: return "add";
    case SpmdOpKind::embedding: return "embedding";
    case SpmdOpKind::conv2d: return "conv2d";
    case SpmdOpKind::max_pool2d: return "max_pool2d";
    case SpmdOpKind::flatten: return "flatten";
    case SpmdOpKind::mean: return "mean";
    case SpmdOpKind::cross_entropy: return "cross_entropy";
    case SpmdOpKind::moe: return "moe";
  }
  return "?";
}

std::string to_string(SpmdTensorKind k) {
  switch (k) {
    case SpmdTensorKind::input: return "input";
    case SpmdTensorKind::label: return "label";
    case SpmdTensorKind::param: return "param";
    case SpmdTensorKind::activation: return "activation";
  }
  return "?";
}

int64_t dtype_bytes(const std::string& dtype) {
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float64" || dtype == "int64") return 8;
  if (dtype == "float16" || dtype == "bfloat16") return 2;
  return 0;
}

SpmdGraph graph_from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) GraphBuilder::fail(source, "a JSON object (a model graph)", core::describe_json(j));
  only_keys(j, {"name", "dtype", "inputs", "params", "ops", "program", "version", "git_commit", "created", "command", "command_line", "config"},
            source);
  const std::string dflt_name = "model", dflt_dtype = "float32";
  const std::string top = source + ":";
  GraphBuilder b(get_string(j, "name", top, &dflt_name));
  const std::string dtype = get_string(j, "dtype", top, &dflt_dtype);
  const int64_t elem = dtype_bytes(dtype);
  if (elem == 0 || dtype.starts_with("int")) {
    GraphBuilder::fail(source + ": dtype", "float32, float64, float16 or bfloat16", "'" + core::excerpt(dtype) + "'");
  }
  const Json& inputs = get_array(j, "inputs", top);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string w = source + ": inputs[" + std::to_string(i) + "]";
    if (!inputs[i].is_object()) GraphBuilder::fail(w, "an object", core::describe_json(inputs[i]));
    only_keys(inputs[i], {"name", "shape", "kind", "dtype", "granule", "data_dims"}, w);
    const std::string dk = "input";
    const std::string kind = get_string(inputs[i], "kind", w, &dk);
    if (kind != "input" && kind != "label") GraphBuilder::fail(w + ".kind", "input or label", "'" + core::excerpt(kind) + "'");
    const std::string dt_default = kind == "label" ? "int64" : dtype;
    const std::string dt = get_string(inputs[i], "dtype", w, &dt_default);
    const int64_t eb = dtype_bytes(dt);
    if (eb == 0) GraphBuilder::fail(w + ".dtype", "float32, float64, float16, bfloat16, int64 or int32", "'" + core::excerpt(dt) + "'");
    b.tensor(w, get_string(inputs[i], "name", w), kind == "label" ? SpmdTensorKind::label : SpmdTensorKind::input,
             get_ints(inputs[i], "shape", w, true), eb, get_ints(inputs[i], "granule", w, false),
             static_cast<int>(get_int(inputs[i], "data_dims", w, 1, 0, 6)));
  }
  const Json& params = get_array(j, "params", top);
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string w = source + ": params[" + std::to_string(i) + "]";
    if (!params[i].is_object()) GraphBuilder::fail(w, "an object", core::describe_json(params[i]));
    only_keys(params[i], {"name", "shape", "dtype", "granule"}, w);
    const std::string dt = get_string(params[i], "dtype", w, &dtype);
    const int64_t eb = dtype_bytes(dt);
    if (eb == 0 || dt.starts_with("int")) {
      GraphBuilder::fail(w + ".dtype", "float32, float64, float16 or bfloat16", "'" + core::excerpt(dt) + "'");
    }
    b.tensor(w, get_string(params[i], "name", w), SpmdTensorKind::param, get_ints(params[i], "shape", w, true), eb,
             get_ints(params[i], "granule", w, false), 0);
  }
  const Json& ops = get_array(j, "ops", top);
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string w = source + ": ops[" + std::to_string(i) + "]";
    if (!ops[i].is_object()) GraphBuilder::fail(w, "an object", core::describe_json(ops[i]));
    only_keys(ops[i], {"name", "kind", "inputs", "output", "heads", "causal", "kernel", "stride", "padding", "dim", "top_k"}, w);
    SpmdOp o;
    o.name = get_string(ops[i], "name", w);
    o.kind = parse_op_kind(get_string(ops[i], "kind", w), w + ".kind");
    if (o.kind == SpmdOpKind::max_pool2d) o.kernel = o.stride = 2, o.padding = 0;
    o.heads = get_int(ops[i], "heads", w, 1, 1, 1 << 16);
    o.kernel = get_int(ops[i], "kernel", w, o.kernel, 1, 64);
    o.stride = get_int(ops[i], "stride", w, o.stride, 1, 64);
    o.padding = get_int(ops[i], "padding", w, o.padding, 0, 64);
    o.dim = get_int(ops[i], "dim", w, 1, 0, 5);
    o.top_k = get_int(ops[i], "top_k", w, 2, 1, 1 << 16);
    if (const Json* c = field(ops[i], "causal")) {
      if (!c->is_boolean()) GraphBuilder::fail(w + ".causal", "true or false", core::describe_json(*c));
      o.causal = c->get<bool>();
    }
    const Json& in = get_array(ops[i], "inputs", w);
    std::vector<std::string> names;
    for (size_t k = 0; k < in.size(); ++k) {
      if (!in[k].is_string()) {
        GraphBuilder::fail(w + ".inputs[" + std::to_string(k) + "]", "a tensor name", core::describe_json(in[k]));
      }
      names.push_back(in[k].get<std::string>());
    }
    b.op(w + " ('" + core::excerpt(o.name) + "')", o, names, get_string(ops[i], "output", w));
  }
  return b.finish(source);
}

SpmdGraph read_graph_file(const std::string& path) { return graph_from_json(core::read_json_file(path), path); }

Json graph_to_json(const SpmdGraph& g) {
  Json inputs = Json::array(), params = Json::array(), ops = Json::array();
  auto dt = [](const SpmdTensor& t) {
    if (t.kind == SpmdTensorKind::label || (t.kind == SpmdTensorKind::input && t.elem_bytes == 8 && t.data_dims == t.rank())) {
      return t.elem_bytes == 8 ? std::string("int64") : std::string("int32");
    }
    return t.elem_bytes == 8 ? std::string("float64") : t.elem_bytes == 2 ? std::string("bfloat16") : std::string("float32");
  };
  for (const auto& t : g.tensors) {
    if (t.kind == SpmdTensorKind::input || t.kind == SpmdTensorKind::label) {
      inputs.push_back({{"name", t.name}, {"shape", t.shape}, {"kind", to_string(t.kind)}, {"dtype", dt(t)},
                        {"granule", t.granule}, {"data_dims", t.data_dims}});
    } else if (t.kind == SpmdTensorKind::param) {
      params.push_back({{"name", t.name}, {"shape", t.shape}, {"dtype", dt(t)}, {"granule", t.granule}});
    }
  }
  for (const auto& o : g.ops) {
    Json jo = {{"name", o.name}, {"kind", to_string(o.kind)}, {"output", g.tensors[static_cast<size_t>(o.output)].name}};
    Json in = Json::array();
    for (int t : o.inputs) in.push_back(g.tensors[static_cast<size_t>(t)].name);
    jo["inputs"] = in;
    if (o.kind == SpmdOpKind::attention) jo["heads"] = o.heads, jo["causal"] = o.causal;
    if (o.kind == SpmdOpKind::conv2d || o.kind == SpmdOpKind::max_pool2d) {
      jo["kernel"] = o.kernel, jo["stride"] = o.stride, jo["padding"] = o.padding;
    }
    if (o.kind == SpmdOpKind::mean) jo["dim"] = o.dim;
    if (o.kind == SpmdOpKind::moe) jo["top_k"] = o.top_k;
    ops.push_back(std::move(jo));
  }
  return {{"name", g.name}, {"inputs", inputs}, {"params", params}, {"ops", ops}};
}

namespace {

// A transformer block (pre-LN): attention and an FFN (or a top-2 MoE), residuals.
std::string transformer_block(GraphBuilder& b, const std::string& x, const SpmdModelSize& s, int64_t eb, int l,
                              bool causal, bool moe) {
  const std::string p = "l" + std::to_string(l) + ".";
  const int64_t E = s.hidden, hd = s.hidden / s.heads;
  auto param = [&](const std::string& n, std::vector<int64_t> shape, std::vector<int64_t> gran = {}) {
    b.tensor("generator", p + n, SpmdTensorKind::param, std::move(shape), eb, std::move(gran), 0);
    return p + n;
  };
  auto op = [&](SpmdOpKind k, const std::string& n, const std::vector<std::string>& in) {
    SpmdOp o;
    o.name = p + n;
    o.kind = k;
    o.heads = s.heads;
    o.causal = causal;
    b.op("generator: " + p + n, o, in, p + n);
    return p + n;
  };
  const std::string ln1 = op(SpmdOpKind::layer_norm, "ln1", {x, param("ln1.g", {E}), param("ln1.b", {E})});
  const std::string q = op(SpmdOpKind::linear, "q", {ln1, param("wq", {E, E}, {hd, 1}), param("bq", {E}, {hd})});
  const std::string k = op(SpmdOpKind::linear, "k", {ln1, param("wk", {E, E}, {hd, 1}), param("bk", {E}, {hd})});
  const std::string v = op(SpmdOpKind::linear, "v", {ln1, param("wv", {E, E}, {hd, 1}), param("bv", {E}, {hd})});
  const std::string a = op(SpmdOpKind::attention, "attn", {q, k, v});
  const std::string o = op(SpmdOpKind::linear, "o", {a, param("wo", {E, E}, {1, hd}), param("bo", {E})});
  const std::string x2 = op(SpmdOpKind::add, "res1", {x, o});
  const std::string ln2 = op(SpmdOpKind::layer_norm, "ln2", {x2, param("ln2.g", {E}), param("ln2.b", {E})});
  std::string f;
  if (moe) {
    f = op(SpmdOpKind::moe, "moe",
           {ln2, param("gate", {E, s.experts}), param("w1", {s.experts, E, s.ffn}), param("w2", {s.experts, s.ffn, E})});
  } else {
    const std::string h = op(SpmdOpKind::linear, "fc1", {ln2, param("w1", {s.ffn, E}), param("b1", {s.ffn})});
    const std::string g = op(SpmdOpKind::gelu, "gelu", {h});
    f = op(SpmdOpKind::linear, "fc2", {g, param("w2", {E, s.ffn}), param("b2", {E})});
  }
  return op(SpmdOpKind::add, "res2", {x2, f});
}

}  // namespace

SpmdGraph generate_graph(const SpmdModelSize& s) {
  const int64_t eb = dtype_bytes(s.dtype);
  if (eb == 0) GraphBuilder::fail("model.dtype", "float32, float64, float16 or bfloat16", "'" + core::excerpt(s.dtype) + "'");
  GraphBuilder b(s.generator);
  auto param = [&](const std::string& n, std::vector<int64_t> shape) {
    b.tensor("generator", n, SpmdTensorKind::param, std::move(shape), eb, {}, 0);
    return n;
  };
  auto op = [&](SpmdOpKind k, const std::string& n, const std::vector<std::string>& in, int64_t kernel = 3,
                int64_t stride = 1, int64_t padding = 1, int64_t dim = 1) {
    SpmdOp o;
    o.name = n;
    o.kind = k;
    o.kernel = kernel;
    o.stride = stride;
    o.padding = padding;
    o.dim = dim;
    b.op("generator: " + n, o, in, n);
    return n;
  };
  const auto& g = s.generator;
  if (g == "mlp") {
    b.tensor("generator", "x", SpmdTensorKind::input, {s.batch, s.hidden}, eb, {}, 1);
    b.tensor("generator", "labels", SpmdTensorKind::label, {s.batch}, 8, {}, 1);
    std::string h = "x";
    for (int l = 0; l < s.layers; ++l) {
      const std::string p = "l" + std::to_string(l) + ".";
      const std::string a = op(SpmdOpKind::linear, p + "fc1", {h, param(p + "w1", {s.ffn, s.hidden}), param(p + "b1", {s.ffn})});
      const std::string ge = op(SpmdOpKind::gelu, p + "gelu", {a});
      h = op(SpmdOpKind::linear, p + "fc2", {ge, param(p + "w2", {s.hidden, s.ffn}), param(p + "b2", {s.hidden})});
    }
    const std::string logits = op(SpmdOpKind::linear, "head", {h, param("head.w", {s.classes, s.hidden}), param("head.b", {s.classes})});
    op(SpmdOpKind::cross_entropy, "loss", {logits, "labels"});
  } else if (g == "bert" || g == "gpt" || g == "bert_moe") {
    if (s.hidden % s.heads != 0) {
      GraphBuilder::fail("model.heads", "a divisor of model.hidden " + std::to_string(s.hidden), std::to_string(s.heads));
    }
    b.tensor("generator", "ids", SpmdTensorKind::input, {s.batch, s.seq}, 8, {}, 2);
    b.tensor("generator", "labels", SpmdTensorKind::label, {s.batch, s.seq}, 8, {}, 2);
    std::string x = op(SpmdOpKind::embedding, "embed", {"ids", param("embed.w", {s.vocab, s.hidden})});
    for (int l = 0; l < s.layers; ++l) x = transformer_block(b, x, s, eb, l, g == "gpt", g == "bert_moe" && l % 2 == 1);
    const std::string ln = op(SpmdOpKind::layer_norm, "ln_f", {x, param("ln_f.g", {s.hidden}), param("ln_f.b", {s.hidden})});
    const std::string logits = op(SpmdOpKind::linear, "head", {ln, param("head.w", {s.vocab, s.hidden}), param("head.b", {s.vocab})});
    op(SpmdOpKind::cross_entropy, "loss", {logits, "labels"});
  } else if (g == "vit") {
    if (s.image % s.patch != 0) GraphBuilder::fail("model.patch", "a divisor of model.image", std::to_string(s.patch));
    if (s.hidden % s.heads != 0) {
      GraphBuilder::fail("model.heads", "a divisor of model.hidden " + std::to_string(s.hidden), std::to_string(s.heads));
    }
    const int64_t n = (s.image / s.patch) * (s.image / s.patch);
    b.tensor("generator", "patches", SpmdTensorKind::input, {s.batch, n, s.patch * s.patch * 3}, eb, {}, 2);
    b.tensor("generator", "labels", SpmdTensorKind::label, {s.batch}, 8, {}, 1);
    std::string x = op(SpmdOpKind::linear, "patch_embed",
                       {"patches", param("patch.w", {s.hidden, s.patch * s.patch * 3}), param("patch.b", {s.hidden})});
    for (int l = 0; l < s.layers; ++l) x = transformer_block(b, x, s, eb, l, false, false);
    const std::string ln = op(SpmdOpKind::layer_norm, "ln_f", {x, param("ln_f.g", {s.hidden}), param("ln_f.b", {s.hidden})});
    const std::string pooled = op(SpmdOpKind::mean, "pool", {ln}, 3, 1, 1, 1);
    const std::string logits = op(SpmdOpKind::linear, "head", {pooled, param("head.w", {s.classes, s.hidden}), param("head.b", {s.classes})});
    op(SpmdOpKind::cross_entropy, "loss", {logits, "labels"});
  } else if (g == "vgg19") {
    b.tensor("generator", "images", SpmdTensorKind::input, {s.batch, 3, s.image, s.image}, eb, {}, 1);
    b.tensor("generator", "labels", SpmdTensorKind::label, {s.batch}, 8, {}, 1);
    const std::vector<int64_t> cfg = {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0,
                                      512, 512, 512, 512, 0};
    std::string x = "images";
    int64_t c = 3, side = s.image;
    int i = 0;
    for (int64_t w : cfg) {
      const std::string n = "f" + std::to_string(i++);
      if (w == 0) {
        if (side < 2) GraphBuilder::fail("model.image", "an image of at least 32 pixels for vgg19", std::to_string(s.image));
        x = op(SpmdOpKind::max_pool2d, n + ".pool", {x}, 2, 2, 0);
        side /= 2;
        continue;
      }
      const int64_t co = std::max<int64_t>(1, w / s.channels_scale);
      const std::string cv = op(SpmdOpKind::conv2d, n + ".conv", {x, param(n + ".w", {co, c, 3, 3}), param(n + ".b", {co})});
      x = op(SpmdOpKind::relu, n + ".relu", {cv});
      c = co;
    }
    x = op(SpmdOpKind::flatten, "flatten", {x});
    const int64_t fc = std::max<int64_t>(1, 4096 / s.channels_scale);
    const int64_t fin = c * side * side;
    // fc1's input dim is channel-major: a channel split of the flattened features is a split
    // in units of side * side.
    b.tensor("generator", "fc1.w", SpmdTensorKind::param, {fc, fin}, eb, {1, side * side}, 0);
    x = op(SpmdOpKind::relu, "fc1.relu", {op(SpmdOpKind::linear, "fc1", {x, "fc1.w", param("fc1.b", {fc})})});
    x = op(SpmdOpKind::relu, "fc2.relu", {op(SpmdOpKind::linear, "fc2", {x, param("fc2.w", {fc, fc}), param("fc2.b", {fc})})});
    const std::string logits = op(SpmdOpKind::linear, "fc3", {x, param("fc3.w", {s.classes, fc}), param("fc3.b", {s.classes})});
    op(SpmdOpKind::cross_entropy, "loss", {logits, "labels"});
  } else {
    GraphBuilder::fail("model.generator", "one of mlp, bert, gpt, vit, vgg19, bert_moe", "'" + core::excerpt(g) + "'");
  }
  return b.finish("generator " + g);
}

}  // namespace mlsys::plan
