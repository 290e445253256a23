// The full training state of a TemporalModel (save_state / load_state, model.hpp): what a
// checkpoint needs so that a resumed run continues bit for bit (DESIGN.md, Artifacts:
// "--resume continues exactly").
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tensor/h5_tensor.hpp"
#include "tgnn/model_impl.hpp"

namespace mlsys::tgnn {

namespace {

// The dataset `name` of r as a tensor of exactly `shape` and `dtype`, or core::InputError
// naming the file and the dataset.
at::Tensor read_exact(const core::H5Reader& r, const std::string& name, at::IntArrayRef shape, at::ScalarType dtype) {
  const std::string file = r.path().string();
  if (!r.has(name)) throw core::InputError(file + ": no dataset " + name + " (a training state of another model?)");
  const at::Tensor t = tensor::read_tensor(r, name);
  if (t.sizes() != shape) {
    throw core::InputError(file + ": " + name + " has shape " + c10::str(t.sizes()) + ", the configured model expects " +
                           c10::str(shape));
  }
  if (t.scalar_type() != dtype) {
    throw core::InputError(file + ": " + name + " holds " + std::string(c10::toString(t.scalar_type())) + ", expected " +
                           std::string(c10::toString(dtype)));
  }
  return t;
}

// A one-string dataset (an engine state as text).
void write_text(core::H5Writer& w, const std::string& name, const std::string& text) { w.write_strings(name, {text}); }

std::mt19937_64 read_engine(const core::H5Reader& r, const std::string& name) {
  const std::string file = r.path().string();
  if (!r.has(name)) throw core::InputError(file + ": no dataset " + name + " (a training state of another model?)");
  const std::vector<std::string> text = r.read_strings(name);
  std::mt19937_64 e;
  if (text.size() == 1) {
    std::istringstream in(text[0]);
    in >> e;
    if (!in.fail()) return e;
  }
  throw core::InputError(file + ": " + name + " is not a std::mt19937_64 state (one string of 313 numbers expected)");
}

std::string engine_text(const std::mt19937_64& e) {
  std::ostringstream out;
  out << e;
  return out.str();
}

// The entries of an int64 tensor, each checked to lie in [lo, hi).
template <class T>
std::vector<T> checked_values(const core::H5Reader& r, const std::string& name, const at::Tensor& t, int64_t lo, int64_t hi) {
  const at::Tensor c = t.contiguous();
  const int64_t* v = c.const_data_ptr<int64_t>();
  std::vector<T> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    if (v[i] < lo || v[i] >= hi) {
      throw core::InputError(r.path().string() + ": " + name + "[" + std::to_string(i) + "] is " + std::to_string(v[i]) +
                             ", expected a value in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")");
    }
    out[i] = static_cast<T>(v[i]);
  }
  return out;
}

template <class T>
std::vector<T> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return std::vector<T>(c.const_data_ptr<T>(), c.const_data_ptr<T>() + c.numel());
}

template <class T>
at::Tensor view_of(const std::vector<T>& v, at::ScalarType dtype) {
  return at::from_blob(const_cast<T*>(v.data()), {static_cast<int64_t>(v.size())}, dtype);
}

}  // namespace

void TemporalModel::save_state(core::H5Writer& w, const std::string& group) const {
  const Impl& m = *impl_;
  at::NoGradGuard ng;
  const auto& adam_m = m.opt->first_moments();
  const auto& adam_v = m.opt->second_moments();
  for (size_t i = 0; i < m.params.size(); ++i) {
    const std::string& n = m.params[i].first;
    tensor::write_tensor(w, group + "/params/" + n, m.params[i].second.detach());
    tensor::write_tensor(w, group + "/adam/m/" + n, adam_m[i]);
    tensor::write_tensor(w, group + "/adam/v/" + n, adam_v[i]);
    if (!m.snapshot.empty()) tensor::write_tensor(w, group + "/best/" + n, m.snapshot[i]);
  }
  const std::vector<int64_t> steps{m.opt->steps()};
  w.write(group + "/adam/steps", steps);
  const std::string mg = group + "/memory/";
  tensor::write_tensor(w, mg + "mem", m.mem);
  tensor::write_tensor(w, mg + "mail", m.mail);
  w.write(mg + "mem_ts", m.mem_ts);
  w.write(mg + "mail_dt", m.mail_dt);
  w.write(mg + "mail_ts", m.mail_ts);
  const std::vector<int64_t> full(m.mail_full.begin(), m.mail_full.end());
  w.write(mg + "mail_full", full);
  w.write(mg + "next_slot", m.next_slot);
  write_text(w, group + "/rng/sampler", engine_text(m.rng));
  write_text(w, group + "/rng/dropout", engine_text(m.drop_rng));
  at::Tensor gen_state;
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen_state = gen.get_state();
  }
  tensor::write_tensor(w, group + "/rng/aten_cpu", gen_state.to(at::kLong));
}

