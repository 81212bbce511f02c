-- Every valid reading, one row each, with its channels as doubles: what analysts query. The
-- table under it, curated_readings, stores channels as exact decimals at the contract's resolution;
-- a value sent finer than that is kept in other_channels, and this view puts it back in its column.
CREATE OR REPLACE VIEW readings AS
SELECT
    device_id,
    ts,
    ts_ms,
    seq,
    firmware,
    model,
    other_channels,
    coalesce(cast(co2 AS double), element_at(other_channels, 'co2')) AS co2,
    coalesce(cast(pm25 AS double), element_at(other_channels, 'pm25')) AS pm25,
    coalesce(cast(pm10 AS double), element_at(other_channels, 'pm10')) AS pm10,
    coalesce(cast(voc AS double), element_at(other_channels, 'voc')) AS voc,
    coalesce(cast(temperature AS double), element_at(other_channels, 'temperature')) AS temperature,
    coalesce(cast(humidity AS double), element_at(other_channels, 'humidity')) AS humidity,
    coalesce(cast(abs_humidity AS double), element_at(other_channels, 'abs_humidity')) AS abs_humidity,
    coalesce(cast(mox_co AS double), element_at(other_channels, 'mox_co')) AS mox_co,
    coalesce(cast(mox_nmhc AS double), element_at(other_channels, 'mox_nmhc')) AS mox_nmhc,
    coalesce(cast(mox_nox AS double), element_at(other_channels, 'mox_nox')) AS mox_nox,
    coalesce(cast(mox_no2 AS double), element_at(other_channels, 'mox_no2')) AS mox_no2,
    coalesce(cast(mox_o3 AS double), element_at(other_channels, 'mox_o3')) AS mox_o3,
    coalesce(cast(ref_co AS double), element_at(other_channels, 'ref_co')) AS ref_co,
    coalesce(cast(ref_nox AS double), element_at(other_channels, 'ref_nox')) AS ref_nox,
    coalesce(cast(ref_no2 AS double), element_at(other_channels, 'ref_no2')) AS ref_no2,
    coalesce(cast(ref_c6h6 AS double), element_at(other_channels, 'ref_c6h6')) AS ref_c6h6,
    coalesce(cast(co AS double), element_at(other_channels, 'co')) AS co,
    coalesce(cast(nox AS double), element_at(other_channels, 'nox')) AS nox,
    coalesce(cast(no2 AS double), element_at(other_channels, 'no2')) AS no2,
    model_version,
    received_at,
    source_file,
    line_no,
    element_index,
    dt
FROM curated_readings
