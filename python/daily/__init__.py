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
    SystemMicrophoneDevice,
    SystemSpeakerDevice,
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
    "SystemMicrophoneDevice",
    "SystemSpeakerDevice",
    "VideoFrame",
    "VirtualCameraDevice",
    "VirtualMicrophoneDevice",
    "VirtualSpeakerDevice",
]
