// Hugging Face model folders: config.json plus model.safetensors or a sharded
// model.safetensors.index.json. Tensors are read as float32 CPU tensors by name.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mlsys::nn {

// All tensors of the folder's checkpoint (floating types converted to float32).
// core::InputError naming the folder/file when it holds neither model.safetensors nor an
// index, or a shard named by the index is missing.
[[nodiscard]] std::map<std::string, at::Tensor> load_hf_tensors(const std::filesystem::path& dir);
// config.json parsed (core::InputError naming the file when missing or malformed).
[[nodiscard]] nlohmann::json load_hf_config(const std::filesystem::path& dir);

}  // namespace mlsys::nn
