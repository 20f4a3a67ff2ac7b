#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/vocab_file.h"

namespace bert::tokenizer {
namespace {

WordSplitter::Scratch& ThreadScratch() {
  thread_local WordSplitter::Scratch scratch;
  return scratch;
}

// Calls emit(id, begin, end) for every token of one sequence (no special
// tokens of the template), begin/end being byte offsets into `text`. With
// kAlign false the offsets are not computed (0, 0).
template <bool kAlign, typename Emit>
void EncodeSequence(const TokenizerImpl& impl, std::string_view text, Emit&& emit) {
  WordSplitter::Scratch& scratch = ThreadScratch();
  auto encode_segment = [&](std::string_view segment, size_t base) {
    impl.splitter.Split<kAlign>(segment, scratch,
                                [&](std::string_view word, const WordSplitter::Alignment* align) {
                                  impl.model.Tokenize(word, [&](uint32_t id, size_t b, size_t e) {
                                    if constexpr (kAlign) {
                                      emit(id, base + align[b].first, base + align[e - 1].second);
                                    } else {
                                      emit(id, size_t{0}, size_t{0});
                                    }
                                  });
                                });
  };
  if (impl.added_tokens.empty()) {
    encode_segment(text, 0);
    return;
  }
  // Leftmost-longest match of the added tokens in the raw text.
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* match = nullptr;
    for (const AddedToken& token : impl.added_tokens) {  // longest first
      if (text.compare(pos, token.content.size(), token.content) == 0) {
        match = &token;
        break;
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    if (pos > segment_start)
      encode_segment(text.substr(segment_start, pos - segment_start), segment_start);
    emit(match->id, pos, pos + match->content.size());
    pos += match->content.size();
    segment_start = pos;
  }
  if (segment_start < text.size()) encode_segment(text.substr(segment_start), segment_start);
}

// One sequence's tokens before post-processing.
struct Piece {
  std::vector<uint32_t> ids;
  std::vector<std::pair<size_t, size_t>> offsets;
};

Piece EncodePiece(const TokenizerImpl& impl, std::string_view text, bool with_offsets) {
  Piece piece;
  if (with_offsets) {
    EncodeSequence<true>(impl, text, [&](uint32_t id, size_t b, size_t e) {
      piece.ids.push_back(id);
      piece.offsets.emplace_back(b, e);
    });
  } else {
    EncodeSequence<false>(impl, text,
                          [&](uint32_t id, size_t, size_t) { piece.ids.push_back(id); });
  }
  return piece;
}

void TruncatePiece(Piece& piece, size_t length) {
  if (piece.ids.size() > length) piece.ids.resize(length);
  if (piece.offsets.size() > length) piece.offsets.resize(length);
}

// Hugging Face's LongestFirst truncation of a pair to `budget` tokens.
void TruncatePair(Piece& a, Piece& b, size_t budget) {
  size_t n1 = a.ids.size();
  size_t n2 = b.ids.size();
  if (n1 + n2 <= budget) return;
  bool swap = n1 > n2;
  if (swap) std::swap(n1, n2);
  if (n1 > budget) {
    n2 = n1;
  } else {
    n2 = std::max(n1, budget - n1);
  }
  if (n1 + n2 > budget) {
    n1 = budget / 2;
    n2 = n1 + budget % 2;
  }
  if (swap) std::swap(n1, n2);
  TruncatePiece(a, n1);
  TruncatePiece(b, n2);
}

void AppendToken(const TokenizerImpl& impl, const EncodeOptions& options, uint32_t id,
                 uint32_t type_id, bool special, std::pair<size_t, size_t> offset, Encoding* out) {
  out->ids.push_back(id);
  out->type_ids.push_back(type_id);
  out->special_tokens_mask.push_back(special ? 1 : 0);
  out->attention_mask.push_back(1);
  if (options.with_tokens) out->tokens.emplace_back(impl.model.Token(id));
  if (options.with_offsets) out->offsets.push_back(offset);
}

Encoding Assemble(const TokenizerImpl& impl, const EncodeOptions& options, const Piece* a,
                  const Piece* b) {
  Encoding out;
  auto append_piece = [&](const Piece& piece, uint32_t type_id) {
    for (size_t i = 0; i < piece.ids.size(); ++i) {
      AppendToken(impl, options, piece.ids[i], type_id, false,
                  options.with_offsets ? piece.offsets[i] : std::pair<size_t, size_t>{0, 0}, &out);
    }
  };
  bool templated = options.add_special_tokens && impl.post.enabled;
  if (!templated) {
    append_piece(*a, 0);
    if (b != nullptr) append_piece(*b, 1);
    return out;
  }
  const auto& pieces = b == nullptr ? impl.post.single : impl.post.pair;
  for (const TemplatePiece& t : pieces) {
    if (t.sequence < 0) {
      for (uint32_t id : t.ids) AppendToken(impl, options, id, t.type_id, true, {0, 0}, &out);
    } else {
      append_piece(t.sequence == 0 ? *a : *b, t.type_id);
    }
  }
  return out;
}

size_t Budget(const TokenizerImpl& impl, const EncodeOptions& options, bool is_pair) {
  size_t specials =
      options.add_special_tokens && impl.post.enabled ? impl.post.SpecialCount(is_pair) : 0;
  return options.max_length > specials ? options.max_length - specials : 0;
}

std::shared_ptr<const TokenizerImpl> Finished(std::shared_ptr<TokenizerImpl> impl) {
  FinishImpl(*impl);
  return impl;
}

}  // namespace

size_t PostProcessor::SpecialCount(bool is_pair) const {
  size_t n = 0;
  for (const TemplatePiece& t : is_pair ? pair : single) {
    if (t.sequence < 0) n += t.ids.size();
  }
  return n;
}

PostProcessor BertPostProcessor(std::string_view cls, uint32_t cls_id, std::string_view sep,
                                uint32_t sep_id) {
  PostProcessor post;
  post.enabled = true;
  TemplatePiece c{-1, {cls_id}, std::string(cls), 0};
  TemplatePiece s0{-1, {sep_id}, std::string(sep), 0};
  TemplatePiece s1{-1, {sep_id}, std::string(sep), 1};
  post.single = {c, TemplatePiece{0, {}, "", 0}, s0};
  post.pair = {c, TemplatePiece{0, {}, "", 0}, s0, TemplatePiece{1, {}, "", 1}, s1};
  return post;
}

void FinishImpl(TokenizerImpl& impl) {
  std::stable_sort(
      impl.added_tokens.begin(), impl.added_tokens.end(),
      [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  auto id_of = [&](std::string_view token) { return impl.model.Find(token).value_or(kNoTokenId); };
  impl.special_ids.pad = id_of("[PAD]");
  impl.special_ids.unk = impl.model.unk_id().value_or(kNoTokenId);
  impl.special_ids.cls = id_of("[CLS]");
  impl.special_ids.sep = id_of("[SEP]");
  impl.special_ids.mask = id_of("[MASK]");
  // Templates name their own [CLS]/[SEP]-like tokens: prefer those.
  if (impl.post.enabled && !impl.post.single.empty()) {
    const TemplatePiece& first = impl.post.single.front();
    const TemplatePiece& last = impl.post.single.back();
    if (first.sequence < 0 && first.ids.size() == 1) impl.special_ids.cls = first.ids[0];
    if (last.sequence < 0 && last.ids.size() == 1) impl.special_ids.sep = last.ids[0];
  }
  impl.is_special.assign(impl.model.size(), 0);
  for (const AddedToken& token : impl.added_tokens) {
    if (token.special && token.id < impl.is_special.size()) impl.is_special[token.id] = 1;
  }
  impl.json = SerializeTokenizerJson(impl);
  impl.fingerprint = Sha256Hex(impl.json);
}

Tokenizer TokenizerAccess::Make(std::shared_ptr<TokenizerImpl> impl) {
  return Tokenizer(Finished(std::move(impl)));
}

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) {
      file = (dir / "tokenizer.json").string();
    } else if (fs::exists(dir / "vocab.txt", ec)) {
      file = (dir / "vocab.txt").string();
    } else {
      return absl::NotFoundError(absl::StrCat("tokenizer directory ", path,
                                              " holds neither tokenizer.json nor vocab.txt"));
    }
  }
  BERT_ASSIGN_OR_RETURN(std::string contents, ReadTokenizerFile(file));
  bool is_json = file.size() >= 5 && file.compare(file.size() - 5, 5, ".json") == 0;
  if (!is_json) {
    size_t first = contents.find_first_not_of(" \t\r\n");
    is_json = first != std::string::npos && contents[first] == '{';
  }
  if (is_json) {
    BERT_ASSIGN_OR_RETURN(std::shared_ptr<TokenizerImpl> impl, ParseTokenizerJson(contents, file));
    return Tokenizer(Finished(std::move(impl)));
  }
  BERT_ASSIGN_OR_RETURN(std::vector<std::string> vocab, ParseVocabTxt(contents, file));
  BERT_ASSIGN_OR_RETURN(bool lowercase, LowercaseFromConfig(fs::path(file).parent_path().string()));
  auto tokenizer = FromVocab(std::move(vocab), lowercase);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(file, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<Tokenizer> Tokenizer::FromVocab(std::vector<std::string> vocab, bool lowercase) {
  BertNormalizerOptions normalizer;
  normalizer.lowercase = lowercase;
  BERT_ASSIGN_OR_RETURN(WordPieceModel model, WordPieceModel::Create(vocab, "[UNK]", "##", 100));
  auto impl = std::make_shared<TokenizerImpl>(normalizer, std::move(model));
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    std::optional<uint32_t> id = impl->model.Find(name);
    if (!id) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token ", name, " is not in the vocabulary"));
    }
  }
  // Added tokens in id order, as Hugging Face writes them.
  std::vector<AddedToken> specials;
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    specials.push_back(AddedToken{name, *impl->model.Find(name), true});
  }
  std::sort(specials.begin(), specials.end(),
            [](const AddedToken& x, const AddedToken& y) { return x.id < y.id; });
  impl->added_tokens = std::move(specials);
  impl->post =
      BertPostProcessor("[CLS]", *impl->model.Find("[CLS]"), "[SEP]", *impl->model.Find("[SEP]"));
  impl->decoder = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  return Tokenizer(Finished(std::move(impl)));
}

