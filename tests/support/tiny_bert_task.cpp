// The tiny BERT task of the lora-finetune CLI tests (tiny_bert_task.hpp).
#include "tests/support/tiny_bert_task.hpp"

#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/bert.hpp"

namespace mlsys::test {

namespace fs = std::filesystem;

void write_tiny_task(const fs::path& dir) {
  const std::vector<std::string> words = {"the", "movie", "was", "film", "plot", "a", "very", "actor", "scene", "story",
                                          "long", "short", "it", "and", "music", "end"};
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", ".", "!"};
  vocab.insert(vocab.end(), words.begin(), words.end());
  nn::BertConfig c;
  c.vocab_size = static_cast<int64_t>(vocab.size());
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 64;
  c.max_position_embeddings = 64;
  auto m = nn::BertClassifier::random(c, 2, 3);
  m.save_hf(dir / "model");
  std::ofstream v(dir / "model/vocab.txt");
  for (const auto& w : vocab) v << w << "\n";
  std::mt19937 rng(5);
  for (const auto& [name, n] : {std::pair<std::string, int>{"train", 256}, {"valid", 64}}) {
    std::ofstream out(dir / (name + ".jsonl"));
    for (int i = 0; i < n; ++i) {
      const bool pos = (rng() % 2) == 0;
      std::string text;
      const int len = 4 + static_cast<int>(rng() % 8);
      const int at = static_cast<int>(rng() % static_cast<unsigned>(len));
      for (int k = 0; k < len; ++k) {
        text += (k ? " " : "") + (k == at ? std::string(pos ? "good" : "bad") : words[rng() % words.size()]);
      }
      out << nlohmann::json({{"text", text + "."}, {"label", pos ? "pos" : "neg"}}).dump() << "\n";
    }
  }
}

}  // namespace mlsys::test
