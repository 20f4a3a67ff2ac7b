// Fills a parsed spec's unset fields with the documented defaults (the
// article's values) and resolves `model.preset` into explicit sizes. The
// training defaults are the worker protocol's (protocol/worker_config.h) and
// the model sizes the presets' (engine/bert_config.h): each written once.
#pragma once

#include "bert/v1/spec.pb.h"
#include "spec/spec_error_list.h"

namespace bert::spec {

// The preset used when the spec names none (the article's model).
inline constexpr char kDefaultPreset[] = "bert-base-uncased";

// `locations` tells explicitly set fields (kept, even when zero or false) from
// unset ones (defaulted). An unknown preset is reported to `errors`.
void FillDefaults(const FieldLocations& locations, bert::v1::JobSpec* spec, SpecErrorList* errors);

}  // namespace bert::spec
