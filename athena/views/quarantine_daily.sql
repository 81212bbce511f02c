-- Data quality: how many records were quarantined per arrival day, reason, source_path and stage_name
-- (batch = the Glue raw -> curated job over the raw zone; hot = a Lambda stage: calibrate judges the
-- same device records the raw zone holds, aggregate and classify judge the calibrated stream), and
-- for how many devices. A bad device record is in both batch and hot/calibrate: do not add them up.
CREATE OR REPLACE VIEW quarantine_daily AS
SELECT
    'batch' AS source_path,
    'raw_to_curated' AS stage_name,
    dt,
    reason,
    count(*) AS records,
    count(DISTINCT device_id) AS devices
FROM quarantine
GROUP BY dt, reason
UNION ALL
SELECT
    'hot' AS source_path,
    stage AS stage_name,
    dt,
    reason,
    count(*) AS records,
    count(DISTINCT device_id) AS devices
FROM hot_quarantine
GROUP BY stage, dt, reason
