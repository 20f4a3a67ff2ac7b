// tokenizer.json, in Hugging Face `tokenizers`' format (version "1.0"):
// the subset a BERT WordPiece tokenizer uses. Anything else is a clear error.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tokenizer/tokenizer_impl.h"

namespace bert::tokenizer {
namespace {

// Parsing uses the map-based json (nlohmann's ordered_json finds keys by
// linear search: quadratic on a 30000-token vocabulary); writing keeps
// Hugging Face's key order with ordered_json, and the vocabulary is written
// by hand in id order.
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

absl::Status Invalid(const std::string& source, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", std::string(what)));
}

absl::StatusOr<BertNormalizerOptions> ParseNormalizer(const Json& j, const std::string& source) {
  if (j.is_null()) return BertNormalizerOptions::None();
  if (!j.is_object() || j.value("type", "") != "BertNormalizer") {
    return absl::UnimplementedError(absl::StrCat(source, ": normalizer ",
                                                 j.is_object() ? j.value("type", "?") : j.dump(),
                                                 " is not supported (only BertNormalizer)"));
  }
  BertNormalizerOptions options;
  auto flag = [&](const char* key, bool fallback) -> absl::StatusOr<bool> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean())
      return Invalid(source, absl::StrCat("normalizer.", key, " is not a boolean"));
    return it->get<bool>();
  };
  BERT_ASSIGN_OR_RETURN(options.clean_text, flag("clean_text", true));
  BERT_ASSIGN_OR_RETURN(options.handle_chinese_chars, flag("handle_chinese_chars", true));
  BERT_ASSIGN_OR_RETURN(options.lowercase, flag("lowercase", true));
  auto strip = j.find("strip_accents");
  if (strip != j.end() && !strip->is_null()) {
    if (!strip->is_boolean()) return Invalid(source, "normalizer.strip_accents is not a boolean");
    options.strip_accents = strip->get<bool>();
  }
  return options;
}

absl::StatusOr<uint32_t> ParseId(const Json& j, const std::string& source, std::string_view what) {
  if (!j.is_number_unsigned() || j.get<uint64_t>() >= kNoTokenId) {
    return Invalid(source, absl::StrCat(std::string(what), " is not a valid token id"));
  }
  return j.get<uint32_t>();
}

