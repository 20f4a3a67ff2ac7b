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

// Hugging Face's files nest 5 levels deep.
constexpr int kMaxJsonDepth = 64;

absl::Status Invalid(const std::string& source, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", std::string(what)));
}

// The file is untrusted: fields are looked up with find() (a missing key is
// an error naming it, never const operator[], which is undefined behaviour on a
// missing key) and type-checked before get<>() (which would throw), and values
// are named by their JSON type in errors, never dumped (a dump can be huge).

// obj[key] when obj is an object that has it (null counts as absent), else nullptr.
const Json* Find(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// The string at obj[key]; `fallback` when absent; an error naming `field` otherwise.
absl::StatusOr<std::string> StringField(const Json& obj, std::string_view key,
                                        std::string_view fallback, const std::string& source,
                                        const std::string& field) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return std::string(fallback);
  if (!v->is_string()) {
    return Invalid(source, absl::StrCat(field, " is not a string (it is ", v->type_name(), ")"));
  }
  return v->get<std::string>();
}

// Whether `text` nests arrays and objects deeper than `limit` (strings skipped).
// Copying and writing a json recurse once per level: a file of a million '['
// would overflow the stack.
bool NestsDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// A short description of `j` for errors: its "type" string, else its JSON type.
std::string Describe(const Json& j) {
  const Json* type = Find(j, "type");
  if (type != nullptr && type->is_string()) return type->get<std::string>().substr(0, 64);
  return j.type_name();
}

