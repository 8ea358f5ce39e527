"""Every method of CallClient, Daily and EventHandler has daily-python 0.36's signature:
parameter names (keyword calls work), order, kinds and defaults.

The tables below were taken from the real 0.36 wheel's ``__text_signature__`` (formatted with
``fmt`` below) so CI needs no copy of it. Where our API differs on purpose, the difference is
listed and explained next to the table.
"""

from __future__ import annotations

import inspect

import pytest

import daily
import daily.daily
from daily import CallClient, Daily, EventHandler

DAILY = {
    "create_camera_device": "device_name, width, height, color_format='RGBA'",
    "create_microphone_device": "device_name, sample_rate=16000, channels=1, non_blocking=False",
    "create_native_vad": "reset_period_ms=1000, sample_rate=16000, channels=1",
    "create_speaker_device": "device_name, sample_rate=16000, channels=1, non_blocking=False",
    "deinit": "",
    "init": "worker_threads=2, log_level=Ellipsis",
    "select_speaker_device": "device_name",
    "set_log_level": "log_level",
}

CALL_CLIENT = {
    "active_speaker": "",
    "add_custom_audio_track": "track_name, audio_track, ignore_audio_level=None, completion=None",
    "add_custom_video_track": "track_name, video_track, completion=None",
    "add_live_streaming_endpoints": "endpoints, stream_id=None, completion=None",
    "eject_remote_participants": "ids, completion=None",
    "get_network_stats": "",
    "inputs": "",
    "join": "meeting_url, meeting_token=None, client_settings=None, completion=None",
    "leave": "completion=None",
    "participant_counts": "",
    "participants": "",
    "publishing": "",
    "release": "",
    "remove_custom_audio_track": "track_name, completion=None",
    "remove_custom_video_track": "track_name, completion=None",
    "remove_live_streaming_endpoints": "endpoints, stream_id=None, completion=None",
    "send_app_message": "message, participant_id=None, completion=None",
    "send_dtmf": "settings, completion=None",
    "send_prebuilt_chat_message": "message, user_name=None, completion=None",
    "set_audio_renderer": "participant_id, callback, audio_source='microphone', sample_rate=16000, callback_interval_ms=20, logging_interval_ms=10000",
    "set_ice_config": "ice_config=None, completion=None",
    "set_proxy_url": "proxy_url=None, completion=None",
    "set_user_name": "user_name",
    "set_video_renderer": "participant_id, callback, video_source='camera', color_format='RGBA', logging_interval_ms=10000",
    "sip_call_transfer": "settings, completion=None",
    "sip_refer": "settings, completion=None",
    "start_dialout": "settings, completion=None",
    "start_live_stream_with_endpoints": "endpoints, streaming_settings=None, stream_id=None, force_new=None, completion=None",
    "start_live_stream_with_rtmp_urls": "rtmp_urls, streaming_settings=None, stream_id=None, force_new=None, completion=None",
    "start_recording": "streaming_settings=None, stream_id=None, force_new=None, completion=None",
    "start_transcription": "settings=None, completion=None",
    "stop_dialout": "participant_id, completion=None",
    "stop_live_stream": "stream_id=None, completion=None",
    "stop_recording": "stream_id=None, completion=None",
    "stop_transcription": "completion=None",
    "subscription_profiles": "",
    "subscriptions": "",
    "update_custom_audio_track": "track_name, audio_track, ignore_audio_level=None, completion=None",
    "update_custom_video_track": "track_name, video_track, completion=None",
    "update_inputs": "input_settings, completion=None",
    "update_live_stream": "update_settings, stream_id=None, completion=None",
    "update_permissions": "permissions, completion=None",
    "update_publishing": "publishing_settings, completion=None",
    "update_recording": "update_settings, stream_id=None, completion=None",
    "update_remote_participants": "remote_participants, completion=None",
    "update_subscription_profiles": "profile_settings, completion=None",
    "update_subscriptions": "participant_settings=None, profile_settings=None, completion=None",
    "update_transcription": "participants=None, instance_id=None, completion=None",
}

