-- The hot path's closed event-time windows, one row per window and channel: count, mean, min, max
-- and completeness of each channel in [window_start, window_end). The aggregates table stores a
-- window's channels as parallel arrays (one JSON line per window, position i of every array is
-- channel i); this view pairs them up again by position.
CREATE OR REPLACE VIEW aggregate_channels AS
SELECT
    a.device_id,
    a.window,
    a.start AS window_start,
    a."end" AS window_end,
    a.start_ms,
    a.end_ms,
    a.expected,
    c.channel,
    element_at(a.counts, c.position) AS n,
    element_at(a.means, c.position) AS mean,
    element_at(a.mins, c.position) AS min,  -- noqa: RF04
    element_at(a.maxes, c.position) AS max,  -- noqa: RF04
    element_at(a.completeness, c.position) AS completeness,
    a.dt
FROM aggregates AS a
CROSS JOIN unnest(a.channels) WITH ORDINALITY AS c (channel, position)
