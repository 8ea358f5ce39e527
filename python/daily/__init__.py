"""Open re-implementation of the Daily Python SDK.

``import daily`` and ``import daily.daily`` expose the same classes, as in daily-python.
The room server lives in :mod:`daily.server`, the asyncio layer in :mod:`daily.aio`.
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
    VideoFrame,
    VirtualCameraDevice,
    VirtualMicrophoneDevice,
    VirtualSpeakerDevice,
)

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
