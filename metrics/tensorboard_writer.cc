#include "metrics/tensorboard_writer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "metrics/tfrecord.h"

namespace bert::metrics {
namespace {

// Protobuf wire types used below.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

// tensorflow.Event fields.
constexpr int kEventWallTime = 1;     // double
constexpr int kEventStep = 2;         // int64
constexpr int kEventFileVersion = 3;  // string
constexpr int kEventSummary = 5;      // Summary
// tensorflow.Summary.value (repeated Summary.Value) and Summary.Value fields.
constexpr int kSummaryValue = 1;
constexpr int kValueTag = 1;          // string
constexpr int kValueSimpleValue = 2;  // float

void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void PutTag(int field, int wire_type, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | wire_type, out);
}

void PutFixed(uint64_t bits, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

void PutBytes(int field, std::string_view bytes, std::string* out) {
  PutTag(field, kLengthDelimited, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutDouble(int field, double value, std::string* out) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  PutTag(field, kFixed64, out);
  PutFixed(bits, 8, out);
}

void PutFloat(int field, float value, std::string* out) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  PutTag(field, kFixed32, out);
  PutFixed(bits, 4, out);
}

// Event header: wall_time and (when non-zero, as proto3 omits defaults) step.
std::string EventHeader(double wall_time, int64_t step) {
  std::string event;
  PutDouble(kEventWallTime, wall_time, &event);
  if (step != 0) {
    PutTag(kEventStep, kVarint, &event);
    PutVarint(static_cast<uint64_t>(step), &event);  // int64: two's complement
  }
  return event;
}

double NowSeconds() {
  using std::chrono::duration;
  using std::chrono::system_clock;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
  return host;
}

// Distinguishes writers created by one process within the same second.
std::atomic<int> next_writer_index{0};

}  // namespace

TensorBoardWriter::TensorBoardWriter(std::string dir) {
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    Fail("tensorboard: cannot create directory " + dir + ": " + ec.message());
    return;
  }
  const double now = NowSeconds();
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." +
          HostName() + "." + std::to_string(getpid()) + "." +
          std::to_string(next_writer_index.fetch_add(1));
  file_ = std::fopen(path_.c_str(), "wbx");  // x: never append to someone else's file
  if (file_ == nullptr) {
    Fail("tensorboard: cannot create " + path_ + ": " + std::strerror(errno));
    return;
  }
  std::string event = EventHeader(now, 0);
  PutBytes(kEventFileVersion, "brain.Event:2", &event);
  if (WriteEvent(event) && std::fflush(file_) != 0) {
    Fail("tensorboard: cannot write " + path_ + ": " + std::strerror(errno));
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ != nullptr) std::fclose(file_);
}

bool TensorBoardWriter::AddScalar(std::string_view tag, double value, int64_t step) {
  return AddScalar(tag, value, step, NowSeconds());
}

bool TensorBoardWriter::AddScalar(std::string_view tag, double value, int64_t step,
                                  double wall_time) {
  std::string summary_value;
  PutBytes(kValueTag, tag, &summary_value);
  PutFloat(kValueSimpleValue, static_cast<float>(value), &summary_value);
  std::string summary;
  PutBytes(kSummaryValue, summary_value, &summary);
  std::string event = EventHeader(wall_time, step);
  PutBytes(kEventSummary, summary, &event);

  std::lock_guard<std::mutex> lock(mu_);
  return WriteEvent(event);
}

bool TensorBoardWriter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ == nullptr) return false;
  if (std::fflush(file_) != 0) {
    Fail("tensorboard: cannot write " + path_ + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

bool TensorBoardWriter::ok() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_.empty();
}

std::string TensorBoardWriter::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

bool TensorBoardWriter::WriteEvent(const std::string& event) {
  if (file_ == nullptr) return false;
  std::string record;
  AppendTfRecord(event, &record);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) {
    Fail("tensorboard: cannot write " + path_ + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

void TensorBoardWriter::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

}  // namespace bert::metrics
