// A tiny random BERT folder (config.json, model.safetensors, vocab.txt) and a synthetic
// sentiment-like JSONL task for the CLI tests; implemented in test_lora.cpp.
#pragma once

#include <filesystem>

// Writes DIR/model (the tiny model) and DIR/{train,valid}.jsonl: a sentence of filler words
// is "pos" when it holds "good", "neg" when it holds "bad".
void write_tiny_task(const std::filesystem::path& dir);
