"""TypedDicts for the dict payloads of ``daily`` (participants, counts, connection status, join
data), as daily-python returns them. The SDK hands plain ``dict`` objects; these types only
describe them for type checkers: ``from daily.types import Participant``.

The Rust core produces them from typed structs (``daily_client::Participant::to_value`` and
``ClientEvent::args``); keep the two in step.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, TypedDict

__all__ = [
    "JoinData",
    "MediaState",
    "NetworkConnectionStatus",
    "Participant",
    "ParticipantCounts",
    "ParticipantInfo",
    "ParticipantLeftReason",
    "ParticipantMedia",
    "ParticipantPermissions",
]


class ParticipantPermissions(TypedDict):
    """``info.permissions``: Daily's participant permissions."""

    hasPresence: bool
    canSend: list[str]
    canAdmin: list[str]
    canReceive: Mapping[str, Any]


class ParticipantInfo(TypedDict, total=False):
    """``participant["info"]`` (``userName`` only when a name is set)."""

    isLocal: bool
    isOwner: bool
    joinedAt: int
    userId: str
    userName: str
    permissions: ParticipantPermissions


class MediaState(TypedDict, total=False):
    """One track of ``participant["media"]``: ``state`` is ``"off"``, ``"receivable"`` or
    ``"playable"``; ``subscribed`` is ``"subscribed"`` or ``"unsubscribed"``; ``track`` is
    ``{"id": track_id}`` while published."""

    state: str
    subscribed: str
    offReasons: list[str]
    track: Mapping[str, str]


class ParticipantMedia(TypedDict):
    """``participant["media"]``."""

    camera: MediaState
    microphone: MediaState
    screenVideo: MediaState
    screenAudio: MediaState
    customAudio: Mapping[str, MediaState]
    customVideo: Mapping[str, MediaState]


class Participant(TypedDict):
    """A participant dict: ``participants()`` values and the participant events' payload."""

    id: str
    info: ParticipantInfo
    media: ParticipantMedia


class ParticipantCounts(TypedDict):
    """``participant_counts()`` and ``on_participant_counts_updated``."""

    present: int
    hidden: int


class NetworkConnectionStatus(TypedDict):
    """``on_network_connection_status_updated``."""

    connection: Literal["signalling", "sendTransport", "recvTransport"]
    event: Literal["connected", "interrupted"]


class _MeetingSession(TypedDict):
    id: str


class JoinData(TypedDict):
    """What ``join``'s completion receives on success."""

    meetingSession: _MeetingSession
    participants: Mapping[str, Participant]


ParticipantLeftReason = Literal["leftCall", "hidden"]
"""``on_participant_left``'s ``reason``: ``"leftCall"`` when the participant left or was
ejected, ``"hidden"`` when it lost its ``hasPresence`` permission."""
