-- When did devices go silent? Every gap of more than 15 minutes between consecutive readings of a
-- device, longest first.
WITH ordered AS (
    SELECT
        device_id,
        ts,
        lag(ts) OVER (PARTITION BY device_id ORDER BY ts, seq) AS previous_ts
    FROM readings
)

SELECT
    device_id,
    previous_ts AS silent_from,
    ts AS silent_until,
    date_diff('minute', previous_ts, ts) AS gap_minutes
FROM ordered
WHERE previous_ts IS NOT NULL AND date_diff('second', previous_ts, ts) > 900
ORDER BY gap_minutes DESC, device_id ASC, silent_from ASC
