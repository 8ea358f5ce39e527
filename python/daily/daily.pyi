"""Type stubs for the native module `daily.daily` (checked against the runtime by tests/test_stubs.py).

Errors: a careless call fails at the call, never later on a callback thread. `TypeError` for an
argument of the wrong type (a `completion` or `callback` that is not callable, a settings value
of the wrong type), `ValueError` for a value outside what the API or the room server takes (an
unknown settings key, a name over the server's limit), `RuntimeError` for the object's state
(before `Daily.init()`, after `release()` or `Daily.deinit()`) and for internal errors: a Rust
panic never reaches Python as `PanicException`.
"""

# Lets the stub also run as Python (pdoc imports it for the API reference, scripts/api_docs.py):
# annotations that name a class defined further down stay unevaluated.
from __future__ import annotations

import os
from typing import Any, Callable, ClassVar, Literal, Mapping, Optional, Sequence, Union, final

from typing_extensions import Buffer

from daily.types import JoinData, NetworkConnectionStatus, Participant, ParticipantCounts, ParticipantLeftReason

__all__ = [
    "Daily",
    "LogLevel",
    "EventHandler",
    "CallClient",
    "CustomAudioSource",
    "CustomAudioTrack",
    "AudioData",
    "VirtualMicrophoneDevice",
    "VirtualSpeakerDevice",
    "SystemMicrophoneDevice",
    "SystemSpeakerDevice",
    "NativeVad",
    "VideoFrame",
    "CustomVideoSource",
    "CustomVideoTrack",
    "VirtualCameraDevice",
    "_RoomServer",
    "_AudioRecorder",
]

#: Interleaved 16-bit PCM: bytes, bytearray, memoryview or a C-contiguous int16 numpy array.
_Frames = Union[bytes, bytearray, memoryview, Buffer]
#: One video frame: any C-contiguous buffer of the size its colour format needs.
_VideoBuffer = Union[bytes, bytearray, memoryview, Buffer]
#: Colour formats of video frames.
_ColorFormat = Literal["RGBA", "BGRA", "ARGB", "ABGR", "RGB", "I420"]
#: `completion(error)`: error is None on success.
_Done = Optional[Callable[[Optional[str]], None]]

@final
class LogLevel:
    Off: LogLevel
    Error: LogLevel
    Warn: LogLevel
    Info: LogLevel
    Debug: LogLevel
    Trace: LogLevel
    def __int__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...  # also equal to its int value
    __hash__: ClassVar[None]  # type: ignore[assignment]  # unhashable at runtime (PyO3 `eq`)

@final
class Daily:
    @staticmethod
    def init(worker_threads: int = 2, log_level: LogLevel = ...) -> None:
        """Starts the shared engine: `worker_threads` network threads (1-64) plus the media
        clock. A second call is a no-op. Raises `TypeError` if `worker_threads` is not an int
        and `ValueError` outside 1-64 (checked even when already initialised)."""
    @staticmethod
    def deinit() -> None:
        """Ends every client's call (handlers get `left`, pending completions fire, with an
        error for calls that did not finish; at most about 5 s) and stops the engine. Every
        later use of an object made before it raises `RuntimeError("daily was deinitialised
        ...")`, except `CallClient.release()`, which does nothing. `init()` may be called
        again for new objects."""
    @staticmethod
    def set_log_level(log_level: LogLevel) -> None: ...
    @staticmethod
    def create_microphone_device(
        device_name: str, sample_rate: int = 16000, channels: int = 1, non_blocking: bool = False
    ) -> VirtualMicrophoneDevice: ...
    @staticmethod
    def create_speaker_device(
        device_name: str, sample_rate: int = 16000, channels: int = 1, non_blocking: bool = False
    ) -> VirtualSpeakerDevice: ...
    @staticmethod
    def select_speaker_device(device_name: str) -> None: ...
    @staticmethod
    def list_sound_devices() -> list[dict[str, Any]]:
        """The machine's sound devices (cpal: ALSA on Linux), inputs first: dicts with `name`,
        `direction` (`"input"` / `"output"`), `is_default`, `default_sample_rate` (Hz) and
        `default_channels` (or None), `sample_rate_range` (`(min_hz, max_hz)` or None) and
        `channel_counts`. Works without `init`; `RuntimeError` when the sound system fails."""
    @staticmethod
    def create_system_microphone_device(device_name: str, system_device: str = "default") -> SystemMicrophoneDevice:
        """Captures system input `system_device` (mono, at the device's rate) as microphone
        device `device_name` (select it with `{"deviceId": device_name}`). `ValueError` for an
        unknown device (the message lists them) or an empty name; `RuntimeError` when it cannot
        be opened or before `init`."""
    @staticmethod
    def create_system_speaker_device(device_name: str, system_device: str = "default") -> SystemSpeakerDevice:
        """Plays speaker device `device_name` (select it with `select_speaker_device`) on
        system output `system_device`, at the device's rate, mono or stereo. Raises as
        `create_system_microphone_device`."""
    @staticmethod
    def create_native_vad(reset_period_ms: int = 1000, sample_rate: int = 16000, channels: int = 1) -> NativeVad: ...
    @staticmethod
    def create_camera_device(
        device_name: str, width: int, height: int, color_format: _ColorFormat = "RGBA"
    ) -> VirtualCameraDevice: ...

