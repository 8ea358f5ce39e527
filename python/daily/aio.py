"""asyncio layer over :mod:`daily`: awaitable calls, events on the loop, paced audio writes and
an async iterator of a participant's audio. Pure Python over the callback API; nothing here
starts a thread.

How it maps onto the callback API, and why:

- Every ``CallClient`` method that takes a ``completion=`` becomes a coroutine that returns the
  completion's value or raises :class:`CallError` with the completion's error string. The
  completion runs on the client's completions thread and only hands its arguments to the loop
  (``loop.call_soon_threadsafe``); the awaiting task resumes on the loop.
- Events are forwarded by an ``EventHandler`` whose every ``on_*`` method only posts the event
  to the loop, so the SDK's event thread never waits for Python code on the loop. On the loop
  they go to handlers registered with :meth:`AsyncCallClient.on` (plain functions or coroutine
  functions), to :meth:`AsyncCallClient.events` streams and to :meth:`AsyncCallClient.wait_for`.
  The SDK runs a completion only once the handlers of the events posted before it (the
  ``*_updated`` event the call caused) have started, and the forwarder posts as its first
  step, so such an event reaches the loop before the completion unless the events thread is
  preempted for more than Python's switch interval (5 ms) in those few microseconds: events
  come first in practice, not by a guarantee of this layer.
- :meth:`AudioSource.write_frames` queues the PCM with a completion (``CustomAudioSource``
  returns at once then) and sleeps on the loop until only ``queue_ms`` of audio is left
  queued: a writer that awaits chunk after chunk is paced at real time, by the engine's media
  clock, without a thread per write and without a gap between chunks.
- :class:`AudioStream` is a ``set_audio_renderer`` callback feeding a bounded queue that an
  ``async for`` drains.

Cancellation: cancelling an ``await`` never corrupts the client. The call itself was already
handed to the SDK and still happens (an update is applied, a message is sent); its completion,
when it comes, is dropped. The exception is :meth:`AsyncCallClient.join`: a cancelled join
leaves, so a call nobody waits for is not left running. If the loop is closed before a
completion or event arrives, it is dropped.

Example::

    async def main(url: str) -> None:
        Daily.init()
        source = AudioSource(16000, 1)
        async with AsyncCallClient() as client:
            await client.join(url, client_settings=source.microphone_settings())
            await source.write_frames(pcm)         # returns after len(pcm) - 100 ms of playing
            await source.wait_for_playout()
            await client.leave()
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import threading
import weakref
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from daily.daily import (
    AudioData,
    CallClient,
    CustomAudioSource,
    CustomAudioTrack,
    CustomVideoTrack,
    EventHandler,
)
from daily.types import JoinData, Participant, ParticipantCounts

__all__ = [
    "AsyncCallClient",
    "AudioSource",
    "AudioStream",
    "CallError",
    "Event",
    "EventStream",
    "EVENT_NAMES",
]

#: The names :meth:`AsyncCallClient.on` accepts: every ``EventHandler.on_*`` callback without
#: its ``on_`` prefix (``"participant_joined"``, ``"app_message"``, ...), 39 in all.
EVENT_NAMES: Tuple[str, ...] = tuple(sorted(n[3:] for n in dir(EventHandler) if n.startswith("on_")))
"""Every event name :meth:`AsyncCallClient.on` and :meth:`AsyncCallClient.events` take: the
``EventHandler`` callbacks without their ``on_`` prefix, sorted."""

_Frames = Union[bytes, bytearray, memoryview, Any]
_Handler = Callable[..., Any]
_T = TypeVar("_T")


class CallError(Exception):
    """A call completed with an error. ``operation`` is the method (``"join"``,
    ``"update_inputs"``, ...) and ``error`` the completion's error string, exactly as the
    callback API would have passed it (for instance ``"cannot send app message: not in a
    call"``)."""

    def __init__(self, operation: str, error: str) -> None:
        super().__init__(f"{operation}: {error}")
        self.operation = operation
        self.error = error


class Event:
    """One event as the SDK delivered it: ``name`` is the ``EventHandler`` callback without its
    ``on_`` prefix (see :data:`EVENT_NAMES`) and ``args`` its positional arguments, in the
    callback's order (``("participant_left", (participant, reason))``)."""

    __slots__ = ("_name", "_args")

    def __init__(self, name: str, args: Tuple[Any, ...]) -> None:
        self._name = name
        self._args = args

    @property
    def name(self) -> str:
        """The ``EventHandler`` callback's name without ``on_``, e.g. ``"participant_joined"``."""
        return self._name

    @property
    def args(self) -> Tuple[Any, ...]:
        """The callback's positional arguments, in the callback's order."""
        return self._args

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {self.args!r})"


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    """Runs ``fn(*args)`` on ``loop`` from any thread; dropped if the loop is closed."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody is left to tell
        pass


def _settle(fut: "asyncio.Future[_T]", value: _T) -> None:
    # A future whose awaiting task was cancelled is already done: the value is dropped.
    if not fut.done():
        fut.set_result(value)


def _bridge(loop: asyncio.AbstractEventLoop) -> Tuple["asyncio.Future[Tuple[Any, ...]]", Callable[..., None]]:
    """A future on ``loop`` and a completion callback, callable from any thread, that resolves
    it with the completion's argument tuple."""
    fut: asyncio.Future[Tuple[Any, ...]] = loop.create_future()

    def completion(*args: Any) -> None:
        _post(loop, _settle, fut, args)

    return fut, completion


