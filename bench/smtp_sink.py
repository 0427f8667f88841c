"""An SMTP sink on loopback, in a process of its own so that it does not share the sender's GIL.

`Sink()` starts it; `sink.take()` returns what was received since the last call: (recipient, message bytes) pairs.
`Sink(delay=0.01)` answers each message only after that many seconds (a slower mail server: B12), each
connection waiting on its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import threading


class _Handler:
    def __init__(self, delay: float = 0.0):
        self.lock = threading.Lock()
        self.received: list[tuple[str, bytes]] = []
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.received.extend((to, envelope.original_content) for to in envelope.rcpt_tos)
        return "250 OK"


def _serve(conn, delay: float = 0.0) -> None:
    from aiosmtpd.controller import Controller

    handler = _Handler(delay)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(controller.port)
    try:
        while (command := conn.recv()) != "stop":
            if command == "take":
                with handler.lock:
                    taken, handler.received = handler.received, []
                conn.send(taken)
    finally:
        controller.stop()


class Sink:
    """The sink process; use as a context manager."""

    def __init__(self, *, delay: float = 0.0):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, delay), daemon=True)
        self._proc.start()
        self.port: int = self._conn.recv()

    def take(self) -> list[tuple[str, bytes]]:
        self._conn.send("take")
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
