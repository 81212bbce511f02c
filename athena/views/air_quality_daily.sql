-- Air quality per device and site per UTC day: daily means, daily peaks (max of the hourly means)
-- and how complete the day's data is, from the daily rollups.
CREATE OR REPLACE VIEW air_quality_daily AS
SELECT
    r.device_id,
    d.site,
    r.period_start AS day_start,
    r.dt,
    max(CASE WHEN r.channel = 'co2' THEN r.mean END) AS co2_ppm,
    max(CASE WHEN r.channel = 'co2' THEN r.max END) AS co2_max_ppm,
    max(CASE WHEN r.channel = 'pm25' THEN r.mean END) AS pm25_ugm3,
    max(CASE WHEN r.channel = 'pm25' THEN r.p95 END) AS pm25_p95_ugm3,
    max(CASE WHEN r.channel = 'voc' THEN r.mean END) AS voc_ppb,
    max(CASE WHEN r.channel = 'co' THEN r.mean END) AS co_mgm3,
    max(CASE WHEN r.channel = 'no2' THEN r.mean END) AS no2_ugm3,
    max(CASE WHEN r.channel = 'temperature' THEN r.mean END) AS temperature_c,
    max(r.n) AS readings,
    max(r.completeness) AS completeness
FROM rollups_daily AS r
LEFT JOIN devices AS d ON r.device_id = d.device_id
GROUP BY r.device_id, d.site, r.period_start, r.dt
