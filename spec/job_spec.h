// Job specs: YAML text -> a validated, defaults-filled bert.v1.JobSpec.
//
// bertctl (before sending) and bertd (on receipt) call the same function, so
// both report the same errors: each names the field's path and the line and
// column in the YAML. Unknown fields, wrong types and impossible values are
// all errors; nothing is silently ignored.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bert/v1/job.pb.h"
#include "bert/v1/spec.pb.h"
#include "spec/spec_error_list.h"

namespace bert::spec {

struct ParseOptions {
  // Relative source and tokenizer/dataset paths are resolved against this
  // directory (the spec file's); empty = the current directory.
  std::string base_dir;
  // Check that every source glob/path matches at least one file and that
  // `from` paths exist. bertd in a cluster may not see the client's files;
  // the embedded single-machine default does.
  bool check_paths = true;
  // Sources whose files the submitter uploaded (SubmitJobRequest.input_files,
  // by source index): their paths are made absolute but never checked here,
  // since they name the submitting machine's files.
  std::set<int> uploaded_sources;
};

struct ParseResult {
  bert::v1::JobSpec spec;                    // normalised: defaults filled, paths absolute
  std::vector<bert::v1::SpecError> errors;   // empty when valid
  // The fields the YAML itself set (Has("model.hidden_dropout_prob")), as
  // opposed to defaults: bertd fills a warm start's from the job it names.
  FieldLocations set_fields;
  bool ok() const { return errors.empty(); }
};

ParseResult ParseJobSpec(std::string_view yaml, const ParseOptions& options = {});

// "job.yaml:12:5: training.per_device_batch_size: must be at least 1", one per line.
std::string FormatErrors(std::string_view file_name, const std::vector<bert::v1::SpecError>& errors);

// The stages a job runs, in order; stages whose output the spec supplies
// (tokenizer.from, preprocess.from_dataset) are left out.
std::vector<bert::v1::StageKind> PlannedStages(const bert::v1::JobSpec& spec);

}  // namespace bert::spec
