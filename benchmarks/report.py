"""The benchmark's outputs: ``results.json``, ``results.csv``, ``machine.json``, ``latency.png``, ``README.md``
of one run, and the index ``benchmarks/results/README.md`` over the committed runs.

Every file is written through :mod:`dcpose_trt._atomic` (a crash leaves the old file or the new one).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_slug
from dcpose_trt._atomic import atomic_output, atomic_write_text

CSV_COLUMNS = (
    "preset", "backend", "precision", "mode", "persons", "status", "reason", "baseline", "deform", "device",
    "iters", "warmup", "read_ms", "crop_ms", "infer_ms", "align_ms", "decode_ms", "e2e_p50_ms", "e2e_p90_ms",
    "e2e_p99_ms", "infer_p90_ms", "infer_p99_ms", "persons_per_s", "speedup", "speedup_infer",
    "gflop_per_person", "floor_ms", "floor_share",
)


@dataclass
class BenchResult:
    """What :func:`run_benchmark` measured: ``rows`` (one dict per combination, keys :data:`CSV_COLUMNS`)."""

    out: Path
    config: dict[str, Any]
    machine: dict[str, Any]
    flops: dict[str, float]
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "started": self.started, "seconds": round(self.seconds, 1), "model": self.model,
                "config": self.config, "machine": self.machine, "flops": self.flops, "rows": self.rows}


def write_outputs(result: BenchResult) -> None:
    """results.json, results.csv, machine.json, latency.png and README.md in ``result.out``."""
    out = result.out
    atomic_write_text(out / "results.json", json.dumps(result.to_json(), indent=2) + "\n")
    atomic_write_text(out / "machine.json", json.dumps(result.machine, indent=2) + "\n")
    atomic_write_text(out / "results.csv", to_csv(result.rows))
    plot_latency(result.rows, out / "latency.png", title=f"DCPose {result.config['preset']} on "
                 f"{machine_slug(result.machine)}")
    atomic_write_text(out / "README.md", to_markdown(result))


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text, columns :data:`CSV_COLUMNS` (None as an empty cell)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def plot_latency(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Median end-to-end and infer latency vs persons, one line per backend/precision/mode (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            series.setdefault(f"{r['backend']} {r['precision']} {r['mode']}", []).append(r)
    for ax, key, what in ((axes[0], "e2e_p50_ms", "end to end (p50)"), (axes[1], "infer_ms", "infer (p50)")):
        for label, rs in series.items():
            rs = sorted(rs, key=lambda r: r["persons"])
            ax.plot([r["persons"] for r in rs], [r[key] for r in rs], marker="o", label=label)
        ax.set_xlabel("persons per frame")
        ax.set_ylabel("ms per frame")
        ax.set_title(what)
        ax.grid(True, alpha=0.3)
        ax.set_yscale("log")
        xs = sorted({r["persons"] for rs in series.values() for r in rs})
        if xs:
            ax.set_xticks(xs)
    if series:
        axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(path, suffix=".png") as tmp:  # savefig picks the format by extension
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _f(v: Any, fmt: str = ".1f", suffix: str = "") -> str:
    return "–" if v is None or v == "" else f"{v:{fmt}}{suffix}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The measured rows as a markdown table (ms are medians per frame), then the skipped ones with reasons."""
    lines = ["| backend | precision | mode | persons | read | crop | infer | align | decode | e2e p50 | p90 | p99 "
             "| persons/s | speed-up (e2e) | speed-up (infer) | FLOP-floor share |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            continue
        name = r["backend"] + (" (baseline)" if r["baseline"] else "")
        lines.append(
            f"| {name} | {r['precision']} | {r['mode']} | {r['persons']} | {_f(r['read_ms'])} | {_f(r['crop_ms'])} "
            f"| {_f(r['infer_ms'])} | {_f(r['align_ms'])} | {_f(r['decode_ms'])} | {_f(r['e2e_p50_ms'])} "
            f"| {_f(r['e2e_p90_ms'])} | {_f(r['e2e_p99_ms'])} | {_f(r['persons_per_s'])} "
            f"| {_f(r['speedup'], '.2f', '×')} | {_f(r['speedup_infer'], '.2f', '×')} "
            f"| {_f(r['floor_share'] * 100 if r['floor_share'] else None, '.1f', ' %')} |")
    skipped: dict[tuple[str, str, str, str], list[int]] = {}
    for r in rows:
        if r["status"] != "ok":
            skipped.setdefault((r["backend"], r["precision"], r["mode"], f"{r['status']}: {r['reason']}"),
                               []).append(r["persons"])
    if skipped:
        lines += ["", "Not measured:", ""]
        lines += [f"- {b} {p} {m} (persons {', '.join(map(str, ns))}): {why}" for (b, p, m, why), ns in skipped.items()]
    return "\n".join(lines)


def machine_line(m: dict[str, Any]) -> str:
    gpu = m.get("gpu")
    v = m.get("versions", {})
    gpu_text = f"{gpu['name']} (driver CUDA {gpu['driver']})" if gpu else "no GPU"
    ext = ", ".join(m.get("cpu_extensions") or []) or "extensions unknown"
    return (f"{m.get('cpu')} ({ext}), {m.get('usable_cpus')} usable of {m.get('logical_cpus')} logical CPUs, "
            f"{m.get('memory_gb')} GB RAM, {gpu_text}; "
            f"{m.get('os')}; Python {m.get('python')}, torch {v.get('torch')} ({m.get('torch_threads')} threads), "
            f"onnxruntime {v.get('onnxruntime')}, TensorRT {v.get('tensorrt') or '–'}, "
            f"TensorRT-RTX {v.get('tensorrt_rtx') or '–'}, OpenVINO {v.get('openvino') or '–'}; "
            f"load average {m.get('loadavg_start')} → "
            f"{m.get('loadavg_end')}")


def _calib_flags(c: dict) -> str:
    """The INT8 calibration options the run was given (they change the INT8 rows), as CLI flags."""
    flags = [(f"--{k.replace('_', '-')}", c.get(k)) for k in ("calib", "calib_boxes", "calib_samples")]
    return "".join(f" {flag} {value}" for flag, value in flags if value is not None)


def to_markdown(result: BenchResult) -> str:
    c = result.config
    lines = [
        f"# DCPose {c['preset']} benchmark, {result.started[:10]}",
        "",
        f"Machine: {machine_line(result.machine)}.",
        "",
        f"Model: {result.model}. {c['iters']} timed frames after {c['warmup']} warm-up frames per row; frames read "
        f"from `{Path(c['video']).name}`; {result.flops['exact']:.2f} GFLOP per person exact, "
        f"{result.flops['cached']:.2f} cached (torch FlopCounterMode). Times are medians in ms per frame; "
        "e2e = read + crop + infer + align + decode; speed-up is over PyTorch eager FP32 exact at the same "
        "person count. Run: "
        f"`dcpose-trt bench --preset {c['preset']} --backends {','.join(c['backends'])} "
        f"--precisions {','.join(c['precisions'])} --persons {','.join(map(str, c['persons']))} "
        f"--modes {','.join(c['modes'])} --iters {c['iters']} --warmup {c['warmup']}{_calib_flags(c)}` "
        f"({result.seconds:.0f} s).",
        "",
        markdown_table(result.rows),
        "",
    ]
    return "\n".join(lines)


def update_results_index(results: Path) -> Path:
    """Rewrite ``results/README.md``: the latest run of each preset in full, then every run."""
    runs = []
    for f in sorted(results.glob("*/results.json")):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):  # noqa: PERF203 - a half-written run is skipped, not fatal
            continue
        if isinstance(doc, dict) and "config" in doc and "rows" in doc:  # latency runs only (not `bench scale`)
            runs.append((f.parent, doc))
    latest: dict[str, tuple[Path, dict[str, Any]]] = {}
    for folder, doc in runs:
        preset = doc["config"]["preset"]
        if preset not in latest or doc["started"] >= latest[preset][1]["started"]:
            latest[preset] = (folder, doc)
    lines = ["# Benchmark results", "",
             "Each folder is one `dcpose-trt bench` run (`<date>-<machine>-<preset>`) with `results.json`, "
             "`results.csv`, `latency.png`, `machine.json` and its own README. Latest run per preset:", ""]
    for preset, (folder, doc) in sorted(latest.items()):
        lines += [f"## {preset}: [{folder.name}]({folder.name}/README.md)", "",
                  f"Machine: {machine_line(doc['machine'])}.", "", markdown_table(doc["rows"]), "",
                  f"![latency]({folder.name}/latency.png)", ""]
    lines += ["## All runs", ""] + [f"- [{f.name}]({f.name}/README.md)" for f, _ in runs]
    path = results / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
