"""``dcpose-trt serve export``: a Triton model repository serving DCPose to many camera streams.

Layout (the same on both targets; only the two part models differ)::

    REPO/
      dcpose_stream/   Python backend, sequence batcher: one sequence = one stream, its PoseEstimator
        config.pbtxt   (protocol: dcpose_trt.serve.protocol)
        1/model.py     the entry template (dcpose_trt.serve.model_template)
      dcpose_backbone/ dynamic batching: crops of all streams -> rough heatmaps
        config.pbtxt   --target cpu: Python backend on ONNX Runtime (1/model.py + the split ONNX) or
                       OpenVINO (1/model.py + the checkpoint's IR pair, the head in its CPU form)
        1/...          --target tensorrt: platform tensorrt_plan (1/model.plan)
      dcpose_head/     dynamic batching: (cur, prev, next, margin) heatmaps -> refined heatmaps
      dcpose_serve.json  what was exported: model, target, backend, preset, TensorRT version the plans need
"""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from dcpose_trt.errors import InputError
from dcpose_trt.serve import protocol as P
from dcpose_trt.serve.bls import PartNames

TARGETS = ("cpu", "tensorrt")
CPU_BACKENDS = ("onnxruntime", "openvino", "openvino-bf16")
MANIFEST = "dcpose_serve.json"


@dataclass(frozen=True)
class ServeExportConfig:
    """``model``: checkpoint (None: bundled), split ONNX folder (cpu) or folder with ``backbone.plan`` +
    ``head.plan`` (tensorrt). ``idle_timeout_s``: a stream silent this long is dropped. ``part_max_batch``:
    rows per backbone/head batch (crops: 3 per person in exact mode). ``stream_instances``: stream-model
    processes (streams are spread over them; each runs its streams' requests one at a time).
    ``python_path``: where the stub finds dcpose_trt and its dependencies (default: this interpreter's)."""

    out: str
    model: str | None = None
    target: str = "cpu"
    mode: str = "exact"
    backend: str = "auto"
    preset: str | None = None
    idle_timeout_s: float = 30.0
    part_max_batch: int = 96
    queue_delay_us: int = 2000
    stream_instances: int = 4
    part_instances: int = 1
    max_streams: int = 1024
    python_path: str | None = None


