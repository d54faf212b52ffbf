"""Load-generating WebSocket clients for the stream benchmark: one process, many connections.

Each connection does the real handshake with websockets' sans-I/O client, then reads frames with a scanner
that only looks at the first bytes of each message (frame_id, timestamp): the load generator must cost far
less than the server it measures, and JSON-decoding 2 GB/s of images would not. It answers the camera's
keepalive pings, as any WebSocket client does: uvicorn closes a client that has not answered one in 20 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import cast

import uvloop
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

HEAD = re.compile(rb'"frame_id":(\d+),"timestamp":([0-9.]+)')
HEAD_BYTES = 125  # enough for frame_id and timestamp, and all of a ping's payload (at most 125)
PING = 0x9


class StreamClient(asyncio.BufferedProtocol):
    """Receives into one reused buffer (no allocation per read) and walks WebSocket frame headers."""

    def __init__(self, url: str, window: list[float]) -> None:
        self.ws = ClientProtocol(parse_uri(url))
        self.window = window
        self.open = asyncio.get_running_loop().create_future()
        self.response = bytearray()
        self.memory = memoryview(bytearray(1 << 18))
        self.header = bytearray()  # the current frame header, while it is incomplete
        self.need = 0  # payload bytes of the current message still to come
        self.opcode = 0  # the current frame's
        self.head = bytearray()  # its first bytes, which hold frame_id and timestamp
        self.ids: list[int] = []
        self.latencies: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.ws.send_request(self.ws.connect())
        transport.write(b"".join(self.ws.data_to_send()))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.memory

    def buffer_updated(self, nbytes: int) -> None:
        data = self.memory[:nbytes]
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
            data = memoryview(bytes(self.response[end + 4:]))
        self.scan(data, time.time())

    def scan(self, data: memoryview, now: float) -> None:
        position, size = 0, len(data)
        while position < size:
            if self.need:
                taken = min(self.need, size - position)
                if len(self.head) < HEAD_BYTES:
                    self.head += data[position: position + min(taken, HEAD_BYTES - len(self.head))]
                self.need -= taken
                position += taken
                if not self.need:
                    self.record(now)
                continue
            self.header.append(data[position])
            position += 1
            length = self.header[1] & 0x7F if len(self.header) >= 2 else -1
            wanted = {126: 4, 127: 10}.get(length, 2)
            if length < 0 or len(self.header) < wanted:
                continue
            self.need = int.from_bytes(self.header[2:wanted], "big") if wanted > 2 else length
            self.opcode = self.header[0] & 0x0F
            self.header.clear()
            self.head.clear()
            if not self.need:
                self.record(now)

    def record(self, now: float) -> None:
        if self.opcode == PING:
            self.ws.send_pong(bytes(self.head))
            self.transport.write(b"".join(self.ws.data_to_send()))
            return
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
