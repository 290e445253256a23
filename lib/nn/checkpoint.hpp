// Hugging Face model folders: config.json plus model.safetensors or a sharded
// model.safetensors.index.json. Tensors are read as float32 CPU tensors by name.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mlsys::nn {

// All tensors of the folder's checkpoint (floating types converted to float32).
// core::InputError naming the folder/file when it holds neither model.safetensors nor an
// index, or a shard named by the index is missing.
[[nodiscard]] std::map<std::string, at::Tensor> load_hf_tensors(const std::filesystem::path& dir);
// config.json parsed (core::InputError naming the file when missing or malformed).
[[nodiscard]] nlohmann::json load_hf_config(const std::filesystem::path& dir);

// "model.safetensors" or "model.safetensors.index.json" under `dir`, whichever load_hf_tensors
// reads: the file that error messages about a tensor name.
[[nodiscard]] std::string hf_checkpoint_file(const std::filesystem::path& dir);
// "[2,3]"
[[nodiscard]] std::string shape_str(at::IntArrayRef shape);
// The first of `keys` that `tensors` holds, made contiguous, checked against `shape`.
// core::InputError "<file>: tensor '<keys[0]>' not found (<why>)", "...: expected a
// floating-point dtype (...), found I32" or "...: expected shape [..] (from config.json), found [..]".
[[nodiscard]] at::Tensor checked_tensor(const std::map<std::string, at::Tensor>& tensors,
                                        const std::vector<std::string>& keys, const std::vector<int64_t>& shape,
                                        const std::string& file, const std::string& why);

}  // namespace mlsys::nn
