"""A reverse proxy in front of the real API server that makes it slow or failing on demand (aiohttp).

The operator under test is pointed at the proxy instead of the API server. The proxy serves the API server's
own certificate (it is valid for 127.0.0.1), so the operator's kubeconfig keeps its CA and only its port
changes; requests, watches included, are streamed through with their bearer token.

    proxy = ApiProxy(control_plane)
    proxy.start()                  # serves https://127.0.0.1:<proxy.port>
    proxy.delay = 2.0              # every request waits 2 s before it is forwarded
    proxy.fail_for(20.0)           # 20 s of 429 (Retry-After: 1) and 500 in turn, for all but watches
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import threading
import time
from collections import Counter

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from hack.cluster.controlplane import LOOPBACK, ControlPlane

# Headers that belong to one connection, not to the request or response passed on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-authorization", "proxy-authenticate", "host", "content-length"})


def status_body(code: int, reason: str) -> dict[str, object]:
    """A Kubernetes Status object, as the API server itself answers an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"injected by the test proxy: {reason}", "reason": reason, "code": code}


class ApiProxy:
    """The proxy, on its own event loop in a thread: tests set `delay` and call `fail_for` from theirs."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self.upstream = control_plane.server
        pki = control_plane.pki
        self._client_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(str(pki / "apiserver.crt"), str(pki / "apiserver.key"))
        self.delay = 0.0
        self.port = 0
        self.answered: Counter[int] = Counter()  # status code -> responses, injected ones included
        self._failing_until = 0.0
        self._faults = itertools.cycle(((429, "TooManyRequests"), (500, "InternalError")))
        self._streams: set[web.StreamResponse] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def fail_for(self, seconds: float) -> None:
        """Answer every request but watches with 429 or 500 for `seconds`, as an API server that sheds load
        does: the operator still sees every change, and each of its calls fails."""
        self._failing_until = time.monotonic() + seconds

    @property
    def failing(self) -> bool:
        return time.monotonic() < self._failing_until

    def _cut_streams(self) -> None:
        for response in list(self._streams):
            if response.task is not None:
                response.task.cancel()

    async def _serve(self) -> None:
        self._session = ClientSession(connector=TCPConnector(ssl=self._client_tls, limit=0),
                                      timeout=ClientTimeout(total=None, sock_connect=5),
                                      auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, ssl_context=self._server_tls)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        self._cut_streams()  # a watch would otherwise hold the shutdown for up to its 5-minute timeout
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing and request.query.get("watch") != "true":
            code, reason = next(self._faults)
            self.answered[code] += 1
            return web.json_response(status_body(code, reason), status=code,
                                     headers={"Retry-After": "1"} if code == 429 else None)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=body or None, allow_redirects=False) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
            self.answered[upstream.status] += 1
            await response.prepare(request)
            self._streams.add(response)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except ConnectionResetError:  # the client went away (an operator stopped)
                return response
            finally:
                self._streams.discard(response)
            await response.write_eof()
            return response
