-- Firmware rollout: for each device and firmware version, the period it ran that version, its
-- reporting rate, and its error rate (records quarantined for that device while it ran the
-- version, over all its records then). Quarantine arrival time is only known to the hour, so a
-- quarantined record goes to the latest version that had started by the end of its arrival hour.
-- The base of the before/after query.
CREATE OR REPLACE VIEW firmware_periods AS
WITH periods AS (
    SELECT
        device_id,
        coalesce(firmware, 'unknown') AS firmware,
        min(ts) AS started_at,
        max(ts) AS ended_at,
        count(*) AS readings
    FROM readings
    GROUP BY device_id, coalesce(firmware, 'unknown')
),

attributed AS (
    SELECT
        p.device_id,
        p.firmware,
        row_number() OVER (
            PARTITION BY q.source_file, q.line_no, q.element_index
            ORDER BY p.started_at DESC
        ) AS pick
    FROM quarantine AS q
    INNER JOIN periods AS p
        ON
            q.device_id = p.device_id
            AND date_trunc('hour', p.started_at) <= q.received_at
            AND q.received_at <= p.ended_at
),

errors AS (
    SELECT
        device_id,
        firmware,
        count(*) AS quarantined
    FROM attributed
    WHERE pick = 1
    GROUP BY device_id, firmware
)

SELECT
    p.device_id,
    p.firmware,
    p.started_at,
    p.ended_at,
    p.readings,
    coalesce(e.quarantined, 0) AS quarantined,
    rank() OVER (PARTITION BY p.device_id ORDER BY p.started_at) AS version_order,
    cast(p.readings AS double)
    / greatest(date_diff('second', p.started_at, p.ended_at) / 3600.0, 1.0) AS readings_per_hour,
    cast(coalesce(e.quarantined, 0) AS double) / (p.readings + coalesce(e.quarantined, 0)) AS error_rate
FROM periods AS p
LEFT JOIN errors AS e ON p.device_id = e.device_id AND p.firmware = e.firmware
