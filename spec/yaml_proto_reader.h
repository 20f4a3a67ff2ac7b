// Reads a YAML mapping into a protobuf message whose field names are the
// YAML keys, reporting every unknown key, duplicate key and wrongly typed
// value with its field path and YAML location.
#pragma once

#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>

#include "spec/spec_error_list.h"

namespace bert::spec {

// YAML location of a node (1-based), or {0, 0} for nodes without one.
YamlLocation LocationOf(const YAML::Node& node);

// What reading one spec may cost. yaml-cpp shares an aliased node, so a short
// text can stand for a huge tree (`- *s` repeated over a long list); the reader
// counts every node it visits, an alias's whole subtree at each use.
inline constexpr int64_t kMaxYamlNodes = 100'000;  // nodes visited per spec
inline constexpr int kMaxYamlAliases = 1'000;      // alias uses (`*name`) per spec

// Adds an error at the first alias use past kMaxYamlAliases in `yaml` (which
// must be valid YAML; throws YAML::Exception otherwise). False when over.
bool CheckYamlAliases(const std::string& yaml, SpecErrorList* errors);

// Uses reflection, so it reads any message made of scalars, strings, nested
// messages, repeated fields and map<string, string>. A bert.v1.SourceSpec may
// also be written as a plain string (a single path). Stops, with one error
// naming the limit and the line, after visiting kMaxYamlNodes nodes (see
// exhausted()). Not thread-safe; the pointers must outlive the reader.
class YamlProtoReader {
 public:
  YamlProtoReader(FieldLocations* locations, SpecErrorList* errors)
      : locations_(locations), errors_(errors) {}

  // Reads mapping `node` into `message`; `path` is the message's field path
  // ("" for the root). A null node leaves the message empty.
  void ReadMessage(const YAML::Node& node, const std::string& path,
                   google::protobuf::Message* message);

  // True once the node budget is spent: the message is then incomplete.
  bool exhausted() const { return exhausted_; }

 private:
  // Counts `node` against the budget; false (after one error) once it is spent.
  bool Visit(const YAML::Node& node);

  void ReadField(const YAML::Node& node, const std::string& path,
                 const google::protobuf::FieldDescriptor* field,
                 google::protobuf::Message* message);
  void ReadMap(const YAML::Node& node, const std::string& path,
               const google::protobuf::FieldDescriptor* field, google::protobuf::Message* message);
  // Appends (repeated) or sets one scalar value; false after reporting an error.
  bool ReadScalar(const YAML::Node& node, const std::string& path,
                  const google::protobuf::FieldDescriptor* field,
                  google::protobuf::Message* message);

  FieldLocations* locations_;
  SpecErrorList* errors_;
  int64_t visited_ = 0;
  bool exhausted_ = false;
};

}  // namespace bert::spec
