#include "agent/stage.h"

#include "absl/strings/str_cat.h"
#include "agent/worker_stages.h"

#ifdef BERT_AGENT_WITH_DATA_STAGES
#include "agent/data_stages.h"
#endif

namespace bert::agent {

std::vector<const StageInput*> StageContext::InputsFrom(v1::StageKind kind) const {
  std::vector<const StageInput*> out;
  for (const StageInput& in : inputs) {
    if (in.artifact.produced_by() == kind) out.push_back(&in);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Stage>> MakeStage(v1::StageKind kind) {
  switch (kind) {
#ifdef BERT_AGENT_WITH_DATA_STAGES
    case v1::PREPARE:
      return MakePrepareStage();
    case v1::TOKENIZER:
      return MakeTokenizerStage();
    case v1::PREPROCESS:
      return MakePreprocessStage();
#endif
    case v1::PRETRAIN:
      return MakePretrainStage();
    case v1::EXPORT:
      return MakeExportStage();
    default:
      return absl::UnimplementedError(
          absl::StrCat("this bert-agent cannot run stage ", v1::StageKind_Name(kind)));
  }
}

}  // namespace bert::agent
