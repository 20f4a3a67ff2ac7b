// WatchView and the text helpers: what bertctl draws, without a terminal.
#include "client/watch_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/text_format.h"

namespace bert::client {
namespace {

using ::testing::HasSubstr;

bert::v1::Event Progress(int64_t seq, bert::v1::StageKind stage, int64_t done, int64_t total) {
  bert::v1::Event event;
  event.set_seq(seq);
  event.mutable_time()->set_seconds(1000 + seq);
  event.mutable_progress()->set_stage(stage);
  auto* progress = event.mutable_progress()->mutable_progress();
  progress->set_done(done);
  progress->set_total(total);
  progress->set_unit("steps");
  progress->set_rate_per_second(4);
  progress->set_eta_seconds(static_cast<double>(total - done) / 4);
  return event;
}

bert::v1::Event StageTo(int64_t seq, bert::v1::StageKind stage, bert::v1::State to) {
  bert::v1::Event event;
  event.set_seq(seq);
  event.mutable_time()->set_seconds(1000 + seq);
  event.mutable_stage()->set_stage(stage);
  event.mutable_stage()->set_to(to);
  event.mutable_stage()->set_attempt(1);
  return event;
}

bert::v1::Event Loss(int64_t seq, int64_t step, double value) {
  bert::v1::Event event;
  event.set_seq(seq);
  event.mutable_metric()->set_name("train/loss");
  event.mutable_metric()->set_step(step);
  event.mutable_metric()->set_value(value);
  return event;
}

TEST(TextFormatTest, Helpers) {
  EXPECT_EQ(FormatDuration(5), "5s");
  EXPECT_EQ(FormatDuration(75), "1m15s");
  EXPECT_EQ(FormatDuration(3725), "1h02m");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatCount(1234567), "1.2M");
  EXPECT_EQ(FormatCount(12), "12");
  EXPECT_EQ(ProgressBar(5, 10, 10, false), "#####.....");
  EXPECT_EQ(ProgressBar(5, 0, 4, false), "....");
  EXPECT_EQ(Sparkline({1, 2, 3}, 10), "\u2581\u2585\u2588");
  EXPECT_EQ(Sparkline({4, 3, 2, 1}, 2), "\u2588\u2581");
  EXPECT_EQ(TruncateColumns("ab\u2588\u2588cd", 3), "ab\u2588");
  EXPECT_EQ(StageName(bert::v1::PRETRAIN), "pretrain");
  EXPECT_EQ(StateName(bert::v1::SUCCEEDED), "succeeded");
}

TEST(TextFormatTest, JsonKeepsProtoFieldNamesAndDefaults) {
  bert::v1::Job job;
  job.set_id("j1");
  job.set_last_event_seq(0);
  const std::string json = ToJson(job);
  EXPECT_THAT(json, HasSubstr("\"last_event_seq\""));
  EXPECT_THAT(json, HasSubstr("\"id\": \"j1\""));
  EXPECT_EQ(ToJsonLine(job).find('\n'), ToJsonLine(job).size() - 1);
}

TEST(WatchViewTest, PlainLinesAtTransitionsEveryTenPercentAndLosses) {
  WatchView view(/*unicode=*/false, 10);
  EXPECT_THAT(view.Apply(StageTo(1, bert::v1::PRETRAIN, bert::v1::RUNNING)),
              ::testing::ElementsAre("pretrain running"));
  EXPECT_THAT(view.Apply(Progress(2, bert::v1::PRETRAIN, 0, 100)),
              ::testing::ElementsAre("pretrain 0% 0/100 steps 4 steps/s ETA 25s"));
  EXPECT_TRUE(view.Apply(Progress(3, bert::v1::PRETRAIN, 5, 100)).empty());
  EXPECT_EQ(view.Apply(Progress(4, bert::v1::PRETRAIN, 12, 100)).size(), 1u);
  EXPECT_THAT(view.Apply(Loss(5, 12, 7.5)), ::testing::ElementsAre("step 12 loss 7.5000"));
  view.Apply(Loss(6, 24, 6.25));
  EXPECT_THAT(view.Apply(Progress(7, bert::v1::PRETRAIN, 100, 100)),
              ::testing::ElementsAre("pretrain 100% 100/100 steps 4 steps/s"));
  EXPECT_THAT(view.Apply(StageTo(8, bert::v1::PRETRAIN, bert::v1::SUCCEEDED)),
              ::testing::ElementsAre("pretrain succeeded in 7s"));
  EXPECT_EQ(view.losses(), (std::vector<double>{7.5, 6.25}));
}

TEST(WatchViewTest, PanelHasABarPerStageAndTheLoss) {
  bert::v1::Job job;
  job.set_id("job-1");
  job.set_name("tiny");
  job.set_state(bert::v1::RUNNING);
  for (auto kind : {bert::v1::PREPARE, bert::v1::PRETRAIN}) job.add_stages()->set_kind(kind);
  job.mutable_stages(0)->set_state(bert::v1::SUCCEEDED);
  job.mutable_stages(1)->set_state(bert::v1::QUEUED);
  WatchView view(/*unicode=*/true, 10);
  view.Reset(job);
  view.Apply(StageTo(1, bert::v1::PRETRAIN, bert::v1::RUNNING));
  view.Apply(Progress(2, bert::v1::PRETRAIN, 50, 100));
  view.Apply(Loss(3, 40, 8.0));
  view.Apply(Loss(4, 50, 7.0));
  const std::vector<std::string> panel = view.Panel();
  ASSERT_EQ(panel.size(), 4u);
  EXPECT_EQ(panel[0], "job job-1 (tiny) running");
  EXPECT_THAT(panel[1], HasSubstr("prepare    succeeded"));
  EXPECT_THAT(panel[2], HasSubstr("pretrain   running   \u2588\u2588\u2588\u2588\u2588\u2591"));
  EXPECT_THAT(panel[2], HasSubstr(" 50%  50/100 steps  4 steps/s  ETA 13s"));
  EXPECT_THAT(panel[3], HasSubstr("loss 7.0000  \u2588\u2581  (step 50)"));
  EXPECT_FALSE(view.finished());
}

TEST(WatchViewTest, FailureIsShown) {
  WatchView view(false);
  bert::v1::Event event;
  event.set_seq(1);
  event.mutable_job()->set_to(bert::v1::FAILED);
  event.mutable_job()->set_failure_cause(bert::v1::DATA_ERROR);
  event.mutable_job()->set_message("bad line 3");
  EXPECT_THAT(view.Apply(event), ::testing::ElementsAre("job failed (DATA_ERROR): bad line 3"));
  EXPECT_TRUE(view.finished());
  EXPECT_THAT(view.Panel()[0], HasSubstr("failed: bad line 3"));
}

bert::v1::Event Metric(int64_t seq, const std::string& name, int64_t step, double value) {
  bert::v1::Event event = Loss(seq, step, value);
  event.mutable_metric()->set_name(name);
  return event;
}

TEST(WatchViewTest, PlainLogIsCompactOneLinePerEvaluation) {
  WatchView view(/*unicode=*/false, 10);
  EXPECT_TRUE(view.Apply(Metric(1, "eval/loss", 100, 6.125)).empty());
  EXPECT_THAT(view.Apply(Metric(2, "eval/accuracy", 100, 0.2134)),
              ::testing::ElementsAre("step 100 eval loss 6.1250 accuracy 21.3%"));
  EXPECT_TRUE(view.Apply(Metric(3, "eval/perplexity", 100, 457)).empty());
  // An accuracy without a loss of its step says only what it has.
  EXPECT_THAT(view.Apply(Metric(4, "eval/accuracy", 200, 0.25)),
              ::testing::ElementsAre("step 200 eval accuracy 25.0%"));
  // A loss line shows the learning rate of its own step, never an older one.
  view.Apply(Metric(5, "train/learning_rate", 200, 0.0015));
  EXPECT_THAT(view.Apply(Loss(6, 240, 6.5)), ::testing::ElementsAre("step 240 loss 6.5000"));
  view.Apply(Metric(7, "train/learning_rate", 280, 0.003));
  EXPECT_THAT(view.Apply(Loss(8, 280, 6.25)), ::testing::ElementsAre("step 280 loss 6.2500 lr 0.003"));
}

TEST(WatchViewTest, PlainLogShortensWorkDirectoryPaths) {
  WatchView view(/*unicode=*/false, 10);
  bert::v1::Event checkpoint;
  checkpoint.set_seq(1);
  checkpoint.mutable_checkpoint()->set_step(100);
  checkpoint.mutable_checkpoint()->mutable_artifact()->set_uri(
      "file:///work/main/data-local/quickstart/bertd/artifacts/j-1/pretrain/shard-0/checkpoints/"
      "checkpoint-100");
  EXPECT_THAT(view.Apply(checkpoint),
              ::testing::ElementsAre("checkpoint step 100 .../checkpoints/checkpoint-100"));
  bert::v1::Event log;
  log.set_seq(2);
  log.mutable_log()->set_stage(bert::v1::EXPORT);
  log.mutable_log()->set_level("info");
  log.mutable_log()->set_message("exported /srv/a/j-1/pretrain/checkpoint-300 to /srv/a/j-1/export/model/");
  EXPECT_THAT(view.Apply(log), ::testing::ElementsAre(
                                   "export info: exported .../pretrain/checkpoint-300 to .../export/model"));
}

TEST(WatchViewTest, ShortenPathsKeepsWhatIsNotALongAbsolutePath) {
  EXPECT_EQ(ShortenPaths("read data/brown/brown.txt and /tmp/x"), "read data/brown/brown.txt and /tmp/x");
  EXPECT_EQ(ShortenPaths("see https://example.org/a/b/c"), "see https://example.org/a/b/c");
  EXPECT_EQ(ShortenPaths("/a/b/c"), ".../b/c");
  EXPECT_EQ(ShortenPaths("two  spaces\t/a/b/c/d\n"), "two  spaces\t.../c/d\n");
  EXPECT_EQ(ShortenPaths(""), "");
}

TEST(WatchViewTest, ElapsedCountsFromTheJobsCreation) {
  bert::v1::Job job;
  job.set_id("j");
  job.mutable_created_at()->set_seconds(1000);
  WatchView view(false);
  view.Reset(job);
  bert::v1::Event event = StageTo(75, bert::v1::PREPARE, bert::v1::RUNNING);  // time 1075
  EXPECT_EQ(view.Elapsed(event), " 1:15");
  event.mutable_time()->set_seconds(1000 + 3725);
  EXPECT_EQ(view.Elapsed(event), "1:02:05");
  event.mutable_time()->set_seconds(900);  // clock skew: never negative
  EXPECT_EQ(view.Elapsed(event), " 0:00");
  // Without a job, from the first event applied.
  WatchView fresh(false);
  fresh.Apply(StageTo(10, bert::v1::PREPARE, bert::v1::RUNNING));  // time 1010
  EXPECT_EQ(fresh.Elapsed(StageTo(40, bert::v1::PREPARE, bert::v1::SUCCEEDED)), " 0:30");
}

TEST(WatchViewTest, PanelShowsTheLatestLossAndAccuracy) {
  bert::v1::Job job;
  job.set_id("job-1");
  job.set_state(bert::v1::RUNNING);
  job.add_stages()->set_kind(bert::v1::PRETRAIN);
  WatchView view(/*unicode=*/false, 10);
  view.Reset(job);
  view.Apply(StageTo(1, bert::v1::PRETRAIN, bert::v1::RUNNING));
  view.Apply(Progress(2, bert::v1::PRETRAIN, 100, 300));
  view.Apply(Loss(3, 100, 6.5));
  view.Apply(Metric(4, "eval/loss", 100, 6.25));
  view.Apply(Metric(5, "eval/accuracy", 100, 0.1875));
  const std::vector<std::string> panel = view.Panel();
  ASSERT_EQ(panel.size(), 3u);
  EXPECT_THAT(panel[1], HasSubstr("pretrain   running   ###.......  33%  100/300 steps  4 steps/s  ETA 50s"));
  EXPECT_THAT(panel[2], HasSubstr("loss 6.5000"));
  EXPECT_THAT(panel[2], HasSubstr("(step 100)  eval loss 6.2500  accuracy 18.8%"));
}

}  // namespace
}  // namespace bert::client
