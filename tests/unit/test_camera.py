import base64
import json
import os

import cv2
import numpy as np
import pytest
from drishti_stream.camera import Camera, output_size
from drishti_stream.settings import Settings
from drishti_stream.sources.synthetic import SyntheticSource, read_index


@pytest.mark.parametrize(("limits", "expected"), [
    ((None, None), (1920, 1080)), ((1280, None), (1280, 720)), ((None, 540), (960, 540)),
    ((4000, 4000), (1920, 1080)), ((1000, 300), (532, 300)),
    ((1, None), (2, 2)), ((None, 1), (2, 2)),  # never below 2x2
])
def test_output_size_keeps_the_aspect_ratio(limits, expected):
    assert output_size(1920, 1080, *limits) == expected


@pytest.mark.parametrize("size", [(1280, 720), (320, 240), (160, 120)])
def test_the_synthetic_index_survives_jpeg(size):
    scene = SyntheticSource(*size)
    for index in (0, 1, 150, 299, 0xFFFF):
        ok, jpeg = cv2.imencode(".jpg", scene.read(index), [cv2.IMWRITE_JPEG_QUALITY, 10])
        assert ok and read_index(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)) == index


def test_a_frame_is_produced_once_as_message_and_wire_frame():
    camera = Camera(Settings(fps=15, epoch=1000.0), SyntheticSource(320, 240))
    frame = camera.produce(16)
    message = json.loads(frame.message)
    assert message["frame_id"] == 16 and message["timestamp"] == pytest.approx(1000 + 16 / 15)
    assert base64.b64decode(message["image"]) == frame.jpeg
    payload = frame.message.encode()
    assert frame.wire.data[0] == 0x81 and frame.wire.data.endswith(payload)  # FIN + text opcode, unmasked
    stored = frame.wire.from_file
    assert stored is not None, "the message's tail is sent from the frame store's file"
    assert os.pread(stored.file.fd, stored.length, stored.offset) == frame.tail == payload[-stored.length:]
    assert frame.tail.endswith(b'"}') and not frame.message.encode()[:-stored.length].endswith(b'"}')
    image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert read_index(image) == frame.source_index == 32
    assert camera.produce(16 + 150).tail == frame.tail, "the next loop shows the same frame"


def test_the_extended_message_is_produced_only_when_asked():
    camera = Camera(Settings(fps=15, epoch=1000.0, name="gate-3"), SyntheticSource(320, 240))
    plain, extended = camera.produce(16), camera.produce(16, with_meta=True)
    assert plain.meta_message is None and plain.payload(meta=True) is None
    assert plain.payload(meta=False) == (plain.message, plain.wire)
    message = json.loads(extended.meta_message)
    assert message["meta"] == {"name": "gate-3", "source_index": 32, "width": 320, "height": 240,
                               "epoch": 1000.0}
    assert {k: v for k, v in message.items() if k != "meta"} == json.loads(extended.message)
    assert extended.payload(meta=True) == (extended.meta_message, extended.meta_wire)
    assert extended.meta_wire.data.endswith(extended.meta_message.encode())
