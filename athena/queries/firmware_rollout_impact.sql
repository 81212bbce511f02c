-- Did a firmware upgrade change how devices report? For each upgrade (a device's next version),
-- the reporting rate and error rate before and after it.
SELECT
    upgraded.device_id,
    previous.firmware AS firmware_before,
    upgraded.firmware AS firmware_after,
    upgraded.started_at AS upgraded_at,
    previous.readings_per_hour AS readings_per_hour_before,
    upgraded.readings_per_hour AS readings_per_hour_after,
    previous.error_rate AS error_rate_before,
    upgraded.error_rate AS error_rate_after
FROM firmware_periods AS upgraded
INNER JOIN firmware_periods AS previous
    ON upgraded.device_id = previous.device_id AND upgraded.version_order = previous.version_order + 1
ORDER BY upgraded.device_id, upgraded_at