absl::Status Tokenizer::Save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create directory ", dir, ": ", ec.message()));
  BERT_RETURN_IF_ERROR(WriteFileAtomically(dir + "/tokenizer.json", impl_->json));
  std::string vocab;
  for (uint32_t id = 0; id < impl_->model.size(); ++id) {
    absl::StrAppend(&vocab,
                    absl::string_view(impl_->model.Token(id).data(), impl_->model.Token(id).size()),
                    "\n");
  }
  return WriteFileAtomically(dir + "/vocab.txt", vocab);
}

std::string Tokenizer::ToJson() const { return impl_->json; }

Encoding Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  Piece a = EncodePiece(*impl_, text, options.with_offsets);
  if (options.max_length > 0) TruncatePiece(a, Budget(*impl_, options, false));
  return Assemble(*impl_, options, &a, nullptr);
}

Encoding Tokenizer::EncodePair(std::string_view a, std::string_view b,
                               const EncodeOptions& options) const {
  Piece pa = EncodePiece(*impl_, a, options.with_offsets);
  Piece pb = EncodePiece(*impl_, b, options.with_offsets);
  if (options.max_length > 0) TruncatePair(pa, pb, Budget(*impl_, options, true));
  return Assemble(*impl_, options, &pa, &pb);
}

size_t Tokenizer::AppendIds(std::string_view text, bool add_special_tokens, size_t max_length,
                            std::vector<uint32_t>* out) const {
  const TokenizerImpl& impl = *impl_;
  bool templated = add_special_tokens && impl.post.enabled;
  const std::vector<TemplatePiece>* pieces = templated ? &impl.post.single : nullptr;
  size_t budget = SIZE_MAX;
  if (max_length > 0) {
    size_t specials = templated ? impl.post.SpecialCount(false) : 0;
    budget = max_length > specials ? max_length - specials : 0;
  }
  size_t dropped = 0;
  auto encode = [&] {
    size_t start = out->size();
    EncodeSequence<false>(impl, text, [&](uint32_t id, size_t, size_t) { out->push_back(id); });
    size_t produced = out->size() - start;
    if (produced > budget) {
      dropped = produced - budget;
      out->resize(start + budget);
    }
  };
  if (pieces == nullptr) {
    encode();
    return dropped;
  }
  for (const TemplatePiece& t : *pieces) {
    if (t.sequence < 0) {
      out->insert(out->end(), t.ids.begin(), t.ids.end());
    } else {
      encode();
    }
  }
  return dropped;
}