@final
class VirtualMicrophoneDevice:
    @property
    def name(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def write_frames(self, frames: _Frames, completion: Optional[Callable[[int], None]] = None) -> int:
        """Queues PCM; `TypeError` for a non-buffer or a non-callable `completion`,
        `ValueError` for a partial frame, `RuntimeError` after `Daily.deinit()`."""

@final
class VirtualSpeakerDevice:
    @property
    def name(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def read_frames(self, num_frames: int, completion: Optional[Callable[[bytes], None]] = None) -> bytes:
        """Reads PCM of the mix (`b""` after `Daily.deinit()`); `TypeError` for a non-callable
        `completion`, `ValueError` for a negative count."""

@final
class SystemMicrophoneDevice:
    """A system input device as a microphone device; captures until `close()`."""
    @property
    def name(self) -> str: ...
    @property
    def system_device(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def error(self) -> Optional[str]:
        """The stream's error (device unplugged, ...) or None while it runs."""
    def stats(self) -> dict[str, Any]:
        """`{"frames", "lostFrames", "droppedFrames", "callbacks", "largestCallbackFrames", "error"}`; frames at `sample_rate`."""
    def close(self) -> None: ...

@final
class SystemSpeakerDevice:
    """A system output device as a speaker device; plays until `close()`."""
    @property
    def name(self) -> str: ...
    @property
    def system_device(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def error(self) -> Optional[str]:
        """The stream's error (device unplugged, ...) or None while it runs."""
    def stats(self) -> dict[str, Any]:
        """`{"frames", "lostFrames", "droppedFrames", "callbacks", "largestCallbackFrames", "error"}`; frames at `sample_rate`."""
    def close(self) -> None: ...

@final
class NativeVad:
    @property
    def reset_period_ms(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def analyze_frames(self, frames: _Frames) -> float: ...

@final
class AudioData:
    @property
    def audio_frames(self) -> bytes: ...
    @property
    def bits_per_sample(self) -> int: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def num_channels(self) -> int: ...
    @property
    def num_audio_frames(self) -> int: ...

@final
class CustomAudioSource:
    def __new__(cls, sample_rate: int, channels: int, auto_silence: bool = True) -> CustomAudioSource: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def write_frames(self, frames: _Frames, completion: Optional[Callable[[int], None]] = None) -> int:
        """Queues PCM, paced in real time; `TypeError` for a non-buffer or a non-callable
        `completion`, `ValueError` for a partial frame, `RuntimeError` after
        `Daily.deinit()`."""
    def clear_queue(self) -> int: ...
    @property
    def queued_duration(self) -> float: ...

@final
class CustomAudioTrack:
    def __new__(cls, audio_source: CustomAudioSource) -> CustomAudioTrack: ...
    @property
    def id(self) -> str: ...

@final
class VideoFrame:
    @property
    def buffer(self) -> bytes: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def timestamp_us(self) -> int: ...
    @property
    def color_format(self) -> str: ...

@final
class CustomVideoSource:
    def __new__(cls, width: int, height: int, color_format: _ColorFormat = "RGBA") -> CustomVideoSource: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def color_format(self) -> str: ...
    def write_frame(self, frame: _VideoBuffer) -> None: ...

@final
class CustomVideoTrack:
    def __new__(cls, video_source: CustomVideoSource) -> CustomVideoTrack: ...
    @property
    def id(self) -> str: ...

@final
class VirtualCameraDevice:
    @property
    def name(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def color_format(self) -> str: ...
    def write_frame(self, frame: _VideoBuffer) -> None: ...

class EventHandler:
    def __new__(cls, *args: Any, **kwargs: Any) -> EventHandler: ...
    def on_call_state_updated(self, state: str) -> None: ...
    def on_participant_joined(self, participant: Participant) -> None: ...
    def on_participant_left(self, participant: Participant, reason: ParticipantLeftReason) -> None: ...
    def on_participant_updated(self, participant: Participant) -> None: ...
    def on_error(self, message: str) -> None: ...
    def on_active_speaker_changed(self, participant: Participant) -> None: ...
    def on_app_message(self, message: Any, sender: str) -> None: ...
    def on_available_devices_updated(self, available_devices: Mapping[str, Any]) -> None: ...
    def on_dialin_connected(self, data: Mapping[str, Any]) -> None: ...
    def on_dialin_error(self, data: Mapping[str, Any]) -> None: ...
    def on_dialin_ready(self, sip_endpoint: str) -> None: ...
    def on_dialin_stopped(self, data: Mapping[str, Any]) -> None: ...
    def on_dialin_warning(self, data: Mapping[str, Any]) -> None: ...
    def on_dialout_answered(self, data: Mapping[str, Any]) -> None: ...
    def on_dialout_connected(self, data: Mapping[str, Any]) -> None: ...
    def on_dialout_error(self, data: Mapping[str, Any]) -> None: ...
    def on_dialout_stopped(self, data: Mapping[str, Any]) -> None: ...
    def on_dialout_warning(self, data: Mapping[str, Any]) -> None: ...
    def on_dtmf_event(self, data: Mapping[str, Any]) -> None: ...
    def on_inputs_updated(self, input_settings: Mapping[str, Any]) -> None: ...
    def on_live_stream_error(self, stream_id: str, message: str) -> None: ...
    def on_live_stream_started(self, status: Mapping[str, Any]) -> None: ...
    def on_live_stream_stopped(self, stream_id: str) -> None: ...
    def on_live_stream_updated(self, update: Mapping[str, Any]) -> None: ...
    def on_live_stream_warning(self, stream_id: str, message: str) -> None: ...
    def on_network_connection_status_updated(self, status: NetworkConnectionStatus) -> None: ...
    def on_network_stats_updated(self, stats: Mapping[str, Any]) -> None: ...
    def on_participant_counts_updated(self, counts: ParticipantCounts) -> None: ...
    def on_publishing_updated(self, publishing_settings: Mapping[str, Any]) -> None: ...
    def on_recording_error(self, stream_id: str, message: str) -> None: ...
    def on_recording_started(self, status: Mapping[str, Any]) -> None: ...
    def on_recording_stopped(self, stream_id: str) -> None: ...
    def on_subscription_profiles_updated(self, subscription_profiles: Mapping[str, Any]) -> None: ...
    def on_subscriptions_updated(self, subscriptions: Mapping[str, Any]) -> None: ...
    def on_transcription_error(self, message: str) -> None: ...
    def on_transcription_message(self, message: Mapping[str, Any]) -> None: ...
    def on_transcription_started(self, status: Mapping[str, Any]) -> None: ...
    def on_transcription_stopped(self, stopped_by: str, stopped_by_error: bool) -> None: ...
    def on_transcription_updated(self, update: Mapping[str, Any]) -> None: ...

@final
class CallClient:
    """Every `completion` fires exactly once (also when the client is released or Daily
    deinitialised first: then with an error). Every method raises `TypeError` for a
    `completion` that is not callable, and `RuntimeError` after `release()` or
    `Daily.deinit()`."""

    def __new__(cls, event_handler: Optional[EventHandler] = None) -> CallClient: ...
    def join(
        self,
        meeting_url: str,
        meeting_token: Optional[str] = None,
        client_settings: Optional[Mapping[str, Any]] = None,
        completion: Optional[Callable[[Optional[JoinData], Optional[str]], None]] = None,
    ) -> None:
        """`client_settings` is `{"inputs": ..., "publishing": ...}` (shapes as in
        `update_inputs` / `update_publishing`): an unknown key raises `ValueError`, a value of
        the wrong type `TypeError`."""
    def leave(self, completion: Optional[Callable[[Optional[str]], None]] = None) -> None: ...
    def release(self) -> None:
        """Leaves (at most about 5 s), fires pending completions and frees the client.
        Idempotent; allowed after `Daily.deinit()`."""
    def participants(self) -> Mapping[str, Participant]: ...
    def set_user_name(self, user_name: str) -> None:
        """At most 1024 bytes of UTF-8 (the room server's limit): `ValueError` beyond it."""
    def add_custom_audio_track(
        self,
        track_name: str,
        audio_track: CustomAudioTrack,
        ignore_audio_level: Optional[bool] = None,
        completion: Optional[Callable[[Optional[str]], None]] = None,
    ) -> None:
        """`track_name`: 1 to 256 bytes of UTF-8 (the room server's limit), not a Daily input
        name: `ValueError` otherwise."""
    def remove_custom_audio_track(
        self, track_name: str, completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None: ...
    def update_inputs(
        self, input_settings: Mapping[str, Any], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """Keys `camera`, `microphone`, `screenVideo`, `screenAudio` (a bool or `{"isEnabled":
        bool, "settings": dict}`), `customAudio`, `customVideo` (`{name: ...}`). An unknown
        key, device or track raises `ValueError`, a value of the wrong type `TypeError`."""
    def set_audio_renderer(
        self,
        participant_id: str,
        callback: Callable[[str, AudioData, str], None],
        audio_source: str = "microphone",
        sample_rate: int = 16000,
        callback_interval_ms: int = 20,
        logging_interval_ms: int = 10000,
    ) -> None:
        """`TypeError` if `callback` is not callable; `ValueError` for a malformed participant
        id, a rate outside 8000-48000 Hz or an interval that is not a positive multiple of 10."""
    def media_stats(self) -> Mapping[str, Any]: ...
    def participant_counts(self) -> ParticipantCounts: ...
    def active_speaker(self) -> Optional[Participant]: ...
    def inputs(self) -> Mapping[str, Any]: ...
    def publishing(self) -> Mapping[str, Any]: ...
    def subscriptions(self) -> Mapping[str, Any]: ...
    def subscription_profiles(self) -> Mapping[str, Any]: ...
    def get_network_stats(self) -> Mapping[str, Any]: ...
    def set_ice_config(
        self, ice_config: Optional[Mapping[str, Any]] = None, completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None: ...
    def update_publishing(
        self, publishing_settings: Mapping[str, Any], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """Keys `camera`, `microphone`, `screenVideo`, `screenAudio` (a bool or
        `{"isPublishing": bool, "sendSettings": str | dict}`; an audio `sendSettings` dict
        takes `channelConfig` and `bitrate`), `customAudio`, `customVideo` (`{name: ...}`).
        An unknown key raises `ValueError`, a value of the wrong type `TypeError`; an unknown
        preset completes with an error."""
    def update_subscriptions(
        self,
        participant_settings: Optional[Mapping[str, Any]] = None,
        profile_settings: Optional[Mapping[str, Any]] = None,
        completion: Optional[Callable[[Optional[str]], None]] = None,
    ) -> None:
        """`participant_settings`: `{participant_id (UUID): {"profile": str, "media": {kind:
        "subscribed" | "unsubscribed" | "staged" | {"subscriptionState", "receiveSettings"},
        "customAudio": {name | "*": state}}}}`; `profile_settings` as in
        `update_subscription_profiles`. An unknown key, state or id raises `ValueError`, a
        value of the wrong type `TypeError`."""
    def update_subscription_profiles(
        self, profile_settings: Mapping[str, Any], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """`{profile_name: {kind: state, ...}}`, checked like `update_subscriptions`'s media."""
    def send_app_message(
        self,
        message: Any,
        participant_id: Optional[str] = None,
        completion: Optional[Callable[[Optional[str]], None]] = None,
    ) -> None:
        """`TypeError` for a value JSON cannot carry; `ValueError` for a `participant_id`
        that is neither a participant id (UUID) nor `"*"`. Over 4096 bytes completes with an
        error."""
    def update_permissions(
        self, permissions: Mapping[str, Any], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """Keys `hasPresence` (bool), `canSend` / `canAdmin` (bool or list / set of str),
        `canReceive` (dict): `ValueError` for another key, `TypeError` for a wrong type."""
    def update_remote_participants(
        self, remote_participants: Mapping[str, Any], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """`{participant_id (UUID): {"permissions": ..., "inputsEnabled": {kind: bool}}}`:
        `ValueError` for another key or a malformed id, `TypeError` for a wrong type.
        `inputsEnabled` completes with an error (not supported by this room server)."""
    def eject_remote_participants(
        self, ids: list[str], completion: Optional[Callable[[Optional[str]], None]] = None
    ) -> None:
        """`ValueError` for an id over 64 bytes (ids are UUIDs); unknown ids complete with an
        error."""
    def update_custom_audio_track(
        self,
        track_name: str,
        audio_track: CustomAudioTrack,
        ignore_audio_level: Optional[bool] = None,
        completion: Optional[Callable[[Optional[str]], None]] = None,
    ) -> None:
        """`track_name` checked as in `add_custom_audio_track` (`ValueError`)."""
    def start_recording(
        self,
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
        completion: Optional[Callable[[Optional[str], Optional[str]], None]] = None,
    ) -> None: ...
    def stop_recording(self, stream_id: Optional[str] = None, completion: _Done = None) -> None: ...
    def update_recording(
        self, update_settings: Mapping[str, Any], stream_id: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def start_live_stream_with_endpoints(
        self,
        endpoints: Any,
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
        completion: _Done = None,
    ) -> None: ...
    def start_live_stream_with_rtmp_urls(
        self,
        rtmp_urls: Sequence[str],
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
        completion: _Done = None,
    ) -> None: ...
    def stop_live_stream(self, stream_id: Optional[str] = None, completion: _Done = None) -> None: ...
    def update_live_stream(
        self, update_settings: Mapping[str, Any], stream_id: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def add_live_streaming_endpoints(
        self, endpoints: Any, stream_id: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def remove_live_streaming_endpoints(
        self, endpoints: Any, stream_id: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def start_transcription(self, settings: Optional[Mapping[str, Any]] = None, completion: _Done = None) -> None: ...
    def stop_transcription(self, completion: _Done = None) -> None: ...
    def update_transcription(
        self, participants: Optional[Sequence[str]] = None, instance_id: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def start_dialout(
        self,
        settings: Mapping[str, Any],
        completion: Optional[Callable[[Optional[str], Optional[str]], None]] = None,
    ) -> None: ...
    def stop_dialout(self, participant_id: str, completion: _Done = None) -> None: ...
    def send_dtmf(self, settings: Mapping[str, Any], completion: _Done = None) -> None: ...
    def sip_call_transfer(self, settings: Mapping[str, Any], completion: _Done = None) -> None: ...
    def sip_refer(self, settings: Mapping[str, Any], completion: _Done = None) -> None: ...
    def send_prebuilt_chat_message(
        self, message: str, user_name: Optional[str] = None, completion: _Done = None
    ) -> None: ...
    def set_proxy_url(self, proxy_url: Optional[str] = None, completion: _Done = None) -> None: ...
    def add_custom_video_track(self, track_name: str, video_track: CustomVideoTrack, completion: _Done = None) -> None: ...
    def update_custom_video_track(
        self, track_name: str, video_track: CustomVideoTrack, completion: _Done = None
    ) -> None: ...
    def remove_custom_video_track(self, track_name: str, completion: _Done = None) -> None: ...
    def set_video_renderer(
        self,
        participant_id: str,
        callback: Callable[[str, VideoFrame, str], None],
        video_source: str = "camera",
        color_format: _ColorFormat = "RGBA",
        logging_interval_ms: int = 10000,
    ) -> None: ...

@final
class _RoomServer:
    def __new__(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        http_idle_timeout: float | None = None,
        join_timeout: float | None = None,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        max_pending_joins: int | None = None,
        resume_grace: float | None = None,
        app_message_rate: int | None = None,
        update_rate: int | None = None,
        recordings_dir: str | os.PathLike[str] | None = None,
        redis_url: str | None = None,
        node_url: str | None = None,
    ) -> _RoomServer: ...
    @property
    def url(self) -> str: ...
    def room_url(self, room: str) -> str: ...
    def drain(self) -> None: ...
    def is_drained(self) -> bool: ...
    def shutdown(self) -> None: ...

@final
class _AudioRecorder:
    """One recording of a CallClient's call (internal: use daily.AudioBufferProcessor)."""

    def __new__(
        cls,
        client: CallClient,
        sample_rate: int,
        num_channels: int,
        buffer_size: int,
        user_continuous_stream: bool,
        enable_turn_audio: bool,
        path: str | os.PathLike[str] | None = None,
        want_chunks: bool = False,
    ) -> _AudioRecorder: ...
    def next_event(self, timeout_ms: int) -> tuple[Any, ...] | None: ...
    def set_want_chunks(self, want: bool) -> None: ...
    def record_to(self, path: str | os.PathLike[str] | None) -> None: ...
    def stop(self) -> None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def recorded_frames(self) -> int: ...
    @property
    def late_frames(self) -> int: ...
    @property
    def dropped_frames(self) -> int: ...
