"""Connecting the driver to a Ray cluster: which Ray, which address, and how long to wait.

* Ray >= 2.59 is required: from that release a local cluster (``ray.init()``) has token authentication
  on by default (Ray's token-authentication guide and release notes; 2.52-2.58 had it off unless
  ``RAY_AUTH_MODE=token``; 2.61 extends the default to every cluster). Without it, anyone who can reach the
  cluster's ports can run code on it.
* ``local`` starts a cluster bound to 127.0.0.1 without a dashboard: nothing is listening on the network
  (:func:`_single_machine`).
* ``auto`` and ``HOST:PORT`` join an existing cluster. Ray's own connection code ends the *process* when
  the address does not answer as a Ray GCS (``rpc_client.h``: "The program will terminate"), and waits up to
  a minute first, so the address is tried in a short-lived child process first (:func:`probe`), bounded by
  ``--ray-timeout`` (default :data:`CONNECT_TIMEOUT_S` s): one line when it fails, never a hang or a
  vanished driver. ``ray://`` (Ray Client) is refused: run ``predict`` on a node of the cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from dcpose_trt.errors import DcposeTrtError, InputError, MissingDependencyError

#: The first Ray release whose local clusters have token authentication on by default.
RAY_MIN = (2, 59)
#: Seconds the driver waits for an existing cluster to answer (``--ray-timeout``).
CONNECT_TIMEOUT_S = 30.0

_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")


def check_ray_version(version: str) -> None:
    """Raises :class:`MissingDependencyError` for a Ray older than :data:`RAY_MIN`."""
    from dcpose_trt._env import parse_version

    parsed = parse_version(version)
    if parsed is None or parsed.release[:2] < RAY_MIN:
        need = ".".join(map(str, RAY_MIN))
        raise MissingDependencyError(f"Ray {version} is installed; distributed runs need Ray >= {need} (token "
                                     f"authentication on by default): pip install 'ray>={need}'")


def parse_address(address: str) -> tuple[str, str | None, int | None]:
    """``(kind, host, port)``: kind ``local``, ``auto`` or ``hostport``.

    Raises:
        InputError: ``ray://`` or a malformed address (one line each).
    """
    a = address.strip()
    if a in ("local", "auto"):
        return a, None, None
    if a.startswith("ray://"):
        raise InputError(f"--ray-address {address}: Ray Client (ray://) addresses are not supported; run predict on "
                         "a node of the cluster with --ray-address auto, or give the head's HOST:PORT (GCS port)")
    m = _HOST_PORT.match(a)
    if m is None or not 0 < int(m.group("port")) < 65536:
        raise InputError(f"--ray-address {address!r} is not local, auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    return "hostport", m.group("host").strip("[]"), int(m.group("port"))


_PROBE = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
ray.shutdown()
print("ray-probe-ok")
"""


def _ray_env(timeout_s: float) -> dict[str, str]:
    """Ray's own GCS waits bounded by ``timeout_s`` (its defaults are 60 s)."""
    s = str(max(1, int(timeout_s)))
    return {"RAY_gcs_rpc_server_reconnect_timeout_s": s, "RAY_gcs_server_request_timeout_seconds": s}


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Check that ``address`` (``auto`` or ``HOST:PORT``) answers as a Ray cluster within ``timeout_s``.

    Raises:
        DcposeTrtError: one line saying what did not answer.
    """
    kind, host, port = parse_address(address)
    if kind == "local":
        return
    deadline = time.monotonic() + timeout_s
    if kind == "hostport":
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
            raise DcposeTrtError(f"cannot reach a Ray cluster at {address} ({why}, waited up to {timeout_s:.0f} s; "
                                 "--ray-timeout sets the wait)") from None
    env = {**os.environ, **_ray_env(timeout_s)}
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True, env=env,
                              timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise DcposeTrtError(f"no Ray cluster answered at {address} within {timeout_s:.0f} s "
                             "(--ray-timeout sets the wait)") from None
    if proc.returncode != 0 or "ray-probe-ok" not in proc.stdout:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("[", " "))]
        detail = (lines[-1] if lines else f"exit code {proc.returncode}")[:200]
        what = "no running Ray cluster was found on this machine" if kind == "auto" else \
            f"{address} did not answer as a Ray cluster"
        raise DcposeTrtError(f"--ray-address {address}: {what} ({detail})")


def connect(ray: Any, address: str, workers: int, threads: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """``ray.init`` for ``address``; returns the dashboard URL (None: no dashboard)."""
    check_ray_version(str(getattr(ray, "__version__", "0")))
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address == "local":
        need = workers * threads
        # Loopback only, no dashboard: a cluster for this run, reachable from nowhere else.
        with _single_machine(ray):
            ctx = ray.init(num_cpus=max(need, os.cpu_count() or 1), include_dashboard=False,
                           _node_ip_address="127.0.0.1", **kwargs)
    else:
        probe(address, timeout_s)
        ctx = ray.init(address=address, **kwargs)
    url = getattr(ctx, "dashboard_url", None) or None
    return url if url is None or url.startswith("http") else f"http://{url}"


@contextlib.contextmanager
def _single_machine(ray: Any) -> Iterator[None]:
    """Ray's single-machine mode while a local cluster starts: every Ray process binds to 127.0.0.1.

    On Linux Ray replaces a loopback node address by the machine's network address (and its services
    listen on every interface); with its cluster mode off, as Ray itself runs on macOS and Windows
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``, read when ``ray`` is imported), it keeps 127.0.0.1. The switch is
    a module constant, so it is set for the start only; a Ray without it starts as before.
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    before = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before
