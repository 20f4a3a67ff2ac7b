// Bucket boundaries shared by bert's histograms, in seconds.
#pragma once

#include "prometheus/histogram.h"

namespace bert::metrics {

// RPCs: 1 ms .. ~16 s.
prometheus::Histogram::BucketBoundaries RpcLatencyBuckets();
// Store writes (RocksDB, fsync'ed): 0.1 ms .. ~3 s.
prometheus::Histogram::BucketBoundaries StoreWriteBuckets();
// Queue waits: 0.1 s .. ~1.9 days.
prometheus::Histogram::BucketBoundaries QueueWaitBuckets();
// Stage durations: 1 s .. ~12 days.
prometheus::Histogram::BucketBoundaries StageDurationBuckets();

}  // namespace bert::metrics
