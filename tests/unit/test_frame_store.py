"""The frame store: filled once, then served to every later camera on the same directory with no encoding;
never served when it is partial, damaged or from another version; followed while another camera fills it."""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from drishti_stream import store as frame_store
from drishti_stream.camera import Camera
from drishti_stream.protocol import message_tail
from drishti_stream.settings import Settings
from drishti_stream.store import ENTRY, HEADER, FrameStore, StoreInvalid, WriterLock
from drishti_stream.supply import store_key
from prometheus_client import REGISTRY

from hack.cluster.testing import wait_until
from tests.unit.sources import Frames, jpeg, noise

IMAGES = [noise(48, 64, seed) for seed in range(12)]


def encoded() -> float:
    return REGISTRY.get_sample_value("drishti_frames_encoded_total") or 0.0


def camera(cache: Path, images: list = IMAGES, **settings: object) -> Camera:
    """A camera of the test images whose store lives in `cache`; its epoch puts frame 0 far in the past."""
    return Camera(Settings(fps=30, epoch=1000.0, cache_dir=cache, **settings),
                  Frames(images, identity="frames:test"))


def filled(cache: Path, **settings: object) -> Camera:
    first = camera(cache, **settings)
    wait_until(lambda: first.supply.state == "complete", timeout=20, what="the first pass to finish")
    return first


def shows_the_images(cam: Camera, quality: int = 85) -> bool:
    return all(cam.jpeg(index) == jpeg(image, quality) for index, image in enumerate(IMAGES))


def test_the_first_camera_encodes_each_frame_once_and_the_next_one_encodes_nothing(own_cache_dir):
    before = encoded()
    first = filled(own_cache_dir)
    assert encoded() - before == len(IMAGES)
    assert first.source.closed, "a complete store needs no decoder"
    assert shows_the_images(first)
    assert first.supply.path is not None and first.supply.path.parent == own_cache_dir / "frames"

    before = encoded()
    second = camera(own_cache_dir)
    assert second.supply.state == "complete"
    assert shows_the_images(second)
    assert [second.produce(k).message for k in range(30)] == [first.produce(k).message for k in range(30)]
    assert encoded() == before and second.source.reads == 0
    first.close()
    second.close()


def test_the_store_key_names_everything_that_determines_the_bytes():
    source = Frames(IMAGES, identity="frames:test")
    key = store_key(source, (64, 48), 85)
    assert key == store_key(Frames(IMAGES, identity="frames:test"), (64, 48), 85)
    others = [store_key(Frames(IMAGES, identity="frames:other"), (64, 48), 85),
              store_key(source, (32, 24), 85), store_key(source, (64, 48), 86),
              store_key(Frames(IMAGES[:5], identity="frames:test"), (64, 48), 85)]
    assert len({key, *others}) == 5
    assert store_key(Frames(IMAGES), (64, 48), 85) is None, "a source that cannot name itself is not stored"


def _flip_a_data_byte(data: bytearray) -> bytearray:
    data[-10] ^= 0x01
    return data


def _header(field: int, value: int) -> Callable[[bytearray], bytearray]:
    def damage(data: bytearray) -> bytearray:
        values = list(HEADER.unpack_from(data))
        values[field] = value
        HEADER.pack_into(data, 0, *values)
        return data
    return damage


def _drop_entry(data: bytearray) -> bytearray:
    data[HEADER.size + 5 * ENTRY.size:HEADER.size + 6 * ENTRY.size] = bytes(ENTRY.size)
    return data


@pytest.mark.parametrize(("damage", "reason"), [
    (_flip_a_data_byte, "fails its CRC check"),  # in the frame written last
    (lambda data: data[:-100], "state 2 with"),  # truncated
    (_header(1, 99), "not a version 1 frame store"),  # another format version
    (lambda data: b"GIF89a" + data[6:], "not a version 1 frame store"),  # another kind of file
    (_header(2, frame_store.FILLING), "left partial by a writer that stopped"),
    (_drop_entry, "frame 5 is missing"),
    (lambda data: b"short", "shorter than its header"),
], ids=["data-byte", "truncated", "version", "magic", "partial", "missing-entry", "short"])
def test_a_damaged_store_is_rebuilt_never_served(own_cache_dir, caplog, damage, reason):
    first = filled(own_cache_dir)
    path = first.supply.path
    assert path is not None
    damaged = path.with_name("damaged")
    damaged.write_bytes(bytes(damage(bytearray(path.read_bytes()))))
    damaged.replace(path)  # a new file: the first camera keeps mapping the intact one
    before = encoded()
    with caplog.at_level(logging.WARNING, logger="drishti_stream.supply"):
        second = filled(own_cache_dir)
    assert reason in caplog.text
    assert encoded() - before == len(IMAGES), "rebuilt from the source"
    assert shows_the_images(second)
    assert shows_the_images(first), "a camera mapping the old file is unharmed by the rebuild"
    third = camera(own_cache_dir)
    assert third.supply.state == "complete"
    for cam in (first, second, third):
        cam.close()


