// What a running stage reports to: a ProgressSink plus checkpoint records.
#pragma once

#include "bert/v1/job.pb.h"
#include "common/progress_sink.h"

namespace bert::agent {

// Implementations are thread-safe, like every ProgressSink.
class StageReporter : public ProgressSink {
 public:
  // A checkpoint the stage wrote (pre-training), already complete on disk.
  virtual void Checkpoint(const v1::CheckpointRecord& record) = 0;
};

}  // namespace bert::agent
