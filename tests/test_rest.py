"""The room server's REST API (rooms, meeting tokens) as pipecat's DailyRESTHelper uses it, and
private rooms gated by meeting tokens, through CallClient.join(url, meeting_token=...)."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import pytest

from conftest import Waiter, Watch, leave, rest_call
from daily import CallClient, EventHandler
from daily.server import RoomServer

KEY = "py-rest-test-key-0123456789"


@pytest.fixture(scope="module")
def keyed():
    with RoomServer(host="127.0.0.1", port=0, api_key=KEY) as s:
        yield s


def api(server: RoomServer, method: str, path: str, body=None, key: str | None = KEY) -> tuple[int, dict]:
    """One REST call the way DailyRESTHelper makes it: Bearer key, JSON body, JSON answer."""
    return rest_call(server.api_url + path, method, body, key)


def create_room(server: RoomServer, body: dict) -> dict:
    status, room = api(server, "POST", "/rooms", body)
    assert status == 200, room
    return room


def get_token(
    server: RoomServer, room_url: str, expiry_time: float = 3600, owner: bool = True, key: str = KEY, **extra
) -> str:
    """What DailyRESTHelper.get_token sends."""
    props = {"room_name": urlparse(room_url).path[1:], "is_owner": owner, "exp": int(time.time() + expiry_time)}
    props.update(extra)
    status, body = api(server, "POST", "/meeting-tokens", {"properties": props}, key=key)
    assert status == 200, body
    return body["token"]


class Errors(EventHandler):
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.event = threading.Event()

    def on_error(self, message):
        self.messages.append(message)
        self.event.set()


def try_join(url: str, token: str | None) -> tuple[str | None, list[str]]:
    """Joins with a fresh client; returns (the completion's error, on_error messages)."""
    h = Errors()
    c = CallClient(event_handler=h)
    try:
        w = Waiter()
        c.join(url, meeting_token=token, completion=w)
        data, error = w.wait(15)
        if error is None:
            leave(c)
            return None, h.messages
        assert data is None
        assert h.event.wait(5), "on_error did not fire for a refused join"
        return error, h.messages
    finally:
        c.release()


def test_rest_needs_the_api_key(server, keyed):
    # The shared fixture server has no key: REST is off and says how to turn it on.
    status, body = api(server, "GET", "/rooms", key="anything")
    assert status == 401 and body["error"] == "authentication-error"
    assert "--api-key" in body["info"] and "api_key" in body["info"]
    for key in (None, "wrong-key"):
        status, body = api(keyed, "POST", "/rooms", {"name": "nope"}, key=key)
        assert (status, body["error"]) == (401, "authentication-error")
    assert api(keyed, "GET", "/rooms/nope")[0] == 404


def test_pipecat_helper_flow(keyed):
    # DailyRESTHelper.create_room(DailyRoomParams(privacy="private")): pydantic defaults included.
    exp = time.time() + 300
    props = {
        "exp": exp,
        "enable_chat": False,
        "enable_prejoin_ui": True,
        "enable_emoji_reactions": False,
        "eject_at_room_exp": True,
        "start_video_off": False,
    }
    room = create_room(keyed, {"privacy": "private", "properties": props})
    assert set(room) == {"id", "name", "api_created", "privacy", "url", "created_at", "config"}
    assert room["api_created"] is True and room["privacy"] == "private"
    assert room["url"] == keyed.room_url(room["name"])
    assert room["config"] == props
    assert room["created_at"].endswith("Z")
    # get_room_from_url.
    status, again = api(keyed, "GET", "/rooms/" + urlparse(room["url"]).path[1:])
    assert (status, again) == (200, room)
    status, listing = api(keyed, "GET", "/rooms")
    assert status == 200 and room in listing["data"] and listing["total_count"] == len(listing["data"])
    # get_token(room_url, owner=True).
    token = get_token(keyed, room["url"])
    assert token.count(".") == 2
    # Bad input is a 400 with Daily's error shape.
    status, body = api(keyed, "POST", "/meeting-tokens", {"properties": {"is_owner": "yes"}})
    assert (status, body["error"]) == (400, "invalid-request-error")
    status, body = api(keyed, "POST", "/rooms", {"name": room["name"]})
    assert (status, body["error"]) == (400, "invalid-request-error")
    # delete_room_by_name.
    status, body = api(keyed, "DELETE", f"/rooms/{room['name']}")
    assert (status, body) == (200, {"deleted": True, "name": room["name"]})
    status, body = api(keyed, "GET", f"/rooms/{room['name']}")
    assert (status, body["error"]) == (404, "not-found")


def test_private_room_needs_a_valid_token(keyed):
    room = create_room(keyed, {"name": "py-private", "privacy": "private"})
    url = room["url"]
    other = create_room(keyed, {"name": "py-other", "privacy": "private"})

    with RoomServer(api_key="a-different-key") as elsewhere:
        forged = get_token(elsewhere, url, key="a-different-key")  # right room name, wrong signing key
    refusals = {
        "no token": None,
        "garbage": "not-a-token",
        "other room": get_token(keyed, other["url"]),
        "expired": get_token(keyed, url, expiry_time=-60),
        "other key": forged,
    }
    errors = set()
    for why, token in refusals.items():
        error, messages = try_join(url, token)
        assert error, f"{why}: the join was not refused"
        assert "not allowed to join this room" in error, (why, error)
        assert messages and "not allowed" in messages[0], (why, messages)
        errors.add(error)
    assert len(errors) == 1, f"refusals must not differ: {errors}"

    # A valid token gets in; its user_name is what the others see.
    guest_watch = Watch()
    guest = CallClient(event_handler=guest_watch)
    try:
        w = Waiter()
        guest.join(url, meeting_token=get_token(keyed, url, owner=False), completion=w)
        data, error = w.wait(15)
        assert error is None, error
        error, _ = try_join_named(url, get_token(keyed, url, user_name="Bot"), guest_watch)
        assert error is None, error
    finally:
        leave(guest)
        guest.release()


def try_join_named(url: str, token: str, watch: Watch) -> tuple[str | None, list[str]]:
    """Joins with ``token`` while ``watch`` (already in the room) waits to see "Bot" arrive."""
    c = CallClient()
    try:
        w = Waiter()
        c.join(url, meeting_token=token, completion=w)
        _, error = w.wait(15)
        if error is None:
            watch.wait(lambda: "Bot" in watch.joined)
            leave(c)
        return error, []
    finally:
        c.release()


def test_room_listing_pages_with_dailys_cursors():
    """``GET /v1/rooms`` honours Daily's ``limit`` (default and most 100), ``starting_after`` and
    ``ending_before`` (room ids, newest first); ``total_count`` counts every room."""
    with RoomServer(port=0, api_key=KEY) as s:
        made = [create_room(s, {"name": f"page-{i}"}) for i in range(7)]
        ids = [r["id"] for r in reversed(made)]  # newest first

        def page(query: str) -> list[str]:
            status, body = api(s, "GET", "/rooms" + query)
            assert status == 200 and body["total_count"] == 7, body
            return [r["id"] for r in body["data"]]

        assert page("") == ids
        assert page("?limit=3") == ids[:3]
        assert page(f"?limit=3&starting_after={ids[2]}") == ids[3:6]
        assert page(f"?limit=3&starting_after={ids[5]}") == ids[6:]
        assert page(f"?limit=2&ending_before={ids[4]}") == ids[2:4]
        assert page(f"?starting_after={ids[0]}&ending_before={ids[3]}") == ids[1:3]
        for bad in ("?limit=0", "?limit=101", "?starting_after=nope"):
            status, body = api(s, "GET", "/rooms" + bad)
            assert status == 400 and body["error"] == "invalid-request-error", (bad, body)
