// llama2.c legacy checkpoints -> Hugging Face LLaMA tensors (see llama2c.hpp). The layout
// is llama2.c's run.c memory_map_weights: token embeddings, rms_att, wq, wk, wv, wo,
// rms_ffn, w1, w2, w3, rms_final, two RoPE tables of seq_len·hd/2 floats (skipped), then
// the classifier when it is not shared. Little-endian float32 throughout.
#include "nn/llama2c.hpp"

#include <ATen/ATen.h>

#include <fstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "tensor/safetensors.hpp"

namespace mlsys::nn {
namespace fs = std::filesystem;

int64_t Llama2cHeader::expected_bytes() const {
  const int64_t d = dim, hid = hidden_dim, nl = n_layers, hs = dim / n_heads, kv = hs * n_kv_heads;
  const int64_t V = vocab_size < 0 ? -static_cast<int64_t>(vocab_size) : vocab_size;
  int64_t floats = V * d                        // token embeddings
                   + nl * d                     // rms_att
                   + nl * d * d                 // wq
                   + 2 * nl * d * kv            // wk, wv
                   + nl * d * d                 // wo
                   + nl * d                     // rms_ffn
                   + 3 * nl * d * hid           // w1, w2, w3
                   + d                          // rms_final
                   + 2 * int64_t{seq_len} * hs / 2;  // freq_cis_real, freq_cis_imag
  if (!shared_classifier()) floats += V * d;
  return 7 * 4 + floats * 4;
}

at::Tensor permute_rope_rows(const at::Tensor& w, int64_t n_heads) {
  const int64_t rows = w.size(0), cols = w.size(1), hd = rows / n_heads;
  return w.view({n_heads, hd / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

Llama2cModel read_llama2c(const fs::path& bin) {
  const std::string name = bin.string();
  std::ifstream in(bin, std::ios::binary);
  if (!in) throw core::InputError(name + ": cannot open the llama2.c checkpoint");
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(bin, ec));
  if (ec) throw core::InputError(name + ": cannot read the file size (" + ec.message() + ")");
  Llama2cModel m;
  Llama2cHeader& h = m.header;
  int32_t raw[7] = {};
  if (size < 28 || !in.read(reinterpret_cast<char*>(raw), sizeof raw)) {
    throw core::InputError(name + ": llama2.c checkpoint: expected a 28-byte header of 7 int32, found a file of " +
                           std::to_string(size) + " bytes");
  }
  h = {raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6]};
  if (static_cast<uint32_t>(raw[0]) == 0x616b3432U) {
    throw core::InputError(name + ": llama2.c checkpoint: found the \"ak42\" magic of a versioned export; only the "
                                  "legacy format (export.py --version 0) is supported");
  }
  const std::string hdr = "dim " + std::to_string(h.dim) + ", hidden_dim " + std::to_string(h.hidden_dim) + ", n_layers " +
                          std::to_string(h.n_layers) + ", n_heads " + std::to_string(h.n_heads) + ", n_kv_heads " +
                          std::to_string(h.n_kv_heads) + ", vocab_size " + std::to_string(h.vocab_size) + ", seq_len " +
                          std::to_string(h.seq_len);
  auto bad_header = [&](const std::string& why) {
    throw core::InputError(name + ": llama2.c checkpoint header (" + hdr + "): " + why);
  };
  // bounds keep the size arithmetic far from overflow
  if (h.dim <= 0 || h.dim > (1 << 16) || h.hidden_dim <= 0 || h.hidden_dim > (1 << 20) || h.n_layers <= 0 ||
      h.n_layers > 4096 || h.n_heads <= 0 || h.n_kv_heads <= 0 || h.seq_len <= 0 || h.seq_len > (1 << 24) ||
      h.vocab_size == 0 || h.vocab_size > (1 << 24) || h.vocab_size < -(1 << 24)) {
    bad_header("expected positive sizes (vocab_size non-zero) within sane bounds");
  }
  if (h.dim % h.n_heads != 0 || (h.dim / h.n_heads) % 2 != 0) bad_header("n_heads must divide dim into even head sizes");
  if (h.n_heads % h.n_kv_heads != 0) bad_header("n_kv_heads must divide n_heads");
  const int64_t want = h.expected_bytes();
  if (size != want) {
    throw core::InputError(name + ": llama2.c checkpoint: the header (" + hdr + ") implies " + std::to_string(want) +
                           " bytes, found " + std::to_string(size) +
                           (size < want ? " (truncated?)" : " (trailing data: not a legacy llama2.c .bin?)"));
  }
  const int64_t n_floats = (size - 28) / 4;
  at::Tensor all = at::empty({n_floats}, at::kFloat);
  if (!in.read(reinterpret_cast<char*>(all.data_ptr<float>()), n_floats * 4)) {
    throw core::InputError(name + ": llama2.c checkpoint: read failed after the header");
  }
  const int64_t d = h.dim, hid = h.hidden_dim, nl = h.n_layers, hs = d / h.n_heads, kv = hs * h.n_kv_heads;
  const int64_t V = h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size;
  int64_t off = 0;
  auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    at::Tensor t = all.narrow(0, off, n).view(shape);
    off += n;
    return t;
  };
  at::Tensor emb = take({V, d}), rms_att = take({nl, d}), wq = take({nl, d, d}), wk = take({nl, kv, d}),
             wv = take({nl, kv, d}), wo = take({nl, d, d}), rms_ffn = take({nl, d}), w1 = take({nl, hid, d}),
             w2 = take({nl, d, hid}), w3 = take({nl, hid, d}), rms_final = take({d});
  off += 2 * int64_t{h.seq_len} * hs / 2;  // the RoPE tables: recomputed by the model
  LlamaConfig& c = m.cfg;
  c.vocab_size = V;
  c.hidden_size = d;
  c.intermediate_size = hid;
  c.num_hidden_layers = nl;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = hs;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;  // llama2.c's rmsnorm
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier();
  auto& T = m.tensors;
  T["model.embed_tokens.weight"] = emb.clone();
  for (int64_t i = 0; i < nl; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    T[p + "input_layernorm.weight"] = rms_att[i].clone();
    T[p + "self_attn.q_proj.weight"] = permute_rope_rows(wq[i], h.n_heads);
    T[p + "self_attn.k_proj.weight"] = permute_rope_rows(wk[i], h.n_kv_heads);
    T[p + "self_attn.v_proj.weight"] = wv[i].clone();
    T[p + "self_attn.o_proj.weight"] = wo[i].clone();
    T[p + "post_attention_layernorm.weight"] = rms_ffn[i].clone();
    T[p + "mlp.gate_proj.weight"] = w1[i].clone();
    T[p + "mlp.down_proj.weight"] = w2[i].clone();
    T[p + "mlp.up_proj.weight"] = w3[i].clone();
  }
  T["model.norm.weight"] = rms_final.clone();
  if (!h.shared_classifier()) T["lm_head.weight"] = take({V, d}).clone();
  return m;
}

Llama2cSummary convert_llama2c(const fs::path& bin, const fs::path& out_dir) {
  Llama2cModel m = read_llama2c(bin);
  // every tensor present, shapes as the config; then the folder is written whole
  const auto model = LlamaForCausalLM::from_tensors(m.cfg, m.tensors, bin.string());
  core::replace_folder_atomic(out_dir, [&](const fs::path& tmp) { model.save_hf(tmp); });
  Llama2cSummary s{m.header, m.cfg, 0, out_dir};
  for (const auto& [n, t] : m.tensors) s.parameters += t.numel();
  return s;
}

}  // namespace mlsys::nn
