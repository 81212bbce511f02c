-- Is data quality getting worse? Quarantined records per arrival day and reason (batch and hot
-- paths together), with each reason's share of that day's quarantine.
SELECT
    dt,
    reason,
    sum(records) AS records,
    cast(sum(records) AS double) / sum(sum(records)) OVER (PARTITION BY dt) AS share_of_day
FROM quarantine_daily
GROUP BY dt, reason
ORDER BY dt ASC, records DESC, reason ASC