# 39 callbacks (the spec's heading says 38; its list and the wheel have 39).
EVENT_HANDLER = {
    "on_active_speaker_changed": "participant",
    "on_app_message": "message, sender",
    "on_available_devices_updated": "available_devices",
    "on_call_state_updated": "state",
    "on_dialin_connected": "data",
    "on_dialin_error": "data",
    "on_dialin_ready": "sip_endpoint",
    "on_dialin_stopped": "data",
    "on_dialin_warning": "data",
    "on_dialout_answered": "data",
    "on_dialout_connected": "data",
    "on_dialout_error": "data",
    "on_dialout_stopped": "data",
    "on_dialout_warning": "data",
    "on_dtmf_event": "data",
    "on_error": "message",
    "on_inputs_updated": "input_settings",
    "on_live_stream_error": "stream_id, message",
    "on_live_stream_started": "status",
    "on_live_stream_stopped": "stream_id",
    "on_live_stream_updated": "update",
    "on_live_stream_warning": "stream_id, message",
    "on_network_connection_status_updated": "status",
    "on_network_stats_updated": "stats",
    "on_participant_counts_updated": "counts",
    "on_participant_joined": "participant",
    "on_participant_left": "participant, reason",
    "on_participant_updated": "participant",
    "on_publishing_updated": "publishing_settings",
    "on_recording_error": "stream_id, message",
    "on_recording_started": "status",
    "on_recording_stopped": "stream_id",
    "on_subscription_profiles_updated": "subscription_profiles",
    "on_subscriptions_updated": "subscriptions",
    "on_transcription_error": "message",
    "on_transcription_message": "message",
    "on_transcription_started": "status",
    "on_transcription_stopped": "stopped_by, stopped_by_error",
    "on_transcription_updated": "update",
}

# Constructors. EventHandler's is `(*args)` in daily-python; ours also takes **kwargs (a
# superset: subclasses' __init__ is unconstrained), checked separately below.
CONSTRUCTORS = {
    "CallClient": "event_handler=None",
    "CustomAudioSource": "sample_rate, channels, auto_silence=True",
    "CustomAudioTrack": "audio_source",
    "CustomVideoSource": "width, height, color_format='RGBA'",
    "CustomVideoTrack": "video_source",
}

# Our additions (not in daily-python), documented as such in their docstrings.
EXTRAS = {
    "CallClient": {"media_stats"},
    # System sound devices (cpal), not in daily-python: tests/test_sound_devices.py.
    "Daily": {"list_sound_devices", "create_system_microphone_device", "create_system_speaker_device"},
    "EventHandler": set(),
}

# CallClient methods built on the client core in parallel work (issue 4): skipped, not failed,
# while this build lacks them. Remove a name once it lands; anything missing and not listed fails.
PENDING: set[str] = set()

SPEC_ALL = [
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


def fmt(f) -> str:
    """The parameters after `self`, as `inspect` prints them, without annotations."""
    ps = list(inspect.signature(f).parameters.values())
    if ps and ps[0].name == "self":
        ps = ps[1:]
    return ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in ps)


TABLES = {"Daily": (Daily, DAILY), "CallClient": (CallClient, CALL_CLIENT), "EventHandler": (EventHandler, EVENT_HANDLER)}


@pytest.mark.parametrize(
    "cls_name,method",
    [(c, m) for c, (_, table) in TABLES.items() for m in sorted(table)],
)
def test_method_signature(cls_name, method):
    cls, table = TABLES[cls_name]
    if not hasattr(cls, method):
        if cls is CallClient and method in PENDING:
            pytest.skip(f"{cls_name}.{method} is pending (client-core work)")
        pytest.fail(f"{cls_name}.{method} is missing")
    assert fmt(getattr(cls, method)) == table[method]


@pytest.mark.parametrize("cls_name", sorted(TABLES))
def test_no_unexpected_public_methods(cls_name):
    cls, table = TABLES[cls_name]
    ours = {n for n in vars(cls) if not n.startswith("_")}
    assert ours - set(table) == EXTRAS[cls_name]


def test_event_handler_has_39_callbacks():
    assert len(EVENT_HANDLER) == 39
    assert {n for n in vars(EventHandler) if n.startswith("on_")} == set(EVENT_HANDLER)


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_constructor_signature(name):
    assert fmt(getattr(daily, name)) == CONSTRUCTORS[name]


def test_event_handler_constructor_accepts_args():
    kinds = [p.kind for p in inspect.signature(EventHandler).parameters.values()]
    assert inspect.Parameter.VAR_POSITIONAL in kinds
    EventHandler()
    EventHandler(1, 2)


def test_keyword_calls_reach_base_callbacks():
    h = EventHandler()
    for method, params in EVENT_HANDLER.items():
        kwargs = {p: None for p in params.split(", ")}
        assert getattr(h, method)(**kwargs) is None


class Stateful(EventHandler):
    """The pattern pipecat uses: __new__ overridden, state kept in __dict__."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, name, *, flag=False):
        self.name = name
        self.flag = flag
        self.seen = []

    def on_app_message(self, message, sender):
        self.seen.append((message, sender))
        super().on_app_message(message, sender)


def test_subclass_new_and_dict():
    h = Stateful("bot", flag=True)
    assert isinstance(h, EventHandler)
    assert h.__dict__ == {"name": "bot", "flag": True, "seen": []}
    h.extra = 1
    h.on_app_message({"a": 1}, "sender-id")
    assert h.seen == [({"a": 1}, "sender-id")]
    assert h.on_dtmf_event(data={}) is None
    c = CallClient(event_handler=h)
    c.release()


def test_all_matches_spec():
    assert sorted(daily.__all__) == SPEC_ALL
    for name in SPEC_ALL:
        assert getattr(daily, name) is getattr(daily.daily, name)
