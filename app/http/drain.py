"""SIGTERM: stop accepting, let open connections finish their next request, then shut down.

uvicorn's own shutdown closes every idle keep-alive connection at once. A request a client has
just written on one of them never reaches the app and is lost (bench/soak.py: 20-30 per SIGTERM
at 64 busy connections). So SIGTERM first drains, for at most `RECSYS_DRAIN_SECONDS`: the
listening socket is shut down, for every worker (new connections are refused, which a client
can safely retry elsewhere); requests on connections already open are served as usual but
answered with `Connection: close`; once no connection is left (or the time is up) uvicorn's
graceful shutdown runs: requests still in flight finish within
`RECSYS_GRACEFUL_SHUTDOWN_SECONDS`.

This reaches into the uvicorn server through the SIGTERM handler it installs (its `servers` and
its open `connections`); under any other server, or off the main thread (a test client), nothing
is installed and SIGTERM does whatever the server does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

log = logging.getLogger("app")

SignalHandler = Callable[[int, FrameType | None], object]  # uvicorn's own, bound to its server


class Drain:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.draining = False  # read by the middleware: answer with `Connection: close`

    def install(self) -> None:
        """Put the drain in front of uvicorn's SIGTERM handler (call from the lifespan)."""
        if self.seconds <= 0 or threading.current_thread() is not threading.main_thread():
            return
        handler = signal.getsignal(signal.SIGTERM)
        server = getattr(handler, "__self__", None)
        if not callable(handler) or not isinstance(server, uvicorn.Server):
            return
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: shut down now
                handler(signum, frame)
                return
            loop.call_soon_threadsafe(self._begin, server, handler, signum)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _begin(self, server: uvicorn.Server, handler: SignalHandler, signum: int) -> None:
        try:
            self._stop_accepting(server)
        except Exception:  # uvicorn's internals moved: never let that block the shutdown
            log.exception("draining failed; shutting down without it")
            handler(signum, None)
            return
        self.draining = True
        asyncio.get_running_loop().create_task(self._drain(server, handler, signum))

    @staticmethod
    def _stop_accepting(server: uvicorn.Server) -> None:
        # Stop the kernel accepting before any answer says `Connection: close`: a client that
        # reconnected in between would wait in the accept queue and be reset at exit. Closing
        # our listener is not enough with several workers: the listening socket is shared with
        # them and the supervisor, so it is shut down for all of them.
        for listener in server.servers:
            for sock in listener.sockets or ():
                try:
                    with socket.socket(fileno=os.dup(sock.fileno())) as shared:
                        shared.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # another worker shut it down first
            listener.close()

    async def _drain(self, server: uvicorn.Server, handler: SignalHandler, signum: int) -> None:
        loop = asyncio.get_running_loop()
        open_connections = server.server_state.connections
        log.info(
            "SIGTERM: not accepting; draining %d open connections (at most %.1f s)",
            len(open_connections),
            self.seconds,
        )
        deadline = loop.time() + self.seconds
        try:
            while open_connections and loop.time() < deadline:
                await asyncio.sleep(0.02)
            log.info("drained (%d connections left); shutting down", len(open_connections))
        finally:
            handler(signum, None)  # uvicorn's graceful shutdown, whatever happened above
