-- Which devices show off-gassing? Per device, the correlation of hourly VOC with the hourly
-- temperature of the same hour and of the hour before (materials emit more VOC as they warm, with
-- a delay). A high lagged correlation points at a source inside the room.
WITH hourly AS (
    SELECT
        device_id,
        period_start,
        max(CASE WHEN channel = 'voc' THEN mean END) AS voc,
        max(CASE WHEN channel = 'temperature' THEN mean END) AS temperature
    FROM rollups_hourly
    GROUP BY device_id, period_start
),

lagged AS (
    SELECT
        device_id,
        voc,
        temperature,
        lag(temperature) OVER (PARTITION BY device_id ORDER BY period_start) AS temperature_1h_before,
        lag(period_start) OVER (PARTITION BY device_id ORDER BY period_start) AS previous_hour
    FROM hourly
    WHERE voc IS NOT NULL AND temperature IS NOT NULL
)

SELECT
    device_id,
    count(*) AS hours,
    corr(voc, temperature) AS corr_same_hour,
    corr(voc, temperature_1h_before) AS corr_lag_1h
FROM lagged
GROUP BY device_id
HAVING count(*) >= 3
ORDER BY corr_lag_1h DESC, device_id ASC
