// The call page served by daily-server at GET /{room}: joins the room with the browser's own
// WebRTC, speaking the signalling protocol of docs/signalling.md over /ws/{room}.
//
// - send transport: one RTCPeerConnection that offers the microphone (publishOffer /
//   publishAnswer); muting sets the transceiver `inactive` and re-offers without the track, so
//   other participants see the microphone go off, as with the Python SDK's update_inputs;
// - receive transport: the server offers one m-line per remote track (subscribeOffer); the
//   mid -> participant mapping of the last offer is authoritative, and m-lines are reused;
// - remote audio plays through one WebAudio graph (every remote track -> mix -> speakers), which
//   also measures each participant's level for the speaking indicator and can record the mix;
// - chat is app messages shaped as Daily Prebuilt's ({event: "chat-msg", message, name, room}),
//   so send_app_message / on_app_message on the Python side see the same dicts.
//
// Query parameters: name=NAME, autojoin=1 (join without clicks), t=TOKEN (a meeting token),
// audio=music (the microphone unprocessed, high-fidelity Opus; see `music` below).
// window.callPage exposes the state and a recorder for tests and debugging.
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
  const room = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');

  const PROTOCOL_VERSION = 1;
  const GATHER_TIMEOUT_MS = 3000; // complete SDPs: wait for ICE gathering, at most this long
  const ANSWER_TIMEOUT_MS = 10000; // publishAnswer after publishOffer
  const MUSIC_BITRATE = 64000; // bit/s
  const LEVEL_POLL_MS = 100;
  const SPEAKING_RMS = 0.01; // about -40 dBFS: above it, a participant is speaking
  const SPEAKING_HOLD_MS = 400; // keep the indicator on through short pauses
  const MAX_CHAT_ITEMS = 500;

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
  let micStream = null;
  let micTrack = null;
  let micOn = true;
  let micAnalyser = null;
  let sendPc = null;
  let sendTransceiver = null;
  let sendChain = Promise.resolve();
  let answerWaiter = null; // resolves with the publishAnswer SDP
  let recvPc = null;
  let recvChain = Promise.resolve();
  const remote = new Map(); // mid -> {participantId, source, analyser, el}
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

  function micLabel(info) {
    const pubs = [];
    if (info.microphone && info.microphone.publishing) pubs.push('mic');
    for (const [name, t] of Object.entries(info.customAudio || {})) {
      if (t && t.publishing) pubs.push(name);
    }
    return pubs;
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
    const pubs = isMe ? (micTrack && micOn ? ['mic'] : []) : micLabel(p.info);
    const mic = p.row.querySelector('.mic');
    mic.textContent = pubs.length ? pubs.join(', ') + ' on' : 'mic off';
    mic.classList.toggle('off', pubs.length === 0);
    p.row.classList.toggle('active', id === activeSpeaker);
    p.row.title = id === activeSpeaker ? 'active speaker' : '';
    $('count').textContent = `(${people.size})`;
  }

  function renderAll() {
    for (const id of people.keys()) renderPerson(id);
    $('count').textContent = `(${people.size})`;
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
    await openMicrophone();

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
        if (micTrack) publish();
        break;
      }
      case 'participantJoined':
        people.set(msg.participant.id, { info: msg.participant, row: null, speakingUntil: 0 });
        renderPerson(msg.participant.id);
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
          systemLine(`Could not receive audio: ${e}`);
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

  async function openMicrophone() {
    micTrack = null;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      systemLine('The browser allows the microphone only on https:// or localhost pages; you can listen and chat.');
      return;
    }
    try {
      micStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: !music, noiseSuppression: !music, autoGainControl: !music },
        video: false,
      });
      micTrack = micStream.getAudioTracks()[0] || null;
      micOn = true;
      if (micTrack && ctx) {
        micAnalyser = ctx.createAnalyser();
        micAnalyser.fftSize = 1024;
        ctx.createMediaStreamSource(micStream).connect(micAnalyser);
      }
    } catch (e) {
      log('microphone-unavailable', String(e));
      systemLine(`No microphone (${e.name || e}); you can listen and chat.`);
    }
    updateMicButton();
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
      const bytes = new Uint8Array(pcm.buffer);
      let bin = '';
      for (let k = 0; k < bytes.length; k += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
      return { sampleRate: ctx.sampleRate, frames: n, pcm: btoa(bin) };
    });
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

  // Sends a (re-)offer for the send transport and applies the answer; serialised on sendChain.
  function publish() {
    sendChain = sendChain.then(async () => {
      if (phase !== 'joined' || !micTrack) return;
      if (!sendPc) {
        sendPc = newPeerConnection('send');
        sendTransceiver = sendPc.addTransceiver(micTrack, { direction: 'sendonly', streams: [micStream] });
      }
      sendTransceiver.direction = micOn ? 'sendonly' : 'inactive';
      const offer = await sendPc.createOffer();
      await sendPc.setLocalDescription(offer);
      await waitGathering(sendPc);
      const answer = new Promise((resolve, reject) => {
        answerWaiter = resolve;
        setTimeout(() => reject(new Error('no publishAnswer from the server')), ANSWER_TIMEOUT_MS);
      });
      const tracks = micOn ? [{ mid: sendTransceiver.mid, trackId: micTrack.id, source: 'microphone' }] : [];
      send({ type: 'publishOffer', sdp: sendPc.localDescription.sdp, tracks });
      const sdp = await answer;
      if (phase !== 'joined' || !sendPc) return;
      await sendPc.setRemoteDescription({ type: 'answer', sdp: musicAnswer(sdp) });
      log('published', micOn);
      if (me) renderPerson(me.id);
    }).catch((e) => {
      log('publish-error', String(e));
      systemLine(`Could not send your microphone: ${e.message || e}`);
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
    }
    for (const t of msg.tracks) {
      if (!remote.has(t.mid)) remote.set(t.mid, { participantId: t.participantId, source: t.source, analyser: null, el: null });
    }
    const answer = await recvPc.createAnswer();
    await recvPc.setLocalDescription(answer);
    await waitGathering(recvPc);
    send({ type: 'subscribeAnswer', sdp: recvPc.localDescription.sdp });
    log('subscribed', msg.tracks.map((t) => t.mid));
  }

  function attachRemote(mid, track) {
    let r = remote.get(mid);
    if (!r) {
      r = { participantId: null, source: null, analyser: null, el: null };
      remote.set(mid, r);
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
    sendPc = recvPc = sendTransceiver = null;
    sendChain = recvChain = Promise.resolve();
    answerWaiter = null;
    for (const r of remote.values()) if (r.el) r.el.srcObject = null;
    remote.clear();
    if (micStream) for (const t of micStream.getTracks()) t.stop();
    micStream = micTrack = micAnalyser = null;
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
  $('leave').addEventListener('click', leave);
  $('audio-unlock').addEventListener('click', startAudio);
  window.addEventListener('pagehide', () => { if (phase === 'joined') send({ type: 'leave' }); });

  window.callPage = {
    get phase() { return phase; },
    get participantId() { return me ? me.id : null; },
    get micOn() { return !!micTrack && micOn; },
    get audioState() { return ctx ? ctx.state : 'none'; },
    participants: () => [...people.values()].map((p) => p.info),
    speaking: () => [...people.entries()].filter(([, p]) => p.speakingUntil > performance.now()).map(([id]) => id),
    remoteTracks: () => [...remote.entries()].map(([mid, r]) => ({ mid, participantId: r.participantId, source: r.source })),
    events,
    join,
    leave,
    sendChat,
    toggleMic,
    startRecording,
    stopRecording,
  };

  if (params.get('autojoin') === '1') join();
})();
