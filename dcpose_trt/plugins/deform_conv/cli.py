"""``dcpose-trt plugin build``: ahead-of-time PTX for the deformable-conv plugin.

Only argparse at import time; triton is imported when the verb runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

_DEFAULT_ARCHS = "72,75,80,86,87,89,90,100,120"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plugin`` verb (subverb ``build``) to the ``dcpose-trt`` parser."""
    plugin = sub.add_parser("plugin", help="the deformable-conv TensorRT plugin (Triton kernel, AOT PTX)")
    plugin_sub = plugin.add_subparsers(dest="plugin_command", metavar="<subcommand>")
    plugin.set_defaults(func=lambda args: (plugin.print_help(), 0)[1])

    build = plugin_sub.add_parser(
        "build",
        help="compile the kernel to PTX/cubin for GPU archs, without a GPU",
        description="Compile the fused deformable-conv Triton kernel ahead of time for each arch x dtype x "
        "DCN config x tactic; writes sm_XX/*.ptx, *.cubin and manifest.json. Results are cached in "
        "$DCPOSE_TRT_CACHE/ptx (default ~/.cache/dcpose_trt/ptx).",
    )
    build.add_argument("--arch", default=_DEFAULT_ARCHS, help=f"compute capabilities (default {_DEFAULT_ARCHS})")
    build.add_argument("--out", required=True, type=Path, help="output folder")
    build.add_argument("--dtypes", default="fp32,fp16", help="I/O types (default fp32,fp16)")
    build.add_argument(
        "--config", default="dcpose", help="DCN config: dcpose or KHxKW:COUT[:nomask][:nobias] (comma-separated)"
    )
    build.add_argument("--tactics", default=None, help="tile tactics to compile (default: all)")
    build.add_argument("--jobs", type=int, default=None, help="parallel compile processes (default: CPU count)")
    build.add_argument("--no-cache", action="store_true", help="ignore and do not fill the compile cache")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from dcpose_trt.errors import PluginError
    from dcpose_trt.plugins.deform_conv.aot import parse_archs
    from dcpose_trt.plugins.deform_conv.aot_build import build_ptx

    archs = parse_archs(args.arch)  # fail on a bad arch before importing triton
    try:
        tactics = [int(t) for t in args.tactics.split(",")] if args.tactics else None
    except ValueError:
        raise PluginError(f"--tactics must be comma-separated integers, got {args.tactics!r}") from None
    manifest = build_ptx(
        archs,
        args.out,
        dtypes=args.dtypes,
        configs=[c for c in args.config.split(",") if c],
        tactics=tactics,
        jobs=args.jobs,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
    )
    n = len(manifest["kernels"])
    cached = sum(e["cached"] for e in manifest["kernels"])
    cubins = sum(e["cubin"] is not None for e in manifest["kernels"])
    print(f"wrote {n} kernel(s) ({cached} from cache, {cubins} with cubin) to {args.out / 'manifest.json'}")
    return 0
