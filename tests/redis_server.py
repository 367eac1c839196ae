"""A real ``redis-server`` for the tests: a free loopback port, a temporary directory, and
stop/kill/restart on the same port (imported as ``redis_server``: tests/ is on sys.path).

It fails loudly when redis-server is missing or does not start: the tests that check
sharing across replicas must never be skipped silently (``.ci/run`` installs Debian's
``redis-server`` package first).

The server keeps an append-only file fsynced on every write (``appendfsync always``), so a
SIGKILL loses nothing a client was told had been written, as a production Redis configured
for a ledger would, and a restart on the same directory reloads it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

__all__ = ["RedisServer", "redis_server_binary"]


def _installed() -> Optional[str]:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )


def redis_server_binary() -> str:
    """The redis-server binary; on a fresh Debian machine (as root) Debian's package is
    installed first, so the README's test command needs nothing done by hand."""
    path = _installed()
    if path is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "redis-server"],
        ):
            subprocess.run(command, check=False, capture_output=True, timeout=600)
        path = _installed()
    if path is None:
        raise RuntimeError(
            "redis-server not found on PATH: the gateway's Redis tests need a real server "
            "(apt-get install redis-server; .ci/run does this)"
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1; the port stays the same across restarts."""

    def __init__(self, directory: Path, *, port: Optional[int] = None) -> None:
        self.binary = redis_server_binary()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            return self
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    self._failure(f"redis-server exited ({self.process.returncode})")
                )
            if self._pong():
                return self
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise RuntimeError(self._failure(f"redis-server did not answer in {timeout}s"))
            time.sleep(0.02)

    def stop(self, *, kill: bool = False) -> None:
        """SIGKILL (``kill``: a crash, nothing flushed beyond what was fsynced) or SIGTERM
        (a clean shutdown); waits until the process is gone and the port is free."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self, *, kill: bool = False) -> RedisServer:
        self.stop(kill=kill)
        return self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(kill=True)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _failure(self, what: str) -> str:
        tail = ""
        with contextlib.suppress(OSError):
            tail = self.log.read_text(errors="replace")[-2000:]
        return f"{what} on 127.0.0.1:{self.port} (binary {self.binary}); log tail:\n{tail}"
