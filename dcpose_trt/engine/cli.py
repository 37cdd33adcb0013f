"""``dcpose-trt build`` and ``dcpose-trt check-plan``. Only argparse (and ``_env``) at import time; work is lazy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from dcpose_trt._env import TRT_BUILDERS

if TYPE_CHECKING:
    from dcpose_trt.export.quantize_config import QuantizeConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's verbs to the ``dcpose-trt`` parser. Options default to None; the help shows
    :class:`BuildConfig`'s defaults, which apply."""
    from dcpose_trt.engine.config import HARDWARE_COMPAT, BuildConfig

    if "quantize" in sub.choices:
        # `quantize --target openvino` (the export stage's verb) builds an IR, this stage's step: handed in
        # here because export may not import engine.
        sub.choices["quantize"].set_defaults(quantize_ir=_quantize_ir)
    default_persons = ",".join(map(str, BuildConfig.profiles[0]))
    p = sub.add_parser(
        "build", help="build a TensorRT / TensorRT-RTX plan (+ JSON sidecar) from an exported ONNX",
        description="Build MODEL.plan and MODEL.plan.json from an ONNX file. The network is strongly typed: "
                    "its precision (FP32/FP16/INT8) is the ONNX's own.")
    p.add_argument("--onnx", required=True, type=Path, help="exported model (dcpose-trt export)")
    p.add_argument("--out", required=True, type=Path, help="plan to write, e.g. dcpose.plan")
    p.add_argument("--backend", choices=TRT_BUILDERS, help=f"(default: {BuildConfig.backend})")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--persons", metavar="N,N,...",
                       help=f"person-batch buckets, e.g. 1,8,32: one profile min/opt/max (default: "
                            f"{default_persons}), or one per bucket with --profile-per-bucket")
    batch.add_argument("--batch", metavar="MIN,OPT,MAX", action="append",
                       help="an explicit batch profile; repeat for several profiles")
    p.add_argument("--profile-per-bucket", action="store_true", default=None,
                   help="with --persons: one optimization profile per bucket")
    p.add_argument("--workspace", type=int, metavar="MB", help="workspace memory-pool limit in MiB")
    p.add_argument("--timing-cache", type=Path, metavar="PATH", help="timing cache to load and update")
    p.add_argument("--opt-level", type=int, metavar="N",
                   help=f"builder optimisation level 0-5 (default: {BuildConfig.opt_level})")
    p.add_argument("--version-compatible", action="store_true", default=None,
                   help="plan loads on later TensorRT of the same major (lean runtime)")
    p.add_argument("--hardware-compat", choices=HARDWARE_COMPAT, help=f"(default: {BuildConfig.hardware_compat})")
    p.add_argument("--plugin-dir", type=Path, metavar="DIR", help="load plugin libraries (*.so) from DIR")
    p.add_argument("--compute-capability", metavar="CC,...",
                   help="TensorRT-RTX: target GPUs (e.g. 8.6,8.9,12.0); builds without a GPU")
    p.add_argument("--fp16-flag", action="store_true", default=None,
                   help="legacy: weakly typed network + BuilderFlag.FP16 (TensorRT 10 only)")
    p.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bar")
    p.set_defaults(func=_build)

    c = sub.add_parser("check-plan",
                       help="tell whether a plan fits this machine or a given TensorRT (and how to rebuild it)")
    c.add_argument("plan", type=Path)
    c.add_argument("--onnx", type=Path, help="the ONNX the plan should have been built from")
    c.add_argument("--preset", help="the preset the plan should be for")
    c.add_argument("--tensorrt", metavar="VERSION",
                   help="check against this TensorRT version (e.g. 10.8.0: a Triton container's) instead of the "
                        "installed one; the GPU is then not checked")
    c.set_defaults(func=_check)


def _config(args: argparse.Namespace):  # -> BuildConfig (kept lazy)
    from dcpose_trt.engine.config import BuildConfig, parse_ints, profiles_from_persons
    from dcpose_trt.errors import InputError

    profiles_t: tuple[tuple[int, int, int], ...] | None = None
    if args.batch:
        profiles = []
        for text in args.batch:
            values = parse_ints(text, "--batch")
            if len(values) != 3:
                raise InputError(f"--batch takes MIN,OPT,MAX, got {text!r}")
            profiles.append((values[0], values[1], values[2]))
        profiles_t = tuple(profiles)
    elif args.persons or args.profile_per_bucket:
        persons = parse_ints(args.persons, "--persons") if args.persons else BuildConfig.profiles[0]
        profiles_t = profiles_from_persons(persons, per_bucket=bool(args.profile_per_bucket))
    ccs = tuple(c.strip() for c in args.compute_capability.split(",") if c.strip()) \
        if args.compute_capability else None
    given = dict(
        backend=args.backend, profiles=profiles_t, workspace_mb=args.workspace,
        timing_cache=args.timing_cache,
        opt_level=args.opt_level, version_compatible=args.version_compatible,
        hardware_compat=args.hardware_compat, plugin_dir=args.plugin_dir, compute_capabilities=ccs,
        fp16_flag=args.fp16_flag, progress=args.progress)
    # Options default to None: what the user did not give comes from BuildConfig.
    return BuildConfig(**{k: v for k, v in given.items() if v is not None})


def _build(args: argparse.Namespace) -> int:
    from dcpose_trt._atomic import check_writable

    check_writable(args.out, inputs=[args.onnx])
    check_writable(f"{args.out}.json", inputs=[args.onnx])  # the sidecar
    if args.timing_cache is not None:
        check_writable(args.timing_cache)
    from dcpose_trt.engine.builder import build_engine
    from dcpose_trt.engine.plan import sidecar_path

    plan = build_engine(args.onnx, args.out, _config(args))
    print(f"wrote {plan} and {sidecar_path(plan)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from dcpose_trt.engine.plan import check
    from dcpose_trt.errors import PlanMismatchError

    if args.preset is not None:
        from dcpose_trt.model.presets import get_preset

        get_preset(args.preset)  # InputError listing the presets
    tensorrt = getattr(args, "tensorrt", None)
    result = check(args.plan, args.onnx, args.preset, tensorrt=tensorrt)
    if not result.checked:  # no plan or no usable sidecar: an error (exit 2), not a mismatch
        raise PlanMismatchError(result.message)
    print(result.message)
    from dcpose_trt.engine.network import compat_notes

    meta = result.meta
    target = meta.get("target") or {}
    derived = compat_notes((meta.get("dcn") or {}).get("form", ""), bool(target.get("version_compatible")),
                           str(target.get("hardware_compat", "none")))
    if tensorrt is not None:
        from dcpose_trt.engine.plan_target import target_notes

        derived += target_notes(meta)
    for note in dict.fromkeys([*((meta.get("build") or {}).get("unverified") or []), *derived]):
        print(f"note: {note}")
    return 0 if result.ok else 1


def _quantize_ir(model: Path | None, out: Path, qc: QuantizeConfig) -> Path:
    """``quantize --target openvino``: see :func:`dcpose_trt.engine.openvino_ir.quantize_ir`."""
    from dcpose_trt.engine.openvino_ir import quantize_ir

    return quantize_ir(model, out, qc)
