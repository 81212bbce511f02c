-- Is data quality getting worse? Quarantined records per arrival day and reason, each record counted
-- once, with each reason's share of that day's quarantine. Device records are counted from the
-- batch quarantine (every record devices sent passes the Glue job; the calibrate Lambda judges the
-- same records, so its quarantine would count them twice); records only the hot path saw go wrong
-- (quarantined by the aggregate or classify stage) are added from the hot quarantine.
SELECT
    dt,
    reason,
    sum(records) AS records,
    cast(sum(records) AS double) / sum(sum(records)) OVER (PARTITION BY dt) AS share_of_day
FROM quarantine_daily
WHERE source_path = 'batch' OR stage_name <> 'calibrate'
GROUP BY dt, reason
ORDER BY dt ASC, records DESC, reason ASC
