"""A frame whose tail lies in the frame store goes to a socket as its head, then that tail by sendfile: the
client receives exactly the frame's bytes, and a full socket takes a prefix of them, never others."""

from __future__ import annotations

import socket
from pathlib import Path

from drishti_stream.store import FrameStore
from drishti_stream.wire import FileRange, Wire, text_frame
from drishti_stream.wsprotocol import CameraWebSocketProtocol

TAIL = b"QUJD" * 20_000 + b'"}'


def stored_frame(tmp_path: Path) -> tuple[Wire, FrameStore]:
    store = FrameStore.create(tmp_path / "s.frames", b"k" * 32, 2, 1 << 20)
    assert store.put(1, TAIL)
    found = store.get(1)
    assert found is not None
    data, offset = found
    return text_frame(b'{"frame_id":7,"image":"' + data, FileRange(store.file, offset, len(data))), store


def receive(sock: socket.socket, count: int) -> bytes:
    received = bytearray()
    while len(received) < count:
        received += sock.recv(count - len(received))
    return bytes(received)


def test_the_socket_receives_the_whole_frame(tmp_path):
    wire, store = stored_frame(tmp_path)
    assert wire.from_file is not None
    server, client = socket.socketpair()
    with server, client:
        server.setblocking(False)
        sent = CameraWebSocketProtocol._send_from_file(wire, server.fileno(), wire.from_file)
        assert sent == len(wire.data)
        assert receive(client, sent) == wire.data
    store.close()


def test_a_full_socket_takes_a_prefix_of_the_frame_and_says_how_much(tmp_path):
    wire, store = stored_frame(tmp_path)
    assert wire.from_file is not None
    server, client = socket.socketpair()
    with server, client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        server.setblocking(False)
        sent = CameraWebSocketProtocol._send_from_file(wire, server.fileno(), wire.from_file)
        assert 0 < sent < len(wire.data), "the socket's buffer is far smaller than the frame"
        assert receive(client, sent) == wire.data[:sent]
        client.setblocking(False)
        try:
            extra = client.recv(1 << 20)
        except BlockingIOError:
            extra = b""
        assert extra == b"", "nothing beyond what was reported as sent"
    store.close()


def test_a_broken_socket_takes_nothing(tmp_path):
    wire, store = stored_frame(tmp_path)
    assert wire.from_file is not None
    server, client = socket.socketpair()
    client.close()
    with server:
        assert CameraWebSocketProtocol._send_from_file(wire, server.fileno(), wire.from_file) == 0
    store.close()
