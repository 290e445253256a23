// A tiny random BERT folder (config.json, model.safetensors, vocab.txt) and a synthetic
// sentiment-like JSONL task, for the lora-finetune CLI tests (tiny_bert_task.cpp; link it
// with lib/nn, as tests/lora/meson.build does).
#pragma once

#include <filesystem>

namespace mlsys::test {

// Writes DIR/model (the tiny model) and DIR/{train,valid}.jsonl: a sentence of filler words
// is "pos" when it holds "good", "neg" when it holds "bad".
void write_tiny_task(const std::filesystem::path& dir);

}  // namespace mlsys::test
