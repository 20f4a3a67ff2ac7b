// bertctl dataset inspect DIR: a packed dataset's manifest, and any block
// decoded back to text (bert_data, bert_tokenizer), without a server.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/commands.h"
#include "data/packed_dataset.h"
#include "tokenizer/tokenizer.h"

namespace bert::client {
namespace {

struct InspectOptions {
  std::string dir;
  std::vector<uint64_t> blocks;
  std::string split = "train";
  std::string tokenizer;  // default: DIR/tokenizer.json
  bool verify = false;
  bool ids = false;
  bool keep_special = false;
};

void RunInspect(const InspectOptions& options) {
  absl::StatusOr<data::PackedDataset> ds = data::PackedDataset::Open(options.dir, options.verify);
  if (!ds.ok()) Fail(ds.status());
  const data::DatasetManifest& m = ds->manifest();
  nlohmann::json out = {{"manifest", m.ToJson()}, {"blocks", nlohmann::json::array()}};
  if (!options.blocks.empty()) {
    const std::string tok_path =
        options.tokenizer.empty() ? options.dir + "/tokenizer.json" : options.tokenizer;
    absl::StatusOr<tokenizer::Tokenizer> tok = tokenizer::Tokenizer::Load(tok_path);
    if (!tok.ok()) Fail(tok.status());
    if (tok->Fingerprint() != m.tokenizer_sha256) {
      std::cerr << "bertctl: warning: " << tok_path
                << " is not the tokenizer the dataset was packed with (SHA-256 differs)\n";
    }
    for (uint64_t index : options.blocks) {
      absl::StatusOr<std::vector<uint32_t>> ids = ds->Block(options.split, index);
      if (!ids.ok()) Fail(ids.status());
      out["blocks"].push_back({{"split", options.split},
                               {"index", index},
                               {"ids", *ids},
                               {"text", tok->Decode(*ids, !options.keep_special)}});
    }
  }
  if (GlobalCli().json()) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << out["manifest"].dump(2) << "\n";
  for (const auto& block : out["blocks"]) {
    std::cout << "\n--- " << block["split"].get<std::string>() << " block "
              << block["index"].get<uint64_t>() << " ---\n";
    if (options.ids) {
      std::string line;
      for (const auto& id : block["ids"])
        absl::StrAppend(&line, line.empty() ? "" : " ", id.get<uint32_t>());
      std::cout << line << "\n";
    }
    std::cout << block["text"].get<std::string>() << "\n";
  }
}

}  // namespace

void RegisterDatasetCommands(CLI::App& app) {
  CLI::App* dataset = app.add_subcommand("dataset", "Packed datasets (docs/dataset-format.md)");
  dataset->require_subcommand(1);
  auto options = std::make_shared<InspectOptions>();
  CLI::App* inspect =
      dataset->add_subcommand("inspect", "Print a dataset's manifest and decode blocks to text");
  inspect->add_option("dir", options->dir, "Dataset directory (holds manifest.json)")->required();
  inspect->add_option("-b,--block", options->blocks, "Block index to decode (repeatable)");
  inspect->add_option("--split", options->split, "Split of --block: train or validation");
  inspect->add_option("--tokenizer", options->tokenizer,
                      "Tokenizer to decode with (default: DIR/tokenizer.json)");
  inspect->add_flag("--verify", options->verify, "Check every shard's SHA-256");
  inspect->add_flag("--ids", options->ids, "Print the token ids too");
  inspect->add_flag("--special", options->keep_special, "Keep [CLS]/[SEP] in decoded text");
  inspect->callback([options] { RunInspect(*options); });
}

}  // namespace bert::client
