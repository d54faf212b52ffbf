"""A consumer that records what it receives, run in a pod with the camera image (it needs only websockets).

    python3 -c "$(cat recorder.py)" SECONDS URL [URL ...]

Each URL gets its own connection for SECONDS; a connection that closes is reopened after RECONNECT_DELAY (the
pattern the README shows). One JSON line per event on stdout:
    {"url": u, "conn": n, "frame_id": i, "timestamp": t, "sha": sha256(JPEG), "received": time.time()}
    {"url": u, "conn": n, "closed": code, "reason": "...", "at": time.time()}   (code None: could not connect)
"""

import asyncio
import base64
import hashlib
import json
import sys
import time

import websockets

RECONNECT_DELAY = 0.2


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


async def record(url: str, until: float) -> None:
    conn = 0
    while time.time() < until:
        conn += 1
        try:
            async with websockets.connect(url, open_timeout=5) as ws:
                while time.time() < until:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=max(0.01, until - time.time()))
                    except TimeoutError:
                        return
                    frame = json.loads(raw)
                    emit({"url": url, "conn": conn, "frame_id": frame["frame_id"],
                          "timestamp": frame["timestamp"],
                          "sha": hashlib.sha256(base64.b64decode(frame["image"])).hexdigest(),
                          "received": time.time()})
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            emit({"url": url, "conn": conn, "closed": code,
                  "reason": closed.rcvd.reason if closed.rcvd else "", "at": time.time()})
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            emit({"url": url, "conn": conn, "closed": None, "reason": repr(exc), "at": time.time()})
        await asyncio.sleep(RECONNECT_DELAY)


async def main(seconds: float, urls: list[str]) -> None:
    until = time.time() + seconds
    await asyncio.gather(*(record(url, until) for url in urls))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2:]))
