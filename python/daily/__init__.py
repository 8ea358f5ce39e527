"""Open re-implementation of the Daily Python SDK.

``import daily`` and ``import daily.daily`` expose the same classes, as in daily-python.
The room server lives in :mod:`daily.server`.
"""

from daily.daily import (
    AudioData,
    CallClient,
    CustomAudioSource,
    CustomAudioTrack,
    CustomVideoSource,
    CustomVideoTrack,
    Daily,
    EventHandler,
    LogLevel,
    NativeVad,
    SystemMicrophoneDevice,  # noqa: F401 (an extra: not in __all__)
    SystemSpeakerDevice,  # noqa: F401
    VideoFrame,
    VirtualCameraDevice,
    VirtualMicrophoneDevice,
    VirtualSpeakerDevice,
)

# `__all__` is daily-python's (tests/test_signatures.py); the system sound devices (not in
# daily-python) are importable from `daily` all the same.
__all__ = [
    "AudioData",
    "CallClient",
    "CustomAudioSource",
    "CustomAudioTrack",
    "CustomVideoSource",
    "CustomVideoTrack",
    "Daily",
    "EventHandler",
    "LogLevel",
    "NativeVad",
    "VideoFrame",
    "VirtualCameraDevice",
    "VirtualMicrophoneDevice",
    "VirtualSpeakerDevice",
]
