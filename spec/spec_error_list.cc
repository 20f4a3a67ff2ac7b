#include "spec/spec_error_list.h"

namespace bert::spec {

YamlLocation FieldLocations::Find(const std::string& path) const {
  std::string key = path;
  while (true) {
    auto it = locations_.find(key);
    if (it != locations_.end()) return it->second;
    // Strip the last component: "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
    const size_t cut = key.find_last_of(".[");
    if (cut == std::string::npos) break;
    key.resize(cut);
  }
  auto root = locations_.find("");
  return root == locations_.end() ? YamlLocation{} : root->second;
}

void SpecErrorList::Add(const std::string& field, const std::string& message) {
  AddAt(field, message, locations_ == nullptr ? YamlLocation{} : locations_->Find(field));
}

void SpecErrorList::AddAt(const std::string& field, const std::string& message,
                          YamlLocation location) {
  if (!fields_.insert(field).second) return;
  bert::v1::SpecError& error = errors_.emplace_back();
  error.set_field(field);
  error.set_message(message);
  error.set_line(location.line);
  error.set_column(location.column);
}

}  // namespace bert::spec
