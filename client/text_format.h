// Human-readable pieces of bertctl's text output: names, durations, rates,
// progress bars, sparklines, and JSON/YAML for --output json|yaml. Pure
// functions.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bert/v1/job.pb.h"

namespace bert::client {

// Protobuf's JSON of `message` with proto field names and every field
// (defaults included), indented; what --output json prints.
std::string ToJson(const google::protobuf::Message& message);
// The same on one line (for streams of events: one JSON object per line).
std::string ToJsonLine(const google::protobuf::Message& message);
// The same data as ToJson, as a YAML block document (yaml-cpp decides the
// quoting); what --output yaml prints. Ends with a newline.
std::string ToYaml(const google::protobuf::Message& message);
// `line` cut to `columns` display columns (UTF-8 aware; every character we
// draw is one column wide).
std::string TruncateColumns(const std::string& line, int columns);

std::string StageName(bert::v1::StageKind kind);      // "pretrain"
std::string StateName(bert::v1::State state);         // "running"
std::string CauseName(bert::v1::FailureCause cause);  // "DATA_ERROR"

// 75 -> "1m15s", 3725 -> "1h02m", negative -> "?".
std::string FormatDuration(double seconds);
// 1234567 -> "1.2M"; small numbers keep up to one decimal.
std::string FormatCount(double value);
// "2026-11-25 10:16:43" (UTC), "" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& time);
// "done/total unit" with counts shortened, or "done unit" when total is 0.
std::string FormatProgressCounts(const bert::v1::Progress& progress);

// A bar of `width` cells; `unicode` uses block characters, else '#' and '.'.
std::string ProgressBar(int64_t done, int64_t total, int width, bool unicode);
// The last `width` values as ▁▂▃▄▅▆▇█ scaled between their min and max.
std::string Sparkline(const std::vector<double>& values, int width);

}  // namespace bert::client
