// app.js — the browser page of `asr serve`: upload or record audio, stream the transcript, play it back, download it.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $('form'), fileInput = $('file'), recordBtn = $('record'), recordStatus = $('record-status');
  const modelSel = $('model'), langSel = $('language'), formatSel = $('format'), formatHelp = $('format-help');
  const liveBox = $('live'), wordsBox = $('words'), keyInput = $('key');
  const submitBtn = $('submit'), cancelBtn = $('cancel');
  const errorBox = $('error'), statusLine = $('status'), player = $('player'), list = $('transcript');
  const transcriptHelp = $('transcript-help'), downloads = $('downloads'), rawBox = $('raw-box'), rawPre = $('raw');

  // Whisper's languages, as the server's language field takes them.
  const LANGUAGES = 'en English,zh Chinese,de German,es Spanish,ru Russian,ko Korean,fr French,ja Japanese,' +
    'pt Portuguese,tr Turkish,pl Polish,ca Catalan,nl Dutch,ar Arabic,sv Swedish,it Italian,id Indonesian,' +
    'hi Hindi,fi Finnish,vi Vietnamese,he Hebrew,uk Ukrainian,el Greek,ms Malay,cs Czech,ro Romanian,da Danish,' +
    'hu Hungarian,ta Tamil,no Norwegian,th Thai,ur Urdu,hr Croatian,bg Bulgarian,lt Lithuanian,la Latin,' +
    'mi Maori,ml Malayalam,cy Welsh,sk Slovak,te Telugu,fa Persian,lv Latvian,bn Bengali,sr Serbian,' +
    'az Azerbaijani,sl Slovenian,kn Kannada,et Estonian,mk Macedonian,br Breton,eu Basque,is Icelandic,' +
    'hy Armenian,ne Nepali,mn Mongolian,bs Bosnian,kk Kazakh,sq Albanian,sw Swahili,gl Galician,mr Marathi,' +
    'pa Punjabi,si Sinhala,km Khmer,sn Shona,yo Yoruba,so Somali,af Afrikaans,oc Occitan,ka Georgian,' +
    'be Belarusian,tg Tajik,sd Sindhi,gu Gujarati,am Amharic,yi Yiddish,lo Lao,uz Uzbek,fo Faroese,' +
    'ht Haitian Creole,ps Pashto,tk Turkmen,nn Nynorsk,mt Maltese,sa Sanskrit,lb Luxembourgish,my Myanmar,' +
    'bo Tibetan,tl Tagalog,mg Malagasy,as Assamese,tt Tatar,haw Hawaiian,ln Lingala,ha Hausa,ba Bashkir,' +
    'jw Javanese,su Sundanese,yue Cantonese';
  for (const entry of LANGUAGES.split(',')) {
    const at = entry.indexOf(' ');
    langSel.add(new Option(entry.slice(at + 1) + ' (' + entry.slice(0, at) + ')', entry.slice(0, at)));
  }

  // What the page holds: the audio to send and the last result. The API key
  // lives only in its input field, so it goes when the page does.
  let audio = null;          // {blob, name}
  let audioUrl = null;       // object URL of `audio` for the player
  let result = null;         // {text, segments: [{start, end, text, words?}], timed, raw, rawType}
  let controller = null;     // AbortController of the request in flight
  let recorder = null;       // MediaRecorder while recording
  let segmentNodes = [];
  let currentIndex = -1;

  const narrow = window.matchMedia('(max-width: 40rem)'); // style.css's one-column layout

  function authHeaders() {
    const key = keyInput.value.trim();
    return key ? { Authorization: 'Bearer ' + key } : {};
  }

  // ---- messages ------------------------------------------------------------
  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
    if (text) reveal();
  }
  // On a phone the result is below the form: bring it into view once it has something to show.
  function reveal() {
    if (narrow.matches) $('result').scrollIntoView({ block: 'start' });
  }
  function setStatus(text) { statusLine.textContent = text; }

  // The API answers errors as {"error": {"message": ...}}; anything else
  // (a proxy's page, an empty body) is described by its status.
  async function errorMessage(resp) {
    let body = '';
    try { body = await resp.text(); } catch (e) { /* the connection broke */ }
    let message = '';
    try {
      const parsed = JSON.parse(body);
      if (parsed && parsed.error && typeof parsed.error.message === 'string') message = parsed.error.message;
    } catch (e) { /* not JSON */ }
    if (!message) message = body.trim().slice(0, 300) || resp.statusText || 'no details';
    let text = 'The server answered ' + resp.status + ': ' + message;
    if (resp.status === 401) text += keyInput.value.trim() ? ' Check the API key.' : ' Enter the server\u2019s API key in the options.';
    return text;
  }

  // ---- options that depend on each other ----------------------------------
  function syncOptions() {
    const live = liveBox.checked;
    formatSel.disabled = live;
    const verbose = !live && formatSel.value === 'verbose_json';
    wordsBox.disabled = !verbose;
    if (!verbose) wordsBox.checked = false;
    formatHelp.textContent = live
      ? 'Streaming sends timed segments; turn it off to choose a format.'
      : verbose ? '' : 'Word timestamps need verbose_json.';
    const translate = form.elements.task.value === 'translate';
    langSel.disabled = translate;
  }
  liveBox.addEventListener('change', syncOptions);
  formatSel.addEventListener('change', syncOptions);
  for (const radio of form.elements.task) radio.addEventListener('change', syncOptions);
  syncOptions();

  // /v1/models names what the model field accepts; it needs the key too.
  async function loadModels() {
    try {
      const resp = await fetch('v1/models', { headers: authHeaders() });
      if (!resp.ok) return;
      const body = await resp.json();
      const ids = (body.data || []).map((m) => m.id).filter((id) => typeof id === 'string');
      if (!ids.length) return;
      const chosen = modelSel.value;
      modelSel.textContent = '';
      for (const id of ids) modelSel.add(new Option(id, id));
      if (ids.includes(chosen)) modelSel.value = chosen;
    } catch (e) { /* keep whisper-1 */ }
  }
  keyInput.addEventListener('change', loadModels);
  loadModels();

  // ---- audio: a file or a recording ---------------------------------------
  function useAudio(blob, name) {
    audio = { blob: blob, name: name };
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = URL.createObjectURL(blob);
    player.src = audioUrl;
    player.hidden = false;
  }

  fileInput.addEventListener('change', () => {
    const f = fileInput.files && fileInput.files[0];
    if (f) {
      useAudio(f, f.name);
      recordStatus.textContent = '';
    }
  });

  const canRecord = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  if (!canRecord) {
    recordBtn.disabled = true;
    recordStatus.textContent = window.isSecureContext
      ? 'This browser cannot record audio.'
      : 'Recording needs HTTPS or localhost.';
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  recordBtn.addEventListener('click', async () => {
    if (recorder) { recorder.stop(); return; }
    showError('');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      showError('The microphone is not available: ' + (e && e.message ? e.message : e));
      return;
    }
    const chunks = [];
    const started = Date.now();
    recorder = new MediaRecorder(stream);
    const ticker = setInterval(() => {
      recordStatus.textContent = 'Recording ' + clock((Date.now() - started) / 1000);
    }, 500);
    recorder.addEventListener('dataavailable', (ev) => { if (ev.data && ev.data.size) chunks.push(ev.data); });
    recorder.addEventListener('stop', () => {
      clearInterval(ticker);
      for (const track of stream.getTracks()) track.stop();
      const type = recorder.mimeType || 'audio/webm';
      recorder = null;
      recordBtn.textContent = 'Record';
      recordBtn.setAttribute('aria-pressed', 'false');
      const blob = new Blob(chunks, { type: type });
      if (!blob.size) { recordStatus.textContent = 'Nothing was recorded.'; return; }
      const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
      fileInput.value = '';
      useAudio(blob, 'recording.' + ext);
      recordStatus.textContent = 'Recording of ' + clock((Date.now() - started) / 1000) + ' ready.';
    });
    recorder.start(1000);
    recordBtn.textContent = 'Stop recording';
    recordBtn.setAttribute('aria-pressed', 'true');
    recordStatus.textContent = 'Recording 0:00';
  });

  // ---- the transcript ------------------------------------------------------
  function resetResult() {
    result = { text: '', segments: [], timed: false, raw: '', rawType: '' };
    list.textContent = '';
    segmentNodes = [];
    currentIndex = -1;
    downloads.hidden = true;
    rawBox.hidden = true;
    rawPre.textContent = '';
    transcriptHelp.hidden = true;
  }

  function addSegment(seg) {
    result.segments.push(seg);
    const index = result.segments.length - 1;
    const li = document.createElement('li');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'segment';
    if (result.timed) {
      const time = document.createElement('span');
      time.className = 'time';
      time.textContent = clock(seg.start);
      btn.append(time, ' ');
      btn.setAttribute('aria-label', 'Play from ' + clock(seg.start) + ': ' + seg.text.trim());
    } else {
      btn.disabled = true;
    }
    const text = document.createElement('span');
    text.className = 'text';
    if (seg.words && seg.words.length) {
      seg.wordNodes = seg.words.map((w, k) => {
        const span = document.createElement('span');
        span.className = 'word';
        span.textContent = k === 0 ? w.word.replace(/^\s+/, '') : w.word;
        text.append(span);
        return span;
      });
    } else {
      text.textContent = seg.text.trim();
    }
    btn.append(text);
    btn.addEventListener('click', () => seek(index));
    li.append(btn);
    list.append(li);
    segmentNodes.push(btn);
    if (index === 0) reveal();
  }

  function seek(index) {
    const seg = result && result.segments[index];
    if (!seg || !result.timed || !audioUrl) return;
    player.currentTime = seg.start;
    player.play().catch(() => { /* autoplay refused: the position is still set */ });
    highlight();
  }

  // Mark the segment (and word) under the play position.
  function highlight() {
    if (!result || !result.timed) return;
    const t = player.currentTime;
    let found = -1;
    for (let i = 0; i < result.segments.length; i++) {
      const s = result.segments[i];
      if (t >= s.start && (t < s.end || (i === result.segments.length - 1 && t <= s.end))) { found = i; break; }
    }
    if (found !== currentIndex) {
      if (currentIndex >= 0 && segmentNodes[currentIndex]) {
        segmentNodes[currentIndex].classList.remove('current');
        segmentNodes[currentIndex].removeAttribute('aria-current');
      }
      currentIndex = found;
      if (found >= 0) {
        const node = segmentNodes[found];
        node.classList.add('current');
        node.setAttribute('aria-current', 'true');
        if (!player.paused) node.scrollIntoView({ block: 'nearest' });
      }
    }
    for (const seg of result.segments) {
      if (!seg.wordNodes) continue;
      seg.words.forEach((w, k) => seg.wordNodes[k].classList.toggle('spoken', t >= w.start && t < w.end));
    }
  }
  player.addEventListener('timeupdate', highlight);
  player.addEventListener('seeked', highlight);

  function finish(text) {
    result.text = (text !== undefined ? text : result.segments.map((s) => s.text).join('')).trim();
    downloads.hidden = false;
    for (const btn of downloads.querySelectorAll('button')) {
      const needsTimes = btn.dataset.download === 'srt' || btn.dataset.download === 'vtt';
      btn.disabled = needsTimes && !result.timed;
      btn.title = btn.disabled ? 'Needs timestamps: use verbose_json, srt, vtt or streaming' : '';
    }
    transcriptHelp.hidden = !(result.timed && result.segments.length);
    if (result.raw) {
      rawPre.textContent = result.raw;
      rawBox.hidden = false;
    }
  }

  // SRT and WebVTT cues: "[index]\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext".
  function parseCues(body) {
    const cues = [];
    const stamp = /(?:(\d+):)?(\d\d):(\d\d)[.,](\d\d\d)/;
    const toSeconds = (m) => (+(m[1] || 0)) * 3600 + (+m[2]) * 60 + (+m[3]) + (+m[4]) / 1000;
    for (const block of body.replace(/\r\n/g, '\n').split(/\n\s*\n/)) {
      const lines = block.split('\n').filter((l) => l.trim());
      const at = lines.findIndex((l) => l.includes('-->'));
      if (at < 0) continue;
      const [a, b] = lines[at].split('-->');
      const ma = stamp.exec(a), mb = stamp.exec(b);
      if (!ma || !mb) continue;
      cues.push({ start: toSeconds(ma), end: toSeconds(mb), text: ' ' + lines.slice(at + 1).join(' ').trim() });
    }
    return cues;
  }

  // ---- downloads, written as the server writes them -----------------------
  function stamp(seconds, sep) {
    const ms = Math.round(Math.max(0, seconds) * 1000);
    const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
    const pad = (n, w) => String(n).padStart(w, '0');
    return pad(h, 2) + ':' + pad(m, 2) + ':' + pad(s, 2) + sep + pad(ms % 1000, 3);
  }
  function render(kind) {
    const segs = result.segments;
    const cueText = (s) => s.text.trim().split('-->').join('->');
    if (kind === 'txt') return result.text + '\n';
    if (kind === 'srt')
      return segs.map((s, i) => (i + 1) + '\n' + stamp(s.start, ',') + ' --> ' + stamp(s.end, ',') + '\n' + cueText(s) + '\n\n').join('');
    if (kind === 'vtt')
      return 'WEBVTT\n\n' + segs.map((s) => stamp(s.start, '.') + ' --> ' + stamp(s.end, '.') + '\n' + cueText(s) + '\n\n').join('');
    if (result.rawType === 'json') return result.raw;
    return JSON.stringify({
      text: result.text,
      segments: result.timed ? segs.map((s, i) => ({ id: i, start: s.start, end: s.end, text: s.text })) : undefined,
    }, null, 2) + '\n';
  }
  for (const btn of downloads.querySelectorAll('button')) {
    btn.addEventListener('click', () => {
      const kind = btn.dataset.download;
      const types = { txt: 'text/plain', srt: 'application/x-subrip', vtt: 'text/vtt', json: 'application/json' };
      const blob = new Blob([render(kind)], { type: types[kind] + ';charset=utf-8' });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = ((audio && audio.name) || 'transcript').replace(/\.[^.]*$/, '') + '.' + kind;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    });
  }

  // ---- the request ---------------------------------------------------------
  // Server-Sent Events: "data: {json}" blocks; ": ..." lines are keep-alives.
  async function readStream(resp) {
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '', done = false, raw = '';
    const handle = (block) => {
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) return;
      raw += 'data: ' + data + '\n\n';
      const ev = JSON.parse(data);
      if (ev.type === 'transcript.text.delta') {
        result.timed = typeof ev.start === 'number' && typeof ev.end === 'number';
        addSegment({ start: ev.start, end: ev.end, text: (result.segments.length ? '' : ' ') + ev.delta });
        setStatus('Transcribing\u2026 ' + (result.timed ? clock(ev.end) + ' decoded' : ''));
      } else if (ev.type === 'transcript.text.done') {
        done = true;
        result.raw = raw;
        finish(ev.text);
      } else if (ev.type === 'error') {
        done = true;
        throw new Error('The server stopped: ' + ((ev.error && ev.error.message) || 'unknown error'));
      }
    };
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += value.replace(/\r\n?/g, '\n');
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        handle(block);
      }
    }
    if (!done) throw new Error('The stream ended before the transcript was complete.');
  }

  async function readWhole(resp, format) {
    const body = await resp.text();
    result.raw = body;
    if (format === 'json' || format === 'verbose_json') {
      const parsed = JSON.parse(body);
      result.rawType = 'json';
      const segs = Array.isArray(parsed.segments) ? parsed.segments : [];
      result.timed = segs.length > 0;
      for (const s of segs) addSegment({ start: s.start, end: s.end, text: s.text, words: s.words });
      if (!segs.length && parsed.text) addSegment({ start: 0, end: 0, text: parsed.text });
      finish(parsed.text || '');
    } else if (format === 'srt' || format === 'vtt') {
      const cues = parseCues(body);
      result.timed = cues.length > 0;
      for (const c of cues) addSegment(c);
      finish();
    } else {
      if (body.trim()) addSegment({ start: 0, end: 0, text: body });
      finish(body);
    }
  }

  function busy(on) {
    submitBtn.disabled = on;
    cancelBtn.hidden = !on;
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('');
    if (recorder) { showError('Stop the recording first.'); recordBtn.focus(); return; }
    if (!audio) { showError('Choose an audio file or record something first.'); fileInput.focus(); return; }
    const live = liveBox.checked;
    const translate = form.elements.task.value === 'translate';
    const format = live ? 'json' : formatSel.value;
    const data = new FormData();
    data.append('file', audio.blob, audio.name);
    data.append('model', modelSel.value);
    if (langSel.value && !translate) data.append('language', langSel.value);
    if (live) {
      data.append('stream', 'true');
    } else {
      data.append('response_format', format);
      if (wordsBox.checked) {
        data.append('timestamp_granularities[]', 'word');
        data.append('timestamp_granularities[]', 'segment');
      }
    }
    resetResult();
    busy(true);
    setStatus('Uploading ' + audio.name + '\u2026');
    controller = new AbortController();
    const started = performance.now();
    try {
      const resp = await fetch(translate ? 'v1/audio/translations' : 'v1/audio/transcriptions',
        { method: 'POST', body: data, headers: authHeaders(), signal: controller.signal });
      if (!resp.ok) throw new Error(await errorMessage(resp));
      setStatus('Transcribing\u2026');
      if (live && (resp.headers.get('Content-Type') || '').startsWith('text/event-stream')) await readStream(resp);
      else await readWhole(resp, format);
      setStatus('Done in ' + ((performance.now() - started) / 1000).toFixed(1) + ' s' +
        (result.segments.length ? ', ' + result.segments.length + ' segment' + (result.segments.length === 1 ? '' : 's') : ', no speech found') + '.');
      highlight();
    } catch (e) {
      if (e && e.name === 'AbortError') {
        setStatus('Cancelled.');
      } else {
        setStatus('Failed.');
        const message = e instanceof TypeError ? 'Could not reach the server: ' + e.message : (e && e.message) || String(e);
        showError(message);
      }
    } finally {
      controller = null;
      busy(false);
    }
  });

  cancelBtn.addEventListener('click', () => { if (controller) controller.abort(); });
}());
