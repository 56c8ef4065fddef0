"""The web page at / of `asr serve`, driven in headless Chromium through Selenium: headers and
caching over plain HTTP, then in the browser an upload of jfk.wav whose streamed transcript is the
exact jfk text, a click (and Enter) on a segment seeks the player, downloads equal the server's own
srt/vtt/txt, a verbose_json request with word timestamps, a recording from the (fake) microphone,
Cancel during a long stream (the server cancels the job),
the server's error message for a non-audio file and for a missing API key, and screenshots at
desktop and phone size (written to $ASR_ARTIFACTS or tests/artifacts/web_page/, paths printed).
Fails, not skips, when Chromium, chromedriver or selenium is missing."""
import json
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_lib import JFK_TEXT, SLOW, Server, check, data, finish, long_speech_wav  # noqa: E402

import requests  # noqa: E402

KEY = "web-page-test-key"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.environ.get("ASR_ARTIFACTS") or os.path.join(REPO, "tests", "artifacts", "web_page")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# The ground truth of ../shared/testdata/README.md; tiny.en's words are these without the punctuation.
JFK_TRUTH = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def words(text):
    return re.sub(r"[^a-z' ]", "", text.lower()).split()


def srt_vtt_text(body):
    cues = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = [l for l in block.split("\n") if l.strip()]
        at = next((i for i, l in enumerate(lines) if "-->" in l), None)
        if at is not None:
            cues.append(" ".join(lines[at + 1:]).strip())
    return " ".join(cues)


def valid_srt(body):
    """Numbered cues 1..n, each 'HH:MM:SS,mmm --> HH:MM:SS,mmm' with start <= end, then text lines."""
    blocks = [b for b in re.split(r"\n\n", body.rstrip("\n")) if b]
    stamp = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        m = stamp.match(lines[1]) if len(lines) >= 3 else None
        if lines[0] != str(n) or not m or not all(l.strip() for l in lines[2:]):
            return False
        g = [int(x) for x in m.groups()]
        if g[0] * 3600000 + g[1] * 60000 + g[2] * 1000 + g[3] > g[4] * 3600000 + g[5] * 60000 + g[6] * 1000 + g[7]:
            return False
    return bool(blocks) and body.endswith("\n\n")


def server_answer(srv, fields, key=KEY, path="/v1/audio/transcriptions", file=("jfk.wav", None)):
    """What the API itself answers, to compare the page against."""
    name, content = file
    if content is None:
        with open(data(name), "rb") as f:
            content = f.read()
    headers = {"Authorization": "Bearer " + key} if key else {}
    return requests.post(srv.url + path, headers=headers, data=fields, files={"file": (os.path.basename(name), content)},
                         timeout=120 * SLOW)


# --- the browser must be there: a missing one is a failure, not a skip ---------------------------
check(CHROMIUM is not None, "chromium is installed (scripts/install-deps.sh)")
check(CHROMEDRIVER is not None, "chromedriver is installed (scripts/install-deps.sh: chromium-driver)")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    check(False, f"selenium is importable ({e}; scripts/setup-test-env.sh installs it)")
if not CHROMIUM or not CHROMEDRIVER or "webdriver" not in dir():
    finish()

os.makedirs(ARTIFACTS, exist_ok=True)
downloads = tempfile.mkdtemp(prefix="asr-web-downloads-")
not_audio = os.path.join(downloads, "notes.txt")
with open(not_audio, "w") as f:
    f.write("these are meeting notes, not audio\n" * 20)

