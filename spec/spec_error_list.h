// Collects a spec's errors, each located at the YAML line and column of the
// field it names (or of the nearest enclosing field the YAML has).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bert/v1/spec.pb.h"

namespace bert::spec {

// 1-based line and column; 0 when unknown.
struct YamlLocation {
  int line = 0;
  int column = 0;
};

// Where each field path ("training.max_steps", "corpus.sources[0].paths[1]")
// sits in the YAML. Not thread-safe.
class FieldLocations {
 public:
  void Set(const std::string& path, YamlLocation location) { locations_[path] = location; }
  // True when the YAML itself set `path` (as opposed to a default).
  bool Has(const std::string& path) const { return locations_.count(path) > 0; }
  // The location of `path`, else of its nearest ancestor in the YAML, else {0, 0}.
  YamlLocation Find(const std::string& path) const;

 private:
  std::map<std::string, YamlLocation> locations_;
};

// Errors in the order found. Keeps a pointer to `locations`, which must outlive it.
class SpecErrorList {
 public:
  explicit SpecErrorList(const FieldLocations* locations) : locations_(locations) {}

  // An error about `field`, located where the YAML has it (or its parent).
  // Only the first error about a field is kept (a value that failed to parse
  // is not reported again as out of range).
  void Add(const std::string& field, const std::string& message);
  // An error at an explicit location (YAML syntax errors, duplicate keys).
  void AddAt(const std::string& field, const std::string& message, YamlLocation location);

  bool empty() const { return errors_.empty(); }
  std::vector<bert::v1::SpecError> Take() { return std::move(errors_); }
  const std::vector<bert::v1::SpecError>& errors() const { return errors_; }

 private:
  const FieldLocations* locations_;
  std::vector<bert::v1::SpecError> errors_;
  std::set<std::string> fields_;
};

}  // namespace bert::spec
