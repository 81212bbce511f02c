-- How many air-quality events and device faults were raised per day, by type and severity, and
-- how many of them were cleared?
SELECT
    dt,
    category,
    event_type,
    severity,
    count(DISTINCT alert_id) AS alerts,
    count(DISTINCT CASE WHEN status = 'cleared' THEN alert_id END) AS cleared,
    count(DISTINCT device_id) AS devices
FROM alerts
GROUP BY dt, category, event_type, severity
ORDER BY dt ASC, category ASC, alerts DESC, event_type ASC, severity ASC
