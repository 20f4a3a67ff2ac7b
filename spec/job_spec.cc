// ParseJobSpec: YAML -> fields (yaml_proto_reader) -> defaults and presets
// (spec_defaults) -> absolute, checked paths (spec_paths) -> range and
// cross-field checks (spec_validator).
#include "spec/job_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spec/spec_defaults.h"
#include "spec/spec_error_list.h"
#include "spec/spec_paths.h"
#include "spec/spec_validator.h"
#include "spec/yaml_proto_reader.h"

namespace bert::spec {
namespace {

// Specs are a few KiB; anything far larger is refused before parsing (bertd
// also refuses larger requests before calling this; see job_manager.cc).
constexpr size_t kMaxSpecBytes = 1 << 20;

}  // namespace

ParseResult ParseJobSpec(std::string_view yaml, const ParseOptions& options) {
  ParseResult result;
  FieldLocations locations;
  SpecErrorList errors(&locations);
  if (yaml.size() > kMaxSpecBytes) {
    errors.Add("",
               absl::StrCat("the spec is ", yaml.size(), " bytes; the limit is ", kMaxSpecBytes));
    result.errors = errors.Take();
    return result;
  }
  YAML::Node root;
  try {
    const std::string text(yaml);
    root = YAML::Load(text);
    // Aliases are cheap to write and costly to read: bounded before reading.
    if (!CheckYamlAliases(text, &errors)) {
      result.errors = errors.Take();
      return result;
    }
  } catch (const YAML::Exception& e) {
    // e.msg is the reason alone; e.mark says where.
    errors.AddAt(
        "", absl::StrCat("invalid YAML: ", e.msg),
        {e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0});
    result.errors = errors.Take();
    return result;
  } catch (const std::exception& e) {
    errors.Add("", absl::StrCat("invalid YAML: ", e.what()));
    result.errors = errors.Take();
    return result;
  }
  if (!root.IsDefined() || root.IsNull()) {
    errors.AddAt("", "the spec is empty", {1, 1});
    result.errors = errors.Take();
    return result;
  }
  locations.Set("", LocationOf(root));
  try {
    YamlProtoReader reader(&locations, &errors);
    reader.ReadMessage(root, "", &result.spec);
    if (reader.exhausted()) {  // the spec is incomplete: nothing more to check
      result.errors = errors.Take();
      return result;
    }
  } catch (const YAML::Exception& e) {
    errors.AddAt(
        "", absl::StrCat("invalid YAML: ", e.msg),
        {e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0});
  }
  FillDefaults(locations, &result.spec, &errors);
  ResolvePaths(options, locations, &result.spec, &errors);
  ValidateSpec(result.spec, locations, &errors);
  result.errors = errors.Take();
  result.set_fields = locations;
  // In file order, as a reader goes through them; unlocated ones last.
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const bert::v1::SpecError& a, const bert::v1::SpecError& b) {
                     const auto key = [](const bert::v1::SpecError& e) {
                       return std::make_pair(e.line() == 0 ? INT32_MAX : e.line(), e.column());
                     };
                     return key(a) < key(b);
                   });
  return result;
}

std::string FormatErrors(std::string_view file_name,
                         const std::vector<bert::v1::SpecError>& errors) {
  std::string out;
  for (const bert::v1::SpecError& error : errors) {
    absl::StrAppend(&out, std::string(file_name));
    if (error.line() > 0) {
      absl::StrAppend(&out, ":", error.line());
      if (error.column() > 0) absl::StrAppend(&out, ":", error.column());
    }
    absl::StrAppend(&out, ": ");
    if (!error.field().empty()) absl::StrAppend(&out, error.field(), ": ");
    absl::StrAppend(&out, error.message(), "\n");
  }
  return out;
}

std::vector<bert::v1::StageKind> PlannedStages(const bert::v1::JobSpec& spec) {
  const bool from_dataset = !spec.preprocess().from_dataset().empty();
  // A warm start (model.from) keeps its model's tokenizer.
  const bool from_tokenizer = !spec.tokenizer().from().empty() || !spec.model().from().empty();
  std::vector<bert::v1::StageKind> stages;
  if (!from_dataset) {
    stages.push_back(bert::v1::PREPARE);
    if (!from_tokenizer) stages.push_back(bert::v1::TOKENIZER);
    stages.push_back(bert::v1::PREPROCESS);
  }
  stages.push_back(bert::v1::PRETRAIN);
  stages.push_back(bert::v1::EXPORT);
  return stages;
}

}  // namespace bert::spec
