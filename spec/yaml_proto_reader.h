// Reads a YAML mapping into a protobuf message whose field names are the
// YAML keys, reporting every unknown key, duplicate key and wrongly typed
// value with its field path and YAML location.
#pragma once

#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "spec/spec_error_list.h"

namespace bert::spec {

// YAML location of a node (1-based), or {0, 0} for nodes without one.
YamlLocation LocationOf(const YAML::Node& node);

// Uses reflection, so it reads any message made of scalars, strings, nested
// messages, repeated fields and map<string, string>. A bert.v1.SourceSpec may
// also be written as a plain string (a single path). Not thread-safe; the
// pointers must outlive the reader.
class YamlProtoReader {
 public:
  YamlProtoReader(FieldLocations* locations, SpecErrorList* errors)
      : locations_(locations), errors_(errors) {}

  // Reads mapping `node` into `message`; `path` is the message's field path
  // ("" for the root). A null node leaves the message empty.
  void ReadMessage(const YAML::Node& node, const std::string& path,
                   google::protobuf::Message* message);

 private:
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
};

}  // namespace bert::spec
