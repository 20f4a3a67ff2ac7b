#include "spec/yaml_proto_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <limits>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spec/did_you_mean.h"
#include "spec/yaml_scalar.h"

namespace bert::spec {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

std::string KindOf(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return absl::StrCat("'", node.Scalar(), "'");
  }
}

std::string ExpectedKind(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "a mapping";
    default:
      return "a string";
  }
}

std::vector<std::string> FieldNames(const Descriptor* descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor->field_count(); ++i) names.push_back(descriptor->field(i)->name());
  return names;
}

// Counts alias uses while yaml-cpp parses, without building nodes.
class AliasCounter final : public YAML::EventHandler {
 public:
  int count = 0;
  YAML::Mark first_over;  // the use that passed the limit
  bool over = false;

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    if (++count > kMaxYamlAliases && !over) {
      over = true;
      first_over = mark;
    }
  }
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

bool CheckYamlAliases(const std::string& yaml, SpecErrorList* errors) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  AliasCounter counter;
  // The first document only, as YAML::Load reads: on some inputs (a NUL byte,
  // found by fuzz/spec_fuzzer.cc) yaml-cpp reports empty documents without end.
  parser.HandleNextDocument(counter);
  if (!counter.over) return true;
  errors->AddAt("",
                absl::StrCat("too many YAML aliases: the limit is ", kMaxYamlAliases,
                             " uses of '*name' per spec"),
                {counter.first_over.line + 1, counter.first_over.column + 1});
  return false;
}

bool YamlProtoReader::Visit(const YAML::Node& node) {
  if (exhausted_) return false;
  if (++visited_ <= kMaxYamlNodes) return true;
  exhausted_ = true;
  errors_->AddAt("",
                 absl::StrCat("the spec expands to more than ", kMaxYamlNodes,
                              " YAML nodes (an alias counts its whole value at each use); "
                              "stopped reading here"),
                 LocationOf(node));
  return false;
}

YamlLocation LocationOf(const YAML::Node& node) {
  if (!node.IsDefined()) return {};
  const YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

void YamlProtoReader::ReadMessage(const YAML::Node& node, const std::string& path,
                                  Message* message) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!Visit(node)) return;
  const Descriptor* descriptor = message->GetDescriptor();
  if (node.IsScalar() && descriptor->full_name() == "bert.v1.SourceSpec") {
    // Shorthand: `- data/*.txt` is a source with one path.
    const FieldDescriptor* paths = descriptor->FindFieldByName("paths");
    locations_->Set(Join(path, "paths[0]"), LocationOf(node));
    message->GetReflection()->AddString(message, paths, node.Scalar());
    return;
  }
  if (!node.IsMap()) {
    errors_->Add(path, absl::StrCat("expected a mapping, got ", KindOf(node)));
    return;
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!Visit(entry.first)) return;
    const YAML::Node& key_node = entry.first;
    if (!key_node.IsScalar()) {
      errors_->AddAt(path, "keys must be plain names", LocationOf(key_node));
      continue;
    }
    const std::string key = key_node.Scalar();
    const std::string child = Join(path, key);
    if (!seen.insert(key).second) {
      errors_->AddAt(child, "duplicate key", LocationOf(key_node));
      continue;
    }
    const FieldDescriptor* field = descriptor->FindFieldByName(key);
    if (field == nullptr) {
      std::string message_text = "unknown field";
      const std::string suggestion = SuggestKey(key, FieldNames(descriptor));
      if (!suggestion.empty()) absl::StrAppend(&message_text, "; did you mean '", suggestion, "'?");
      errors_->AddAt(child, message_text, LocationOf(key_node));
      continue;
    }
    // Values without a mark of their own (an empty value) are located at their key.
    YamlLocation location = LocationOf(entry.second);
    if (location.line == 0 || entry.second.IsNull()) location = LocationOf(key_node);
    locations_->Set(child, location);
    ReadField(entry.second, child, field, message);
  }
}

