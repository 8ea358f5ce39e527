"""Recording a conversation on the client: `AudioBufferProcessor` (pipecat's processor of the same
name, attached directly to a `daily.CallClient`).

The "user" track is the mix of every remote participant's audio this client receives (every
remote audio track, including participants who join while recording); the "bot" track is what
this client sends (its microphone, a custom track or virtual microphone, and its custom audio
tracks). Both are placed by the SDK's 10 ms media clock, not by arrival time, so they stay aligned
to within one 10 ms frame whatever the load: the mixing, resampling, turn detection and file
writing run in Rust on a recorder thread of their own (`daily_client::record`), never on the audio
path, and handlers run on a dispatcher thread of the processor, never on the audio path either.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
import threading
from typing import Any, Callable, Optional, Union

from daily.daily import CallClient, _AudioRecorder

__all__ = ["AudioBufferProcessor"]

_log = logging.getLogger("daily")

#: The events a processor emits, with their handler arguments.
EVENTS = (
    "on_audio_data",  # (processor, audio: bytes, sample_rate, num_channels)
    "on_track_audio_data",  # (processor, user_audio: bytes, bot_audio: bytes, sample_rate, num_channels)
    "on_user_turn_audio_data",  # (processor, audio: bytes, sample_rate, num_channels)
    "on_bot_turn_audio_data",  # (processor, audio: bytes, sample_rate, num_channels)
    "on_recording_started",  # (processor)
    "on_recording_stopped",  # (processor)
)

_CHUNK_EVENTS = ("on_audio_data", "on_track_audio_data")


class AudioBufferProcessor:
    """Records what this client hears ("user") and what it sends ("bot") in a call, time-aligned.

    ``AudioBufferProcessor(client, sample_rate=None, num_channels=1, buffer_size=0,
    user_continuous_stream=True, enable_turn_audio=False)``, with the names and defaults of
    pipecat's processor (RECORDING.md):

    - ``client``: the `daily.CallClient` whose call is recorded (``TypeError`` otherwise).
    - ``sample_rate``: output rate in Hz, 8000 to 48000 and a multiple of 100 (``None``: 16000 Hz);
      every input (48 kHz received audio, each source at its own rate) is resampled to it with
      daily's rubato resampler.
    - ``num_channels``: 1 channel (user and bot summed, clipped to 16 bits) or 2 channels (user
      left, bot right, interleaved).
    - ``buffer_size``: bytes per track (mono 16-bit PCM) that trigger ``on_audio_data`` and
      ``on_track_audio_data``; every chunk has exactly ``buffer_size // 2`` samples per track
      except the last one at stop. 0 keeps everything until ``stop_recording()``: memory then
      grows with the call (32 KB per second per track at 16000 Hz); use ``record_to`` (with no
      chunk handler, nothing accumulates) or a ``buffer_size`` for long calls.
    - ``user_continuous_stream``: ``True`` (default): the user track is everything received,
      continuously (background noise and all). ``False``: only the user's speech segments are
      kept and silence is inserted for the gaps, as if only speech had arrived: audio outside the
      user's turns (found by the turn detector below, from 100 ms before a turn's first speech to
      the 0.8 s of non-speech that end it) is replaced by zeros. The tracks stay aligned either way.
    - ``enable_turn_audio``: emit ``on_user_turn_audio_data`` / ``on_bot_turn_audio_data`` with
      each finished speaking turn's audio.

    Turns are found by daily's `NativeVad` on each track at the output rate: a 10 ms frame is
    speech when its score is at least 0.5; 200 ms of consecutive speech opens a turn and 800 ms of
    non-speech closes it (pipecat's ``VADParams`` start_secs 0.2 and stop_secs 0.8). The
    confidence is 0.5 rather than pipecat's 0.7 because NativeVad is not Silero and a turn opens
    only on 20 *consecutive* speech frames: on LibriVox speech 93-98 % of frames score at least 0.5
    but only 82-93 % at least 0.7, while white noise at -40 dBFS reaches 0.5 in 1.4 % of frames,
    never 20 in a row. A turn's audio runs
    from 100 ms before its first speech frame to 200 ms after its last one. Turn detection delays
    every output by 320 ms (the time it takes to confirm a turn's opening).

    Alignment: each tapped node (the client's send pipes, its receive pipelines) copies its 10 ms
    per clock tick, stamped with the tick's number, into a wait-free ring; tick ``n`` is samples
    ``(n - start) * sample_rate / 100`` onward of both tracks. A tick with nothing received or
    sent is silence. Ticks are final 500 ms after they passed, so chunks and the file lag the call
    by about half a second. Received audio is recorded as this client plays it out (after network
    and jitter-buffer delay), sent audio as the clock sends it.

    Events (``event_handler(name)`` decorator or ``add_event_handler(name, fn)``; ``ValueError``
    for another name, ``TypeError`` for a handler that is not callable):

    - ``on_audio_data(processor, audio, sample_rate, num_channels)``: the merged chunk;
    - ``on_track_audio_data(processor, user_audio, bot_audio, sample_rate, num_channels)``: right
      after, each track mono;
    - ``on_user_turn_audio_data`` / ``on_bot_turn_audio_data(processor, audio, sample_rate,
      num_channels)``: a turn ended (``num_channels`` is 1);
    - ``on_recording_started(processor)`` / ``on_recording_stopped(processor)``: after start /
      after the final flush.

    Handlers run in order on the processor's own dispatcher thread, one recording at a time. A
    coroutine function runs on the asyncio loop that was running where it was registered
    (``asyncio.run_coroutine_threadsafe``, not awaited by the dispatcher), or with
    ``asyncio.run`` on the dispatcher thread if none was. An exception in a handler is logged to
    the ``daily`` logger and does not stop the recording.

    Files: ``record_to(path)`` streams the merged audio (``num_channels`` channels at
    ``sample_rate`` Hz) to a WAV file or an Ogg/Opus file (``.ogg`` / ``.opus``) with bounded
    memory. The file is closed, complete and valid when recording stops, when the call is left
    (the recording stops then, with ``on_recording_stopped``) and when the client is released. A
    write error closes the file, is logged to the ``daily`` logger and kept in ``error``; the
    recording goes on without the file.
    """

    def __init__(
        self,
        client: CallClient,
        sample_rate: Optional[int] = None,
        num_channels: int = 1,
        buffer_size: int = 0,
        user_continuous_stream: bool = True,
        enable_turn_audio: bool = False,
    ) -> None:
        if not isinstance(client, CallClient):
            raise TypeError(f"client must be a daily.CallClient, got {type(client).__name__}")
        if sample_rate is None:
            sample_rate = 16000
        for name, v in (("sample_rate", sample_rate), ("num_channels", num_channels), ("buffer_size", buffer_size)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        for name, v in (("user_continuous_stream", user_continuous_stream), ("enable_turn_audio", enable_turn_audio)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
        if not (8000 <= sample_rate <= 48000 and sample_rate % 100 == 0):
            raise ValueError(f"sample_rate must be a multiple of 100 Hz between 8000 and 48000, got {sample_rate}")
        if num_channels not in (1, 2):
            raise ValueError(f"num_channels must be 1 or 2, got {num_channels}")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be 0 or a positive number of bytes, got {buffer_size}")
        self._client = client
        self._sample_rate = sample_rate
        self._num_channels = num_channels
        self._buffer_size = buffer_size
        self._user_continuous_stream = user_continuous_stream
        self._enable_turn_audio = enable_turn_audio
        self._handlers: dict[str, list[tuple[Callable[..., Any], Optional[asyncio.AbstractEventLoop]]]] = {
            e: [] for e in EVENTS
        }
        self._lock = threading.Lock()
        self._rec: Optional[_AudioRecorder] = None
        self._dispatcher: Optional[threading.Thread] = None
        self._path: Optional[str] = None
        self._error: Optional[str] = None
        self._stop_requested: Optional[float] = None

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        """Output channels: 1 (user + bot summed) or 2 channels (user left, bot right)."""
        return self._num_channels

    @property
    def buffer_size(self) -> int:
        """Bytes per track that trigger ``on_audio_data`` (0: only when recording stops)."""
        return self._buffer_size

    @property
    def recording(self) -> bool:
        """Whether a recording is running (``start_recording()`` called, not yet stopped)."""
        with self._lock:
            return self._rec is not None

    @property
    def error(self) -> Optional[str]:
        """The last error writing the ``record_to`` file (message), or None."""
        with self._lock:
            rec = self._rec
        if rec is not None and rec.error is not None:
            return rec.error
        return self._error

    @property
    def recorded_frames(self) -> int:
        """Frames per track recorded so far in the current recording (at ``sample_rate`` Hz)."""
        with self._lock:
            rec = self._rec
        return rec.recorded_frames if rec is not None else 0

    def event_handler(self, event_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering the decorated function for ``event_name`` (one of the six events
        in the class docstring; ``ValueError`` otherwise). Returns the function unchanged."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add_event_handler(event_name, fn)
            return fn

        self._check_event(event_name)
        return register

    def add_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        """Registers ``handler`` (a function or coroutine function) for ``event_name``.

        ``ValueError`` for an unknown event name, ``TypeError`` for a handler that is not
        callable. A coroutine function runs on the asyncio loop running here, if any. A chunk
        handler added while recording receives chunks from then on."""
        self._check_event(event_name)
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        try:
            loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._handlers[event_name].append((handler, loop))
            rec = self._rec
        if rec is not None and event_name in _CHUNK_EVENTS:
            rec.set_want_chunks(True)

    def record_to(self, path: Union[str, "os.PathLike[str]", None]) -> None:
        """Streams the merged audio to ``path`` (``.wav``: 16-bit PCM WAV; ``.ogg`` / ``.opus``:
        Ogg/Opus), for this and later recordings; ``None`` stops writing files.

        Called while recording, the file starts now; otherwise it is created (truncated) when
        ``start_recording()`` runs. ``TypeError`` for a path that is not a str or PathLike,
        ``ValueError`` for another extension, ``FileNotFoundError`` if its directory does not
        exist, ``RuntimeError`` if the file cannot be created."""
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(f"path must be a str, a PathLike or None, got {type(path).__name__}")
            path = os.fspath(path)
            ext = os.path.splitext(path)[1].lower()
            if ext not in (".wav", ".ogg", ".opus"):
                raise ValueError(f"record_to needs a path ending in .wav, .ogg or .opus, got {path!r}")
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise FileNotFoundError(f"the directory of {path!r} does not exist")
        with self._lock:
            self._path = path
            rec = self._rec
        if rec is not None:
            rec.record_to(path)

    def start_recording(self) -> None:
        """Starts recording from now, with empty buffers; does nothing if already recording.

        Raises ``RuntimeError`` if the client was released (or Daily deinitialised) and the
        errors of ``record_to`` if its file cannot be created. ``on_recording_started`` follows."""
        with self._lock:
            if self._rec is not None:
                return
            want_chunks = any(self._handlers[e] for e in _CHUNK_EVENTS)
            rec = _AudioRecorder(
                self._client,
                self._sample_rate,
                self._num_channels,
                self._buffer_size,
                self._user_continuous_stream,
                self._enable_turn_audio,
                self._path,
                want_chunks,
            )
            self._rec = rec
            self._error = None
            self._stop_requested = None
            t = threading.Thread(target=self._dispatch, args=(rec,), name="daily-recording-events", daemon=True)
            self._dispatcher = t
        t.start()

    def stop_recording(self) -> None:
        """Stops recording; does nothing if not recording.

        Before it returns, what was buffered is finalized (the last chunk goes to the chunk
        handlers, an unfinished turn to the turn handlers), the file is closed, and
        ``on_recording_stopped`` is queued after them; the handlers run on the dispatcher
        thread (so this may be called from a handler or an asyncio loop without deadlock)."""
        with self._lock:
            rec = self._rec
        if rec is not None:
            self._stop_requested = time.monotonic()
            rec.stop()

    def wait_stopped(self, timeout: Optional[float] = None) -> bool:
        """Waits until the handlers of the last recording, ``on_recording_stopped`` included,
        have run (at most ``timeout`` seconds; None waits). Not from a handler. Returns whether
        they have."""
        with self._lock:
            t = self._dispatcher
        if t is None or t is threading.current_thread():
            return True
        t.join(timeout)
        return not t.is_alive()

    def _check_event(self, event_name: str) -> None:
        if not isinstance(event_name, str):
            raise TypeError(f"event_name must be a str, got {type(event_name).__name__}")
        if event_name not in EVENTS:
            raise ValueError(f"unknown event {event_name!r}; AudioBufferProcessor has {', '.join(EVENTS)}")

    def _emit(self, event_name: str, *args: Any) -> None:
        with self._lock:
            handlers = list(self._handlers[event_name])
        for fn, loop in handlers:
            try:
                if inspect.iscoroutinefunction(fn):
                    if loop is not None and loop.is_running():
                        asyncio.run_coroutine_threadsafe(fn(self, *args), loop)
                    else:
                        asyncio.run(fn(self, *args))
                else:
                    fn(self, *args)
            except Exception:  # a handler's bug must not end the recording's dispatcher
                _log.exception("AudioBufferProcessor: the %s handler %r raised", event_name, fn)

    def _dispatch(self, rec: _AudioRecorder) -> None:
        sr, nch = self._sample_rate, self._num_channels
        self._emit("on_recording_started")
        while True:
            ev = rec.next_event(200)
            if ev is None:
                # The recorder always ends with "stopped"; this bounds the wait if it died.
                asked = self._stop_requested
                if asked is None or time.monotonic() - asked < 10:
                    continue
                ev = ("stopped",)
            kind = ev[0]
            if kind == "audio":
                self._emit("on_audio_data", ev[1], sr, nch)
                self._emit("on_track_audio_data", ev[2], ev[3], sr, nch)
            elif kind == "turn":
                self._emit(f"on_{ev[1]}_turn_audio_data", ev[2], sr, 1)
            elif kind == "error":
                self._error = ev[1]
                _log.error("AudioBufferProcessor: %s", ev[1])
            elif kind == "stopped":
                with self._lock:
                    if self._rec is rec:
                        self._rec = None
                        self._error = rec.error or self._error
                self._emit("on_recording_stopped")
                return

