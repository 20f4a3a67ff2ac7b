// The stages that need libtorch, run in a supervised `bert-worker` child.
#pragma once

#include <memory>

#include "agent/stage.h"

namespace bert::agent {

// dataset -> checkpoints; resumes from the newest checkpoint in its output
// directory (or one given as an input). Output: the last checkpoint.
std::unique_ptr<Stage> MakePretrainStage();
// checkpoint + tokenizer -> Hugging Face model directory "model" (also
// published to spec.output.dir when that is set, by agent/export_publisher.h's
// rule: never over files the job did not write).
std::unique_ptr<Stage> MakeExportStage();

}  // namespace bert::agent
