// Tensors in HDF5 artifacts: one dataset per tensor, with its shape, in a file written by
// core::H5Writer (so readable by h5py and h5dump with no knowledge of this code).
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

#include "core/h5.hpp"

namespace mlsys::tensor {

// Writes `t` as the dataset `name` ("/params/w"). float32, float64 and int64 are stored as
// they are; bfloat16 and float16 as float32; the other integer types and bool as int64.
// The tensor may live on any device and be non-contiguous: a contiguous CPU copy is
// written. A 0-dim tensor is stored as a 1-element 1-D dataset. Complex and other dtypes
// throw core::RuntimeFailure naming the dataset.
void write_tensor(core::H5Writer& writer, const std::string& name, const at::Tensor& t);

// Reads the dataset `name` as a CPU tensor of the stored type (float32, float64 or int64)
// and shape. core::InputError naming the file and dataset when it is missing or holds
// strings or another type.
[[nodiscard]] at::Tensor read_tensor(const core::H5Reader& reader, const std::string& name);

}  // namespace mlsys::tensor
