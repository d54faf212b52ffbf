"""Load-generating WebSocket clients for the stream benchmark: one process, many connections.

Each connection does the real handshake with websockets' sans-I/O client, then reads frames with a scanner
that only looks at the first bytes of each message (frame_id, timestamp): the load generator must cost far
less than the server it measures, and JSON-decoding 2 GB/s of images would not.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time

import uvloop
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

HEAD = re.compile(rb'"frame_id":(\d+),"timestamp":([0-9.]+)')


class StreamClient(asyncio.Protocol):
    def __init__(self, url: str, window: list[float]) -> None:
        self.ws = ClientProtocol(parse_uri(url))
        self.window = window
        self.open = asyncio.get_running_loop().create_future()
        self.response = bytearray()
        self.buffer = bytearray()
        self.need = 0  # payload bytes of the current message still to come
        self.head = b""
        self.ids: list[int] = []
        self.latencies: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        transport.write(b"".join(self.ws.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if not self.open.done():
            self.response += data
            end = self.response.find(b"\r\n\r\n")
            if end < 0:
                return
            # the handshake goes to websockets; what follows the response headers is already stream data
            self.ws.receive_data(bytes(self.response[: end + 4]))
            if self.ws.handshake_exc is not None:
                self.open.set_exception(self.ws.handshake_exc)
                return
            self.open.set_result(None)
            data = bytes(self.response[end + 4:])
        self.scan(data)

    def scan(self, data: bytes) -> None:
        now = time.time()
        view = memoryview(data)
        while view:
            if self.need:
                if len(self.head) < 96:
                    self.head += bytes(view[: 96 - len(self.head)])
                taken = min(self.need, len(view))
                self.need -= taken
                view = view[taken:]
                if not self.need:
                    self.record(now)
                continue
            self.buffer += view
            view = memoryview(b"")
            if len(self.buffer) < 2:
                return
            length = self.buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = int.from_bytes(self.buffer[2:10], "big"), 10
            rest = bytes(self.buffer[offset:])
            self.buffer.clear()
            self.need, self.head = length, b""
            if not length:
                continue
            view = memoryview(rest)

    def record(self, now: float) -> None:
        start, end = self.window
        match = HEAD.search(self.head)
        if match and start <= now <= end:
            self.ids.append(int(match[1]))
            self.latencies.append(now - float(match[2]))


async def main(url: str, count: int) -> None:
    """Connects `count` clients, says so, reads the measuring window (two Unix times) from stdin,
    and prints what each client received inside it."""
    host, port = parse_uri(url).host, parse_uri(url).port
    loop = asyncio.get_running_loop()
    window = [float("inf"), float("inf")]
    clients = []
    for _ in range(count):
        _, client = await loop.create_connection(lambda: StreamClient(url, window), host, port)
        await client.open
        clients.append(client)
    print(json.dumps({"connected": len(clients)}), flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    window[:] = map(float, line.split())
    await asyncio.sleep(max(0.0, window[1] - time.time()) + 0.5)
    for client in clients:
        client.transport.close()
    print(json.dumps({"clients": [{"ids": c.ids, "latencies": c.latencies} for c in clients]}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
