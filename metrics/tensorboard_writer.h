// Writes TensorBoard event files (scalars only) that `tensorboard --logdir`
// reads, without TensorFlow or a protobuf library: the few fields of
// tensorflow.Event and tensorflow.Summary are encoded by hand.
//
// The file is "<dir>/events.out.tfevents.<unix seconds>.<host>.<pid>.<n>" (the
// name PyTorch's SummaryWriter uses, which the Hugging Face Trainer writes).
// It begins with the "brain.Event:2" version record; each AddScalar appends
// one Event holding one Summary.Value{tag, simple_value}. Event files are
// append-only logs: a crash loses at most the unflushed tail, and TensorBoard
// ignores a truncated last record.
//
// Errors never throw: ok() turns false, error() says what and where, and the
// writer ignores later calls. Thread-safe: calls may come from any thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

namespace bert::metrics {

class TensorBoardWriter {
 public:
  // Creates `dir` (and its parents) when missing and opens a new event file.
  explicit TensorBoardWriter(std::string dir);
  ~TensorBoardWriter();  // flushes and closes
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Records `value` (stored as float, as TensorBoard does) under `tag`
  // ("train/loss") at `step`, stamped with the current wall time.
  bool AddScalar(std::string_view tag, double value, int64_t step);
  // Same, with an explicit wall time in seconds since the epoch.
  bool AddScalar(std::string_view tag, double value, int64_t step, double wall_time);
  // Pushes buffered records to the file (fflush), so a reader sees them.
  bool Flush();

  bool ok() const;
  std::string error() const;
  // The event file's path (empty when it could not be created).
  const std::string& path() const { return path_; }

 private:
  bool WriteEvent(const std::string& event);  // requires mu_
  void Fail(std::string message);             // requires mu_

  mutable std::mutex mu_;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string error_;
};

}  // namespace bert::metrics
