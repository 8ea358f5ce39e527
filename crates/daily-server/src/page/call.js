// The call page served by daily-server at GET /{room}: joins the room with the browser's own
// WebRTC, speaking the signalling protocol of docs/signalling.md over /ws/{room}.
//
// - send transport: one RTCPeerConnection that offers the microphone and the camera
//   (publishOffer / publishAnswer; the camera's m-line offers VP8 only, the one video codec the
//   server forwards); muting or stopping the camera sets the transceiver `inactive` and
//   re-offers without the track, so other participants see it go off, as with the Python SDK's
//   update_inputs (a stopped camera is released: its light goes off);
// - receive transport: the server offers one m-line per remote track (subscribeOffer); the
//   mid -> participant mapping of the last offer is authoritative, and m-lines are reused;
// - remote audio plays through one WebAudio graph (every remote track -> mix -> speakers), which
//   also measures each participant's level for the speaking indicator and can record the mix;
// - video shows as tiles: the local camera (mirrored), one per remote video track (camera,
//   screenVideo, customVideo by its track name), a placeholder with the initials of a
//   participant without video; the server's active speaker has the highlighted tile;
// - chat is app messages shaped as Daily Prebuilt's ({event: "chat-msg", message, name, room}),
//   so send_app_message / on_app_message on the Python side see the same dicts.
//
// Query parameters: name=NAME, autojoin=1 (join without clicks), t=TOKEN (a meeting token),
// audio=music (the microphone unprocessed, high-fidelity Opus; see `music` below), video=0 (join
// with the camera off; it can be started from the page).
// window.callPage exposes the state, a recorder and the video tiles for tests and debugging.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // audio=music: the microphone as is (no echo cancellation, noise suppression or gain control)
  // and Opus in its AUDIO application at 64 kbit/s, as the SDK's sendSettings "music"; the
  // default, speech, is what a person on a laptop needs: all three on, Opus VOIP at 32 kbit/s
  // (libwebrtc's defaults). Both keep speech intelligible but not its waveform: sending recorded
  // speech to a Python renderer measured similarity 0.51 (speech), 0.81 (processing off, VOIP)
  // and 0.996 (music).
  const music = params.get('audio') === 'music';
  const videoWanted = params.get('video') !== '0';
  const room = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');

  const PROTOCOL_VERSION = 1;
  const GATHER_TIMEOUT_MS = 3000; // complete SDPs: wait for ICE gathering, at most this long
  const ANSWER_TIMEOUT_MS = 10000; // publishAnswer after publishOffer
  const MUSIC_BITRATE = 64000; // bit/s
  const LEVEL_POLL_MS = 100;
  const SPEAKING_RMS = 0.01; // about -40 dBFS: above it, a participant is speaking
  const SPEAKING_HOLD_MS = 400; // keep the indicator on through short pauses
  const MAX_CHAT_ITEMS = 500;
  // What the camera is asked for (ideal, so any camera works): 640x360 at 30 fps.
  const CAMERA = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } };
  const VIDEO_SOURCES = ['camera', 'screenVideo', 'customVideo'];

  // --- state -------------------------------------------------------------------------------
  let phase = 'lobby'; // lobby | joining | joined | leaving
  let ws = null;
  let me = null; // this participant's info, from `joined`
  const people = new Map(); // id -> {info, row, speakingUntil}
  let activeSpeaker = null;
  let ctx = null; // AudioContext
  let mix = null; // GainNode: every remote track, to speakers and recorder
  let recorderNode = null;
  let recording = null; // {chunks, resolve}
  let localStream = null; // the microphone and camera tracks, one msid stream
  let micTrack = null;
  let micOn = true;
  let micAnalyser = null;
  let camTrack = null; // the camera's live track; null while stopped or absent
  let camOn = false; // whether the camera is (to be) published
  let camAvailable = null; // null: not asked yet; false: getUserMedia found no camera
  let camBusy = false; // a start/stop of the camera is under way
  let sendPc = null;
  let micTransceiver = null;
  let camTransceiver = null;
  let sendChain = Promise.resolve();
  let answerWaiter = null; // resolves with the publishAnswer SDP
  let recvPc = null;
  let recvChain = Promise.resolve();
  const remote = new Map(); // mid -> {participantId, source, trackName, track, analyser, el}
  const tiles = new Map(); // key -> {el, video, label, avatar, participantId, source, mid, local}
  let nextRequestId = 1;
  const pendingRequests = new Map(); // requestId -> callback(error)
  let levelTimer = null;
  const events = []; // a log of what happened, for tests and debugging

  function log(kind, detail) {
    events.push({ t: Date.now(), kind, detail });
    if (events.length > 1000) events.shift();
  }

  // --- UI helpers --------------------------------------------------------------------------
  function setStatus(text) {
    $('status').textContent = text;
  }

  function lobbyNote(text, isError) {
    const n = $('lobby-note');
    n.textContent = text || '';
    n.classList.toggle('error', !!isError);
  }

  function chatLine(from, text, cls) {
    const list = $('messages');
    const li = document.createElement('li');
    if (cls) li.className = cls;
    if (from) {
      const b = document.createElement('span');
      b.className = 'from';
      b.textContent = from;
      li.appendChild(b);
    }
    li.appendChild(document.createTextNode(from ? ` ${text}` : text));
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.appendChild(li);
    while (list.children.length > MAX_CHAT_ITEMS) list.removeChild(list.firstChild);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function systemLine(text) {
    chatLine('', text, 'system');
  }

  function displayName(info) {
    return (info && info.userName) || 'Guest';
  }

  // What a participant publishes, for its row: [audio names, video names].
  function mediaLabel(info) {
    const audio = [];
    const video = [];
    if (info.microphone && info.microphone.publishing) audio.push('mic');
    for (const [name, t] of Object.entries(info.customAudio || {})) {
      if (t && t.publishing) audio.push(name);
    }
    if (info.camera && info.camera.publishing) video.push('cam');
    if (info.screenVideo && info.screenVideo.publishing) video.push('screen');
    for (const [name, t] of Object.entries(info.customVideo || {})) {
      if (t && t.publishing) video.push(name);
    }
    return [audio, video];
  }

  function renderPerson(id) {
    const p = people.get(id);
    if (!p) return;
    if (!p.row) {
      p.row = document.createElement('li');
      p.row.dataset.id = id;
      p.row.innerHTML = '<span class="dot" aria-hidden="true"></span><span class="name"></span><span class="mic"></span>';
      if (me && id === me.id) $('participants').prepend(p.row);
      else $('participants').appendChild(p.row);
    }
    const isMe = me && id === me.id;
    p.row.querySelector('.name').textContent = displayName(p.info) + (isMe ? ' (you)' : '');
    const [audio, video] = isMe
      ? [micTrack && micOn ? ['mic'] : [], camTrack && camOn ? ['cam'] : []]
      : mediaLabel(p.info);
    const pubs = audio.concat(video);
    const mic = p.row.querySelector('.mic');
    mic.textContent = (pubs.length ? pubs.join(', ') + ' on' : '') +
      (audio.length ? '' : (pubs.length ? ' · mic off' : 'mic off'));
    mic.classList.toggle('off', audio.length === 0);
    p.row.classList.toggle('active', id === activeSpeaker);
    p.row.title = id === activeSpeaker ? 'active speaker' : '';
    $('count').textContent = `(${people.size})`;
  }

  function renderAll() {
    for (const id of people.keys()) renderPerson(id);
    $('count').textContent = `(${people.size})`;
    renderTiles();
  }

  // --- video tiles -------------------------------------------------------------------------
  // The name a renderer knows a video source by (daily-python's video_source): camera,
  // screenVideo, or a custom track's name.
  function rendererName(source, trackName) {
    return source === 'customVideo' ? trackName : source;
  }

  function initials(name) {
    const words = String(name).trim().split(/\s+/).filter(Boolean);
    const letters = words.slice(0, 2).map((w) => [...w][0].toUpperCase());
    return letters.join('') || '?';
  }

  const SOURCE_ORDER = { camera: 0, screenVideo: 1, customVideo: 2 };

  // The tiles there should be, in order: ours first, then everybody in the order they came;
  // each participant's video tracks (camera, screen, custom by name), or one placeholder.
  function wantedTiles() {
    const out = [];
    if (!me) return out;
    const videos = new Map();
    for (const [mid, r] of remote) {
      if (!r.participantId || !r.track || !VIDEO_SOURCES.includes(r.source)) continue;
      if (!people.has(r.participantId) || (me && r.participantId === me.id)) continue;
      if (!videos.has(r.participantId)) videos.set(r.participantId, []);
      videos.get(r.participantId).push({
        key: `v|${r.participantId}|${r.source}|${r.trackName || ''}`,
        participantId: r.participantId,
        source: rendererName(r.source, r.trackName),
        order: SOURCE_ORDER[r.source],
        mid,
        track: r.track,
        local: false,
      });
    }
    for (const id of people.keys()) {
      const isMe = id === me.id;
      let list = videos.get(id) || [];
      if (isMe && camOn && camTrack) {
        list = [{ key: 'local', participantId: id, source: 'camera', order: 0, mid: null, track: camTrack, local: true }];
      }
      list.sort((a, b) => a.order - b.order || String(a.source).localeCompare(String(b.source)));
      if (!list.length) list = [{ key: `p|${id}`, participantId: id, source: null, mid: null, track: null, local: isMe }];
      out.push(...list);
    }
    return out;
  }

  function makeTile(w) {
    const el = document.createElement('div');
    el.className = 'tile';
    const t = { el, video: null, avatar: null, label: document.createElement('div') };
    if (w.track) {
      t.video = document.createElement('video');
      t.video.autoplay = true;
      t.video.playsInline = true;
      t.video.muted = true; // sound plays through the WebAudio graph
      el.appendChild(t.video);
    } else {
      el.classList.add('placeholder');
      t.avatar = document.createElement('div');
      t.avatar.className = 'avatar';
      t.avatar.setAttribute('aria-hidden', 'true');
      el.appendChild(t.avatar);
    }
    t.label.className = 'label';
    el.appendChild(t.label);
    return t;
  }

  function renderTiles() {
    const box = $('tiles');
    const want = wantedTiles();
    const keys = new Set(want.map((w) => w.key));
    for (const [key, t] of tiles) {
      if (keys.has(key)) continue;
      if (t.video) t.video.srcObject = null;
      t.el.remove();
      tiles.delete(key);
    }
    let prev = null;
    for (const w of want) {
      let t = tiles.get(w.key);
      if (!t) {
        t = makeTile(w);
        tiles.set(w.key, t);
      }
      t.participantId = w.participantId;
      t.source = w.source;
      t.mid = w.mid;
      t.local = w.local;
      if (t.video) {
        const cur = t.video.srcObject ? t.video.srcObject.getVideoTracks()[0] : null;
        if (cur !== w.track) {
          t.video.srcObject = new MediaStream([w.track]);
          t.video.play().catch(() => {});
        }
      }
      const p = people.get(w.participantId);
      const name = displayName(p && p.info);
      let label = name + (w.local ? ' (you)' : '');
      if (w.source && w.source !== 'camera') label += ` · ${w.source === 'screenVideo' ? 'screen' : w.source}`;
      t.label.textContent = label;
      if (t.avatar) t.avatar.textContent = initials(name);
      t.el.title = label;
      t.el.dataset.participantId = w.participantId;
      t.el.dataset.source = w.source || '';
      t.el.classList.toggle('local', !!w.local);
      const next = prev ? prev.nextSibling : box.firstChild;
      if (next !== t.el) box.insertBefore(t.el, next);
      prev = t.el;
    }
    highlightTiles();
  }

  function highlightTiles() {
    for (const t of tiles.values()) {
      const active = !!activeSpeaker && t.participantId === activeSpeaker;
      if (t.el.classList.contains('active') !== active) t.el.classList.toggle('active', active);
    }
  }

  function showCall(inCall) {
    $('lobby').hidden = inCall;
    $('call').hidden = !inCall;
    $('controls').hidden = !inCall;
  }

  // --- signalling --------------------------------------------------------------------------
  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  function request(msg, done) {
    const requestId = nextRequestId++;
    pendingRequests.set(requestId, done || (() => {}));
    send({ ...msg, requestId });
  }

  function wsUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws/${encodeURIComponent(room)}`;
  }

  async function join() {
    if (phase !== 'lobby') return;
    const name = $('name').value.trim() || 'Guest';
    try { localStorage.setItem('daily-call-name', name); } catch (_) { /* private mode */ }
    phase = 'joining';
    $('join').disabled = true;
    lobbyNote('');
    setStatus('joining…');
    log('joining', name);

    // Audio first (this click is the user gesture that lets sound play).
    await startAudio();
    await openMedia();

    ws = new WebSocket(wsUrl());
    ws.onopen = () => {
      send({ type: 'join', protocolVersion: PROTOCOL_VERSION, userName: name, token: params.get('t') || null });
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      try { onMessage(msg); } catch (e) { log('handler-error', String(e)); console.error(e); }
    };
    ws.onclose = () => {
      if (phase === 'joining' || phase === 'joined') teardown('The connection to the server was lost.', true);
    };
  }

  function onMessage(msg) {
    log('message', msg.type);
    switch (msg.type) {
      case 'joined': {
        phase = 'joined';
        me = msg.participant;
        people.clear();
        $('participants').textContent = '';
        people.set(me.id, { info: me, row: null, speakingUntil: 0 });
        for (const p of msg.participants) people.set(p.id, { info: p, row: null, speakingUntil: 0 });
        showCall(true);
        setStatus('in the call');
        renderAll();
        systemLine(`You joined ${room}.`);
        levelTimer = setInterval(pollLevels, LEVEL_POLL_MS);
        if (micTrack || (camOn && camTrack)) publish();
        break;
      }
      case 'participantJoined':
        people.set(msg.participant.id, { info: msg.participant, row: null, speakingUntil: 0 });
        renderPerson(msg.participant.id);
        renderTiles();
        systemLine(`${displayName(msg.participant)} joined.`);
        break;
      case 'participantUpdated': {
        const p = people.get(msg.participant.id);
        if (p) {
          const renamed = p.info.userName !== msg.participant.userName;
          const old = displayName(p.info);
          p.info = msg.participant;
          if (me && msg.participant.id === me.id) me = msg.participant;
          else if (renamed) systemLine(`${old} is now ${displayName(msg.participant)}.`);
          renderPerson(msg.participant.id);
          if (renamed) renderTiles();
        }
        break;
      }
      case 'participantLeft': {
        const p = people.get(msg.participant.id);
        if (p && p.row) p.row.remove();
        people.delete(msg.participant.id);
        renderAll();
        systemLine(`${displayName(msg.participant)} left.`);
        break;
      }
      case 'activeSpeaker': {
        const old = activeSpeaker;
        activeSpeaker = msg.participantId;
        if (old) renderPerson(old);
        if (activeSpeaker) renderPerson(activeSpeaker);
        highlightTiles();
        break;
      }
      case 'appMessage':
        onAppMessage(msg.data, msg.from);
        break;
      case 'reply': {
        const done = pendingRequests.get(msg.requestId);
        pendingRequests.delete(msg.requestId);
        if (done) done(msg.error);
        break;
      }
      case 'publishAnswer':
        if (answerWaiter) answerWaiter(msg.sdp);
        answerWaiter = null;
        break;
      case 'subscribeOffer':
        recvChain = recvChain.then(() => onSubscribeOffer(msg)).catch((e) => {
          log('subscribe-error', String(e));
          systemLine(`Could not receive audio and video: ${e}`);
        });
        break;
      case 'participantCounts':
        break;
      case 'error':
        log('server-error', msg.message);
        if (msg.fatal) teardown(`The server closed the call: ${msg.message}`, true);
        else systemLine(`Server: ${msg.message}`);
        break;
      case 'callEnded':
        teardown(`The call ended: ${msg.reason}`, false);
        break;
      case 'left':
        break;
      default:
        break; // newer servers may send more; ignore what we do not know
    }
  }

  // --- chat (app messages) ----------------------------------------------------------------
  function onAppMessage(data, from) {
    const sender = people.get(from);
    const senderName = sender ? displayName(sender.info) : 'someone';
    if (typeof data === 'string') {
      chatLine(senderName, data);
    } else if (data && typeof data === 'object' && typeof data.message === 'string') {
      chatLine(typeof data.name === 'string' && data.name ? data.name : senderName, data.message);
    } else {
      chatLine(senderName, JSON.stringify(data), 'raw');
    }
    log('app-message', { data, from });
  }

  function sendChat(text) {
    text = String(text).trim();
    if (!text || phase !== 'joined') return false;
    const data = { event: 'chat-msg', message: text, name: displayName(me), room: 'main-room' };
    request({ type: 'appMessage', data, to: null }, (error) => {
      if (error) systemLine(`Message not sent: ${error}`);
    });
    chatLine(`${displayName(me)} (you)`, text);
    return true;
  }

  // --- audio: context, microphone, levels, recorder ---------------------------------------
  async function startAudio() {
    if (!ctx) {
      ctx = new AudioContext({ latencyHint: 'interactive' });
      mix = ctx.createGain();
      mix.connect(ctx.destination);
      try {
        await ctx.audioWorklet.addModule('/assets/recorder.js');
        recorderNode = new AudioWorkletNode(ctx, 'call-recorder', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit' });
        recorderNode.port.onmessage = onRecorderData;
        mix.connect(recorderNode);
      } catch (e) {
        log('recorder-unavailable', String(e));
      }
    }
    try { await ctx.resume(); } catch (_) { /* needs a gesture */ }
    $('audio-unlock').hidden = ctx.state === 'running';
  }

  // The microphone and, unless video=0, the camera: asked for together (one permission prompt),
  // then each alone when that fails, so a machine without a camera joins with audio only and
  // one without a microphone still sends video.
  async function openMedia() {
    micTrack = null;
    camTrack = null;
    camOn = false;
    localStream = new MediaStream();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      systemLine('The browser allows the microphone and camera only on https:// or localhost pages; you can listen, watch and chat.');
      updateMicButton();
      updateCameraButton();
      return;
    }
    const audio = { echoCancellation: !music, noiseSuppression: !music, autoGainControl: !music };
    let both = null;
    if (videoWanted) {
      try {
        both = await navigator.mediaDevices.getUserMedia({ audio, video: CAMERA });
      } catch (e) {
        log('camera-and-microphone-unavailable', String(e));
      }
    }
    if (both) {
      micTrack = both.getAudioTracks()[0] || null;
      useCamera(both.getVideoTracks()[0] || null);
    } else {
      try {
        micTrack = (await navigator.mediaDevices.getUserMedia({ audio, video: false })).getAudioTracks()[0] || null;
      } catch (e) {
        log('microphone-unavailable', String(e));
        systemLine(`No microphone (${e.name || e}); you can listen and chat.`);
      }
      if (videoWanted) {
        try {
          useCamera((await navigator.mediaDevices.getUserMedia({ audio: false, video: CAMERA })).getVideoTracks()[0] || null);
        } catch (e) {
          log('camera-unavailable', String(e));
          camAvailable = false;
          systemLine(`No camera (${e.name || e}); you join with audio only.`);
        }
      }
    }
    micOn = true;
    if (micTrack) {
      localStream.addTrack(micTrack);
      if (ctx) {
        micAnalyser = ctx.createAnalyser();
        micAnalyser.fftSize = 1024;
        ctx.createMediaStreamSource(new MediaStream([micTrack])).connect(micAnalyser);
      }
    }
    updateMicButton();
    updateCameraButton();
  }

  // Takes a camera track into use (published on the next offer).
  function useCamera(track) {
    camTrack = track;
    camOn = !!track;
    if (!track) return;
    camAvailable = true;
    for (const t of localStream.getVideoTracks()) localStream.removeTrack(t);
    localStream.addTrack(track);
    // A camera that goes away (unplugged, permission revoked) is a stopped camera.
    track.addEventListener('ended', () => {
      if (camTrack !== track) return;
      log('camera-ended', track.id);
      systemLine('The camera stopped.');
      camTrack = null;
      camOn = false;
      afterCameraChange();
    });
  }

  function afterCameraChange() {
    updateCameraButton();
    renderTiles();
    if (me) renderPerson(me.id);
    return publish();
  }

  // Stops or starts the camera. Stopped, the camera is released (its light goes off) and its
  // m-line re-offered `inactive` without the track, so others see the camera go off; started,
  // getUserMedia opens it again and the same transceiver sends the new track.
  async function toggleCamera() {
    if (camBusy || phase !== 'joined') return;
    camBusy = true;
    updateCameraButton();
    try {
      if (camOn && camTrack) {
        const t = camTrack;
        camTrack = null;
        camOn = false;
        t.stop();
        await afterCameraChange();
        return;
      }
      let track = null;
      try {
        track = (await navigator.mediaDevices.getUserMedia({ audio: false, video: CAMERA })).getVideoTracks()[0] || null;
      } catch (e) {
        log('camera-unavailable', String(e));
        systemLine(`No camera (${e.name || e}).`);
      }
      if (!track || phase !== 'joined') {
        if (track) track.stop();
        return;
      }
      useCamera(track);
      await afterCameraChange();
    } finally {
      camBusy = false;
      updateCameraButton();
    }
  }

  function updateCameraButton() {
    const b = $('camera');
    const possible = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) && camAvailable !== false;
    const on = camOn && !!camTrack;
    b.disabled = !possible || camBusy;
    b.textContent = possible ? (on ? 'Stop camera' : 'Start camera') : 'No camera';
    b.setAttribute('aria-pressed', String(on));
  }

  function updateMicButton() {
    const b = $('mic');
    b.disabled = !micTrack;
    b.textContent = micTrack ? (micOn ? 'Mute' : 'Unmute') : 'No microphone';
    b.setAttribute('aria-pressed', String(!!micTrack && micOn));
  }

  function rms(analyser) {
    const buf = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  }

  function pollLevels() {
    const now = performance.now();
    const loud = new Set();
    if (me && micAnalyser && micOn && rms(micAnalyser) > SPEAKING_RMS) loud.add(me.id);
    for (const r of remote.values()) {
      if (r.participantId && r.analyser && rms(r.analyser) > SPEAKING_RMS) loud.add(r.participantId);
    }
    for (const [id, p] of people) {
      if (loud.has(id)) p.speakingUntil = now + SPEAKING_HOLD_MS;
      const speaking = p.speakingUntil > now;
      if (p.row && p.row.classList.contains('speaking') !== speaking) p.row.classList.toggle('speaking', speaking);
    }
    for (const t of tiles.values()) {
      const p = people.get(t.participantId);
      const speaking = !!p && p.speakingUntil > now;
      if (t.el.classList.contains('speaking') !== speaking) t.el.classList.toggle('speaking', speaking);
    }
  }

  function onRecorderData(ev) {
    if (!recording) return;
    if (ev.data.block) recording.chunks.push(ev.data.block);
    if (ev.data.done) {
      recording.chunks.push(ev.data.tail);
      const r = recording;
      recording = null;
      r.resolve(r.chunks);
    }
  }

  function startRecording() {
    if (!recorderNode) throw new Error('recording needs AudioWorklet');
    if (recording) throw new Error('already recording');
    recording = { chunks: [], resolve: null };
    recorderNode.port.postMessage('start');
  }

  // Stops the recorder: {sampleRate (Hz), frames, pcm: base64 of 16-bit little-endian mono}.
  function stopRecording() {
    if (!recording) return Promise.reject(new Error('not recording'));
    const done = new Promise((resolve) => { recording.resolve = resolve; });
    recorderNode.port.postMessage('stop');
    return done.then((chunks) => {
      let n = 0;
      for (const c of chunks) n += c.length;
      const pcm = new Int16Array(n);
      let i = 0;
      for (const c of chunks) {
        for (let k = 0; k < c.length; k++) {
          const v = Math.max(-1, Math.min(1, c[k]));
          pcm[i++] = v < 0 ? v * 32768 : v * 32767;
        }
      }
      return { sampleRate: ctx.sampleRate, frames: n, pcm: base64(new Uint8Array(pcm.buffer)) };
    });
  }

  function base64(bytes) {
    let bin = '';
    for (let k = 0; k < bytes.length; k += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
    return btoa(bin);
  }

  // --- video for tests: what each remote tile shows, and its current frame -----------------
  // One entry per remote video tile: {participantId, source, mid, width, height (the decoded
  // size the <video> element has), framesDecoded (the receiver's inbound-rtp statistics; they
  // count from the m-line's first use), framesShown (getVideoPlaybackQuality)}.
  async function videoTiles() {
    const out = [];
    for (const t of [...tiles.values()]) {
      if (!t.video || t.local) continue;
      let framesDecoded = null;
      const tr = recvPc ? recvPc.getTransceivers().find((x) => x.mid === t.mid) : null;
      if (tr) {
        const stats = await tr.receiver.getStats();
        stats.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded = s.framesDecoded;
        });
      }
      const q = t.video.getVideoPlaybackQuality ? t.video.getVideoPlaybackQuality() : null;
      out.push({
        participantId: t.participantId,
        source: t.source,
        mid: t.mid,
        width: t.video.videoWidth,
        height: t.video.videoHeight,
        framesDecoded,
        framesShown: q ? q.totalVideoFrames - q.droppedVideoFrames : null,
      });
    }
    return out;
  }

  // How our camera is being sent: the video outbound-rtp statistics (frameWidth, frameHeight,
  // framesEncoded, framesPerSecond, qualityLimitationReason, targetBitrate, ...) and the
  // transport's availableOutgoingBitrate (the bandwidth estimate), or null without a camera.
  async function sendStats() {
    if (!sendPc || !camTransceiver) return null;
    const out = {};
    (await sendPc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') Object.assign(out, s);
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) {
        out.availableOutgoingBitrate = s.availableOutgoingBitrate;
      }
    });
    return out;
  }

  // The tile's current frame as {width, height, rgba: base64 of width*height*4 bytes}, or null
  // while it has none; the local preview (our participant id, "camera") unmirrored.
  function grabFrame(participantId, source) {
    const t = [...tiles.values()].find((x) => x.video && x.participantId === participantId && x.source === source);
    if (!t) throw new Error(`no video tile for ${participantId} ${source}`);
    const w = t.video.videoWidth;
    const h = t.video.videoHeight;
    if (!w || !h) return null;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(t.video, 0, 0, w, h);
    return { width: w, height: h, rgba: base64(new Uint8Array(g.getImageData(0, 0, w, h).data.buffer)) };
  }

  // --- WebRTC ------------------------------------------------------------------------------
  function waitGathering(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, GATHER_TIMEOUT_MS);
      function done() {
        clearTimeout(t);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
      function check() { if (pc.iceGatheringState === 'complete') done(); }
      pc.addEventListener('icegatheringstatechange', check);
    });
  }

  function newPeerConnection(label) {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    pc.addEventListener('connectionstatechange', () => {
      log(`${label}-connection`, pc.connectionState);
      if (pc.connectionState === 'failed' && phase === 'joined') systemLine(`The ${label} connection failed; leave and join again.`);
    });
    return pc;
  }

  // The server forwards VP8 only (docs/signalling.md): offer it alone on the camera's m-line,
  // with its retransmission format (RTX, RFC 4588).
  function preferVp8(transceiver) {
    if (!transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
    const caps = RTCRtpReceiver.getCapabilities('video');
    const codecs = caps ? caps.codecs : [];
    const vp8 = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/vp8');
    const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
    if (vp8.length) transceiver.setCodecPreferences(vp8.concat(rtx));
  }

  // Sends a (re-)offer for the send transport and applies the answer; serialised on sendChain.
  // Reads the microphone and camera state when it runs, so toggles in a row need one offer.
  function publish() {
    sendChain = sendChain.then(async () => {
      if (phase !== 'joined') return;
      const camLive = camOn && !!camTrack;
      if (!sendPc && !micTrack && !camLive) return; // nothing to publish yet
      if (!sendPc) sendPc = newPeerConnection('send');
      if (micTrack && !micTransceiver) {
        micTransceiver = sendPc.addTransceiver(micTrack, { direction: 'sendonly', streams: [localStream] });
      }
      if (camLive && !camTransceiver) {
        camTransceiver = sendPc.addTransceiver(camTrack, { direction: 'sendonly', streams: [localStream] });
        preferVp8(camTransceiver);
      }
      if (micTransceiver) micTransceiver.direction = micOn ? 'sendonly' : 'inactive';
      if (camTransceiver) {
        const want = camLive ? camTrack : null;
        if (camTransceiver.sender.track !== want) await camTransceiver.sender.replaceTrack(want);
        camTransceiver.direction = camLive ? 'sendonly' : 'inactive';
      }
      const offer = await sendPc.createOffer();
      await sendPc.setLocalDescription(offer);
      await waitGathering(sendPc);
      const answer = new Promise((resolve, reject) => {
        answerWaiter = resolve;
        setTimeout(() => reject(new Error('no publishAnswer from the server')), ANSWER_TIMEOUT_MS);
      });
      const tracks = [];
      if (micTransceiver && micOn) tracks.push({ mid: micTransceiver.mid, trackId: micTrack.id, source: 'microphone' });
      if (camTransceiver && camLive) tracks.push({ mid: camTransceiver.mid, trackId: camTrack.id, source: 'camera' });
      send({ type: 'publishOffer', sdp: sendPc.localDescription.sdp, tracks });
      const sdp = await answer;
      if (phase !== 'joined' || !sendPc) return;
      await sendPc.setRemoteDescription({ type: 'answer', sdp: musicAnswer(sdp) });
      log('published', tracks.map((t) => t.source));
      if (me) renderPerson(me.id);
    }).catch((e) => {
      log('publish-error', String(e));
      systemLine(`Could not send your microphone or camera: ${e.message || e}`);
    });
    return sendChain;
  }

  // In music mode, asks libwebrtc (through the answer's Opus fmtp, RFC 7587 section 6.1) for
  // stereo at MUSIC_BITRATE: it encodes stereo with the Opus AUDIO application, mono with VOIP.
  // The mono microphone is sent in both channels; receivers downmix.
  function musicAnswer(sdp) {
    if (!music) return sdp;
    const pts = [...sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000/gim)].map((m) => m[1]);
    let out = sdp;
    for (const pt of pts) {
      out = out.replace(new RegExp(`^(a=fmtp:${pt} )(.*)$`, 'gm'), (line, head, tail) =>
        `${head}${tail.replace(/;?(stereo|maxaveragebitrate)=[^;]*/gi, '')};stereo=1;maxaveragebitrate=${MUSIC_BITRATE}`);
    }
    return out;
  }

  function toggleMic() {
    if (!micTrack) return;
    micOn = !micOn;
    micTrack.enabled = micOn; // silent at once, before the renegotiation completes
    updateMicButton();
    if (me) renderPerson(me.id);
    return publish();
  }

  async function onSubscribeOffer(msg) {
    if (phase !== 'joined') return;
    if (!recvPc) {
      recvPc = newPeerConnection('receive');
      recvPc.addEventListener('track', (ev) => attachRemote(ev.transceiver.mid, ev.track));
    }
    await recvPc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    // The mapping in this offer is authoritative: m-lines left out carry nothing.
    const listed = new Map(msg.tracks.map((t) => [t.mid, t]));
    for (const [mid, r] of remote) {
      const t = listed.get(mid);
      r.participantId = t ? t.participantId : null;
      r.source = t ? t.source : null;
      r.trackName = t ? t.trackName || null : null;
    }
    for (const t of msg.tracks) {
      if (!remote.has(t.mid)) {
        remote.set(t.mid, { participantId: t.participantId, source: t.source, trackName: t.trackName || null, track: null, analyser: null, el: null });
      }
    }
    // Each m-line's receiver has its track from the remote description on (the same track for
    // the m-line's life, whoever it carries): video tiles need not wait for the track event.
    for (const tr of recvPc.getTransceivers()) {
      const r = tr.mid !== null ? remote.get(tr.mid) : null;
      if (r && !r.track) r.track = tr.receiver.track;
    }
    renderTiles();
    const answer = await recvPc.createAnswer();
    await recvPc.setLocalDescription(answer);
    await waitGathering(recvPc);
    send({ type: 'subscribeAnswer', sdp: recvPc.localDescription.sdp });
    log('subscribed', msg.tracks.map((t) => t.mid));
  }

  function attachRemote(mid, track) {
    let r = remote.get(mid);
    if (!r) {
      r = { participantId: null, source: null, trackName: null, track: null, analyser: null, el: null };
      remote.set(mid, r);
    }
    r.track = track;
    if (track.kind === 'video') {
      renderTiles(); // a <video> per tile plays it
      return;
    }
    if (r.el) return; // m-lines are reused: the receiver's track stays the same
    const stream = new MediaStream([track]);
    // Chrome delivers a remote track to WebAudio only while a media element plays it too;
    // the element is muted and the sound comes out of the WebAudio graph.
    r.el = new Audio();
    r.el.muted = true;
    r.el.srcObject = stream;
    r.el.play().catch(() => {});
    const src = ctx.createMediaStreamSource(stream);
    r.analyser = ctx.createAnalyser();
    r.analyser.fftSize = 1024;
    src.connect(r.analyser);
    src.connect(mix);
    log('remote-track', mid);
  }

  // --- leaving -----------------------------------------------------------------------------
  function teardown(note, isError) {
    if (phase === 'lobby') return;
    phase = 'lobby';
    if (levelTimer) clearInterval(levelTimer);
    levelTimer = null;
    if (ws) {
      ws.onclose = null;
      try { ws.close(); } catch (_) { /* already closed */ }
    }
    ws = null;
    for (const pc of [sendPc, recvPc]) if (pc) pc.close();
    sendPc = recvPc = micTransceiver = camTransceiver = null;
    sendChain = recvChain = Promise.resolve();
    answerWaiter = null;
    for (const r of remote.values()) if (r.el) r.el.srcObject = null;
    remote.clear();
    for (const t of tiles.values()) if (t.video) t.video.srcObject = null;
    tiles.clear();
    $('tiles').textContent = '';
    if (localStream) for (const t of localStream.getTracks()) t.stop();
    if (camTrack) camTrack.stop();
    localStream = micTrack = micAnalyser = camTrack = null;
    camOn = false;
    camBusy = false;
    pendingRequests.clear();
    people.clear();
    me = null;
    activeSpeaker = null;
    $('participants').textContent = '';
    $('messages').textContent = '';
    showCall(false);
    $('join').disabled = false;
    setStatus('not in the call');
    lobbyNote(note, isError);
    log('left', note);
  }

  function leave() {
    if (phase !== 'joined' && phase !== 'joining') return;
    phase = 'leaving';
    send({ type: 'leave' });
    teardown('You left the call.', false);
  }

  // --- wiring ------------------------------------------------------------------------------
  $('room-title').textContent = room || 'Call';
  document.title = `${room} · call`;
  let stored = '';
  try { stored = localStorage.getItem('daily-call-name') || ''; } catch (_) { /* private mode */ }
  $('name').value = params.get('name') || stored;
  $('join-form').addEventListener('submit', (ev) => { ev.preventDefault(); join(); });
  $('chat-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (sendChat($('chat-input').value)) $('chat-input').value = '';
  });
  $('mic').addEventListener('click', toggleMic);
  $('camera').addEventListener('click', toggleCamera);
  $('leave').addEventListener('click', leave);
  $('audio-unlock').addEventListener('click', startAudio);
  window.addEventListener('pagehide', () => { if (phase === 'joined') send({ type: 'leave' }); });

  window.callPage = {
    get phase() { return phase; },
    get participantId() { return me ? me.id : null; },
    get micOn() { return !!micTrack && micOn; },
    get cameraOn() { return !!camTrack && camOn; },
    get activeSpeaker() { return activeSpeaker; }, // the server's, by participant id
    get audioState() { return ctx ? ctx.state : 'none'; },
    participants: () => [...people.values()].map((p) => p.info),
    speaking: () => [...people.entries()].filter(([, p]) => p.speakingUntil > performance.now()).map(([id]) => id),
    remoteTracks: () => [...remote.entries()].map(([mid, r]) => ({ mid, participantId: r.participantId, source: r.source, trackName: r.trackName })),
    // Every tile in order: {participantId, source (null for a placeholder), video, local, active}.
    tiles: () => [...$('tiles').children].map((el) => {
      const t = [...tiles.values()].find((x) => x.el === el);
      return { participantId: t.participantId, source: t.source, video: !!t.video, local: !!t.local, active: el.classList.contains('active') };
    }),
    videoTiles,
    grabFrame,
    sendStats,
    // Our camera as sent: {on, width, height} (the track's settings).
    localVideo: () => {
      const st = camTrack ? camTrack.getSettings() : {};
      return { on: !!camTrack && camOn, width: st.width || 0, height: st.height || 0 };
    },
    events,
    join,
    leave,
    sendChat,
    toggleMic,
    toggleCamera,
    startRecording,
    stopRecording,
  };

  if (params.get('autojoin') === '1') join();
})();
