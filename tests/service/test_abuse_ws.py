"""WebSocket abuse against a real camera, over raw sockets: malformed upgrades, frames that break RFC 6455,
ping floods and a 100 MB message. Each gets an HTTP 4xx or the RFC's close code (1002 protocol error, 1007
invalid data, 1009 too big), never a crash; meanwhile five healthy clients lose no frame and the camera's
sockets return to their baseline."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

from tests.service.abuse import (
    HealthyClients,
    RawWebSocket,
    frame,
    health_answers_within,
    memory_mb,
    response_head,
    status_for,
    upgrade_request,
)

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
MAX_SIZE = 64 * 1024  # the camera's ws_max_size (__main__.py)
SMALL = {"DRISHTI_VIDEO_PATH": "synthetic:320x240", "DRISHTI_FPS": "30", "DRISHTI_LOG_LEVEL": "warning"}


def test_malformed_upgrade_requests_get_a_4xx_and_cost_the_healthy_clients_nothing(start_camera):
    camera = start_camera(**SMALL)
    with HealthyClients(camera) as healthy:
        refused = {
            "unsupported version": upgrade_request(Sec_WebSocket_Version="12"),
            "no version": upgrade_request(Sec_WebSocket_Version=None),
            "no key": upgrade_request(Sec_WebSocket_Key=None),
            "a key that is not 16 bytes of base64": upgrade_request(Sec_WebSocket_Key="abc"),
            "1 MB of headers (over max_header_bytes)": upgrade_request(X_Padding="a" * 1_000_000),
            # within max_header_bytes, beyond what websockets parses: a line over 8 KiB, over 128 headers
            "a 10 kB header line": upgrade_request(X_Padding="a" * 10_000),
            "200 headers": upgrade_request(**{f"X-Pad-{i}": "a" for i in range(200)}),
            "a control character in the extensions": upgrade_request(Sec_WebSocket_Extensions="x\x01"),
            "no Connection: Upgrade": upgrade_request(Connection="keep-alive"),
        }
        for name, request in refused.items():
            status = status_for(camera.port, request)
            assert 400 <= status < 500, f"{name}: {status}"
        # The camera speaks no extension (permessage-deflate is off), so an offer it cannot parse is declined,
        # as RFC 6455 section 9.1 lets a server decline any: the stream starts, uncompressed.
        for offer in ("permessage-deflate; client_max_window_bits=99", ";;,=", "x-unknown; a=\"b"):
            with socket.create_connection(("127.0.0.1", camera.port)) as sock:
                sock.sendall(upgrade_request(Sec_WebSocket_Extensions=offer))
                status, headers, rest = response_head(sock)
                assert status == 101 and "sec-websocket-extensions" not in headers, (offer, status, headers)
                while len(rest) < 2:
                    rest += sock.recv(65536)
                assert rest[0] == 0x80 | TEXT, f"{offer}: an uncompressed (RSV1 clear) text frame comes first"
        healthy.assert_camera_unharmed()


def test_frames_that_break_rfc6455_get_the_rfc_close_code(start_camera):
    camera = start_camera(**SMALL)
    violations = {
        "unmasked frame": (frame(TEXT, b"hi", masked=False), 1002),
        "reserved opcode 0x3": (frame(0x3, b"x"), 1002),
        "reserved control opcode 0xB": (frame(0xB, b"x"), 1002),
        "RSV1 without an extension": (frame(TEXT, b"x", rsv=0b100), 1002),
        "fragmented ping": (frame(PING, b"x", fin=False), 1002),
        "ping with 126 bytes": (frame(PING, b"p" * 126), 1002),
        "continuation with nothing to continue": (frame(CONT, b"x"), 1002),
        "a new message inside a fragmented one": (frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002),
        "close code 999": (frame(CLOSE, (999).to_bytes(2, "big")), 1002),
        "close with a 1-byte payload": (frame(CLOSE, b"\x03"), 1002),
        "invalid UTF-8 in a text message": (frame(TEXT, b"\xff\xfe"), 1007),
        "invalid UTF-8 across fragments": (frame(TEXT, b"\xc3", fin=False) + frame(CONT, b"("), 1007),
        "invalid UTF-8 in a close reason": (frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007),
        f"a message over {MAX_SIZE} bytes": (frame(BINARY, bytes(MAX_SIZE + 1)), 1009),
        f"fragments adding up to over {MAX_SIZE}": (
            frame(TEXT, b"a" * 40_000, fin=False) + frame(CONT, b"a" * 40_000), 1009),
    }
    with HealthyClients(camera) as healthy:
        for name, (data, code) in violations.items():
            client = RawWebSocket(camera)
            client.sock.sendall(data)
            close = client.close_frame()
            assert close is not None and close.code == code, f"{name}: {close}"
            client.close()
        assert camera.process.poll() is None
        healthy.assert_camera_unharmed()


def test_a_ping_flood_is_answered_while_read_and_held_back_by_tcp_while_not(start_camera):
    # a long send_timeout: only the camera's flow control, not the slow-client timeout, may stop the flood
    camera = start_camera(**SMALL, DRISHTI_SEND_TIMEOUT="60")
    with HealthyClients(camera) as healthy:
        reader = RawWebSocket(camera)  # floods pings as fast as the camera takes them, and reads its pongs
        pongs = 0
        flooding = threading.Event()
        flooding.set()

        def flood() -> None:
            nonlocal pongs
            batch = frame(PING, b"p" * 125) * 200
            reader.sock.setblocking(False)
            while flooding.is_set():
                readable, writable, _ = select.select([reader.sock], [reader.sock], [], 0.1)
                if readable:
                    reader.protocol.receive_data(reader.sock.recv(1 << 20))
                    pongs += sum(1 for event in reader.protocol.events_received()
                                 if event.opcode.name == "PONG")
                if writable:
                    with contextlib.suppress(BlockingIOError):
                        reader.sock.send(batch)

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:  # the camera keeps serving everyone else: it reads the flood no faster than its fair share
            for _ in range(6):
                health_answers_within(camera)
                time.sleep(0.5)
        finally:
            flooding.clear()
            flooder.join(10)
        assert pongs > 0, "the flooding client's pings are answered"
        reader.close()

        # Floods pings and never reads: were every ping read and answered, the pongs would pile up in the
        # camera's memory and stall it for everyone; it must stop reading this client, and TCP push back.
        rss = memory_mb(camera.process.pid)
        flooder = RawWebSocket(camera)
        flooder.sock.setblocking(False)
        batch = frame(PING, b"p" * 125) * 500
        sent, cap = 0, 64 << 20
        last_progress = time.monotonic()
        while sent < cap and time.monotonic() - last_progress < 1.0:
            _, writable, _ = select.select([], [flooder.sock], [], 0.1)
            if writable:
                try:
                    sent += flooder.sock.send(batch)
                except BlockingIOError:
                    continue
                last_progress = time.monotonic()
        assert sent < cap, f"the camera took {sent >> 20} MB of pings from a client reading none of its pongs"
        assert memory_mb(camera.process.pid) - rss < 32, "pongs piled up in the camera's memory"
        flooder.close()
        healthy.assert_camera_unharmed()


def test_a_100_mb_message_is_cut_off_at_the_size_limit_without_being_buffered(start_camera):
    camera = start_camera(**SMALL)
    with HealthyClients(camera) as healthy:
        rss, peak = memory_mb(camera.process.pid), memory_mb(camera.process.pid, "VmHWM")
        total, chunk = 100 << 20, 60_000
        first = frame(BINARY, bytes(chunk), fin=False)
        second = frame(CONT, bytes(chunk), fin=False)
        attempts = {  # what must be refused as soon as its last byte arrives, then the rest of the 100 MB
            "one 100 MB frame": (frame(BINARY, length=total), total),
            "100 MB in 60 kB fragments": (first + second[:8], total - chunk),  # the 2nd fragment's header
        }
        for name, (head, rest) in attempts.items():
            client = RawWebSocket(camera)
            client.sock.sendall(head)
            close = client.close_frame()
            assert close is not None and close.code == 1009, f"{name}: {close}"
            sent = 0
            try:
                while sent < rest:
                    sent += client.sock.send(bytes(min(chunk, rest - sent)))
            except OSError:  # the camera closed the connection: the rest is refused, not read
                pass
            assert sent < 16 << 20, f"{name}: the camera read {sent >> 20} MB of a message it had refused"
            client.close()
        assert memory_mb(camera.process.pid) - rss < 20
        assert memory_mb(camera.process.pid, "VmHWM") - peak < 20, "the message was buffered"
        healthy.assert_camera_unharmed()
