// Makes a spec's paths absolute and (optionally) checks that they exist.
#pragma once

#include <string>

#include "bert/v1/spec.pb.h"
#include "spec/job_spec.h"
#include "spec/spec_error_list.h"

namespace bert::spec {

// Resolves relative paths against options.base_dir (else the current
// directory), expanding a leading '~'. With options.check_paths: every source
// path or glob must match at least one file, tokenizer.from must be a loadable
// tokenizer (its vocabulary size and casing are copied into the spec), and
// preprocess.from_dataset must hold a manifest.json (its seq_len becomes
// max_seq_length, checked against an explicit one). The checks never block
// and stay bounded whatever the spec names (bertd runs them for its callers):
// the files read must be regular (found by stat, before any open) and small
// (32 MiB for a tokenizer file, 16 MiB for a manifest, 1 MiB for a
// tokenizer_config.json); a FIFO, device or oversized file is a spec error.
void ResolvePaths(const ParseOptions& options, const FieldLocations& locations,
                  bert::v1::JobSpec* spec, SpecErrorList* errors);

// `path` made absolute against `base_dir` (or the current directory), with
// "." and ".." components removed lexically and a leading "~/" expanded.
std::string AbsolutePath(const std::string& path, const std::string& base_dir);

}  // namespace bert::spec
