"""``dcpose-trt bench head``: where the DCPose head's time goes on this CPU, per op, before and after its CPU form.

    dcpose-trt bench head --preset w32-256x192 --persons 1,8 --out benchmarks/results/head_profile

One process, one machine, side by side: the head converted the way earlier releases did (OpenVINO's native
``DeformableConvolution``, FP32 and BF16), the CPU form (:mod:`dcpose_trt.model.cpu_head`: GridSample + 1×1
conv, FP32 and BF16), the CPU form with NNCF INT8 offset/mask convs, the same with its PRF/PTM/combine
convs in BF16, and, where our ``DcnGemm`` op builds (:mod:`dcpose_trt.engine.ov_extension`), the FP32 and
INT8 forms with each DCN as that op (what ``openvino`` and ``openvino-int8`` run on this machine), each
timed on random inputs of ``persons`` crops (median of ``--iters`` rounds after two warm-up rounds; each
round calls every OpenVINO variant once, in turn, so a slow spell of the machine hits all alike) with OpenVINO's
performance counters, whose per-node times are summed into groups (the DCN op, the offset/mask convs, the
DCNs' 1×1 GEMMs, the other convs, the gather, layout conversions, element-wise). ONNX Runtime's profiler
gives the same table for the head of its ``deformconv`` export (the ONNX DeformConv op). Timings do not
depend on the weights: the model is the preset's random init, and INT8 is calibrated on random inputs
(fidelity is ``dcpose-trt fidelity``'s job). Writes ``OUT/results.json`` and ``OUT/README.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Group of a profiled node, by its type and name (first match wins).
GROUPS = (
    ("DCN op (DeformableConvolution / DeformConv / DcnGemm)",
     lambda t, n: t in ("DeformableConvolution", "DeformConv", "DcnGemm") or n.startswith("DcnGemm")),
    ("offset + mask convs", lambda t, n: t in ("Convolution", "Conv", "QLinearConv", "ConvInteger")
     and (".offset/" in n or ".mask/" in n or "offsets_list" in n or "masks_list" in n)),
    ("DCN 1x1 GEMMs", lambda t, n: t in ("Convolution", "Conv") and ".gemm/" in n),
    ("other convs (PRF/PTM/combine RSB)", lambda t, n: t in ("Convolution", "Conv", "FusedConv")),
    ("gather (GridSample)", lambda t, n: t == "GridSample"),
    ("layout (Reorder/Transpose/Concat/Split)", lambda t, n: t in ("Reorder", "Transpose", "Concat", "VariadicSplit",
                                                                    "Split", "Reshape", "Gather")),
)


def _group(node_type: str, name: str) -> str:
    for label, match in GROUPS:
        if match(node_type, name):
            return label
    return "element-wise and other"


def _inputs(hm: tuple[int, int], b: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((b, 17, *hm), dtype=np.float32) * 0.3 for _ in range(3)] + [np.ones((b, 2), np.float32)]


def _convert(module: Any, hm: tuple[int, int]) -> Any:
    import openvino as ov
    import torch
    import torchvision.ops  # noqa: F401 - imported before tracing: its import-time _cuda_version op breaks the trace

    x = tuple(torch.rand(2, 17, *hm) * 0.3 for _ in range(3)) + (torch.ones(2, 2),)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ov.convert_model(module.eval(), example_input=x,
                                input=[ov.PartialShape([-1, 17, *hm])] * 3 + [ov.PartialShape([-1, 2])])


def _ov_profile(variants: dict[str, tuple[Any, str]], inputs: list[np.ndarray], iters: int) -> dict[str, Any]:
    """Every variant compiled, then timed in rounds (one call of each per round, in turn): this VM's speed
    drifts by tens of percent over minutes, and interleaving gives each variant the same share of a slow
    spell, so their medians compare side by side. Returns ``{variant: {median_ms, ops_ms}}``."""
    from dcpose_trt.engine.ov_extension import new_core

    core = new_core()
    reqs = {name: core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERF_COUNT": True,
                                                "INFERENCE_NUM_THREADS": 0, "PERFORMANCE_HINT": "LATENCY"})
            .create_infer_request() for name, (m, hint) in variants.items()}
    groups: dict[str, dict[str, float]] = {name: collections.defaultdict(float) for name in reqs}
    times: dict[str, list[float]] = {name: [] for name in reqs}
    for r in range(2 + iters):  # two warm-up rounds
        for name, req in reqs.items():
            t0 = time.perf_counter()
            req.infer(inputs)
            if r < 2:
                continue
            times[name].append((time.perf_counter() - t0) * 1e3)
            for pi in req.profiling_info:  # the counters of this call
                groups[name][_group(pi.node_type, pi.node_name)] += pi.real_time.total_seconds() * 1e3 / iters
    return {name: {"median_ms": round(statistics.median(times[name]), 1),
                   "ops_ms": {k: round(v, 1) for k, v in groups[name].items()}} for name in reqs}


def _ort_profile(head_onnx: Path, inputs: list[np.ndarray], iters: int, work: Path) -> dict[str, Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(work / "ort_head")
    sess = ort.InferenceSession(str(head_onnx), so, providers=["CPUExecutionProvider"])
    from benchmarks.timing import call_ms

    feed = dict(zip([i.name for i in sess.get_inputs()], inputs, strict=True))
    times = call_ms(lambda: sess.run(None, feed), iters)
    events = json.loads(Path(sess.end_profiling()).read_text())
    groups: dict[str, float] = collections.defaultdict(float)
    runs = iters + 2
    for ev in events:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            name = ev["name"]
            # ORT's NCHWc layout pass renames convs (conv2d_63_nchwc): the offset/mask convs are the 3×3 ones
            # over the 64 combined channels with 17·2·9 = 306 or 17·9 = 153 outputs (padded to 320/160).
            shapes = [next(iter(d.values())) for d in ev["args"].get("input_type_shape", [])]
            if len(shapes) > 1 and len(shapes[1]) == 4 and shapes[1][1:] == [64, 3, 3] and \
                    shapes[1][0] in (306, 320, 153, 160):
                name = "offsets_list/" + name
            groups[_group(ev["args"].get("op_name", ""), name)] += ev["dur"] / 1e3 / runs
    return {"median_ms": round(statistics.median(times), 1), "ops_ms": {k: round(v, 1) for k, v in groups.items()}}


def run(preset: str, persons: tuple[int, ...], iters: int, out: Path) -> dict[str, Any]:
    """Profile every head variant at every person count; returns (and writes) the results."""
    import nncf
    import torch

    from benchmarks.machine import loadavg, machine_info
    from dcpose_trt.engine.openvino_ir import convert_parts
    from dcpose_trt.engine.ov_extension import dcn_form
    from dcpose_trt.model import build_dcpose
    from dcpose_trt.model.cpu_head import INT8_KEEP_FLOAT

    class NativeHead(torch.nn.Module):  # the head as earlier releases converted it (torchvision DCN → OV op)
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, *x: torch.Tensor) -> torch.Tensor:
            return self.m.head(*x)

    model = build_dcpose(preset)
    hm = tuple(model.preset.heatmap_size)
    native, cpu = _convert(NativeHead(model), hm), convert_parts(model, dcn="graph")["head"]
    calib = [_inputs(hm, 8) for _ in range(2)]

    def int8(head: Any) -> Any:
        return nncf.quantize(head, nncf.Dataset(calib), subset_size=len(calib),
                             preset=nncf.QuantizationPreset.PERFORMANCE,
                             ignored_scope=nncf.IgnoredScope(patterns=[INT8_KEEP_FLOAT["offsets"]], validate=False))

    variants = {"openvino native DCN fp32": (native, "f32"), "openvino native DCN bf16": (native, "bf16"),
                "openvino CPU form fp32": (cpu, "f32"), "openvino CPU form bf16": (cpu, "bf16"),
                "openvino CPU form int8 (offset/mask convs)": (int8(cpu), "f32")}
    bf16 = _has_bf16()
    if bf16:  # the fusion convs in BF16 too
        mixed = convert_parts(model, ("head",), "bf16", dcn="graph")["head"]
        variants["openvino CPU form int8 + BF16 fusion convs"] = (int8(mixed), "f32")
    if dcn_form() == "fused":  # each DCN as our DcnGemm op (what openvino / openvino-int8 convert to here)
        fused = convert_parts(model, ("head",), dcn="fused")["head"]
        variants["openvino CPU form fp32 + DcnGemm op"] = (fused, "f32")
        feats = "bf16" if bf16 else "fp32"
        fused_q = int8(convert_parts(model, ("head",), feats, dcn="fused")["head"])
        variants["openvino CPU form int8" + (" + BF16 fusion convs" if bf16 else "") + " + DcnGemm op"] = \
            (fused_q, "f32")
    res: dict[str, Any] = {"preset": preset, "iters": iters, "machine": machine_info(), "load_before": loadavg(),
                           "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        ort_head = None
        try:
            from dcpose_trt.export import ExportConfig, export_onnx

            cfg = ExportConfig(split=True, check=False, deform="deformconv")
            ort_head = export_onnx(model, Path(tmp) / "split", cfg) / "head.onnx"
        except Exception as exc:  # noqa: BLE001 - a missing ORT row is reported, not fatal
            res["onnxruntime_skipped"] = str(exc)
        for b in persons:
            inputs = _inputs(hm, b)
            runnable = {name: v for name, v in variants.items() if v[1] != "bf16" or bf16}
            for name, row in _ov_profile(runnable, inputs, iters).items():
                res["rows"].append({"variant": name, "persons": b, **row})
                print(f"{name:46s} {b} persons: {row['median_ms']} ms", flush=True)
            if ort_head is not None:
                row = _ort_profile(ort_head, inputs, iters, Path(tmp))
                res["rows"].append({"variant": "onnxruntime deformconv fp32", "persons": b, **row})
                print(f"{'onnxruntime deformconv fp32':46s} {b} persons: {row['median_ms']} ms", flush=True)
    res["load_after"] = loadavg()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "README.md").write_text(_readme(res))
    return res


def _has_bf16() -> bool:
    from dcpose_trt.runtime.backends.ov_backend import cpu_has_bf16

    return cpu_has_bf16()


def _readme(res: dict[str, Any]) -> str:
    m = res["machine"]
    groups = [g for g, _ in GROUPS] + ["element-wise and other"]
    lines = [f"# DCPose head per-op profile, {res['preset']}", "",
             f"Machine: {m.get('cpu', '?')} ({', '.join(m.get('cpu_extensions', []))}), "
             f"{m.get('usable_cpus', '?')} usable CPUs, {m.get('memory_gb', '?')} GB, no GPU used; OpenVINO "
             f"{m['versions'].get('openvino')}, NNCF {m['versions'].get('nncf')}, onnxruntime "
             f"{m['versions'].get('onnxruntime')}; load average {res['load_before']} → {res['load_after']}.", "",
             f"Random inputs, median of {res['iters']} rounds after 2 warm-up rounds (ms per call; each round "
             "calls every OpenVINO variant once, in turn, so drift of the machine's speed hits all alike); "
             "the op columns are "
             "the runtimes' own per-node counters summed by group (ms per call). "
             "Run: `dcpose-trt bench head` (benchmarks/head_profile.py).", "",
             "| head | persons | median | " + " | ".join(groups) + " |",
             "|---|---:|---:|" + "---:|" * len(groups)]
    for r in res["rows"]:
        ops = [f"{r['ops_ms'].get(g, 0.0):.1f}" for g in groups]
        lines.append(f"| {r['variant']} | {r['persons']} | {r['median_ms']:.1f} | " + " | ".join(ops) + " |")
    return "\n".join(lines) + "\n"


def _main(args: argparse.Namespace) -> int:
    from dcpose_trt.errors import InputError

    try:
        persons = tuple(int(v) for v in args.persons.split(","))
    except ValueError:
        raise InputError(f"--persons takes a comma list of integers, got {args.persons!r}") from None
    if not persons or min(persons) < 1 or args.iters < 1:
        raise InputError("--persons and --iters must be at least 1")
    run(args.preset, persons, args.iters, args.out)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'README.md'}")
    return 0


def register(subs: argparse._SubParsersAction) -> None:
    """``bench head`` (one line in :mod:`benchmarks.cli`)."""
    s = subs.add_parser("head", help="per-op profile of the head: native DCN vs its CPU form, FP32/BF16/INT8",
                        description=__doc__.split("\n\n")[2] if __doc__ else None)
    s.add_argument("--out", type=Path, required=True, help="output folder (results.json, README.md)")
    s.add_argument("--preset", default="w32-256x192", help="model preset (default: %(default)s)")
    s.add_argument("--persons", default="1,8", help="comma list of person counts (default: %(default)s)")
    s.add_argument("--iters", type=int, default=9,
                   help="timed rounds (one call of every variant each) per person count (default: %(default)s)")
    s.set_defaults(func=_main)