srv = Server("--workers", "1", "--api-key", KEY, name="server")
driver = None
try:
    # --- plain HTTP: the page is public, typed, cached by validator, under a strict CSP ----------
    r = requests.get(srv.url + "/", timeout=10)
    html = r.text
    csp = r.headers.get("Content-Security-Policy", "")
    check(r.status_code == 200 and r.headers.get("Content-Type") == "text/html; charset=utf-8",
          f"GET / without a key: 200 text/html ({r.status_code} {r.headers.get('Content-Type')})")
    check("script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
          and "frame-ancestors 'none'" in csp, f"strict Content-Security-Policy ({csp})")
    check(r.headers.get("X-Content-Type-Options") == "nosniff", "X-Content-Type-Options: nosniff")
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    check(scripts and all(not s.strip() for s in scripts) and not re.search(r"\son[a-z]+\s*=", html)
          and not re.search(r"\sstyle\s*=", html) and "<style" not in html and "http" not in html,
          "the page has no inline script, handler or style and loads nothing from elsewhere")
    etag = r.headers.get("ETag", "")
    check(r.headers.get("Cache-Control") == "no-cache" and re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', etag) is not None,
          f"Cache-Control: no-cache with a strong ETag ({r.headers.get('Cache-Control')} {etag})")
    r304 = requests.get(srv.url + "/", headers={"If-None-Match": etag}, timeout=10)
    check(r304.status_code == 304 and r304.content == b"" and r304.headers.get("ETag") == etag,
          f"If-None-Match with the ETag: 304, empty ({r304.status_code})")
    check(requests.get(srv.url + "/", headers={"If-None-Match": '"other"'}, timeout=10).status_code == 200,
          "If-None-Match with another tag: 200")
    head = requests.head(srv.url + "/", timeout=10)
    check(head.status_code == 200 and head.content == b"" and head.headers.get("Content-Length") == str(len(r.content))
          and head.headers.get("Content-Type") == "text/html; charset=utf-8",
          f"HEAD /: 200, no body, the GET's length and type ({head.status_code} {head.headers.get('Content-Length')})")
    for path, ctype in (("/app.js", "text/javascript; charset=utf-8"), ("/style.css", "text/css; charset=utf-8")):
        a = requests.get(srv.url + path, timeout=10)
        check(a.status_code == 200 and a.headers.get("Content-Type") == ctype and len(a.content) > 1000
              and a.headers.get("X-Content-Type-Options") == "nosniff", f"GET {path}: 200 {ctype}")
        check(re.search(r'(src|href)="%s"' % path[1:], html) is not None, f"the page loads {path}")
    check(requests.get(srv.url + "/missing.js", timeout=10).status_code == 404, "an unknown file: 404")
    post = requests.post(srv.url + "/", timeout=10)
    check(post.status_code == 405 and post.headers.get("Allow") == "GET, HEAD", f"POST /: 405, Allow: GET, HEAD ({post.status_code})")
    check(requests.get(srv.url + "/v1/models", timeout=10).status_code == 401, "the API itself still needs the key")
    oa = requests.get(srv.url + "/openapi.json", timeout=10).json()
    check("get" in oa["paths"].get("/", {}), "openapi.json lists GET /")
    check('asr_http_requests_total{route="web",status="304"} 1' in requests.get(srv.url + "/metrics", timeout=10).text,
          "metrics count the page's requests under route=\"web\"")

    # What the page has to show: the server's own answers.
    unauthorized = server_answer(srv, {"model": "whisper-1"}, key=None)
    check(unauthorized.status_code == 401, "no key: the API answers 401")
    msg_401 = unauthorized.json()["error"]["message"]
    bad = server_answer(srv, {"model": "whisper-1", "stream": "true"}, file=("notes.txt", open(not_audio, "rb").read()))
    check(bad.status_code == 400, f"a text file: the API answers 400 ({bad.status_code})")
    msg_bad = bad.json()["error"]["message"]
    expect = {fmt: server_answer(srv, {"model": "whisper-1", "response_format": fmt}).text for fmt in ("srt", "vtt", "text")}
    check(srt_vtt_text(expect["srt"]) == JFK_TEXT, "the server's own srt is the jfk text")

    # --- the browser ------------------------------------------------------------------------
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium look for a driver online
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1400",
                "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream", "--use-file-for-fake-audio-capture=" + os.path.realpath(data("jfk.wav")) + "%noloop",
                "--mute-audio"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": downloads, "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    wait = WebDriverWait(driver, 120 * SLOW, poll_frequency=0.1)
    js = driver.execute_script

    def waited(cond, what, timeout=20 * SLOW):
        try:
            WebDriverWait(driver, timeout, poll_frequency=0.1).until(cond)
            return check(True, what)
        except TimeoutException:
            return check(False, what + " (timed out)")

    def el(id_):
        return driver.find_element(By.ID, id_)

    def submit_and_wait():
        btn = el("submit")
        js("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", btn)
        btn.click()
        wait.until(lambda d: el("submit").is_enabled() and el("cancel").get_attribute("hidden") is not None)
        return el("status").text, (el("error").text if el("error").is_displayed() else "")

    def transcript():
        return " ".join(t.text.strip() for t in driver.find_elements(By.CSS_SELECTOR, "#transcript .segment .text"))

    def take_download(name, timeout=20):
        path = os.path.join(downloads, name)
        deadline = time.time() + timeout
        while time.time() < deadline and not (os.path.exists(path) and not os.path.exists(path + ".crdownload")):
            time.sleep(0.1)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            body = f.read()
        os.remove(path)
        return body

    driver.get(srv.url + "/")
    check(driver.title.startswith("asr"), f"the page loads ({driver.title!r})")
    unlabelled = js("return [...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length)"
                    ".map(e => e.id || e.name)")
    check(unlabelled == [], f"every input and select has a label ({unlabelled})")
    check(el("transcript").get_attribute("aria-live") == "polite" and el("error").get_attribute("role") == "alert",
          "the transcript is an aria-live region; errors are alerts")
    check(js("return getComputedStyle(document.querySelector('button.primary')).display") != "none"
          and js("return document.styleSheets.length") == 1, "the stylesheet applied")
    check([o.get_attribute("value") for o in el("model").find_elements(By.TAG_NAME, "option")] == ["whisper-1"],
          "without a key the model list is whisper-1 (the /v1/models call was refused)")

    # The upload without a key: the server's 401 message, on the page.
    el("file").send_keys(os.path.realpath(data("jfk.wav")))
    status, error = submit_and_wait()
    check(msg_401 in error and "401" in error, f"no key: the page shows the server's 401 message ({error!r})")
    check(transcript() == "", "no key: no transcript")

    # The key typed in: a streamed transcript, the exact jfk text.
    el("key").send_keys(KEY, Keys.TAB)
    waited(lambda d: len(el("model").find_elements(By.TAG_NAME, "option")) == 2,
           "with the key typed in, the model list comes from /v1/models")
    status, error = submit_and_wait()
    text = transcript()
    check(error == "" and status.startswith("Done"), f"streamed upload finishes ({status!r} {error!r})")
    check(text == JFK_TEXT, f"the streamed transcript is the jfk text ({text!r})")
    check(words(text) == words(JFK_TRUTH), "its words are the ground truth's")
    raw = js("return document.getElementById('raw').textContent")
    check(raw.count('"type":"transcript.text.delta"') >= 2 and '"type":"transcript.text.done"' in raw,
          "it arrived as streamed delta events")
    segs = driver.find_elements(By.CSS_SELECTOR, "#transcript .segment")
    check(len(segs) >= 2 and all(s.is_enabled() for s in segs)
          and all(re.fullmatch(r"\d+:\d\d", s.find_element(By.CLASS_NAME, "time").text) for s in segs),
          f"{len(segs)} timed segments, each a button")
    check(el("player").is_displayed(), "the player shows the chosen audio")
    driver.save_screenshot(os.path.join(ARTIFACTS, "web_page_desktop.png"))

    # Clicking (and Enter on) a segment seeks the audio there and marks the segment.
    starts = [float(x) for x in re.findall(r'"start":([0-9.]+)', raw)]
    segs[1].click()
    wait.until(lambda d: "current" in segs[1].get_attribute("class"))
    t = js("return document.getElementById('player').currentTime")
    check(starts[1] - 0.01 <= t <= starts[1] + 3, f"a click on segment 2 seeks to {starts[1]} s (at {t})")
    check(segs[1].get_attribute("aria-current") == "true" and "current" not in segs[0].get_attribute("class"),
          "segment 2 is marked current, segment 1 is not")
    js("document.getElementById('player').pause()")
    segs[0].send_keys(Keys.ENTER)
    wait.until(lambda d: "current" in segs[0].get_attribute("class"))
    t = js("return document.getElementById('player').currentTime")
    check(t < starts[1], f"Enter on segment 1 seeks back to it (at {t})")
    js("document.getElementById('player').pause()")
    check(js("return getComputedStyle(document.activeElement).outlineStyle") != "none",
          "the focused segment shows a focus outline")

    # Downloads: the same bytes as the server's own formats.
    for kind, server_fmt in (("srt", "srt"), ("vtt", "vtt"), ("txt", "text")):
        driver.find_element(By.CSS_SELECTOR, f'#downloads [data-download="{kind}"]').click()
        body = take_download("jfk." + kind)
        check(body == expect[server_fmt], f"download jfk.{kind} equals the server's {server_fmt} ({body!r})")
        if kind == "srt":
            check(body is not None and valid_srt(body) and srt_vtt_text(body) == JFK_TEXT,
                  "the srt is valid SRT with the jfk words")
    driver.find_element(By.CSS_SELECTOR, '#downloads [data-download="json"]').click()
    body = take_download("jfk.json")
    j = json.loads(body) if body else {}
    check(j.get("text") == JFK_TEXT and len(j.get("segments", [])) == len(segs), f"download jfk.json: text and segments ({body!r})")

    # verbose_json with word timestamps, not streamed.
    el("live").click()
    check(el("format").is_enabled() and el("words").is_enabled(), "without streaming, format and word timestamps can be chosen")
    el("words").click()
    status, error = submit_and_wait()
    word_spans = driver.find_elements(By.CSS_SELECTOR, "#transcript .word")
    check(error == "" and transcript() == JFK_TEXT, f"verbose_json: the jfk text ({transcript()!r} {error!r})")
    check(len(word_spans) == len(JFK_TEXT.split()), f"one span per word ({len(word_spans)})")
    driver.find_element(By.CSS_SELECTOR, '#downloads [data-download="json"]').click()
    body = take_download("jfk.json")
    j = json.loads(body) if body else {}
    check(j.get("text") == JFK_TEXT and len(j.get("words", [])) == len(JFK_TEXT.split()) and "segments" in j,
          "download jfk.json is the server's verbose_json, with words")
    segs = driver.find_elements(By.CSS_SELECTOR, "#transcript .segment")
    segs[-1].click()
    waited(lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript .word.spoken"), "playing marks the spoken word")
    js("document.getElementById('player').pause()")
    el("live").click()

    # A file that is not audio: the server's message.
    el("file").send_keys(not_audio)
    status, error = submit_and_wait()
    check(msg_bad in error and "400" in error, f"a text file: the page shows the server's message ({error!r})")
    check(transcript() == "", "a text file: no transcript")
    driver.save_screenshot(os.path.join(ARTIFACTS, "web_page_error.png"))

    # The microphone (Chromium's fake device playing jfk.wav): record, stop, transcribe.
    el("record").click()
    wait.until(lambda d: el("record").get_attribute("aria-pressed") == "true")
    time.sleep(11.5)
    el("record").click()
    wait.until(lambda d: "ready" in el("record-status").text)
    status, error = submit_and_wait()
    got = words(transcript())
    truth = words(JFK_TRUTH)
    common = sum(1 for w in truth if w in got)
    check(error == "" and common >= len(truth) - 3,
          f"a recording of jfk.wav from the microphone transcribes to its words ({transcript()!r} {error!r})")

    # Live mode: the fake microphone streams to /v1/realtime (key via the subprotocol); server VAD
    # cuts turns and their transcripts appear in the page.
    driver.execute_script("document.getElementById('live-start').scrollIntoView({block: 'center', behavior: 'instant'})")
    el("live-start").click()
    waited(lambda d: el("live-start").get_attribute("aria-pressed") == "true", "live mode starts")
    waited(lambda d: "country" in words(" ".join(li.text for li in d.find_elements(By.CSS_SELECTOR, "#live-transcript li.live-final"))),
           "live mode: transcripts of the microphone arrive", timeout=40 * SLOW)
    live = words(" ".join(li.text for li in driver.find_elements(By.CSS_SELECTOR, "#live-transcript li.live-final")))
    common = sum(1 for w in words(JFK_TRUTH) if w in live)
    check(common >= len(words(JFK_TRUTH)) - 4 and el("live-error").text == "",
          f"live mode: the microphone's words appear ({live} {el('live-error').text!r})")
    driver.save_screenshot(os.path.join(ARTIFACTS, "web_page_live.png"))
    driver.execute_script("document.getElementById('live-start').scrollIntoView({block: 'center', behavior: 'instant'})")
    el("live-start").click()
    waited(lambda d: el("live-start").get_attribute("aria-pressed") == "false", "live mode stops")
    waited(lambda d: srv.metric("asr_realtime_connections_open") == 0 and srv.metric("asr_realtime_turns_total") >= 1,
           "the server saw the live session's turns and its close")

    # Cancel while a long file streams: the page stops and says so; the server drops the job.
    long_wav = os.path.join(downloads, "jfk10.wav")
    with open(long_wav, "wb") as f:
        f.write(long_speech_wav(10))
    el("file").send_keys(long_wav)
    el("submit").click()
    waited(lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript .segment"), "long file: the first segment arrives")
    el("cancel").click()
    waited(lambda d: el("status").text == "Cancelled." and el("submit").is_enabled(), "Cancel stops the request")
    waited(lambda d: srv.metric('asr_jobs_total{outcome="cancelled"}') >= 1,
           "the server cancels the job of the client that went", timeout=30 * SLOW)

    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
              and "/v1/" not in e.get("message", "")]  # the refused API calls are logged as failed loads
    check(severe == [], f"no script errors or CSP violations in the console ({severe[:3]})")

    # Phone size: one column, nothing wider than the screen.
    driver.get(srv.url + "/")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    el("key").send_keys(KEY)
    el("file").send_keys(os.path.realpath(data("jfk.wav")))
    status, error = submit_and_wait()
    check(transcript() == JFK_TEXT, f"phone size: the jfk text ({transcript()!r} {error!r})")
    width = js("return document.documentElement.scrollWidth")
    check(width <= 390, f"phone size: nothing wider than 390 px ({width})")
    cols = js("return getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length")
    check(cols == 1, f"phone size: the options are one column ({cols})")
    waited(lambda d: js("const r = document.querySelector('#transcript .segment').getBoundingClientRect();"
                        "return r.top >= 0 && r.bottom <= innerHeight"),
           "phone size: the transcript's first segment is scrolled into view")
    driver.save_screenshot(os.path.join(ARTIFACTS, "web_page_phone.png"))
    js("window.scrollTo({top: 0, behavior: 'instant'})")
    driver.save_screenshot(os.path.join(ARTIFACTS, "web_page_phone_form.png"))
    for name in ("web_page_desktop.png", "web_page_error.png", "web_page_live.png", "web_page_phone.png", "web_page_phone_form.png"):
        print("screenshot:", os.path.join(ARTIFACTS, name))
finally:
    if driver is not None:
        driver.quit()
    shutil.rmtree(downloads, ignore_errors=True)
    srv.stop()
finish()
