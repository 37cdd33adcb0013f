"""``python -m tools.trt_api {check,stubs}``: TensorRT API conformance from the command line.

Exit code 0 when every version passes, 1 when mypy found errors, 2 when a version could not be checked.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tools.trt_api.check import check
from tools.trt_api.stubs import DEFAULT_VERSIONS, TrtApiError, cache_root, prepare


def _versions(text: str) -> list[str]:
    return [v for v in (p.strip() for p in text.split(",")) if v]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.trt_api", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="mypy the given modules against each TensorRT API version")
    p_check.add_argument("--versions", type=_versions, default=list(DEFAULT_VERSIONS),
                         help=f"comma-separated (default {','.join(DEFAULT_VERSIONS)})")
    p_check.add_argument("--all-errors", action="store_true",
                         help="also report typing errors unrelated to TensorRT (normally filtered)")
    p_check.add_argument("paths", nargs="+", help="files or package directories to check")
    p_stubs = sub.add_parser("stubs", help="generate (or find cached) stubs and print their directories")
    p_stubs.add_argument("--versions", type=_versions, default=list(DEFAULT_VERSIONS))
    p_stubs.add_argument("--refresh", action="store_true", help="regenerate cached stubs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    if args.command == "stubs":
        print(f"# cache: {cache_root()}")
        try:
            for name in args.versions:
                s = prepare(name, refresh=args.refresh)
                print(f"{name}\t{s.version}\t{s.stub_dir}")
        except TrtApiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    results = check(args.paths, args.versions, all_errors=args.all_errors)
    for r in results:
        label = f"{r.name} ({r.version})" if r.version else r.name
        status = "pass" if r.ok else ("ERROR" if r.failure else "FAIL")
        extra = f" - {len(r.errors)} error(s)" if r.errors else ""
        if r.unrelated:
            extra += f" ({len(r.unrelated)} typing error(s) unrelated to TensorRT not counted)"
        print(f"TensorRT API {label}: {status}{extra}")
        for line in r.errors:
            print(f"  {line}")
        if r.failure:
            print(f"  {r.failure}")
    if any(r.failure for r in results):
        return 2
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
