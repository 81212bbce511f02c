-- Which firmware upgrades failed? An upgrade (firmware changes between consecutive readings of a
-- device; the change back of a rollback is not an upgrade) failed when the device rolled back to
-- the previous version, or stopped reporting less than an hour after upgrading while the rest of
-- the fleet kept reporting for more than an hour after it fell silent.
WITH sequenced AS (
    SELECT
        device_id,
        ts,
        firmware,
        lag(firmware) OVER (PARTITION BY device_id ORDER BY ts, seq) AS previous_firmware
    FROM readings
    WHERE firmware IS NOT NULL
),

changes AS (
    SELECT
        device_id,
        ts AS changed_at,
        previous_firmware AS firmware_from,
        firmware AS firmware_to,
        lead(firmware) OVER (PARTITION BY device_id ORDER BY ts) AS next_firmware,
        lag(previous_firmware) OVER (PARTITION BY device_id ORDER BY ts) AS earlier_from
    FROM sequenced
    WHERE previous_firmware IS NOT NULL AND firmware <> previous_firmware
),

last_seen AS (
    SELECT
        device_id,
        max(ts) AS last_ts,
        max(max(ts)) OVER () AS fleet_last_ts
    FROM readings
    GROUP BY device_id
)

SELECT
    c.device_id,
    c.firmware_from,
    c.firmware_to,
    c.changed_at AS upgraded_at,
    CASE
        WHEN c.next_firmware = c.firmware_from THEN 'rolled_back'
        ELSE 'went_silent'
    END AS failure
FROM changes AS c
INNER JOIN last_seen AS l ON c.device_id = l.device_id
WHERE
    (c.earlier_from IS NULL OR c.earlier_from <> c.firmware_to)
    AND (
        c.next_firmware = c.firmware_from
        OR (
            c.next_firmware IS NULL
            AND date_diff('second', c.changed_at, l.last_ts) < 3600
            AND date_diff('second', l.last_ts, l.fleet_last_ts) > 3600
        )
    )
ORDER BY c.device_id, upgraded_at
