// live.js — the page's "Live" mode: microphone → 24 kHz PCM16 → /v1/realtime WebSocket; transcripts shown as they arrive.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const startBtn = $('live-start');
  const statusLine = $('live-status');
  const list = $('live-transcript');
  const errorBox = $('live-error');
  if (!startBtn) return;

  let ws = null, ctx = null, source = null, proc = null, stream = null;
  let pending = [], pendingLen = 0;
  const items = new Map(); // item_id → <li>

  function setStatus(text) { statusLine.textContent = text; }
  function showError(text) { errorBox.textContent = text; errorBox.hidden = !text; }

  function itemNode(id) {
    let li = items.get(id);
    if (!li) {
      li = document.createElement('li');
      li.dataset.item = id;
      li.className = 'live-partial';
      list.appendChild(li);
      items.set(id, li);
    }
    return li;
  }

  function toBase64(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  }

  // ~100 ms of 24 kHz samples per append event
  function flush() {
    if (!ws || ws.readyState !== WebSocket.OPEN || pendingLen === 0) return;
    const pcm = new Int16Array(pendingLen);
    let o = 0;
    for (const chunk of pending) {
      for (let i = 0; i < chunk.length; i++) {
        const s = Math.max(-1, Math.min(1, chunk[i]));
        pcm[o++] = s < 0 ? s * 32768 : s * 32767;
      }
    }
    pending = []; pendingLen = 0;
    ws.send(JSON.stringify({ type: 'input_audio_buffer.append', audio: toBase64(new Uint8Array(pcm.buffer)) }));
  }

  function onEvent(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    switch (msg.type) {
    case 'session.created':
    case 'transcription_session.created':
      setStatus('Connected: listening…');
      break;
    case 'input_audio_buffer.speech_started':
      setStatus('Hearing speech…');
      itemNode(msg.item_id);
      break;
    case 'input_audio_buffer.speech_stopped':
      setStatus('Transcribing…');
      break;
    case 'conversation.item.input_audio_transcription.delta':
      itemNode(msg.item_id).textContent += msg.delta; // append-only: the deltas concatenate to the transcript
      break;
    case 'conversation.item.input_audio_transcription.completed': {
      const li = itemNode(msg.item_id);
      li.textContent = msg.transcript;
      li.className = 'live-final';
      if (!msg.transcript) li.remove();
      setStatus('Listening…');
      break;
    }
    case 'conversation.item.input_audio_transcription.failed':
    case 'error':
      showError((msg.error && msg.error.message) || 'error from the server');
      break;
    default: break;
    }
  }

  async function start() {
    showError('');
    const lang = $('language') ? $('language').value : '';
    const key = $('key') ? $('key').value.trim() : '';
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
    } catch (e) {
      showError('No microphone: ' + e.message);
      return;
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const protocols = ['realtime'];
    if (key) protocols.push('openai-insecure-api-key.' + key);
    ws = new WebSocket(scheme + '//' + location.host + '/v1/realtime?intent=transcription', protocols);
    ws.addEventListener('message', onEvent);
    ws.addEventListener('close', (ev) => {
      if (ev.code !== 1000 && ev.code !== 1005) showError('Connection closed: ' + (ev.reason || ev.code));
      stop();
    });
    ws.addEventListener('error', () => showError('Could not connect to the realtime endpoint (check the API key).'));
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({
        type: 'transcription_session.update',
        session: {
          input_audio_format: 'pcm16',
          input_audio_transcription: { model: 'whisper-1', language: lang || null },
          turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 700 },
        },
      }));
    });
    ctx = new AudioContext({ sampleRate: 24000 }); // the browser resamples the microphone
    source = ctx.createMediaStreamSource(stream);
    proc = ctx.createScriptProcessor(2048, 1, 1);
    proc.onaudioprocess = (e) => {
      pending.push(new Float32Array(e.inputBuffer.getChannelData(0)));
      pendingLen += e.inputBuffer.length;
      if (pendingLen >= 2400) flush();
    };
    source.connect(proc);
    proc.connect(ctx.destination);
    startBtn.textContent = 'Stop live';
    startBtn.setAttribute('aria-pressed', 'true');
    setStatus('Connecting…');
  }

  function stop() {
    if (proc) { proc.disconnect(); proc.onaudioprocess = null; proc = null; }
    if (source) { source.disconnect(); source = null; }
    if (ctx) { ctx.close(); ctx = null; }
    if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
    if (ws) {
      const w = ws;
      ws = null;
      if (w.readyState === WebSocket.OPEN) w.close(1000, 'done');
    }
    pending = []; pendingLen = 0;
    startBtn.textContent = 'Start live';
    startBtn.setAttribute('aria-pressed', 'false');
    if (!statusLine.textContent.startsWith('Stopped')) setStatus('Stopped.');
  }

  startBtn.addEventListener('click', () => { if (ws) stop(); else start(); });
})();
