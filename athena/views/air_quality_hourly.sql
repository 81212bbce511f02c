-- Air quality per device and site per UTC hour: one row per device-hour with the main pollutants
-- (hourly means, and the hourly p95 where short peaks matter), from the hourly rollups.
CREATE OR REPLACE VIEW air_quality_hourly AS
SELECT
    r.device_id,
    d.site,
    r.period_start AS hour_start,
    r.dt,
    max(CASE WHEN r.channel = 'co2' THEN r.mean END) AS co2_ppm,
    max(CASE WHEN r.channel = 'pm25' THEN r.mean END) AS pm25_ugm3,
    max(CASE WHEN r.channel = 'pm25' THEN r.p95 END) AS pm25_p95_ugm3,
    max(CASE WHEN r.channel = 'voc' THEN r.mean END) AS voc_ppb,
    max(CASE WHEN r.channel = 'co' THEN r.mean END) AS co_mgm3,
    max(CASE WHEN r.channel = 'no2' THEN r.mean END) AS no2_ugm3,
    max(CASE WHEN r.channel = 'nox' THEN r.mean END) AS nox_ppb,
    max(CASE WHEN r.channel = 'temperature' THEN r.mean END) AS temperature_c,
    max(CASE WHEN r.channel = 'humidity' THEN r.mean END) AS humidity_rh,
    max(r.n) AS readings,
    max(r.completeness) AS completeness
FROM rollups_hourly AS r
LEFT JOIN devices AS d ON r.device_id = d.device_id
GROUP BY r.device_id, d.site, r.period_start, r.dt
