"""A labelled CSV of the simulated fleet: one row per reading, for training classifiers."""

from __future__ import annotations

from pathlib import Path

from airlake.contract.decoder import iso_from_ms
from airlake.simulate.fleet import Fleet


def write_labeled_csv(fleet: Fleet, path: Path) -> int:
    """Write `timestamp, device_id, <channels...>, event, fault`; returns the row count.

    `event` is the injected indoor event active at the reading (none|cooking|smoke|cleaning|
    occupancy); `fault` the injected device fault affecting it (none|stuck|flatline|spike|
    saturation|drift; dropouts have no rows by nature). Label intervals are [start, end).
    """
    import pandas as pd

    rows = []
    for reading in fleet.readings():
        ts = reading["ts"]
        ts_ms = ts if isinstance(ts, int) else _iso_ms(ts)
        rows.append({"ts_ms": ts_ms, "device_id": reading["device_id"], **reading["channels"]})
    frame = pd.DataFrame(rows)
    frame["event"] = "none"
    frame["fault"] = "none"
    for device in fleet.devices:
        mine = (frame["device_id"] == device.device_id).to_numpy()
        # Labels are in true time; device clocks are offset, so shift labels into device time.
        times = frame["ts_ms"].to_numpy() - device.clock_offset_ms
        for label in device.labels:
            if label.type == "dropout":
                continue
            hit = mine & (times >= label.start_ms) & (times < label.end_ms)
            frame.loc[hit, "event" if label.kind == "event" else "fault"] = label.type
    frame.insert(0, "timestamp", [iso_from_ms(int(v)) for v in frame.pop("ts_ms").to_numpy()])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)


def _iso_ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1000)


__all__ = ["write_labeled_csv"]