std::string Tokenizer::Decode(std::span<const uint32_t> ids, bool skip_special_tokens) const {
  const TokenizerImpl& impl = *impl_;
  std::vector<std::string_view> tokens;
  for (uint32_t id : ids) {
    if (id >= impl.model.size()) continue;  // unknown ids are skipped, as Hugging Face
    if (skip_special_tokens && impl.is_special[id]) continue;
    tokens.push_back(impl.model.Token(id));
  }
  std::string text;
  bool wordpiece = impl.decoder.is_object() && impl.decoder.value("type", "") == "WordPiece";
  if (!wordpiece) {  // no decoder: tokens joined by spaces
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text.append(tokens[i]);
    }
    return text;
  }
  std::string prefix = impl.decoder.value("prefix", std::string("##"));
  bool cleanup = impl.decoder.value("cleanup", true);
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string_view token = tokens[i];
    if (i > 0) {
      if (!prefix.empty() && token.substr(0, prefix.size()) == prefix) {
        token.remove_prefix(prefix.size());
      } else {
        text += ' ';
      }
    }
    text.append(token);
  }
  if (cleanup) {
    // Hugging Face's cleanup, one replacement after the other.
    static const std::pair<const char*, const char*> kCleanup[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kCleanup) text = absl::StrReplaceAll(text, {{from, to}});
  }
  return text;
}

size_t Tokenizer::vocab_size() const { return impl_->model.size(); }

std::optional<uint32_t> Tokenizer::TokenToId(std::string_view token) const {
  return impl_->model.Find(token);
}

std::string_view Tokenizer::IdToToken(uint32_t id) const {
  if (id >= impl_->model.size()) return {};
  return impl_->model.Token(id);
}

const SpecialTokenIds& Tokenizer::special_ids() const { return impl_->special_ids; }

bool Tokenizer::lowercase() const { return impl_->splitter.options().lowercase; }

std::string Tokenizer::Fingerprint() const { return impl_->fingerprint; }

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

}  // namespace bert::tokenizer
