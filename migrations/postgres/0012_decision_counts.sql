-- The console's overview charts decisions per hour and action from counters
-- the group commit adds to with each batch, instead of counting a week of
-- decisions row by row. Same conventions as 0001.
--
-- hour: the start of the hour (ms); shard: the committer task that added
-- (each has its own row, so one process's concurrent batches never wait on one another);
-- a read sums the shards. Filled here from the decisions stored before, as
-- shard 0.
CREATE TABLE decision_counts (
    subscriber_id TEXT NOT NULL,
    hour          BIGINT NOT NULL,
    action        TEXT NOT NULL,
    shard         BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, hour, action, shard)
);
INSERT INTO decision_counts (subscriber_id, hour, action, shard, count)
SELECT subscriber_id, created_at / 3600000 * 3600000, action, 0, COUNT(*)
FROM decisions GROUP BY subscriber_id, created_at / 3600000, action;
-- The index the overview counted through; its latency sample reads
-- decisions_subscriber_time.
DROP INDEX decisions_overview;