absl::StatusOr<BertNormalizerOptions> ParseNormalizer(const Json& j, const std::string& source) {
  if (j.is_null()) return BertNormalizerOptions::None();
  if (!j.is_object() || Describe(j) != "BertNormalizer") {
    return absl::UnimplementedError(absl::StrCat(source, ": normalizer ", Describe(j),
                                                 " is not supported (only BertNormalizer)"));
  }
  BertNormalizerOptions options;
  auto flag = [&](const char* key, bool fallback) -> absl::StatusOr<bool> {
    const Json* v = Find(j, key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean())
      return Invalid(source, absl::StrCat("normalizer.", key, " is not a boolean"));
    return v->get<bool>();
  };
  BERT_ASSIGN_OR_RETURN(options.clean_text, flag("clean_text", true));
  BERT_ASSIGN_OR_RETURN(options.handle_chinese_chars, flag("handle_chinese_chars", true));
  BERT_ASSIGN_OR_RETURN(options.lowercase, flag("lowercase", true));
  if (const Json* strip = Find(j, "strip_accents")) {
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

// A template's type_id: 0 when absent, else a small non-negative integer.
absl::StatusOr<uint32_t> ParseTypeId(const Json& piece, const std::string& source,
                                     const std::string& field) {
  const Json* v = Find(piece, "type_id");
  if (v == nullptr) return 0u;
  if (!v->is_number_unsigned() || v->get<uint64_t>() > 255) {
    return Invalid(source, absl::StrCat(field, ".type_id is not an integer in [0, 255]"));
  }
  return v->get<uint32_t>();
}

absl::StatusOr<std::vector<TemplatePiece>> ParseTemplate(const Json* j, const Json* specials,
                                                         const std::string& source,
                                                         const std::string& name) {
  const std::string field = absl::StrCat("post_processor.", name);
  std::vector<TemplatePiece> pieces;
  if (j == nullptr || !j->is_array())
    return Invalid(source, absl::StrCat(field, " is not an array"));
  for (const Json& item : *j) {
    TemplatePiece piece;
    if (const Json* s = Find(item, "Sequence")) {
      const absl::StatusOr<std::string> id =
          StringField(*s, "id", "", source, field + "[].Sequence.id");
      if (!id.ok()) return id.status();
      if (*id != "A" && *id != "B") return Invalid(source, "template sequence id is not A or B");
      piece.sequence = *id == "A" ? 0 : 1;
      BERT_ASSIGN_OR_RETURN(piece.type_id, ParseTypeId(*s, source, field + "[].Sequence"));
    } else if (const Json* s = Find(item, "SpecialToken")) {
      BERT_ASSIGN_OR_RETURN(piece.name,
                            StringField(*s, "id", "", source, field + "[].SpecialToken.id"));
      BERT_ASSIGN_OR_RETURN(piece.type_id, ParseTypeId(*s, source, field + "[].SpecialToken"));
      const Json* special = specials == nullptr ? nullptr : Find(*specials, piece.name);
      if (special == nullptr) {
        return Invalid(source, absl::StrCat("template special token ", piece.name.substr(0, 64),
                                            " is not in special_tokens"));
      }
      const Json* ids = Find(*special, "ids");
      if (ids == nullptr || !ids->is_array() || ids->empty()) {
        return Invalid(source,
                       absl::StrCat("special token ", piece.name.substr(0, 64), " has no ids"));
      }
      for (const Json& id : *ids) {
        BERT_ASSIGN_OR_RETURN(uint32_t v, ParseId(id, source, piece.name.substr(0, 64)));
        piece.ids.push_back(v);
      }
    } else {
      return Invalid(source, "template item is neither Sequence nor SpecialToken");
    }
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

absl::StatusOr<PostProcessor> ParsePostProcessor(const Json* j, const std::string& source) {
  if (j == nullptr) return PostProcessor{};
  const std::string type = j->is_object() ? Describe(*j) : "";
  if (type == "BertProcessing") {
    const Json* sep = Find(*j, "sep");
    const Json* cls = Find(*j, "cls");
    if (sep == nullptr || cls == nullptr || !sep->is_array() || sep->size() != 2 ||
        !cls->is_array() || cls->size() != 2 || !(*sep)[0].is_string() || !(*cls)[0].is_string()) {
      return Invalid(source, "post_processor BertProcessing needs sep and cls as [token, id]");
    }
    BERT_ASSIGN_OR_RETURN(uint32_t sep_id, ParseId((*sep)[1], source, "post_processor.sep"));
    BERT_ASSIGN_OR_RETURN(uint32_t cls_id, ParseId((*cls)[1], source, "post_processor.cls"));
    return BertPostProcessor((*cls)[0].get<std::string>(), cls_id, (*sep)[0].get<std::string>(),
                             sep_id);
  }
  if (type == "TemplateProcessing") {
    PostProcessor post;
    post.enabled = true;
    const Json* specials = Find(*j, "special_tokens");
    if (specials != nullptr && !specials->is_object())
      return Invalid(source, "post_processor.special_tokens is not an object");
    BERT_ASSIGN_OR_RETURN(post.single,
                          ParseTemplate(Find(*j, "single"), specials, source, "single"));
    BERT_ASSIGN_OR_RETURN(post.pair, ParseTemplate(Find(*j, "pair"), specials, source, "pair"));
    return post;
  }
  return absl::UnimplementedError(
      absl::StrCat(source, ": post_processor ", type.empty() ? j->type_name() : type,
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
  if (NestsDeeperThan(text, kMaxJsonDepth)) {
    return Invalid(source, absl::StrCat("nests arrays and objects deeper than ", kMaxJsonDepth));
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid(source, "not valid JSON");
  if (!j.is_object()) return Invalid(source, "not a JSON object");
  const Json* model_ptr = Find(j, "model");
  if (model_ptr == nullptr || !model_ptr->is_object()) return Invalid(source, "no model");
  const Json& model = *model_ptr;
  BERT_ASSIGN_OR_RETURN(std::string type,
                        StringField(model, "type", "WordPiece", source, "model.type"));
  if (type != "WordPiece") {
    return absl::UnimplementedError(absl::StrCat(source, ": model type ", type.substr(0, 64),
                                                 " is not supported (only WordPiece)"));
  }
  const Json* vocab_ptr = Find(model, "vocab");
  if (vocab_ptr == nullptr || !vocab_ptr->is_object())
    return Invalid(source, "model.vocab is not an object");
  const Json& vocab_json = *vocab_ptr;
  std::vector<std::string> vocab(vocab_json.size());
  std::vector<uint8_t> seen(vocab_json.size(), 0);
  for (const auto& [token, id_json] : vocab_json.items()) {
    BERT_ASSIGN_OR_RETURN(
        uint32_t id,
        ParseId(id_json, source, absl::StrCat("model.vocab[\"", token.substr(0, 64), "\"]")));
    if (id >= vocab.size() || seen[id]) {
      return Invalid(
          source, absl::StrCat("model.vocab ids are not 0..", vocab.size() - 1,
                               " each once (token \"", token.substr(0, 64), "\" has id ", id, ")"));
    }
    seen[id] = 1;
    vocab[id] = token;
  }
  BERT_ASSIGN_OR_RETURN(std::string unk,
                        StringField(model, "unk_token", "[UNK]", source, "model.unk_token"));
  BERT_ASSIGN_OR_RETURN(std::string prefix, StringField(model, "continuing_subword_prefix", "##",
                                                        source, "model.continuing_subword_prefix"));
  size_t max_chars = 100;
  if (const Json* max = Find(model, "max_input_chars_per_word")) {
    if (!max->is_number_unsigned()) {
      return Invalid(source, "model.max_input_chars_per_word is not a non-negative integer");
    }
    max_chars = max->get<size_t>();
  }
  const Json none;
  const Json* normalizer_json = Find(j, "normalizer");
  BERT_ASSIGN_OR_RETURN(BertNormalizerOptions normalizer,
                        ParseNormalizer(normalizer_json ? *normalizer_json : none, source));
  const Json* pre = Find(j, "pre_tokenizer");
  if (pre == nullptr || !pre->is_object() || Describe(*pre) != "BertPreTokenizer") {
    return absl::UnimplementedError(absl::StrCat(source, ": pre_tokenizer ",
                                                 pre == nullptr ? "null" : Describe(*pre),
                                                 " is not supported (only BertPreTokenizer)"));
  }
  BERT_ASSIGN_OR_RETURN(
      WordPieceModel wordpiece,
      WordPieceModel::Create(vocab, std::move(unk), std::move(prefix), max_chars));
  auto impl = std::make_shared<TokenizerImpl>(normalizer, std::move(wordpiece));
  BERT_ASSIGN_OR_RETURN(impl->post, ParsePostProcessor(Find(j, "post_processor"), source));
  for (const auto* pieces : {&impl->post.single, &impl->post.pair}) {
    for (const TemplatePiece& piece : *pieces) {
      for (uint32_t id : piece.ids) {
        if (id >= vocab.size())
          return Invalid(source,
                         absl::StrCat("post_processor token id ", id, " is not in the vocabulary"));
      }
    }
  }
  const Json* added = Find(j, "added_tokens");
  if (added != nullptr && !added->is_array())
    return Invalid(source, "added_tokens is not an array");
  const Json no_tokens = Json::array();
  for (const Json& token : added != nullptr ? *added : no_tokens) {
    const Json* content_json = Find(token, "content");
    if (content_json == nullptr || !content_json->is_string() ||
        content_json->get_ref<const std::string&>().empty()) {
      return Invalid(source, "an added token has no content");
    }
    std::string content = content_json->get<std::string>();
    const Json* id_json = Find(token, "id");
    BERT_ASSIGN_OR_RETURN(uint32_t id,
                          ParseId(id_json ? *id_json : none, source,
                                  absl::StrCat("added token ", content.substr(0, 64))));
    if (id >= vocab.size() || vocab[id] != content) {
      return absl::UnimplementedError(
          absl::StrCat(source, ": added token \"", content.substr(0, 64), "\" (id ", id,
                       ") is not the vocabulary's token with that id; tokens beyond the WordPiece "
                       "vocabulary are not supported"));
    }
    bool special = false;
    if (const Json* s = Find(token, "special")) {
      if (!s->is_boolean())
        return Invalid(source, absl::StrCat("added token ", content.substr(0, 64),
                                            ": special is not a boolean"));
      special = s->get<bool>();
    }
    impl->added_tokens.push_back(AddedToken{content, id, special});
  }
  if (const Json* decoder = Find(j, "decoder")) impl->decoder = *decoder;
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
