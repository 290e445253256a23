// lora-finetune tokenize: the ids and pieces of model.path's tokenizer for each line of a
// text file (or standard input), as JSONL or a table, to compare with Hugging Face's
// tokenizer(text)["input_ids"] directly. No LibTorch: lib/nn's tokenizers only.
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/report.hpp"
#include "lora/finetune_commands.hpp"
#include "lora/finetune_config.hpp"
#include "nn/hf_folder.hpp"
#include "nn/unicode.hpp"

namespace mlsys::lora {

namespace {

// The texts of `input`, one a line (a final "\r" dropped), "-" being standard input.
// InputError naming the file and line for one that is not UTF-8.
std::vector<std::string> read_text_lines(const std::string& input) {
  std::string bytes;
  const std::string name = input == "-" ? std::string("<stdin>") : input;
  if (input == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    bytes = std::move(ss).str();
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(input, ec)) {
      throw core::InputError(input + ": no such file (tokenize.input: a UTF-8 text file, one text a line, or -)");
    }
    std::ifstream in(input, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in.good() && !in.eof()) throw core::InputError(input + ": cannot read the file");
    bytes = std::move(ss).str();
  }
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t bad = 0;
    if (!nn::unicode::valid_utf8(line, &bad)) {
      throw core::InputError(name + ":" + std::to_string(lines.size() + 1) + ": not UTF-8 (byte " + std::to_string(bad + 1) +
                             " of the line: " + core::excerpt(line.substr(bad), 8) + ")");
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

}  // namespace

int run_tokenize(const core::CommonOptions& opts) {
  const FinetuneConfig c = read_finetune_config(core::load_config(opts));
  const nn::FolderTokenizer tok = nn::load_folder_tokenizer(c.model.path, c.model.lower_case);
  const std::vector<std::string> texts = read_text_lines(c.tokenize.input);
  if (opts.json || c.tokenize.format == "jsonl") {
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto ids = tok.encode(texts[i]);
      std::vector<std::string> pieces;
      pieces.reserve(ids.size());
      for (int64_t id : ids) pieces.push_back(tok.piece(id));
      const nlohmann::ordered_json row{{"line", i + 1}, {"text", texts[i]}, {"ids", ids}, {"pieces", pieces}};
      std::cout << row.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    }
    std::cout.flush();
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"line", "pos", "id", "piece"}};
  size_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tok.encode(texts[i]);
    tokens += ids.size();
    for (size_t k = 0; k < ids.size(); ++k) {
      rows.push_back({std::to_string(i + 1), std::to_string(k), std::to_string(ids[k]), core::one_line(tok.piece(ids[k]))});
    }
  }
  std::cout << core::format_table(rows) << std::to_string(texts.size()) << " texts, " << tokens << " tokens ("
            << tok.kind << ", " << c.model.path << ")\n";
  return 0;
}

int finetune_tokenize(const core::CommonOptions& opts) { return run_tokenize(opts); }

}  // namespace mlsys::lora
