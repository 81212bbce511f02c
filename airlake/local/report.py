"""An HTML report of a local run with three plots, self-contained (PNG images inlined)."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds


def write_report(lake_dir: Path, path: Path, raised: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    readings = ds.dataset(lake_dir / "curated" / "readings", format="parquet", partitioning="hive")
    sections = [
        ("Calibrated vs reference, one co-located device", _calibration_plot(readings)),
        ("Alerts on a timeline (raised, by device)", _alerts_plot(raised)),
        ("Data quality per day", _quality_plot(readings, lake_dir)),
    ]
    body = "\n".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{image}'/>"
        for title, image in sections
    )
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Airlake local run</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{width:100%}</style></head>"
        f"<body><h1>Airlake local run</h1><p>Lake: {html.escape(str(lake_dir))}</p>{body}</body></html>"
    )
    return path


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _calibration_plot(readings: ds.Dataset) -> str:
    import matplotlib.pyplot as plt

    columns = {
        "device_id": ds.field("device_id"),
        "ts": ds.field("ts"),
        # channel columns are exact decimals; plot them as floats
        **{name: ds.field(name).cast("float64") for name in ("co", "ref_co", "nox", "ref_nox")},
    }
    table = readings.to_table(columns=columns, filter=ds.field("ref_co").is_valid()).to_pandas()
    figure, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    if table.empty:
        axes[0].text(0.5, 0.5, "no co-located reference device in this run", ha="center")
        return _png(figure)
    device = sorted(table["device_id"].unique())[0]
    one = table[table["device_id"] == device].sort_values("ts")
    for axis, (calibrated, reference, unit) in zip(
        axes, (("co", "ref_co", "mg/m3"), ("nox", "ref_nox", "ppb")), strict=True
    ):
        axis.plot(one["ts"], one[reference], color="black", linewidth=0.8, label=f"reference {reference}")
        axis.plot(
            one["ts"],
            one[calibrated],
            color="tab:orange",
            linewidth=0.8,
            alpha=0.8,
            label=f"calibrated {calibrated}",
        )
        axis.set_ylabel(unit)
        axis.legend(loc="upper right")
    axes[0].set_title(f"{device}: calibrated sensor vs co-located reference analyser")
    return _png(figure)


def _alerts_plot(raised: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(11, 5))
    devices = sorted({alert["device_id"] for alert in raised})
    colours = {"critical": "tab:red", "warning": "tab:orange", "info": "tab:blue"}
    markers = {"air_quality": "o", "device_fault": "x"}
    for (category, severity), marker_colour in (
        ((c, s), (markers[c], colours[s])) for c in markers for s in colours
    ):
        points = [a for a in raised if a["category"] == category and a["severity"] == severity]
        if points:
            axis.scatter(
                [datetime.fromisoformat(a["episode_start"]).astimezone(UTC) for a in points],  # type: ignore[arg-type]
                [devices.index(a["device_id"]) for a in points],
                marker=marker_colour[0],
                color=marker_colour[1],
                label=f"{category} {severity}",
                s=22,
            )
    axis.set_yticks(range(len(devices)), devices, fontsize=7)
    axis.legend(loc="upper right", fontsize=8)
    axis.set_title(f"{len(raised)} alerts raised")
    return _png(figure)


def _quality_plot(readings: ds.Dataset, lake_dir: Path) -> str:
    import matplotlib.pyplot as plt

    per_day = readings.to_table(columns=["dt", "device_id"]).to_pandas()
    counts = per_day.groupby("dt").size()
    devices = per_day.groupby("dt")["device_id"].nunique()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    axes[0].bar(range(len(counts)), counts.to_numpy(), color="tab:green")
    axes[0].set_xticks(
        range(0, len(counts), max(1, len(counts) // 10)),
        [str(d) for d in counts.index[:: max(1, len(counts) // 10)]],
        rotation=45,
        fontsize=7,
    )
    axes[0].set_title("curated readings per event-time day")
    axes[0].plot(
        range(len(devices)),
        devices.to_numpy() * counts.max() / max(1, devices.max()),
        color="black",
        linewidth=0.8,
        label="reporting devices (scaled)",
    )
    axes[0].legend(fontsize=8)
    quarantine_dir = lake_dir / "curated" / "quarantine"
    if quarantine_dir.exists():
        reasons = (
            ds.dataset(quarantine_dir, format="parquet", partitioning="hive")
            .to_table(columns=["reason"])
            .to_pandas()["reason"]
            .value_counts()
        )
        axes[1].barh(reasons.index.astype(str), reasons.to_numpy(), color="tab:red")
    axes[1].set_title("quarantined, by reason")
    return _png(figure)