absl::StatusOr<std::vector<TemplatePiece>> ParseTemplate(const Json& j, const Json& specials,
                                                         const std::string& source,
                                                         std::string_view name) {
  std::vector<TemplatePiece> pieces;
  if (!j.is_array())
    return Invalid(source, absl::StrCat("post_processor.", std::string(name), " is not an array"));
  for (const Json& item : j) {
    TemplatePiece piece;
    if (item.contains("Sequence")) {
      const Json& s = item["Sequence"];
      std::string id = s.value("id", "");
      if (id != "A" && id != "B") return Invalid(source, "template sequence id is not A or B");
      piece.sequence = id == "A" ? 0 : 1;
      piece.type_id = s.value("type_id", 0u);
    } else if (item.contains("SpecialToken")) {
      const Json& s = item["SpecialToken"];
      piece.name = s.value("id", "");
      piece.type_id = s.value("type_id", 0u);
      if (!specials.is_object() || !specials.contains(piece.name)) {
        return Invalid(source, absl::StrCat("template special token ", piece.name,
                                            " is not in special_tokens"));
      }
      const Json& ids = specials[piece.name]["ids"];
      if (!ids.is_array() || ids.empty()) {
        return Invalid(source, absl::StrCat("special token ", piece.name, " has no ids"));
      }
      for (const Json& id : ids) {
        BERT_ASSIGN_OR_RETURN(uint32_t v, ParseId(id, source, piece.name));
        piece.ids.push_back(v);
      }
    } else {
      return Invalid(source, "template item is neither Sequence nor SpecialToken");
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

absl::StatusOr<PostProcessor> ParsePostProcessor(const Json& j, const std::string& source) {
  if (j.is_null()) return PostProcessor{};
  std::string type = j.is_object() ? j.value("type", "") : "";
  if (type == "BertProcessing") {
    const Json& sep = j["sep"];
    const Json& cls = j["cls"];
    if (!sep.is_array() || sep.size() != 2 || !cls.is_array() || cls.size() != 2 ||
        !sep[0].is_string() || !cls[0].is_string()) {
      return Invalid(source, "post_processor BertProcessing needs sep and cls as [token, id]");
    }
    BERT_ASSIGN_OR_RETURN(uint32_t sep_id, ParseId(sep[1], source, "post_processor.sep"));
    BERT_ASSIGN_OR_RETURN(uint32_t cls_id, ParseId(cls[1], source, "post_processor.cls"));
    return BertPostProcessor(cls[0].get<std::string>(), cls_id, sep[0].get<std::string>(), sep_id);
  }
  if (type == "TemplateProcessing") {
    PostProcessor post;
    post.enabled = true;
    const Json specials = j.value("special_tokens", Json::object());
    BERT_ASSIGN_OR_RETURN(post.single, ParseTemplate(j["single"], specials, source, "single"));
    BERT_ASSIGN_OR_RETURN(post.pair, ParseTemplate(j["pair"], specials, source, "pair"));
    return post;
  }
  return absl::UnimplementedError(
      absl::StrCat(source, ": post_processor ", type.empty() ? j.dump() : type,
                   " is not supported (only BertProcessing and TemplateProcessing)"));
}

OrderedJson TemplateJson(const std::vector<TemplatePiece>& pieces) {
  OrderedJson out = OrderedJson::array();
  for (const TemplatePiece& p : pieces) {
    if (p.sequence >= 0) {
      out.push_back({{"Sequence", {{"id", p.sequence == 0 ? "A" : "B"}, {"type_id", p.type_id}}}});
    } else {
      out.push_back({{"SpecialToken", {{"id", p.name}, {"type_id", p.type_id}}}});
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TokenizerImpl>> ParseTokenizerJson(std::string_view text,
                                                                  const std::string& source) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid(source, "not valid JSON");
  if (!j.is_object()) return Invalid(source, "not a JSON object");
  if (!j.contains("model") || !j["model"].is_object()) return Invalid(source, "no model");
  const Json& model = j["model"];
  std::string type = model.value("type", "WordPiece");
  if (type != "WordPiece") {
    return absl::UnimplementedError(
        absl::StrCat(source, ": model type ", type, " is not supported (only WordPiece)"));
  }
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return Invalid(source, "model.vocab is not an object");
  const Json& vocab_json = model["vocab"];
  std::vector<std::string> vocab(vocab_json.size());
  std::vector<uint8_t> seen(vocab_json.size(), 0);
  for (const auto& [token, id_json] : vocab_json.items()) {
    BERT_ASSIGN_OR_RETURN(uint32_t id,
                          ParseId(id_json, source, absl::StrCat("model.vocab[\"", token, "\"]")));
    if (id >= vocab.size() || seen[id]) {
      return Invalid(source, absl::StrCat("model.vocab ids are not 0..", vocab.size() - 1,
                                          " each once (token \"", token, "\" has id ", id, ")"));
    }
    seen[id] = 1;
    vocab[id] = token;
  }
  auto str = [&](const char* key, const char* fallback) -> absl::StatusOr<std::string> {
    auto it = model.find(key);
    if (it == model.end() || it->is_null()) return std::string(fallback);
    if (!it->is_string()) return Invalid(source, absl::StrCat("model.", key, " is not a string"));
    return it->get<std::string>();
  };
  BERT_ASSIGN_OR_RETURN(std::string unk, str("unk_token", "[UNK]"));
  BERT_ASSIGN_OR_RETURN(std::string prefix, str("continuing_subword_prefix", "##"));
  size_t max_chars = 100;
  if (model.contains("max_input_chars_per_word")) {
    if (!model["max_input_chars_per_word"].is_number_unsigned()) {
      return Invalid(source, "model.max_input_chars_per_word is not a non-negative integer");
    }
    max_chars = model["max_input_chars_per_word"].get<size_t>();
  }
  BERT_ASSIGN_OR_RETURN(BertNormalizerOptions normalizer,
                        ParseNormalizer(j.value("normalizer", Json()), source));
  const Json pre = j.value("pre_tokenizer", Json());
  if (!pre.is_object() || pre.value("type", "") != "BertPreTokenizer") {
    return absl::UnimplementedError(absl::StrCat(source, ": pre_tokenizer ", pre.dump(),
                                                 " is not supported (only BertPreTokenizer)"));
  }
  BERT_ASSIGN_OR_RETURN(
      WordPieceModel wordpiece,
      WordPieceModel::Create(vocab, std::move(unk), std::move(prefix), max_chars));
  auto impl = std::make_shared<TokenizerImpl>(normalizer, std::move(wordpiece));
  BERT_ASSIGN_OR_RETURN(impl->post, ParsePostProcessor(j.value("post_processor", Json()), source));
  for (const TemplatePiece& piece : impl->post.pair) {
    for (uint32_t id : piece.ids) {
      if (id >= vocab.size())
        return Invalid(source,
                       absl::StrCat("post_processor token id ", id, " is not in the vocabulary"));
    }
  }
  const Json added = j.value("added_tokens", Json::array());
  if (!added.is_array()) return Invalid(source, "added_tokens is not an array");
  for (const Json& token : added) {
    if (!token.is_object() || !token.contains("content") || !token["content"].is_string() ||
        token["content"].get<std::string>().empty()) {
      return Invalid(source, "an added token has no content");
    }
    std::string content = token["content"].get<std::string>();
    BERT_ASSIGN_OR_RETURN(uint32_t id, ParseId(token.value("id", Json()), source,
                                               absl::StrCat("added token ", content)));
    if (id >= vocab.size() || vocab[id] != content) {
      return absl::UnimplementedError(
          absl::StrCat(source, ": added token \"", content, "\" (id ", id,
                       ") is not the vocabulary's token with that id; tokens beyond the WordPiece "
                       "vocabulary are not supported"));
    }
    impl->added_tokens.push_back(AddedToken{content, id, token.value("special", false)});
  }
  impl->decoder = j.value("decoder", Json());
  return impl;
}

std::string SerializeTokenizerJson(const TokenizerImpl& impl) {
  OrderedJson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  std::vector<AddedToken> added = impl.added_tokens;
  std::sort(added.begin(), added.end(),
            [](const AddedToken& x, const AddedToken& y) { return x.id < y.id; });
  OrderedJson added_json = OrderedJson::array();
  for (const AddedToken& token : added) {
    added_json.push_back({{"id", token.id},
                          {"content", token.content},
                          {"single_word", false},
                          {"lstrip", false},
                          {"rstrip", false},
                          {"normalized", false},
                          {"special", token.special}});
  }
  j["added_tokens"] = std::move(added_json);
  const BertNormalizerOptions& n = impl.splitter.options();
  j["normalizer"] = {
      {"type", "BertNormalizer"},
      {"clean_text", n.clean_text},
      {"handle_chinese_chars", n.handle_chinese_chars},
      {"strip_accents", n.strip_accents ? OrderedJson(*n.strip_accents) : OrderedJson()},
      {"lowercase", n.lowercase}};
  j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  if (impl.post.enabled) {
    OrderedJson specials = OrderedJson::object();
    for (const TemplatePiece& p : impl.post.pair) {
      if (p.sequence >= 0 || specials.contains(p.name)) continue;
      OrderedJson tokens = OrderedJson::array();
      for (uint32_t id : p.ids) tokens.push_back(std::string(impl.model.Token(id)));
      specials[p.name] = {{"id", p.name}, {"ids", p.ids}, {"tokens", tokens}};
    }
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", TemplateJson(impl.post.single)},
                           {"pair", TemplateJson(impl.post.pair)},
                           {"special_tokens", specials}};
  } else {
    j["post_processor"] = nullptr;
  }
  j["decoder"] = impl.decoder;
  constexpr std::string_view kVocabMark = "\"@vocab@\"";
  j["model"] = {{"type", "WordPiece"},
                {"unk_token", impl.model.unk_token()},
                {"continuing_subword_prefix", impl.model.prefix()},
                {"max_input_chars_per_word", impl.model.max_input_chars_per_word()},
                {"vocab", "@vocab@"}};
  std::string text = j.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
  // The vocabulary, in id order; a token listed twice (possible in a
  // vocab.txt) is written once, with the id that lookups use.
  std::string vocab = "{";
  for (uint32_t id = 0; id < impl.model.size(); ++id) {
    std::string_view token = impl.model.Token(id);
    if (impl.model.Find(token) != id) continue;
    vocab += id == 0 ? "\n      " : ",\n      ";
    vocab +=
        OrderedJson(std::string(token)).dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
    vocab += ": ";
    vocab += std::to_string(id);
  }
  vocab += "\n    }";
  size_t at = text.rfind(kVocabMark);
  text.replace(at, kVocabMark.size(), vocab);
  return text;
}

}  // namespace bert::tokenizer
