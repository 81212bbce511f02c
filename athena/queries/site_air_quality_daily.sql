-- Which sites had the worst air on each day? Daily site means across their devices of CO2,
-- PM2.5 (and its worst device p95), VOC and calibrated NO2, worst PM2.5 first.
SELECT
    site,
    dt,
    count(DISTINCT device_id) AS devices,
    avg(co2_ppm) AS co2_ppm,
    avg(pm25_ugm3) AS pm25_ugm3,
    max(pm25_p95_ugm3) AS pm25_p95_ugm3,
    avg(voc_ppb) AS voc_ppb,
    avg(no2_ugm3) AS no2_ugm3
FROM air_quality_daily
GROUP BY site, dt
ORDER BY dt ASC, pm25_ugm3 DESC, site ASC
