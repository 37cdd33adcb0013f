"""What TensorRT calls back during a build: the logger (:class:`BuildLog`), the progress bar, and Ctrl-C.

The builder runs in C++; these Python objects are handed to it (``ILogger``, ``IProgressMonitor``) and
:func:`cancel_on_sigint` turns Ctrl-C into a cancel request the progress monitor returns to TensorRT.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, SupportsInt

from dcpose_trt.engine._trt import import_backend

if TYPE_CHECKING:
    from dcpose_trt.engine._trt import trt

log = logging.getLogger(__name__)

# The builder's layer listing (ProfilingVerbosity.DETAILED, verbose log), in its two formats:
# TensorRT-RTX / Myelin: "Name: n, LayerType: correlation, Inputs: [ { Name: x, ..., Datatype: Half, ...}],
#   Constants: [...], Outputs: [...], TacticName: t, StreamId: 0, Metadata: [ONNX Layer: node_Conv_1]"
# TensorRT 10: "Layer(CaskConvolution): name, Tactic: 0x0, x (Half[-1,3,32,32]) -> y (Half[-1,8,32,32])"
_LAYER_DETAILED = re.compile(
    r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*), Inputs: \[(?P<inputs>.*?)\], "
    r"Constants: \[(?P<consts>.*?)\], Outputs: \[(?P<outputs>.*?)\], TacticName: .*?Metadata: ?(?P<meta>.*)$")
_LAYER_ONELINE = re.compile(r"^Layer\((?P<type>[^)]*)\): (?P<name>.*?), Tactic: \S+, (?P<io>.*)$")
_DTYPE = re.compile(r"Datatype: (\w+)")
_IO_DTYPE = re.compile(r"\((\w+)\[")
_ONNX_NODE = re.compile(r"\[ONNX Layer: ([^\]]+)\]")


class BuildLog:
    """What TensorRT logged during one build: errors/warnings for messages, layer lines for the sidecar."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.layers: list[dict[str, Any]] = []

    def record(self, severity: str, msg: str) -> None:
        if severity in ("INTERNAL_ERROR", "ERROR"):
            self.errors.append(msg)
            log.error("TensorRT: %s", msg)
        elif severity == "WARNING":
            self.warnings.append(msg)
            log.warning("TensorRT: %s", msg)
        elif severity == "INFO":
            log.info("TensorRT: %s", msg)
        else:
            log.debug("TensorRT: %s", msg)
        # With ProfilingVerbosity.DETAILED the builder prints the final layers as one verbose line each;
        # that is the only layer listing available without a GPU (the engine inspector needs a
        # deserialized engine, which needs CUDA).
        for line in msg.splitlines():
            line = line.strip()
            if m := _LAYER_DETAILED.match(line):
                self.layers.append({
                    "name": m["name"], "type": m["type"],
                    "inputs": _DTYPE.findall(m["inputs"]), "constants": _DTYPE.findall(m["consts"]),
                    "outputs": _DTYPE.findall(m["outputs"]), "onnx_nodes": _ONNX_NODE.findall(m["meta"]),
                })
            elif m := _LAYER_ONELINE.match(line):
                ins, _, outs = m["io"].partition(" -> ")
                self.layers.append({"name": m["name"], "type": m["type"], "inputs": _IO_DTYPE.findall(ins),
                                    "constants": [], "outputs": _IO_DTYPE.findall(outs), "onnx_nodes": []})


@contextmanager
def cancel_on_sigint(flag: threading.Event) -> Iterator[None]:
    """Turn Ctrl-C into a cancel request that the progress monitor hands back to TensorRT.

    The build runs in C++; a KeyboardInterrupt raised inside a TensorRT callback would unwind through it.
    Instead the handler sets ``flag`` and ``step_complete`` returns False, so TensorRT stops cleanly, the
    build returns None and the caller raises KeyboardInterrupt with nothing written.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():  # second Ctrl-C: give up waiting for TensorRT
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.set()
        log.warning("cancelling the build (Ctrl-C again to abort immediately)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make_logger(backend: str, build_log: BuildLog) -> trt.ILogger:
    """An ``ILogger`` that hands every message to ``build_log``.

    Verbose on purpose: the layer listing arrives as verbose lines; :class:`BuildLog` routes the rest
    through Python logging at the matching level.
    """
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            build_log.record(severity.name, msg)

    return Logger()


def make_progress_monitor(backend: str, cancel: threading.Event, enabled: bool) -> Any:
    """A ``trt.IProgressMonitor`` that draws one tqdm bar per build phase (nested phases below)."""
    if TYPE_CHECKING:
        from dcpose_trt.engine._trt import trt
    else:
        trt = import_backend(backend)

    from tqdm.auto import tqdm

    class TqdmMonitor(trt.IProgressMonitor):
        # TensorRT may call from several builder threads: guard the bar table.
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, Any] = {}
            self._lock = threading.Lock()

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: SupportsInt) -> None:
            if not enabled:
                return
            with self._lock:
                depth = len(self._bars)
                # disable=None: no bars when stderr is not a terminal (a log file got ~950 lines per build).
                self._bars[phase_name] = tqdm(total=int(num_steps), desc=phase_name, position=depth,
                                              leave=depth == 0, dynamic_ncols=True, disable=None)

        def step_complete(self, phase_name: str, step: SupportsInt) -> bool:
            with self._lock:
                bar = self._bars.get(phase_name)
                if bar is not None:
                    bar.n = int(step) + 1
                    bar.refresh()
            return not cancel.is_set()

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                bar = self._bars.pop(phase_name, None)
                if bar is not None:
                    bar.n = bar.total
                    bar.close()

        def close(self) -> None:
            with self._lock:
                for bar in self._bars.values():
                    bar.close()
                self._bars.clear()

    return TqdmMonitor()
