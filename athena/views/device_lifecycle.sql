-- Device lifecycle: when each device was first and last seen, how many readings it sent, its
-- reporting rate (readings per active hour), uptime (share of hours between first and last
-- reading with at least one reading) and its longest silence.
CREATE OR REPLACE VIEW device_lifecycle AS
WITH ordered AS (
    SELECT
        device_id,
        ts,
        date_trunc('hour', ts) AS hour_start,
        lag(ts) OVER (PARTITION BY device_id ORDER BY ts, seq) AS previous_ts
    FROM readings
)

SELECT
    o.device_id,
    d.site,
    d.model,
    min(o.ts) AS first_seen,
    max(o.ts) AS last_seen,
    count(*) AS readings,
    count(DISTINCT o.hour_start) AS active_hours,
    date_diff('hour', min(o.hour_start), max(o.hour_start)) + 1 AS lifetime_hours,
    cast(count(*) AS double) / count(DISTINCT o.hour_start) AS readings_per_active_hour,
    cast(count(DISTINCT o.hour_start) AS double)
    / (date_diff('hour', min(o.hour_start), max(o.hour_start)) + 1) AS uptime,
    coalesce(max(date_diff('second', o.previous_ts, o.ts)), 0) AS longest_gap_s
FROM ordered AS o
LEFT JOIN devices AS d ON o.device_id = d.device_id
GROUP BY o.device_id, d.site, d.model
