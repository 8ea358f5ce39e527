"""Open re-implementation of the Daily Python SDK.

``import daily`` and ``import daily.daily`` expose the same classes, as in daily-python.
The room server lives in :mod:`daily.server`.
"""

from daily.daily import (
    AudioData,
    CallClient,
    CustomAudioSource,
    CustomAudioTrack,
    Daily,
    EventHandler,
    LogLevel,
    NativeVad,
    VirtualMicrophoneDevice,
    VirtualSpeakerDevice,
)

__all__ = [
    "AudioData",
    "CallClient",
    "CustomAudioSource",
    "CustomAudioTrack",
    "Daily",
    "EventHandler",
    "LogLevel",
    "NativeVad",
    "VirtualMicrophoneDevice",
    "VirtualSpeakerDevice",
]
