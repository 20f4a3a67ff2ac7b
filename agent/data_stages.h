// The CPU stages, run in the agent's own process through the data and
// tokenizer libraries: PREPARE and PREPROCESS (fanned out as shard i of n, then
// a join), TOKENIZER (one piece).
//
// Shard i of n writes its part into "<output>/work/parts/" and publishes that
// directory as "parts-<i>"; the join gathers every shard's parts into its own
// "<output>/<name>/parts/" and finalizes. With n = 1 one piece does both.
// Outputs: PREPARE "corpus", TOKENIZER "tokenizer", PREPROCESS "dataset".
#pragma once

#include <memory>

#include "agent/stage.h"

namespace bert::agent {

std::unique_ptr<Stage> MakePrepareStage();
std::unique_ptr<Stage> MakeTokenizerStage();
std::unique_ptr<Stage> MakePreprocessStage();

}  // namespace bert::agent
