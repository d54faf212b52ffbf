import base64
import json

from drishti_stream.protocol import message_head, message_schema, message_tail, with_meta
from jsonschema import Draft202012Validator


def frame_message(frame_id: int, timestamp: float, fps: int, jpeg: bytes) -> bytes:
    return message_head(frame_id, timestamp, fps) + message_tail(base64.b64encode(jpeg))


def test_a_frame_message_is_exactly_the_six_v1_fields():
    jpeg = b"\xff\xd8 any bytes, even quotes \" and backslashes \\ \xff\xd9"
    message = json.loads(frame_message(7, 1700000000.25, 30, jpeg))
    assert message == {"source": "DrishtiStream", "version": "v1.0", "frame_id": 7,
                       "timestamp": 1700000000.25, "fps": 30, "image": base64.b64encode(jpeg).decode()}
    assert list(message) == ["source", "version", "frame_id", "timestamp", "fps", "image"]
    Draft202012Validator(message_schema()).validate(message)


def test_the_schema_rejects_what_consumers_reject():
    validator = Draft202012Validator(message_schema())
    good = json.loads(frame_message(0, 1.0, 1, b"\xff\xd8\xff\xd9"))
    for change in ({"frame_id": -1}, {"timestamp": 0}, {"fps": 0}, {"fps": 121}, {"image": "not base64!"},
                   {"extra": 1}, {"version": "v2.0"}):
        assert not validator.is_valid({**good, **change}), change


def test_extended_metadata_is_a_seventh_field_after_the_six():
    meta = {"name": "gate-3", "source_index": 4, "width": 320, "height": 240, "epoch": 1700000000.0}
    message = json.loads(with_meta(frame_message(7, 1700000000.25, 30, b"\xff\xd8\xff\xd9"), meta))
    assert list(message) == ["source", "version", "frame_id", "timestamp", "fps", "image", "meta"]
    assert message["meta"] == meta
    Draft202012Validator(message_schema(meta=True)).validate(message)
    assert not Draft202012Validator(message_schema()).is_valid(message), "v1.0 alone allows no extra field"
    for change in ({"source_index": -1}, {"width": 0}, {"extra": 1}):
        assert not Draft202012Validator(message_schema(meta=True)).is_valid(
            {**message, "meta": {**meta, **change}})
