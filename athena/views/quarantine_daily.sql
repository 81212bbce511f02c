-- Data quality: how many records were quarantined per arrival day, reason and source_path (batch =
-- the Glue job over the raw zone, hot = the calibrate Lambda), and for how many devices.
CREATE OR REPLACE VIEW quarantine_daily AS
SELECT
    'batch' AS source_path,
    dt,
    reason,
    count(*) AS records,
    count(DISTINCT device_id) AS devices
FROM quarantine
GROUP BY dt, reason
UNION ALL
SELECT
    'hot' AS source_path,
    dt,
    reason,
    count(*) AS records,
    count(DISTINCT device_id) AS devices
FROM hot_quarantine
GROUP BY dt, reason