void YamlProtoReader::ReadField(const YAML::Node& node, const std::string& path,
                                const FieldDescriptor* field, Message* message) {
  if (field->is_map()) {
    ReadMap(node, path, field, message);
    return;
  }
  const Reflection* reflection = message->GetReflection();
  if (field->is_repeated()) {
    if (node.IsNull()) return;  // `special_tokens:` with nothing: an empty list.
    // A single value stands for a one-element list ("paths: data/*.txt").
    if (!node.IsSequence()) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const std::string element = absl::StrCat(path, "[0]");
        ReadMessage(node, element, reflection->AddMessage(message, field));
      } else {
        ReadScalar(node, absl::StrCat(path, "[0]"), field, message);
      }
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      if (exhausted_) return;
      const std::string element = absl::StrCat(path, "[", i, "]");
      locations_->Set(element, LocationOf(node[i]));
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        ReadMessage(node[i], element, reflection->AddMessage(message, field));
      } else {
        ReadScalar(node[i], element, field, message);
      }
    }
    return;
  }
  if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    ReadMessage(node, path, reflection->MutableMessage(message, field));
    return;
  }
  ReadScalar(node, path, field, message);
}

void YamlProtoReader::ReadMap(const YAML::Node& node, const std::string& path,
                              const FieldDescriptor* field, Message* message) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    errors_->Add(path, absl::StrCat("expected a mapping, got ", KindOf(node)));
    return;
  }
  const Reflection* reflection = message->GetReflection();
  const FieldDescriptor* key_field = field->message_type()->map_key();
  const FieldDescriptor* value_field = field->message_type()->map_value();
  std::set<std::string> seen;
  for (const auto& entry : node) {
    if (!Visit(entry.first)) return;
    const std::string child = Join(path, entry.first.Scalar());
    if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
      errors_->AddAt(child, "expected a 'key: value' pair of strings", LocationOf(entry.first));
      continue;
    }
    if (!seen.insert(entry.first.Scalar()).second) {
      errors_->AddAt(child, "duplicate key", LocationOf(entry.first));
      continue;
    }
    locations_->Set(child, LocationOf(entry.second));
    Message* pair = reflection->AddMessage(message, field);
    pair->GetReflection()->SetString(pair, key_field, entry.first.Scalar());
    pair->GetReflection()->SetString(pair, value_field, entry.second.Scalar());
  }
}

bool YamlProtoReader::ReadScalar(const YAML::Node& node, const std::string& path,
                                 const FieldDescriptor* field, Message* message) {
  if (!Visit(node)) return false;
  if (!node.IsScalar()) {
    errors_->Add(path, absl::StrCat("expected ", ExpectedKind(field), ", got ", KindOf(node)));
    return false;
  }
  const std::string& text = node.Scalar();
  const Reflection* reflection = message->GetReflection();
  const bool repeated = field->is_repeated();
  const auto fail = [&](const absl::Status& status) {
    errors_->Add(path, std::string(status.message()));
    return false;
  };
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      auto value = ParseYamlInteger(text, std::numeric_limits<int32_t>::min(),
                                    std::numeric_limits<int32_t>::max());
      if (!value.ok()) return fail(value.status());
      repeated ? reflection->AddInt32(message, field, static_cast<int32_t>(*value))
               : reflection->SetInt32(message, field, static_cast<int32_t>(*value));
      return true;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      auto value = ParseYamlInteger(text, std::numeric_limits<int64_t>::min(),
                                    std::numeric_limits<int64_t>::max());
      if (!value.ok()) return fail(value.status());
      repeated ? reflection->AddInt64(message, field, *value)
               : reflection->SetInt64(message, field, *value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      auto value = ParseYamlInteger(text, 0, std::numeric_limits<int64_t>::max());
      if (!value.ok()) return fail(value.status());
      repeated ? reflection->AddUInt64(message, field, static_cast<uint64_t>(*value))
               : reflection->SetUInt64(message, field, static_cast<uint64_t>(*value));
      return true;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      auto value = ParseYamlDouble(text);
      if (!value.ok()) return fail(value.status());
      repeated ? reflection->AddDouble(message, field, *value)
               : reflection->SetDouble(message, field, *value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      auto value = ParseYamlBool(text);
      if (!value.ok()) return fail(value.status());
      repeated ? reflection->AddBool(message, field, *value)
               : reflection->SetBool(message, field, *value);
      return true;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? reflection->AddString(message, field, text)
               : reflection->SetString(message, field, text);
      return true;
    default:
      errors_->Add(path, "this field cannot be set in a spec");
      return false;
  }
}

}  // namespace bert::spec
