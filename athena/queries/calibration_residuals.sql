-- How good is calibration, per device and pollutant, per day? Residuals of calibrated values
-- against the co-located reference analyser: bias, mean absolute error and RMSE (channel units).
SELECT
    r.device_id,
    d.site,
    r.channel,
    r.dt,
    r.residual_n AS pairs,
    r.residual_mean AS bias,
    r.residual_mae AS mae,
    r.residual_rmse AS rmse
FROM rollups_daily AS r
LEFT JOIN devices AS d ON r.device_id = d.device_id
WHERE r.residual_n > 0
ORDER BY r.channel, r.dt, r.device_id
