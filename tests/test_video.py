"""Video classes: construction, validation and frame-size checks (no call needed). The video
that these sources carry through a room is tested in test_video_call.py."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import daily
from daily import CustomVideoSource, CustomVideoTrack, Daily, VideoFrame, VirtualCameraDevice

FORMATS = ["RGBA", "BGRA", "ARGB", "ABGR", "RGB", "I420"]


def expected_size(w: int, h: int, fmt: str) -> int:
    if fmt == "RGB":
        return w * h * 3
    if fmt == "I420":
        return w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2)
    return w * h * 4


def test_same_objects_from_both_modules():
    from daily.daily import AudioData, VideoFrame as VF

    assert VF is VideoFrame is daily.VideoFrame
    assert AudioData is daily.AudioData


def test_video_frame_not_constructible():
    with pytest.raises(TypeError):
        VideoFrame()
    for name in ["buffer", "width", "height", "timestamp_us", "color_format"]:
        assert isinstance(getattr(VideoFrame, name), property) or hasattr(VideoFrame, name)


def test_source_defaults_and_getters():
    s = CustomVideoSource(640, 480)
    assert (s.width, s.height, s.color_format) == (640, 480, "RGBA")
    s = CustomVideoSource(width=3, height=5, color_format="I420")
    assert (s.width, s.height, s.color_format) == (3, 5, "I420")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("w,h", [(4, 4), (3, 5), (1, 1), (641, 479)])
def test_write_frame_size_rule(fmt, w, h):
    s = CustomVideoSource(w, h, fmt)
    n = expected_size(w, h, fmt)
    assert s.write_frame(bytes(n)) is None
    assert s.write_frame(bytearray(n)) is None
    assert s.write_frame(memoryview(bytes(n))) is None
    for bad in (n - 1, n + 1, 0):
        with pytest.raises(ValueError) as e:
            s.write_frame(bytes(bad))
        msg = str(e.value)
        assert f"expected {n} bytes" in msg and f"got {bad}" in msg, msg


def test_write_frame_i420_odd_size_exact():
    # 3x3: Y = 9, U = V = 2x2 = 4 each.
    s = CustomVideoSource(3, 3, "I420")
    s.write_frame(bytes(17))
    with pytest.raises(ValueError, match="expected 17 bytes"):
        s.write_frame(bytes(11))  # what rounding the chroma planes down would expect


def test_write_frame_numpy():
    s = CustomVideoSource(4, 2, "RGB")
    s.write_frame(np.zeros((2, 4, 3), dtype=np.uint8))
    s.write_frame(np.zeros(12, dtype=np.uint16))  # 24 bytes: any item type, size counts in bytes
    with pytest.raises(ValueError, match="C-contiguous"):
        s.write_frame(np.zeros((2, 8, 3), dtype=np.uint8)[:, ::2, :])


@pytest.mark.parametrize("bad", ["x" * 64, 64, None, [0] * 64])
def test_write_frame_type_errors(bad):
    s = CustomVideoSource(4, 4)
    with pytest.raises(TypeError):
        s.write_frame(bad)


@pytest.mark.parametrize("fmt", ["rgba", "YUV", "", "NV12", "RGBA "])
def test_bad_color_format(fmt):
    with pytest.raises(ValueError, match="RGBA, BGRA, ARGB, ABGR, RGB, I420"):
        CustomVideoSource(4, 4, fmt)
    with pytest.raises(ValueError):
        Daily.create_camera_device("cam-bad", 4, 4, fmt)


@pytest.mark.parametrize("w,h", [(0, 4), (4, 0), (-1, 4), (4, -5), (8193, 4), (4, 8193), (2**40, 1)])
def test_bad_dimensions(w, h):
    with pytest.raises(ValueError, match="between 1 and 8192"):
        CustomVideoSource(w, h)
    with pytest.raises(ValueError, match="between 1 and 8192"):
        Daily.create_camera_device("cam-bad", w, h)


def test_largest_dimensions_accepted():
    s = CustomVideoSource(8192, 8192, "I420")
    s.write_frame(bytes(8192 * 8192 * 3 // 2))


def test_track():
    s = CustomVideoSource(4, 4)
    t1, t2 = CustomVideoTrack(s), CustomVideoTrack(video_source=s)
    assert uuid.UUID(t1.id).version == 4
    assert t1.id != t2.id
    with pytest.raises(TypeError, match="CustomVideoSource"):
        CustomVideoTrack("not a source")


def test_camera_device():
    cam = Daily.create_camera_device("cam", 4, 2)
    assert isinstance(cam, VirtualCameraDevice)
    assert (cam.name, cam.width, cam.height, cam.color_format) == ("cam", 4, 2, "RGBA")
    cam.write_frame(bytes(32))
    with pytest.raises(ValueError, match="expected 32 bytes for 4x2 RGBA, got 31"):
        cam.write_frame(bytes(31))
    cam = Daily.create_camera_device(device_name="cam2", width=2, height=2, color_format="RGB")
    assert cam.color_format == "RGB"
    cam.write_frame(bytearray(12))
    with pytest.raises(TypeError):
        VirtualCameraDevice()
