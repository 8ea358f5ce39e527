"""Open re-implementation of the Daily Python SDK (daily-python 0.36's API, ``import daily``).

``import daily`` and ``import daily.daily`` expose the same classes, as in daily-python; the
room server a ``CallClient`` joins lives in `daily.server`, and the dict payloads of calls and
events are described by the TypedDicts of `daily.types`.

- Set-up: `Daily` (``Daily.init()`` first, ``Daily.deinit()`` at the end), `LogLevel`.
- asyncio: `daily.aio` (awaitable calls, paced writes, async streams of events and audio).
- Calls: `CallClient` (join, leave, inputs, publishing, subscriptions, app messages) and
  `EventHandler` (subclass it for events).
- Sending audio: `CustomAudioSource` + `CustomAudioTrack`, or a `VirtualMicrophoneDevice`.
- Receiving audio: ``CallClient.set_audio_renderer`` (gets `AudioData`) or a
  `VirtualSpeakerDevice`; voice activity: `NativeVad`.
- Recording the conversation (what the client hears and sends, time-aligned, in chunks, turns
  or a WAV / Ogg file): `daily.audio_buffer.AudioBufferProcessor` (also ``daily.AudioBufferProcessor``).
- Video (VP8): `CustomVideoSource` + `CustomVideoTrack` or a `VirtualCameraDevice` to send,
  ``CallClient.set_video_renderer`` (gets `VideoFrame`) to receive.

Units: sample rates in Hz, durations in ms where a name ends in ``_ms`` (seconds otherwise, as
the docstring says), audio as interleaved signed 16-bit little-endian PCM counted in frames
(one sample per channel), video sizes in pixels and buffers in bytes.

Errors: a careless call fails at the call, never later on a callback thread. ``TypeError`` for
an argument of the wrong type (a ``completion`` or ``callback`` that is not callable),
``ValueError`` for a value outside what the API or the room server takes, ``RuntimeError`` for
the object's state (before ``Daily.init()``, after ``release()`` or ``Daily.deinit()``) and for
internal errors. Failures that happen later (the server refuses, the network fails) arrive as
the ``error`` of a method's ``completion`` and as `EventHandler` events. Every ``completion``
fires exactly once.
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
from daily.audio_buffer import AudioBufferProcessor  # noqa: F401 (an extra: not in __all__)

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