class _Forwarder(EventHandler):
    """The ``EventHandler`` of an :class:`AsyncCallClient`: each ``on_*`` posts the event to
    the client's loop. Holds the client weakly, so dropping the client frees it."""

    def __init__(self, client: "AsyncCallClient", loop: asyncio.AbstractEventLoop) -> None:
        self._client = weakref.ref(client)
        self._loop = loop

    def _forward(self, name: str, args: Tuple[Any, ...]) -> None:
        client = self._client()
        if client is not None:
            _post(self._loop, client._dispatch, name, args)


def _make_forwarding_method(name: str) -> Callable[..., None]:
    def method(self: _Forwarder, *args: Any) -> None:
        self._forward(name, args)

    method.__name__ = f"on_{name}"
    method.__doc__ = f"Posts ``{name}`` to the loop."
    return method


for _name in EVENT_NAMES:
    setattr(_Forwarder, f"on_{_name}", _make_forwarding_method(_name))
del _name


class EventStream:
    """Events of an :class:`AsyncCallClient` as an async iterator (from
    :meth:`AsyncCallClient.events`). Events are collected from the moment the stream is made,
    not from the first ``__anext__``, so none is missed between starting an action and reading
    its events. At most ``max_queued`` events wait: when the consumer falls behind further the
    oldest is dropped and counted in ``dropped``. The iteration ends after :meth:`aclose` or
    when the client is released."""

    def __init__(self, client: "AsyncCallClient", names: Sequence[str], max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self._client = client
        self._names = frozenset(names)
        self._queue: Deque[Event] = collections.deque()
        self._max = max_queued
        self._waiter: Optional[asyncio.Future[None]] = None
        self._closed = False
        #: Events dropped because ``max_queued`` were already waiting.
        self.dropped = 0
        client._listeners.append(self._on_event)

    def _on_event(self, name: str, args: Tuple[Any, ...]) -> None:
        if self._names and name not in self._names:
            return
        if len(self._queue) >= self._max:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(Event(name, args))
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        """The next event (waits on the loop); ``StopAsyncIteration`` once closed."""
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._waiter = self._client._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stops collecting; events still queued are dropped and the iteration ends."""
        self._close(drain=False)

    def _close(self, drain: bool) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._client._listeners.remove(self._on_event)
            except ValueError:
                pass
        if not drain:
            self._queue.clear()
        self._wake()

    async def __aenter__(self) -> "EventStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncCallClient:
    """A ``CallClient`` for asyncio (compare LiveKit's ``rtc.Room``). Make it on the loop
    that will use it (inside a coroutine, or pass ``loop``): completions and events are
    delivered there. ``Daily.init()`` must have been called (``RuntimeError`` otherwise).

    Calls that take a completion in the callback API are coroutines here: they return the
    completion's value (``join``: the join data) or raise :class:`CallError`. Wrong argument
    types and values raise ``TypeError`` / ``ValueError`` at the call, as in the callback API.
    Getters (``participants()``, ``inputs()``, ...) stay plain methods: they answer at once.
    Anything else is on :attr:`call_client`, the wrapped ``CallClient``.

    ``async with AsyncCallClient() as client:`` releases the client on exit. Release it one
    way or the other: a client dropped unreleased is released by the callback API's finaliser,
    which blocks the thread dropping it (the loop's) for up to about 5 s while it leaves a
    call. Not thread-safe: use it from its loop."""

    def __init__(self, *, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    "AsyncCallClient() needs a running event loop: make it inside a coroutine or pass loop="
                ) from None
        self._loop = loop
        self._handlers: Dict[str, List[_Handler]] = {}
        self._listeners: List[Callable[[str, Tuple[Any, ...]], None]] = []
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._released = False
        self._client = CallClient(event_handler=_Forwarder(self, loop))

    # -- plumbing -------------------------------------------------------------------------

    @property
    def call_client(self) -> CallClient:
        """The wrapped callback-API ``CallClient`` (for what this class does not wrap)."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop completions and events are delivered on."""
        return self._loop

    async def _call(self, operation: str, method: Callable[..., None], *args: Any, **kwargs: Any) -> Tuple[Any, ...]:
        fut, completion = _bridge(self._loop)
        method(*args, completion=completion, **kwargs)
        return await fut

    async def _done(self, operation: str, method: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """A call whose completion is ``completion(error)``."""
        (error,) = await self._call(operation, method, *args, **kwargs)
        if error is not None:
            raise CallError(operation, str(error))

    def _dispatch(self, name: str, args: Tuple[Any, ...]) -> None:
        """On the loop: one event to streams, then to handlers (in registration order)."""
        for listener in list(self._listeners):
            listener(name, args)
        for handler in list(self._handlers.get(name, ())):
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result, loop=self._loop)
                    self._tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception as e:  # a broken handler must not stop the others
                self._loop.call_exception_handler(
                    {"message": f"daily.aio: exception in the {name!r} handler {handler!r}", "exception": e}
                )

    def _handler_done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._loop.call_exception_handler(
                {"message": "daily.aio: exception in an event handler", "exception": task.exception(), "task": task}
            )

    # -- events ---------------------------------------------------------------------------

    def on(self, event: str, handler: Optional[_Handler] = None) -> Any:
        """Registers ``handler`` for ``event`` (a name from :data:`EVENT_NAMES`, such as
        ``"participant_joined"``), called on the loop with the ``EventHandler`` callback's
        arguments. A coroutine function is run as a task per event. Usable as a decorator
        (``@client.on("app_message")``). Returns the handler. Raises ``ValueError`` for an
        unknown event name and ``TypeError`` for a handler that is not callable. An exception
        in a handler goes to the loop's exception handler; the other handlers still run."""
        if event not in EVENT_NAMES:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENT_NAMES)}")

        def register(h: _Handler) -> _Handler:
            if not callable(h):
                raise TypeError(f"handler must be callable, got {type(h).__name__}")
            self._handlers.setdefault(event, []).append(h)
            return h

        return register if handler is None else register(handler)

    def off(self, event: str, handler: _Handler) -> None:
        """Unregisters a handler registered with :meth:`on`; ``ValueError`` if it was not."""
        try:
            self._handlers.get(event, []).remove(handler)
        except ValueError:
            raise ValueError(f"{handler!r} is not registered for {event!r}") from None

    def events(self, *names: str, max_queued: int = 1024) -> EventStream:
        """An async iterator of :class:`Event` (only those in ``names`` if any are given),
        collecting from now on: ``async with client.events("participant_joined") as ev:``.
        Keeps at most ``max_queued`` unread events (the oldest is dropped beyond that and
        counted in ``EventStream.dropped``). Raises ``ValueError`` for an unknown name and
        ``RuntimeError`` after :meth:`release`."""
        if self._released:
            raise RuntimeError("this AsyncCallClient was released")
        for n in names:
            if n not in EVENT_NAMES:
                raise ValueError(f"unknown event {n!r}; events are {', '.join(EVENT_NAMES)}")
        return EventStream(self, names, max_queued)

    async def wait_for(
        self, event: str, predicate: Optional[Callable[..., bool]] = None, timeout: Optional[float] = None
    ) -> Tuple[Any, ...]:
        """Waits for the next ``event`` whose arguments satisfy ``predicate(*args)`` (any if
        None) and returns its argument tuple. Only events after the call count: to catch the
        event of an action, make an :meth:`events` stream before starting it. ``timeout`` in
        seconds: ``asyncio.TimeoutError`` when it passes; ``ValueError`` for an unknown name."""
        async with self.events(event) as stream:
            async def first() -> Tuple[Any, ...]:
                async for ev in stream:
                    if predicate is None or predicate(*ev.args):
                        return ev.args
                raise CallError("wait_for", "the client was released")

            return await asyncio.wait_for(first(), timeout)

    # -- the call -------------------------------------------------------------------------

    async def join(
        self,
        meeting_url: str,
        meeting_token: Optional[str] = None,
        client_settings: Optional[Mapping[str, Any]] = None,
    ) -> JoinData:
        """Joins ``meeting_url`` (``http(s)://host:port/room``) and returns the join data
        (``{"meetingSession": ..., "participants": {"local": ...}}``). Raises
        :class:`CallError` when the join fails: a malformed URL at once, an unreachable server
        within 5 s, a refused token, a client released meanwhile. ``client_settings`` as in
        ``CallClient.join`` (``TypeError`` / ``ValueError`` at the call for a wrong shape).
        Cancelling the await leaves (which abandons a join in progress), so a cancelled or
        timed-out ``join`` does not leave a call running behind it."""
        fut, completion = _bridge(self._loop)
        self._client.join(meeting_url, meeting_token, client_settings, completion=completion)
        try:
            data, error = await fut
        except asyncio.CancelledError:
            try:
                self._client.leave()
            except RuntimeError:  # released meanwhile: nothing left to leave
                pass
            raise
        if error is not None:
            raise CallError("join", str(error))
        return data  # type: ignore[no-any-return]

    async def leave(self) -> None:
        """Leaves the call (also when not in one: then it returns at once). Raises
        :class:`CallError` if the SDK reports an error."""
        await self._done("leave", self._client.leave)

    async def release(self) -> None:
        """Leaves if needed, frees the client and ends every :meth:`events` stream and
        :class:`AudioStream` of it. Idempotent. Every other call raises ``RuntimeError``
        afterwards."""
        if self._released:
            return
        self._released = True
        try:
            await self.leave()
        except (CallError, RuntimeError):
            pass
        # Not in a call any more, so this does not wait for a leave.
        self._client.release()
        for listener in list(self._listeners):
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, (EventStream, AudioStream)):
                owner._close(drain=True)
        self._listeners.clear()

    async def __aenter__(self) -> "AsyncCallClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    # -- settings and messages ------------------------------------------------------------

    async def update_inputs(self, input_settings: Mapping[str, Any]) -> None:
        """``CallClient.update_inputs``: ``camera``, ``microphone``, ``screenVideo``,
        ``screenAudio``, ``customAudio``, ``customVideo``. ``ValueError`` / ``TypeError`` at
        the call for a wrong shape; :class:`CallError` if the update fails."""
        await self._done("update_inputs", self._client.update_inputs, input_settings)

    async def update_publishing(self, publishing_settings: Mapping[str, Any]) -> None:
        """``CallClient.update_publishing`` (``isPublishing``, ``sendSettings`` per input).
        :class:`CallError` for an unknown preset or when not in a call."""
        await self._done("update_publishing", self._client.update_publishing, publishing_settings)

    async def update_subscriptions(
        self,
        participant_settings: Optional[Mapping[str, Any]] = None,
        profile_settings: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """``CallClient.update_subscriptions``: per-participant ``{"profile", "media"}`` and
        profiles. ``ValueError`` / ``TypeError`` at the call for a wrong shape."""
        await self._done(
            "update_subscriptions", self._client.update_subscriptions, participant_settings, profile_settings
        )

    async def update_subscription_profiles(self, profile_settings: Mapping[str, Any]) -> None:
        """``CallClient.update_subscription_profiles``: ``{profile: {kind: state}}``."""
        await self._done(
            "update_subscription_profiles", self._client.update_subscription_profiles, profile_settings
        )

    async def update_permissions(self, permissions: Mapping[str, Any]) -> None:
        """``CallClient.update_permissions`` (``hasPresence``, ``canSend``, ``canAdmin``,
        ``canReceive``) of the local participant."""
        await self._done("update_permissions", self._client.update_permissions, permissions)

    async def update_remote_participants(self, remote_participants: Mapping[str, Any]) -> None:
        """``CallClient.update_remote_participants``: ``{participant_id: {"permissions":
        ...}}``; :class:`CallError` without the rights (owner or ``canAdmin``)."""
        await self._done(
            "update_remote_participants", self._client.update_remote_participants, remote_participants
        )

    async def eject_remote_participants(self, ids: List[str]) -> None:
        """``CallClient.eject_remote_participants``; :class:`CallError` for unknown ids or
        without the rights."""
        await self._done("eject_remote_participants", self._client.eject_remote_participants, ids)

    async def send_app_message(self, message: Any, participant_id: Optional[str] = None) -> None:
        """Sends ``message`` (any JSON value, at most 4096 bytes encoded) to everybody, or to
        ``participant_id``; others get the ``app_message`` event ``(message, sender_id)``.
        ``TypeError`` at the call for a value JSON cannot carry; :class:`CallError` when it is
        too large or the client is not in a call."""
        await self._done("send_app_message", self._client.send_app_message, message, participant_id)

    async def send_prebuilt_chat_message(self, message: str, user_name: Optional[str] = None) -> None:
        """A chat line for the call page (``chat-msg`` app message to everybody)."""
        await self._done(
            "send_prebuilt_chat_message", self._client.send_prebuilt_chat_message, message, user_name
        )

    async def set_ice_config(self, ice_config: Optional[Mapping[str, Any]] = None) -> None:
        """``CallClient.set_ice_config``: STUN/TURN servers for the next join."""
        await self._done("set_ice_config", self._client.set_ice_config, ice_config)

    async def add_custom_audio_track(
        self, track_name: str, audio_track: Union[CustomAudioTrack, "AudioSource"], ignore_audio_level: Optional[bool] = None
    ) -> None:
        """Publishes another audio track (a ``CustomAudioTrack`` or an :class:`AudioSource`)
        as ``customAudio[track_name]`` (1-256 bytes, ``ValueError`` otherwise)."""
        await self._done(
            "add_custom_audio_track",
            self._client.add_custom_audio_track,
            track_name,
            _track_of(audio_track),
            ignore_audio_level,
        )

    async def update_custom_audio_track(
        self, track_name: str, audio_track: Union[CustomAudioTrack, "AudioSource"], ignore_audio_level: Optional[bool] = None
    ) -> None:
        """Replaces the track published as ``customAudio[track_name]``."""
        await self._done(
            "update_custom_audio_track",
            self._client.update_custom_audio_track,
            track_name,
            _track_of(audio_track),
            ignore_audio_level,
        )

    async def remove_custom_audio_track(self, track_name: str) -> None:
        """Stops publishing ``customAudio[track_name]``; :class:`CallError` if there is none."""
        await self._done("remove_custom_audio_track", self._client.remove_custom_audio_track, track_name)

    async def add_custom_video_track(self, track_name: str, video_track: CustomVideoTrack) -> None:
        """Publishes a ``CustomVideoTrack`` as ``customVideo[track_name]``."""
        await self._done("add_custom_video_track", self._client.add_custom_video_track, track_name, video_track)

    async def update_custom_video_track(self, track_name: str, video_track: CustomVideoTrack) -> None:
        """Replaces the track published as ``customVideo[track_name]``."""
        await self._done(
            "update_custom_video_track", self._client.update_custom_video_track, track_name, video_track
        )

    async def remove_custom_video_track(self, track_name: str) -> None:
        """Stops publishing ``customVideo[track_name]``."""
        await self._done("remove_custom_video_track", self._client.remove_custom_video_track, track_name)

    async def update_recording(self, update_settings: Mapping[str, Any], stream_id: Optional[str] = None) -> None:
        """Not offered (Daily applies it to cloud recordings' layouts; ours are raw-tracks audio):
        raises :class:`CallError`, as the callback API completes."""
        await self._done("update_recording", self._client.update_recording, update_settings, stream_id)

    async def update_live_stream(self, update_settings: Mapping[str, Any], stream_id: Optional[str] = None) -> None:
        """Not offered by our rooms: raises :class:`CallError`, as the callback API completes."""
        await self._done("update_live_stream", self._client.update_live_stream, update_settings, stream_id)

    async def update_transcription(
        self, participants: Optional[Sequence[str]] = None, instance_id: Optional[str] = None
    ) -> None:
        """Not offered by our rooms: raises :class:`CallError`, as the callback API completes."""
        await self._done("update_transcription", self._client.update_transcription, participants, instance_id)

    # -- recording, and what our rooms do not offer ---------------------------------------
    # Server-side recording is real (``RoomServer(recordings_dir=...)``). Our room server does
    # not stream, transcribe or dial, so those raise CallError with the callback API's
    # completion error; they exist so that code written for Daily's rooms ports unchanged and
    # fails clearly.

    async def _two(self, operation: str, method: Callable[..., None], *args: Any) -> Optional[str]:
        """A call whose completion is ``completion(value, error)``."""
        value, error = await self._call(operation, method, *args)
        if error is not None:
            raise CallError(operation, str(error))
        return value  # type: ignore[no-any-return]

    async def start_recording(
        self,
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
    ) -> Optional[str]:
        """Records the call on the server (see ``CallClient.start_recording``) and returns the
        stream id once every participant was told (``on_recording_started``). Raises
        :class:`CallError` when not in a call, when recording is off on the server, for a
        participant who may not record, or for a stream id already recording without
        ``force_new``."""
        return await self._two("start_recording", self._client.start_recording, streaming_settings, stream_id, force_new)

    async def stop_recording(self, stream_id: Optional[str] = None) -> None:
        """Stops the server-side recording ``stream_id`` (default: the default instance).
        Raises :class:`CallError` when not in a call, for a participant who may not record, or
        for a stream id that is not recording."""
        await self._done("stop_recording", self._client.stop_recording, stream_id)

    async def start_live_stream_with_endpoints(
        self,
        endpoints: Any,
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
    ) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done(
            "start_live_stream_with_endpoints",
            self._client.start_live_stream_with_endpoints,
            endpoints,
            streaming_settings,
            stream_id,
            force_new,
        )

    async def start_live_stream_with_rtmp_urls(
        self,
        rtmp_urls: Sequence[str],
        streaming_settings: Optional[Mapping[str, Any]] = None,
        stream_id: Optional[str] = None,
        force_new: Optional[bool] = None,
    ) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done(
            "start_live_stream_with_rtmp_urls",
            self._client.start_live_stream_with_rtmp_urls,
            rtmp_urls,
            streaming_settings,
            stream_id,
            force_new,
        )

    async def stop_live_stream(self, stream_id: Optional[str] = None) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("stop_live_stream", self._client.stop_live_stream, stream_id)

    async def add_live_streaming_endpoints(self, endpoints: Any, stream_id: Optional[str] = None) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("add_live_streaming_endpoints", self._client.add_live_streaming_endpoints, endpoints, stream_id)

    async def remove_live_streaming_endpoints(self, endpoints: Any, stream_id: Optional[str] = None) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done(
            "remove_live_streaming_endpoints", self._client.remove_live_streaming_endpoints, endpoints, stream_id
        )

    async def start_transcription(self, settings: Optional[Mapping[str, Any]] = None) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("start_transcription", self._client.start_transcription, settings)

    async def stop_transcription(self) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("stop_transcription", self._client.stop_transcription)

    async def start_dialout(self, settings: Mapping[str, Any]) -> Optional[str]:
        """Returns the session id. Not offered by our rooms: raises :class:`CallError`."""
        return await self._two("start_dialout", self._client.start_dialout, settings)

    async def stop_dialout(self, participant_id: str) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("stop_dialout", self._client.stop_dialout, participant_id)

    async def send_dtmf(self, settings: Mapping[str, Any]) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("send_dtmf", self._client.send_dtmf, settings)

    async def sip_call_transfer(self, settings: Mapping[str, Any]) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("sip_call_transfer", self._client.sip_call_transfer, settings)

    async def sip_refer(self, settings: Mapping[str, Any]) -> None:
        """Not offered by our rooms: raises :class:`CallError`."""
        await self._done("sip_refer", self._client.sip_refer, settings)

    async def set_proxy_url(self, proxy_url: Optional[str] = None) -> None:
        """``None`` (no proxy) succeeds; a proxy URL raises :class:`CallError` (proxies are
        not supported by this SDK)."""
        await self._done("set_proxy_url", self._client.set_proxy_url, proxy_url)

    # -- answers at once ------------------------------------------------------------------

    def participants(self) -> Mapping[str, Participant]:
        """``{"local": participant, "<id>": participant, ...}``."""
        return self._client.participants()

    def participant_counts(self) -> ParticipantCounts:
        """``{"present": int, "hidden": int}``."""
        return self._client.participant_counts()

    def active_speaker(self) -> Optional[Participant]:
        """The participant the server chose as active speaker, if any."""
        return self._client.active_speaker()

    def inputs(self) -> Mapping[str, Any]:
        """The current input settings (Daily's dict)."""
        return self._client.inputs()

    def publishing(self) -> Mapping[str, Any]:
        """The current publishing settings (Daily's dict)."""
        return self._client.publishing()

    def subscriptions(self) -> Mapping[str, Any]:
        """The per-participant subscription settings."""
        return self._client.subscriptions()

    def subscription_profiles(self) -> Mapping[str, Any]:
        """The subscription profiles."""
        return self._client.subscription_profiles()

    def get_network_stats(self) -> Mapping[str, Any]:
        """The latest network stats (updated every 2 s in a call)."""
        return self._client.get_network_stats()

    def set_user_name(self, user_name: str) -> None:
        """The display name others see (at most 1024 bytes of UTF-8: ``ValueError``)."""
        self._client.set_user_name(user_name)


def _track_of(track: Union[CustomAudioTrack, "AudioSource"]) -> CustomAudioTrack:
    return track.track if isinstance(track, AudioSource) else track


#: Half a media-clock tick (the clock consumes a source's queue 10 ms at a time), added to a
#: writer's sleep so that one sleep usually suffices.
_HALF_TICK_S = 0.005


#: Longest single sleep of a writer, s: bounds how late a stalled queue is noticed.
_MAX_SLEEP_S = 0.25
#: How long a queue that does not shrink is waited for before giving up, s.
_STALL_S = 1.0


class _Playout:
    """When one write's frames have been played, shared with the SDK's source-completion
    thread. The completion posts to the loop only while a task waits for it (the write itself
    or ``wait_for_playout``): a chunked writer has moved on long before its chunks play, and a
    loop wake-up per chunk for nobody cost a third of the writer's loop time."""

    __slots__ = ("loop", "played", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.played: Optional[int] = None  # set by the completion thread
        self.waiters: List[asyncio.Future[None]] = []  # changed on the loop only

    def complete(self, n: int) -> None:
        """The completion (any thread). The GIL orders this against :meth:`wait`: either it
        sees a waiter and posts, or the waiter sees ``played``."""
        self.played = n
        if self.waiters:
            _post(self.loop, self._wake)

    def _wake(self) -> None:
        for w in self.waiters:
            _settle(w, None)

    async def wait(self, timeout: Optional[float]) -> None:
        """Until played, or ``timeout`` seconds (None: no limit). One future and one timer per
        wait (``asyncio.wait`` cost a third more loop time per chunk); cancelling one waiter
        leaves the others waiting."""
        if self.played is not None:
            return
        w: asyncio.Future[None] = self.loop.create_future()
        self.waiters.append(w)
        timer = None if timeout is None else self.loop.call_later(timeout, _settle, w, None)
        try:
            if self.played is None:  # checked after registering: see complete()
                await w
        finally:
            if timer is not None:
                timer.cancel()
            self.waiters.remove(w)

    def done(self) -> bool:
        return self.played is not None


class AudioSource:
    """PCM sent through a ``CustomAudioTrack`` with awaitable, real-time-paced writes (compare
    LiveKit's ``rtc.AudioSource.capture_frame``). ``sample_rate`` in Hz (8000-48000, a
    multiple of 100), ``channels`` 1 or 2 (``ValueError`` otherwise; ``RuntimeError`` before
    ``Daily.init()``). With ``auto_silence`` the track sends silence while nothing is queued.

    ``queue_ms`` (ms) is how much audio a write leaves queued when it returns: enough for the
    writer's next chunk to arrive before the queue runs dry (the track would send silence in
    the gap), little enough that :meth:`clear_queue` on barge-in has little to drop. A writer
    awaiting chunk after chunk keeps between ``queue_ms`` and ``queue_ms`` + one chunk queued.
    ``ValueError`` if negative.

    Use it as the microphone (``client_settings=source.microphone_settings()``) or publish it
    with ``AsyncCallClient.add_custom_audio_track(name, source)``."""

    def __init__(self, sample_rate: int = 16000, channels: int = 1, *, auto_silence: bool = True, queue_ms: int = 100) -> None:
        if queue_ms < 0:
            raise ValueError(f"queue_ms must not be negative, got {queue_ms}")
        self._source = CustomAudioSource(sample_rate, channels, auto_silence)
        self._track = CustomAudioTrack(self._source)
        self._queue_s = queue_ms / 1000.0
        self._last: Optional[_Playout] = None
        self._last_frames = 0

    @property
    def source(self) -> CustomAudioSource:
        """The underlying ``CustomAudioSource``."""
        return self._source

    @property
    def track(self) -> CustomAudioTrack:
        """The ``CustomAudioTrack`` carrying this source."""
        return self._track

    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz."""
        return self._source.sample_rate

    @property
    def channels(self) -> int:
        """Channel count (1 or 2)."""
        return self._source.channels

    @property
    def queued_duration(self) -> float:
        """Seconds of audio queued and not yet played (padding included)."""
        return self._source.queued_duration

    def microphone_settings(self) -> Dict[str, Any]:
        """``client_settings`` for ``join`` that make this source the microphone:
        ``{"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id":
        track_id}}}}}``."""
        return {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": self._track.id}}}}}

    async def write_frames(self, frames: _Frames) -> int:
        """Queues interleaved 16-bit PCM (``bytes``, ``bytearray``, ``memoryview``, int16
        numpy array: any C-contiguous 16-bit buffer, read in place) and returns the number of
        frames (samples per channel) once at most ``queue_ms`` of audio is still queued, or
        at once if no more than that is. Paced by the engine's media clock in real time:
        writing 3 s returns after about 3 s - ``queue_ms`` (a write is padded to a multiple
        of 10 ms). The wait is a sleep on the loop: no thread is used or made.

        Raises ``ValueError`` if the length is not a multiple of ``2 * channels`` bytes,
        ``TypeError`` for other input, ``RuntimeError`` after ``Daily.deinit()`` (a write
        pending when it happens raises ``RuntimeError`` as soon as its completion reports the
        frames cut short). Cancelling the await does not take the frames back (they are already queued
        and will play); :meth:`clear_queue` does, and ends a pending write at once."""
        playout = _Playout(asyncio.get_running_loop())
        n = self._source.write_frames(frames, completion=playout.complete)
        self._last, self._last_frames = playout, n
        await self._drain(playout, self._queue_s)
        self._check_cut_short(playout, n)
        return n

    def _check_cut_short(self, playout: _Playout, n: int) -> None:
        """A write whose completion reported fewer frames than written was cut short: by
        :meth:`clear_queue` (fine) or by ``Daily.deinit()``, where the sync source refuses
        even an empty write with ``RuntimeError``, raised here."""
        if playout.played is not None and playout.played < n:
            self._source.write_frames(b"")

    async def wait_for_playout(self) -> None:
        """Waits until everything written so far has been played (or dropped by
        :meth:`clear_queue`). Cancelling it affects nothing else. ``RuntimeError`` as in
        :meth:`write_frames` if the queue stops moving."""
        if self._last is not None:
            await self._drain(self._last, 0.0)
            self._check_cut_short(self._last, self._last_frames)

    async def _drain(self, playout: _Playout, limit_s: float) -> None:
        """Sleeps on the loop until at most ``limit_s`` seconds are queued or ``playout``'s
        frames are gone (its completion ends a sleep early: ``clear_queue``)."""
        loop = asyncio.get_running_loop()
        last: Optional[float] = None
        still_since: Optional[float] = None
        while not playout.done():
            queued = self._source.queued_duration
            excess = queued - limit_s
            if excess <= 0:
                return
            # Daily.deinit() fires pending completions (with the frames played); should one
            # never come, a queue that does not move for _STALL_S ends the wait all the same.
            now = loop.time()
            if last is not None and queued >= last:
                if still_since is None:
                    still_since = now
                elif now - still_since >= _STALL_S:
                    raise RuntimeError(
                        f"the audio source's queue has not moved for {_STALL_S:g} s (was Daily deinitialised?)"
                    )
            else:
                still_since = None
            last = queued
            await playout.wait(min(excess + _HALF_TICK_S, _MAX_SLEEP_S))

    def clear_queue(self) -> int:
        """Drops everything queued (barge-in) and returns the frames dropped; pending
        ``write_frames`` and ``wait_for_playout`` return at once."""
        return self._source.clear_queue()


class AudioStream:
    """Audio of one participant's track as an async iterator of ``AudioData`` (compare
    LiveKit's ``rtc.AudioStream``)::

        async with AudioStream(client, participant_id, sample_rate=16000) as stream:
            async for audio in stream:      # audio.audio_frames: 20 ms of mono int16 PCM
                ...

    Each item is ``callback_interval_ms`` (a positive multiple of 10) of mono 16-bit PCM at
    ``sample_rate`` Hz (8000-48000) of ``audio_source`` (``"microphone"`` or a custom track
    name), exactly ``sample_rate * callback_interval_ms / 1000`` frames, from the renderer
    the stream sets with ``CallClient.set_audio_renderer`` (``ValueError`` for a malformed
    participant id, rate or interval). The participant may join later: audio starts when its
    track arrives. The client must be subscribed to the track (the default profile is).

    A slow consumer: at most ``max_queued`` items wait (default 50, 1 s of 20 ms items); when
    one more arrives the oldest is dropped and ``dropped`` counts it, so a consumer that falls
    behind hears the newest audio, at most ``max_queued`` items late, and memory stays
    bounded. ``ValueError`` if ``max_queued`` < 1.

    The iteration ends after :meth:`aclose` (queued items are dropped), and, once the items
    already queued are read, when the participant leaves, the client leaves the call or is
    released. A closed stream's renderer stays attached inside the SDK (the callback API has
    no way to remove one) until the participant leaves or the call ends, returning at once
    for each item; open one stream per track rather than one per utterance."""

    def __init__(
        self,
        client: AsyncCallClient,
        participant_id: str,
        *,
        audio_source: str = "microphone",
        sample_rate: int = 16000,
        callback_interval_ms: int = 20,
        max_queued: int = 50,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self._loop = client.loop
        self._client = client
        self._participant_id = participant_id
        self._max = max_queued
        self._lock = threading.Lock()  # the renderer thread and the loop share the queue
        self._queue: Deque[AudioData] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._closed = False
        #: Items dropped because ``max_queued`` were already waiting (consumer too slow).
        self.dropped = 0
        #: Items received from the renderer (delivered, queued or dropped).
        self.received = 0
        client.call_client.set_audio_renderer(
            participant_id,
            self._on_audio,
            audio_source=audio_source,
            sample_rate=sample_rate,
            callback_interval_ms=callback_interval_ms,
        )
        client._listeners.append(self._on_event)

    @property
    def participant_id(self) -> str:
        """The participant whose track this is."""
        return self._participant_id

    def _on_audio(self, participant_id: str, audio: AudioData, audio_source: str) -> None:
        # On the SDK's renderer thread: queue and, if the consumer waits, wake it (once).
        with self._lock:
            if self._closed:
                return
            self.received += 1
            if len(self._queue) >= self._max:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(audio)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _post(self._loop, _settle, waiter, None)

    def _on_event(self, name: str, args: Tuple[Any, ...]) -> None:
        if name == "participant_left" and args and args[0].get("id") == self._participant_id:
            self._close(drain=True)
        elif name == "call_state_updated" and args and args[0] == "left":
            self._close(drain=True)

    def _close(self, drain: bool) -> None:
        with self._lock:
            self._closed = True
            if not drain:
                self._queue.clear()
            waiter, self._waiter = self._waiter, None
        try:
            self._client._listeners.remove(self._on_event)
        except ValueError:
            pass
        if waiter is not None:
            _settle(waiter, None)

    def __aiter__(self) -> "AudioStream":
        return self

    async def __anext__(self) -> AudioData:
        """The next ``AudioData`` (waits on the loop); ``StopAsyncIteration`` once closed and
        drained."""
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise StopAsyncIteration
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiter = waiter
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None

    async def aclose(self) -> None:
        """Ends the stream now: queued items are dropped, later audio is ignored, a pending
        ``__anext__`` raises ``StopAsyncIteration``. Idempotent."""
        self._close(drain=False)

    async def __aenter__(self) -> "AudioStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
