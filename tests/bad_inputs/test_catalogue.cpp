// The bad-input catalogue: runs every entry of tests/bad-inputs/catalogue.json (a program, a
// command line with the bad file in it, the exit code and the text the error must contain)
// and checks DESIGN.md's contract for bad input: exit 2 or 3 as listed, one line on stderr
// naming the file, and --out left exactly as it was (pre-filled with stand-ins of the
// program's artifacts: none created, changed or removed). A program that is missing fails
// the test (harness.hpp's program() throws).
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/harness.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kCatalogue = fs::path(MLSYS_SOURCE_ROOT) / "tests" / "bad-inputs";

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// The template with {file}, {dir} (the file's folder), {out} and {root} (the source tree)
// replaced by quoted paths.
std::string expand(std::string args, const fs::path& file, const fs::path& out) {
  const std::map<std::string, std::string> values = {{"{file}", quoted(file)},
                                                     {"{dir}", quoted(file.parent_path())},
                                                     {"{out}", quoted(out)},
                                                     {"{root}", quoted(MLSYS_SOURCE_ROOT)}};
  for (const auto& [key, value] : values) {
    for (size_t at = args.find(key); at != std::string::npos; at = args.find(key, at + value.size())) {
      args.replace(at, key.size(), value);
    }
  }
  return args;
}

// Every file under `dir` (relative path -> bytes).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? mlsys::test::slurp(e.path()) : "<folder>";
  }
  return files;
}

nlohmann::json load_catalogue() {
  return nlohmann::json::parse(mlsys::test::slurp(kCatalogue / "catalogue.json"));
}

}  // namespace

TEST_CASE("bad-input catalogue: every bad file is listed and exists") {
  const nlohmann::json cat = load_catalogue();
  std::set<std::string> listed;
  for (const auto& e : cat.at("entries")) {
    const std::string file = e.at("file").get<std::string>();
    INFO(file);
    CHECK(listed.insert(file).second);  // one entry per file
    CHECK(fs::is_regular_file(kCatalogue / file));
    CHECK(cat.at("programs").contains(e.at("program").get<std::string>()));
    const int code = e.at("exit").get<int>();
    CHECK((code == 2 || code == 3));
  }
  // Files beside the catalogue that no entry runs: a bad file added without its entry.
  for (const auto& e : fs::recursive_directory_iterator(kCatalogue)) {
    const std::string rel = fs::relative(e.path(), kCatalogue).string();
    if (!e.is_regular_file() || rel == "catalogue.json" || rel == "README.md" || rel.starts_with("good/")) continue;
    // Companions of a bad file in the same folder (a TGL folder's edges.csv; a graph
    // folder's labels.csv, edges.csv and features.csv) are not bad files; the bad one has an entry.
    const auto fname = e.path().filename();
    if (fname == "edges.csv" || (rel.starts_with("ssrm-incremental/graph-") && (fname == "labels.csv" || fname == "features.csv"))) continue;
    INFO(rel);
    CHECK(listed.contains(rel));
  }
}

TEST_CASE("bad-input catalogue: exit 2 or 3, one line naming the file, --out untouched") {
  const nlohmann::json cat = load_catalogue();
  REQUIRE(!cat.at("entries").empty());
  for (const auto& e : cat.at("entries")) {
    const std::string program = e.at("program").get<std::string>();
    const fs::path file = kCatalogue / e.at("file").get<std::string>();
    const mlsys::test::TempDir tmp("bad-input");
    const fs::path out = tmp / "out";
    // Stand-ins for the program's artifacts from an earlier good run: bad input must not
    // replace, change or remove them, nor leave anything beside them.
    for (const auto& name : cat.at("programs").at(program).at("artifacts")) {
      tmp.write(fs::path("out") / name.get<std::string>(), "good artifact " + name.get<std::string>() + " of an earlier run\n");
    }
    const auto before = snapshot(out);
    const std::string args = expand(e.at("args").get<std::string>(), file, out);
    const mlsys::test::Run r = mlsys::test::run_program(mlsys::test::program(program), args);

    INFO(program << " " << args << "\nstderr: " << r.err);
    CHECK(r.code == e.at("exit").get<int>());
    std::string err = r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    CHECK(!err.empty());
    CHECK(err.find('\n') == std::string::npos);  // one line
    CHECK(err.find(file.filename().string()) != std::string::npos);
    CHECK(err.find(e.at("error").get<std::string>()) != std::string::npos);
    CHECK(snapshot(out) == before);
  }
}
