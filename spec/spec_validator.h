// Range and cross-field checks of a defaults-filled spec.
#pragma once

#include "bert/v1/spec.pb.h"
#include "spec/spec_error_list.h"

namespace bert::spec {

// Reports every impossible value and inconsistent combination to `errors`,
// each naming the field the user set (so that it is located in the YAML).
// Paths are not looked at here (see ResolvePaths).
void ValidateSpec(const bert::v1::JobSpec& spec, const FieldLocations& locations,
                  SpecErrorList* errors);

}  // namespace bert::spec
