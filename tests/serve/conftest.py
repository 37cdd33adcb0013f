"""A real ``tritonserver`` (on PATH, or the ``[serve]`` extra's bundled one) on free loopback ports.

Skips only when no tritonserver or Triton client can be found. Every server started here is stopped
(SIGTERM, then SIGKILL) and checked gone: its process reaped, no Python-backend stub of its repository
left, its ports free again.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from dcpose_trt.errors import MissingDependencyError

IDLE_TIMEOUT_S = 4.0


def _need_triton() -> None:
    from dcpose_trt.serve.triton import find_tritonserver

    try:
        find_tritonserver()
    except MissingDependencyError as exc:
        pytest.skip(f"no tritonserver: {exc}")
    try:
        import tritonclient.grpc  # noqa: F401
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"no Triton gRPC client: {exc}")


def _processes_with(text: str) -> list[int]:
    """Pids whose command line mentions ``text``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assert_gone(server) -> None:
    """The server and its stubs are gone and its ports are free (the stubs may need a moment)."""
    import time

    assert server.proc is None or server.proc.poll() is not None
    deadline = time.monotonic() + 20
    while _processes_with(str(server.repo.resolve())) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _processes_with(str(server.repo.resolve()))
    assert not left, ("a Python-backend stub outlived its server",
                      [Path(f"/proc/{p}/cmdline").read_bytes()[:200] for p in left if Path(f"/proc/{p}").exists()])
    ports = (server.ports.http, server.ports.grpc, server.ports.metrics)
    while not all(_port_free(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_port_free(p) for p in ports)


@dataclass
class Served:
    repo: Path
    split: Path  # the split ONNX the part models run: what `run --model` gets for the comparison
    server: object


@pytest.fixture(scope="session")
def serve_repo(tmp_path_factory) -> tuple[Path, Path]:
    """A CPU repository of the bundled tiny model on ONNX Runtime, exact mode, short idle timeout."""
    _need_triton()
    pytest.importorskip("onnxruntime")
    from dcpose_trt.serve.repository import ServeExportConfig, export_repository, read_manifest

    repo = tmp_path_factory.mktemp("serve") / "repo"
    # A longer batching window than the default: on a loaded 2-core machine the streams' requests must
    # meet in the queue for the cross-stream batching check.
    export_repository(ServeExportConfig(out=str(repo), backend="onnxruntime", idle_timeout_s=IDLE_TIMEOUT_S,
                                        queue_delay_us=20000, stream_instances=4))
    return repo, Path(read_manifest(repo)["model"])


def start_server(repo: Path):
    from dcpose_trt.serve.server import TritonServer

    return TritonServer(repo).start(timeout_s=float(os.environ.get("DCPOSE_TRT_SERVE_READY_S", "300")))


@pytest.fixture(scope="module")
def served(serve_repo):
    repo, split = serve_repo
    server = start_server(repo)
    try:
        yield Served(repo, split, server)
    finally:
        server.stop()
        assert_gone(server)