def test_a_video_over_the_budget_is_not_stored_and_is_encoded_on_every_loop(own_cache_dir, caplog):
    big = [noise(480, 640, seed) for seed in range(3)]  # ~0.8 MB of base64 each at quality 100
    with caplog.at_level(logging.WARNING, logger="drishti_stream.supply"):
        cam = camera(own_cache_dir, big, jpeg_quality=100, cache_budget_mb=1)
        wait_until(lambda: cam.supply.state == "off", timeout=20, what="the fill to give up")
    assert "exceed cache.budget_mb (1 MB)" in caplog.text
    assert list((own_cache_dir / "frames").glob("*.frames")) == []
    before = encoded()
    assert [cam.jpeg(k) for k in range(3)] == [jpeg(image, 100) for image in big]
    assert encoded() - before == 3
    cam.close()


def test_without_a_budget_there_is_no_store(own_cache_dir):
    cam = camera(own_cache_dir, cache_budget_mb=0)
    before = encoded()
    assert cam.supply.state == "off" and shows_the_images(cam)
    assert encoded() - before == len(IMAGES)
    assert not (own_cache_dir / "frames").exists()
    cam.close()


def test_an_unusable_cache_directory_leaves_the_camera_working_without_a_store(tmp_path, caplog):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with caplog.at_level(logging.WARNING, logger="drishti_stream.supply"):
        cam = camera(not_a_directory)
    assert cam.supply.state == "off" and "frame store off: cannot use" in caplog.text
    assert shows_the_images(cam)
    cam.close()


def _writer(cache: Path) -> tuple[WriterLock, FrameStore, bytes]:
    """Another camera filling the store, played by the test: it holds the writer lock and writes frames."""
    probe = camera(cache, cache_budget_mb=0)
    key = store_key(probe.source, probe.size, 85)
    probe.close()
    assert key is not None
    path = cache / "frames" / f"{key.hex()[:32]}.frames"
    path.parent.mkdir(parents=True)
    lock = WriterLock(path)
    assert lock.acquire(wait=False)
    return lock, FrameStore.create(path, key, len(IMAGES), 1 << 20), key


def tail(jpeg_bytes: bytes) -> bytes:
    """What the store keeps of a frame: its message tail."""
    return message_tail(binascii.b2a_base64(jpeg_bytes, newline=False))


def test_a_camera_follows_a_store_another_camera_fills_then_serves_it_complete(own_cache_dir):
    lock, store, key = _writer(own_cache_dir)
    written = [jpeg(image, 85) for image in IMAGES]
    store.put(3, tail(written[3]))
    follower = camera(own_cache_dir)
    assert follower.supply.state == "following"
    before = encoded()
    assert follower.jpeg(3) == written[3] and encoded() == before, "read from the writer's file"
    assert follower.jpeg(4) == written[4] and encoded() == before + 1, "long overdue: encoded here"
    for index in range(len(IMAGES)):
        if index != 3:
            store.put(index, tail(written[index]))
    store.finish(key)
    lock.close()
    wait_until(lambda: follower.supply.state == "complete", timeout=10, what="the follower to take over")
    assert shows_the_images(follower) and follower.source.closed
    store.close()
    follower.close()


def test_a_follower_whose_writer_dies_fills_the_store_itself(own_cache_dir):
    lock, store, _ = _writer(own_cache_dir)
    store.put(0, tail(b"not what the camera would encode"))
    follower = camera(own_cache_dir)
    assert follower.supply.state == "following"
    before = encoded()
    lock.close()  # the writer is gone: its flock is released, its file is partial
    wait_until(lambda: follower.supply.state == "complete", timeout=20, what="the follower to fill the store")
    assert encoded() - before == len(IMAGES), "the partial file is not resumed: every frame is encoded"
    assert shows_the_images(follower)
    store.close()
    follower.close()


def test_a_store_being_written_is_read_only_where_an_entry_and_its_data_are_both_written(tmp_path):
    path = tmp_path / "x.frames"
    writer = FrameStore.create(path, b"k" * 32, 4, 4096)
    reader = FrameStore.open(path, b"k" * 32, 4)
    assert not reader.complete and reader.get(1) is None
    assert writer.put(1, b"QUJD")
    assert reader.get(1) == (b"QUJD", frame_store.data_start(4))
    offset, length, crc = ENTRY.unpack_from(path.read_bytes(), HEADER.size + ENTRY.size)
    with open(path, "r+b") as file:  # an entry whose data does not match (a torn write): not served
        file.seek(offset)
        file.write(b"XXXX")
    assert reader.get(1) is None
    assert not writer.put(2, b"A" * 4096 * 2), "beyond the capacity"
    with pytest.raises(StoreInvalid, match="made for another source"):
        FrameStore.open(path, b"j" * 32, 4)
    with pytest.raises(StoreInvalid, match="made for another source"):
        FrameStore.open(path, b"k" * 32, 5)
    for opened in (writer, reader):
        opened.close()
