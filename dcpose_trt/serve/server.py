"""``dcpose-trt serve start``: run ``tritonserver`` on a repository, wait until it is ready, stop it cleanly.

:class:`TritonServer` is also what the tests and ``bench serve`` start (on free loopback ports). The child
gets ``PR_SET_PDEATHSIG`` so it dies with its parent even when that is killed (no orphan server); its
Python-backend stubs watch the server and exit with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dcpose_trt.errors import DcposeTrtError, InputError
from dcpose_trt.serve.triton import find_tritonserver, prepare_backends


class ServerStartError(DcposeTrtError):
    """tritonserver exited or was not ready in time (the message ends with its log's last lines)."""


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def free_ports(host: str = "127.0.0.1") -> Ports:
    """Three ports free on ``host`` now (bound once and released)."""
    socks = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        p = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    return Ports(p[0], p[1], p[2])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class TritonServer:
    """A ``tritonserver`` child process serving ``repo``.

    Args:
        repo: the model repository. ports: where to listen (default: three free ones). host: the address
            to bind (``127.0.0.1``: this machine only; ``0.0.0.0`` for other machines).
        log_verbose: Triton's ``--log-verbose`` level.
    """

    def __init__(self, repo: str | os.PathLike, ports: Ports | None = None, host: str = "127.0.0.1",
                 log_verbose: int = 0, extra_args: tuple[str, ...] = ()):
        self.repo = Path(repo)
        if not self.repo.is_dir():
            raise InputError(f"model repository not found: {self.repo}")
        self.host = host
        self.ports = ports or free_ports(host if host != "0.0.0.0" else "127.0.0.1")
        self.log_verbose = log_verbose
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self.log_path: Path | None = None

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host()}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"{self._client_host()}:{self.ports.http}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host()}:{self.ports.metrics}/metrics"

    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def command(self, backends: Path | None) -> list[str]:
        inst = find_tritonserver()
        cmd = [str(inst.binary), f"--model-repository={self.repo.resolve()}",
               f"--http-port={self.ports.http}", f"--grpc-port={self.ports.grpc}",
               f"--metrics-port={self.ports.metrics}", f"--http-address={self.host}",
               f"--grpc-address={self.host}", f"--metrics-address={self.host}",
               "--allow-gpu-metrics=false", "--allow-cpu-metrics=false", "--exit-timeout-secs=10",
               f"--log-verbose={self.log_verbose}"]
        if backends is not None:
            cmd.append(f"--backend-directory={backends}")
        return cmd + list(self.extra_args)

    def start(self, timeout_s: float = 180.0) -> TritonServer:
        """Start the server and wait until it is ready (all models loaded), at most ``timeout_s``."""
        inst = find_tritonserver()
        self.workdir = Path(tempfile.mkdtemp(prefix="dcpose-triton-"))
        backends = prepare_backends(inst, self.workdir)
        self.log_path = self.workdir / "tritonserver.log"
        env = dict(os.environ, **inst.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(backends), stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                         start_new_session=True)  # its own group: the stubs go with it
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(t for t in text if not t.startswith("I"))[-4000:] or "\n".join(text[-lines:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerStartError(f"tritonserver exited with code {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise ServerStartError(f"tritonserver was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (models unload, stubs exit), SIGKILL after ``timeout_s``; removes the work folder."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            rc = self.proc.returncode
            self._kill_group()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return rc

    def _stubs(self) -> list[int]:
        """Pids of this server's Python-backend processes (their command line names the repository)."""
        repo = str(self.repo.resolve())
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid():
                try:
                    cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if "triton_python_backend_stub" in cmd and repo in cmd:
                    out.append(int(d.name))
        return out

    def _kill_group(self, stubs: list[int] | None = None) -> None:
        """SIGKILL what is left of the server: its process group and its Python-backend stubs (those of a
        killed server would otherwise linger until they notice their parent is gone)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in stubs if stubs is not None else self._stubs():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the server and its stubs now (a crash, for tests)."""
        if self.proc is not None and self.proc.poll() is None:
            stubs = self._stubs()
            self._kill_group(stubs)
            self.proc.wait(10)

    def __enter__(self) -> TritonServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(server: TritonServer, timeout_s: float) -> int:
    """Start, print the addresses, wait for Ctrl-C/SIGTERM (or the server's exit), stop. Returns the exit code."""
    stop = {"sig": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["sig"] = signum

    old = signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start(timeout_s)
        print(f"ready: grpc {server.grpc_url}  http {server.http_url}  metrics {server.metrics_url}", flush=True)
        print("Ctrl-C or SIGTERM stops the server", flush=True)
        try:
            while not stop["sig"]:
                if server.proc is not None and server.proc.poll() is not None:
                    raise ServerStartError(f"tritonserver exited with code {server.proc.returncode}:\n"
                                           f"{server.log_tail()}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, old)
    print("stopped", flush=True)
    return 0