void TemporalModel::load_state(const core::H5Reader& r, const std::string& group) {
  Impl& m = *impl_;
  at::NoGradGuard ng;
  // Everything is read and checked first, then assigned: a bad file leaves the model as it was.
  std::vector<at::Tensor> params, adam_m, adam_v, best;
  const bool has_best = !m.params.empty() && r.has(group + "/best/" + m.params.front().first);
  for (const auto& [n, p] : m.params) {
    params.push_back(read_exact(r, group + "/params/" + n, p.sizes(), at::kFloat));
    adam_m.push_back(read_exact(r, group + "/adam/m/" + n, p.sizes(), at::kFloat));
    adam_v.push_back(read_exact(r, group + "/adam/v/" + n, p.sizes(), at::kFloat));
    if (has_best) best.push_back(read_exact(r, group + "/best/" + n, p.sizes(), at::kFloat));
  }
  const std::string steps_name = group + "/adam/steps";
  const int64_t steps = read_exact(r, steps_name, {1}, at::kLong).item<int64_t>();
  if (steps < 0) throw core::InputError(r.path().string() + ": " + steps_name + " is " + std::to_string(steps) + ", expected >= 0");
  const std::string mg = group + "/memory/";
  const int64_t NS = m.N * m.S;
  const at::Tensor mem = read_exact(r, mg + "mem", m.mem.sizes(), at::kFloat);
  const at::Tensor mail = read_exact(r, mg + "mail", m.mail.sizes(), at::kFloat);
  const at::Tensor mem_ts = read_exact(r, mg + "mem_ts", {m.N}, at::kDouble);
  const at::Tensor mail_dt = read_exact(r, mg + "mail_dt", {m.N}, at::kFloat);
  const at::Tensor mail_ts = read_exact(r, mg + "mail_ts", {NS}, at::kDouble);
  const std::vector<uint8_t> mail_full = checked_values<uint8_t>(r, mg + "mail_full", read_exact(r, mg + "mail_full", {NS}, at::kLong), 0, 2);
  const std::vector<int64_t> next_slot = checked_values<int64_t>(r, mg + "next_slot", read_exact(r, mg + "next_slot", {m.N}, at::kLong), 0, m.S);
  const std::mt19937_64 rng = read_engine(r, group + "/rng/sampler");
  const std::mt19937_64 drop_rng = read_engine(r, group + "/rng/dropout");
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  at::Tensor gen_state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen_state = gen.get_state();
  }
  const std::string gen_name = group + "/rng/aten_cpu";
  const std::vector<uint8_t> gen_bytes =
      checked_values<uint8_t>(r, gen_name, read_exact(r, gen_name, gen_state.sizes(), at::kLong), 0, 256);

  // Assign.
  for (size_t i = 0; i < m.params.size(); ++i) m.params[i].second.copy_(params[i]);
  m.opt->load_state(adam_m, adam_v, steps, r.path().string() + ":" + group + "/adam");
  m.snapshot.clear();
  for (const at::Tensor& b : best) m.snapshot.push_back(b.clone());
  m.mem.copy_(mem);
  m.mail.copy_(mail);
  m.mem_ts = to_vector<double>(mem_ts);
  m.mail_dt = to_vector<float>(mail_dt);
  m.mail_ts = to_vector<double>(mail_ts);
  m.mail_full = mail_full;
  m.next_slot = next_slot;
  m.rng = rng;
  m.drop_rng = drop_rng;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(view_of(gen_bytes, at::kByte).clone());
  }
}

}  // namespace mlsys::tgnn
