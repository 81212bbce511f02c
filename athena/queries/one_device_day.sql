-- What did one device measure on one day? Its readings in time order (reads one dt partition and
-- only the columns named: the cheapest query of the lake).
SELECT
    ts,
    co2,
    pm25,
    voc,
    temperature,
    humidity
FROM readings
WHERE dt = '2024-03-10' AND device_id = 'dev-001'
ORDER BY ts
