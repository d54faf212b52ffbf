"""HTTP abuse against a real camera: every operation of its own OpenAPI document fuzzed by schemathesis over
HTTP (no 5xx, every response as documented), malformed query strings on the streams, and oversized
requests."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import schemathesis
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.service.abuse import status_for

SMALL = {"DRISHTI_VIDEO_PATH": "synthetic:320x240", "DRISHTI_FPS": "30", "DRISHTI_LOG_LEVEL": "warning"}


@pytest.fixture
def camera(start_camera):
    return start_camera(**SMALL)


def test_every_documented_operation_survives_fuzzing_and_answers_as_documented(camera):
    """Each operation of the camera's own OpenAPI document, as it serves it, with up to 25 generated requests
    (derandomized: the same ones every run). /stream.mjpg is left out: a request it accepts is answered with a
    stream that never ends, which a fuzzer's request would wait on until its timeout; its one parameter is
    fuzzed below instead, reading only the status."""
    schema = schemathesis.openapi.from_url(camera.http + "/openapi.json").exclude(path="/stream.mjpg")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/", "/health", "/ready", "/metrics", "/snapshot.jpg",
                                              "/frames/{frame_id}.jpg"}
    for operation in operations:
        # (no negative mode: the only parameters are free text, /metrics' Accept and /stream.mjpg's fps, so
        # there is no value their schemas forbid; the rate's malformed values are tried by hand below)
        strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
        if operation.path == "/metrics":  # each documented type (Figures JSON, Prometheus text), not noise
            strategies += [operation.as_strategy(headers={"accept": accept}) for accept in
                           ("application/json", "text/plain", "application/json, */*", "application/*;q=0.1")]
        for strategy in strategies:
            @given(case=strategy)
            @settings(max_examples=25, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(timeout=10)  # all schemathesis' checks: no 5xx, status, type, schema

            fuzz()


def test_the_fuzzed_document_covers_every_route_but_the_stream(camera):
    """What the fuzz above covers: all the camera's HTTP routes but the never-ending one (so a new route is
    fuzzed, or this test says why not); the interactive docs are served too."""
    document = httpx.get(camera.http + "/openapi.json").json()
    assert set(document["paths"]) == {"/", "/health", "/ready", "/metrics", "/snapshot.jpg", "/stream.mjpg",
                                      "/frames/{frame_id}.jpg"}
    assert httpx.get(camera.http + "/docs").status_code == 200


# Any text as a rate: all of it but the integers 1..30 is refused, with a reason naming the range.
rates = st.one_of(st.text(max_size=40), st.integers(-(10**20), 10**20).map(str), st.just(""), st.just("1e1"))


def test_a_malformed_rate_on_the_mjpeg_stream_is_a_422_naming_the_range(camera):
    @given(rate=rates)
    @settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(rate: str) -> None:
        with httpx.stream("GET", camera.http + "/stream.mjpg", params={"fps": rate}, timeout=10) as response:
            if rate.isascii() and rate.isdigit() and 1 <= int(rate) <= 30:
                assert response.status_code == 200  # the stream starts; closing it here bounds the test
                return
            response.read()
            assert response.status_code == 422, (rate, response.status_code)
            assert "fps must be an integer from 1 to 30" in response.json()["detail"], response.text

    check()


def test_a_malformed_query_on_the_websocket_is_closed_with_1008_and_a_reason(camera):
    async def close_of(query: str) -> websockets.frames.Close | None:
        async with websockets.connect(camera.ws + "?" + query, open_timeout=10) as ws:
            try:
                async with asyncio.timeout(10):
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd
            return None  # a frame: accepted

    @given(rate=rates)
    @settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(rate: str) -> None:
        query = httpx.QueryParams({"fps": rate})
        close = asyncio.run(close_of(str(query)))
        if rate.isascii() and rate.isdigit() and 1 <= int(rate) <= 30:
            assert close is None, (rate, close)
            return
        assert close is not None and close.code == 1008, (rate, close)
        assert "fps must be an integer" in close.reason, (rate, close)
        assert len(close.reason.encode()) <= 123

    check()
    # raw query strings no encoder would make: the same answer, never a crash
    for query, word in [("fps=%ff%fe", "fps"), ("fps=%", "fps"), ("fps=1&fps=x", "fps"), ("meta=2", "meta"),
                        ("meta=%00", "meta"), ("fps=" + "9" * 5000, "fps"), ("fps=%F0%9F%98%80", "fps")]:
        close = asyncio.run(close_of(query))
        assert close is not None and close.code == 1008 and word in close.reason, (query, close)


def test_max_header_bytes_bounds_a_request_head_that_arrives_in_pieces(start_camera):
    """h11 checks its limit while a head is incomplete, so a head larger than one read of the socket (256 kB)
    is refused with the default 16 kB and accepted once max_header_bytes allows it."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 600_000 + b"\r\n\r\n"
    for limit, expected in ((None, 400), ("1048576", 200)):
        camera = start_camera(**SMALL, **({"DRISHTI_MAX_HEADER_BYTES": limit} if limit else {}))
        status = status_for(camera.port, request, until_close=False)
        assert status == expected, (limit, status)
        camera.stop()


def test_requests_with_oversized_or_broken_heads_get_a_4xx(camera):
    broken = {
        "1 MB of headers": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (1 << 20) + b"\r\n\r\n",
        "a 1 MB request line": b"GET /health?" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",
        "a header without a colon": b"GET /health HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n",
        "no Host": b"GET /health HTTP/1.1\r\n\r\n",
        "two Content-Lengths":
            b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    }
    for name, request in broken.items():
        status = status_for(camera.port, request)
        assert 400 <= status < 500, f"{name}: {status}"
    assert httpx.get(camera.http + "/health").status_code == 200
