"""A consumer as written for the earlier camera: print each frame's id and timestamp, forever."""

import asyncio
import json
import sys

import websockets


async def main(url: str) -> None:
    async with websockets.connect(url) as ws:
        while True:
            frame = json.loads(await ws.recv())
            print(frame["frame_id"], frame["timestamp"], flush=True)


asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8000/ws/stream"))