def default_python_path() -> str:
    """The package's parent folder and this interpreter's site-packages, joined with ``os.pathsep``."""
    import dcpose_trt

    paths = [str(Path(dcpose_trt.__file__).resolve().parents[1])]
    paths += [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    return os.pathsep.join(dict.fromkeys(paths))


# -- config.pbtxt text -----------------------------------------------------------------------------


def _params(values: dict[str, str]) -> str:
    return "\n".join(f'parameters {{ key: "{k}" value: {{ string_value: {json.dumps(v)} }} }}'
                     for k, v in values.items())


def _io(kind: str, name: str, dtype: str, dims: list[int], optional: bool = False) -> str:
    opt = " optional: true" if optional else ""
    return f'{kind} [ {{ name: "{name}" data_type: {dtype} dims: {json.dumps(dims).replace(",", ", ")}{opt} }} ]'


def stream_config(cfg: ServeExportConfig, preset: str, input_size: tuple[int, int], names: PartNames,
                  python_path: str) -> str:
    """The stream model's config: sequence batcher (oldest strategy: a stream stays on one instance,
    requests of several streams may share one execute call) with start/end/id controls."""
    idle_us = int(cfg.idle_timeout_s * 1e6)
    return "\n".join([
        f'name: "{P.STREAM_MODEL}"', 'backend: "python"', "max_batch_size: 8",
        "sequence_batching {",
        f"  max_sequence_idle_microseconds: {idle_us}",
        f"  oldest {{ max_candidate_sequences: {cfg.max_streams} max_queue_delay_microseconds: 0 }}",
        "  control_input [",
        f'    {{ name: "{P.START}" control [ {{ kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] }} ] }},',
        f'    {{ name: "{P.END}" control [ {{ kind: CONTROL_SEQUENCE_END int32_false_true: [0, 1] }} ] }},',
        f'    {{ name: "{P.CORRID}" control [ {{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }} ] }}',
        "  ]", "}",
        _io("input", P.FRAME, "TYPE_UINT8", [-1, -1, 3], optional=True),
        _io("input", P.BOXES, "TYPE_FP32", [-1, 5], optional=True),
        _io("output", P.FRAME_INDEX, "TYPE_INT64", [-1]),
        _io("output", P.PERSONS, "TYPE_INT32", [-1]),
        _io("output", P.KEYPOINTS, "TYPE_FP32", [-1, 17, 3]),
        _io("output", P.BOXES_OUT, "TYPE_FP32", [-1, 5]),
        _io("output", P.TRACK_IDS, "TYPE_INT64", [-1]),
        _io("output", P.LIVE_STREAMS, "TYPE_INT64", [1]),
        f"instance_group [ {{ kind: KIND_CPU count: {cfg.stream_instances} }} ]",
        _params({"entry": "dcpose_trt.serve.stream_model:StreamModel", "python_path": python_path,
                 "mode": cfg.mode, "preset": preset, "input_size": f"{input_size[0]}x{input_size[1]}",
                 "part_max_batch": str(cfg.part_max_batch),
                 "part_names": json.dumps(asdict(names))}),
    ]) + "\n"


def part_config(cfg: ServeExportConfig, part: str, input_size: tuple[int, int], heatmap_size: tuple[int, int],
                names: PartNames, backend: str | None, python_path: str) -> str:
    """A part model's config: dynamic batching over the rows (persons) of all streams' requests."""
    h, w = input_size
    hh, hw = heatmap_size
    if part == "backbone":
        io = [_io("input", names.backbone_in, "TYPE_FP32", [3, h, w]),
              _io("output", names.backbone_out, "TYPE_FP32", [17, hh, hw])]
    else:
        io = [_io("input", n, "TYPE_FP32", [17, hh, hw]) for n in names.head_in[:3]]
        io += [_io("input", names.head_in[3], "TYPE_FP32", [2]), _io("output", names.head_out, "TYPE_FP32",
                                                                       [17, hh, hw])]
    name = P.BACKBONE_MODEL if part == "backbone" else P.HEAD_MODEL
    lines = [f'name: "{name}"', f"max_batch_size: {cfg.part_max_batch}", *io,
             f"dynamic_batching {{ max_queue_delay_microseconds: {cfg.queue_delay_us} }}"]
    if cfg.target == "tensorrt":
        lines += ['platform: "tensorrt_plan"', 'default_model_filename: "model.plan"',
                  f"instance_group [ {{ kind: KIND_GPU count: {cfg.part_instances} }} ]"]
    else:
        lines += ['backend: "python"', f"instance_group [ {{ kind: KIND_CPU count: {cfg.part_instances} }} ]",
                  _params({"entry": "dcpose_trt.serve.part_model:PartModel", "python_path": python_path,
                           "part": part, "backend": str(backend)})]
    return "\n".join(lines) + "\n"


# -- resolving the model -----------------------------------------------------------------------------


def _split_onnx(model: str | None, preset: str | None) -> Path:
    """The folder holding ``backbone.onnx`` + ``head.onnx`` of ``model`` (a checkpoint is exported once into
    the model cache, as ``run --mode cached`` does)."""
    from dcpose_trt.model.presets import bundled_model_path

    path = Path(model) if model else bundled_model_path()
    if path is None:
        raise InputError("no --model given and this install has no bundled checkpoint")
    if path.is_dir():
        if (path / "backbone.onnx").is_file() and (path / "head.onnx").is_file():
            return path
        raise InputError(f"{path} holds no backbone.onnx + head.onnx (a 'dcpose-trt export --split' folder)")
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    if path.suffix.lower() not in (".pth", ".pt", ".tar"):
        raise InputError(f"--target cpu serves a checkpoint or a --split ONNX folder, got {path}")
    from dcpose_trt.engine.model_cache import cached_artifact

    return cached_artifact(path, "onnxruntime", preset, progress=True, split=True)


def _openvino_ir(model: str | None, split: Path) -> Path:
    """The IR pair an OpenVINO part model loads: a checkpoint's conversion (the head in its CPU form, as
    ``run --backend openvino`` uses it), or ``split`` when it is a ``gridsample`` export OpenVINO can read.

    Raises:
        InputError: a ``deformconv`` split folder (OpenVINO has no rule for ONNX ``DeformConv``).
    """
    from dcpose_trt.contract import read_model_metadata

    path = Path(model) if model else None
    if path is not None and path.is_dir():
        if read_model_metadata(split / "head.onnx").deform == "deformconv":
            raise InputError(f"{path}: OpenVINO cannot read ONNX DeformConv; serve the checkpoint with an OpenVINO "
                             "backend, or export with --split --deform gridsample")
        return split
    from dcpose_trt.engine.openvino_ir import ir_for_checkpoint

    folder, _ = ir_for_checkpoint(path)  # None: the bundled model; BF16 is a compile hint on the FP32 IR
    return folder


def _sizes(meta: object, preset: str | None) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Preset, crop (H, W) and heatmap (h, w) from an ONNX file's (or a plan sidecar's) metadata."""
    from dcpose_trt.contract import read_model_metadata
    from dcpose_trt.model.presets import get_preset

    info = read_model_metadata(meta)
    name = info.preset or preset
    if not name:
        raise InputError("the model records no preset: pass --preset")
    p = get_preset(name)
    size = info.input_size or (int(p.image_size[0]), int(p.image_size[1]))
    heat = info.heatmap_size or (int(p.heatmap_size[0]), int(p.heatmap_size[1]))
    return name, (int(size[0]), int(size[1])), (int(heat[0]), int(heat[1]))


def _cpu_backend(requested: str, model: str | None, preset: str | None, mode: str) -> str:
    """``auto`` → the fastest of ONNX Runtime / OpenVINO measured for a checkpoint on this machine (the
    choice ``run`` makes), ONNX Runtime for an ONNX folder."""
    if requested != "auto":
        if requested not in CPU_BACKENDS:
            raise InputError(f"--target cpu runs one of: auto, {', '.join(CPU_BACKENDS)}; got {requested!r}")
        return requested
    path = Path(model) if model else None
    if path is not None and path.is_dir():
        return "onnxruntime"
    from dcpose_trt.model.presets import bundled_model_path
    from dcpose_trt.runtime.backends import autoselect

    ckpt = path or bundled_model_path()
    if ckpt is None:
        return "onnxruntime"
    sel = autoselect.select_backend(ckpt, preset, "cached", wanted=list(CPU_BACKENDS))
    return sel.backend if sel.backend in CPU_BACKENDS else "onnxruntime"


def _plans(model: str | None) -> tuple[Path, Path]:
    if not model or not Path(model).is_dir():
        raise InputError("--target tensorrt needs --model FOLDER holding backbone.plan + head.plan (build them "
                         "from a 'dcpose-trt export --split' folder with 'dcpose-trt build', one per part)")
    b, h = Path(model) / "backbone.plan", Path(model) / "head.plan"
    if not (b.is_file() and h.is_file()):
        raise InputError(f"{model} holds no backbone.plan + head.plan")
    return b, h


def _trt_version(plan: Path) -> str | None:
    side = Path(f"{plan}.json")
    if not side.is_file():
        return None
    try:
        return str(json.loads(side.read_text())["backend"]["version"])
    except (ValueError, KeyError, TypeError):
        return None


def export_repository(cfg: ServeExportConfig) -> Path:
    """Write the repository (atomically: a temporary folder renamed into place); returns its path."""
    if cfg.target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
    if cfg.mode not in ("exact", "cached"):
        raise InputError(f"--mode must be exact or cached, got {cfg.mode!r}")
    if cfg.part_max_batch < 3 or min(cfg.stream_instances, cfg.part_instances) < 1 or cfg.idle_timeout_s <= 0:
        raise InputError("--part-max-batch must be >= 3, --stream-instances and --part-instances >= 1, "
                         "--idle-timeout > 0")
    out = Path(cfg.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not an empty folder: remove it or choose another --out")
    python_path = cfg.python_path or default_python_path()
    names = PartNames()
    manifest: dict[str, object] = {"target": cfg.target, "mode": cfg.mode, "protocol": "dcpose_trt.serve/1"}
    if cfg.target == "cpu":
        backend: str | None = _cpu_backend(cfg.backend, cfg.model, cfg.preset, cfg.mode)  # checked before any export
        split = _split_onnx(cfg.model, cfg.preset)
        preset, size, heat = _sizes(split / "backbone.onnx", cfg.preset)
        files = {part: [split / "backbone.onnx", split / "head.onnx"] for part in ("backbone", "head")}
        if backend.startswith("openvino"):  # ONNX Runtime's DeformConv split would not load on OpenVINO
            ir = _openvino_ir(cfg.model, split)
            pair = ["backbone.xml", "backbone.bin", "head.xml", "head.bin"] if ir != split else \
                ["backbone.onnx", "head.onnx"]
            files = {part: [ir / n for n in pair] for part in ("backbone", "head")}
            split = ir
        manifest.update(backend=backend, model=str(split))
    else:
        bplan, hplan = _plans(cfg.model)
        backend = None
        side = Path(f"{bplan}.json")
        meta = json.loads(side.read_text()).get("onnx", {}).get("metadata", {}) if side.is_file() else {}
        preset, size, heat = _sizes(meta, cfg.preset)
        files = {"backbone": [bplan], "head": [hplan]}
        manifest.update(backend="tensorrt", model=str(cfg.model),
                        tensorrt_version={"backbone": _trt_version(bplan), "head": _trt_version(hplan)})
    manifest.update(preset=preset, input_size=list(size), heatmap_size=list(heat), idle_timeout_s=cfg.idle_timeout_s)
    template = Path(__file__).with_name("model_template.py")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        d = tmp / P.STREAM_MODEL / "1"
        d.mkdir(parents=True)
        shutil.copy2(template, d / "model.py")
        (d.parent / "config.pbtxt").write_text(stream_config(cfg, preset, size, names, python_path))
        for part in ("backbone", "head"):
            d = tmp / (P.BACKBONE_MODEL if part == "backbone" else P.HEAD_MODEL) / "1"
            d.mkdir(parents=True)
            if cfg.target == "cpu":
                shutil.copy2(template, d / "model.py")
                for f in files[part]:
                    shutil.copy2(f, d / f.name)
            else:
                shutil.copy2(files[part][0], d / "model.plan")
            (d.parent / "config.pbtxt").write_text(part_config(cfg, part, size, heat, names, backend, python_path))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_manifest(repo: str | os.PathLike) -> dict:
    """The export's record (``dcpose_serve.json``), or InputError for a folder that is no served repository."""
    path = Path(repo) / MANIFEST
    if not path.is_file():
        raise InputError(f"{repo} is not a repository written by 'dcpose-trt serve export' (no {MANIFEST})")
    return json.loads(path.read_text())


__all__ = ["CPU_BACKENDS", "TARGETS", "ServeExportConfig", "export_repository", "read_manifest"]
