#include "metrics/histogram_buckets.h"

namespace bert::metrics {
namespace {

prometheus::Histogram::BucketBoundaries Exponential(double start, double factor, int count) {
  prometheus::Histogram::BucketBoundaries buckets;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) buckets.push_back(bound);
  return buckets;
}

}  // namespace

prometheus::Histogram::BucketBoundaries RpcLatencyBuckets() { return Exponential(0.001, 2, 15); }
prometheus::Histogram::BucketBoundaries StoreWriteBuckets() { return Exponential(0.0001, 2, 15); }
prometheus::Histogram::BucketBoundaries QueueWaitBuckets() { return Exponential(0.1, 4, 13); }
prometheus::Histogram::BucketBoundaries StageDurationBuckets() { return Exponential(1, 4, 11); }

}  // namespace bert::metrics
