"""``dcpose-trt <verb>``: the command line. Each verb parses flags and calls one stage function.

Every stage package registers its verbs in its own ``cli.py`` (``register(subparsers)``); those
modules import only argparse-level code at the top so ``--help`` works with nothing but the core
dependencies installed. A :class:`~dcpose_trt.errors.DcposeTrtError` becomes a one-line message and
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from dcpose_trt import __version__
from dcpose_trt.errors import DcposeTrtError

# Stage modules that add verbs, in the order they appear in --help.
_COMMAND_MODULES = (
    "dcpose_trt.data.cli",
    "dcpose_trt.train.cli",
    "dcpose_trt.eval.cli",
    "dcpose_trt.scale.cli",
    "dcpose_trt.export.cli",
    "dcpose_trt.plugins.deform_conv.cli",
    "dcpose_trt.engine.cli",
    "dcpose_trt.runtime.cli",
    "dcpose_trt.serve.cli",
    "dcpose_trt.doctor",
    "benchmarks.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcpose-trt",
        description="DCPose video pose estimation: train, export to ONNX, build TensorRT engines, run.",
    )
    parser.add_argument("--version", action="version", version=f"dcpose-trt {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A verb whose module is not part of this install (e.g. benchmarks/ outside a checkout).
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    _verbose_everywhere(sub)
    return parser


def _verbose_everywhere(sub: argparse._SubParsersAction) -> None:
    """Let ``-v`` follow the verb too (``dcpose-trt run -v ...``), in every (nested) subcommand.

    A subcommand's flags land in their own count (``verbose_after``, absent unless given) and add to the
    ones before the verb: argparse copies a subparser's namespace over the parent's, so sharing ``verbose``
    would drop ``-v`` given before the verb.
    """
    for parser in set(sub.choices.values()):
        if not any("-v" in action.option_strings for action in parser._actions):
            parser.add_argument("-v", "--verbose", action="count", dest="verbose_after", default=argparse.SUPPRESS,
                                help="more logging (-vv: debug); also accepted before the verb")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _verbose_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except DcposeTrtError as exc:
        print(f"dcpose-trt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dcpose-trt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
