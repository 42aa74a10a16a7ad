"""``realtime-split ui``, the local web app: the real server (a subprocess of this checkout's CLI), a real
headless Chromium driven by Selenium, real files, and for the live page a real JACK server.

The browser tests upload the demo clip, wait for its stems, check the players (decoded in the page's Web Audio
context, playing) and the downloads (equal to ``separate_file``'s output), the karaoke mix with the page's
gains, and a live session from the demo clip to JACK stem ports whose vocals fader moves the recorded port's
level. Each page is saved as a screenshot (``web-files.png``, ``web-live.png`` in the test's tmp folder) for a
person to look at. The security checks are plain HTTP and WebSocket requests. The tiny scaled test model keeps
it quick. Chromium and chromedriver come from the system (Debian's ``chromium``, ``chromium-driver``): nothing
is downloaded; without them the browser tests skip, saying so.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import time
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jack_harness import launch

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[1] / "realtime_split" / "demo" / "demo.ogg"
UI_MODULES = ("starlette", "uvicorn", "multipart", "websockets", "httpx")
MISSING = [m for m in UI_MODULES if importlib.util.find_spec(m) is None]
needs_ui = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (the web app and its "
                              "checks): pip install -e '.[ui,dev]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BROWSER_MISSING = ("selenium is not installed (pip install -e '.[dev]')" if importlib.util.find_spec("selenium") is None
                   else None if CHROMIUM and CHROMEDRIVER
                   else "no chromium and chromedriver on PATH (apt-get install chromium chromium-driver)")
needs_browser = pytest.mark.skipif(BROWSER_MISSING is not None, reason=f"the browser tests: {BROWSER_MISSING}")
WAIT = 30.0


class Server:
    """``realtime-split ui --no-browser`` in a subprocess: its address, token and temporary folder."""

    def __init__(self, tmp: Path, *args, **env):
        self.tmp = tmp
        self.proc = launch("ui", "--no-browser", *args, TMPDIR=str(tmp), **env)
        line = self.proc.stdout.readline()
        found = re.search(r"(http://[^/\s]+)/\?token=(\S+)", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"no address printed: {line!r} {self.proc.stderr.read()}")
        self.base, self.token = found.group(1), found.group(2)
        self.url = f"{self.base}/?token={self.token}"

    def get(self, path: str, **kw):
        import httpx

        return httpx.get(self.base + path, params={"token": self.token}, timeout=WAIT, **kw)

    def post(self, path: str, **kw):
        import httpx

        return httpx.post(self.base + path, params={"token": self.token}, timeout=WAIT, **kw)

    def state(self) -> dict:
        """One push from the WebSocket, as a page gets it."""
        from websockets.sync.client import connect

        with connect(f"{self.base.replace('http', 'ws')}/ws?token={self.token}", origin=self.base) as ws:
            return json.loads(ws.recv(timeout=WAIT))

    def job(self, job_id: int, until=("done", "failed", "cancelled"), timeout: float = WAIT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            jobs = {j["id"]: j for j in self.state()["jobs"]}
            if job_id in jobs and jobs[job_id]["state"] in until:
                return jobs[job_id]
            assert time.monotonic() < deadline, f"job {job_id} still {jobs.get(job_id)}"
            time.sleep(0.1)

    def stop(self) -> int:
        """Ctrl-C, as a user stops it: the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(WAIT)
            except Exception:
                self.proc.kill()
                raise
        return self.proc.returncode


@pytest.fixture
def ui(tmp_path, scaled_model):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    server = Server(tmp_path, "--model", scaled_model, "--allow-paths", allowed, "--max-upload-mb", "1")
    server.allowed = allowed
    yield server
    server.stop()


def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def wait_for(condition, timeout: float = WAIT, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def attr(driver, css: str, name: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].get_attribute(name) if found else None


# ----------------------------------------------------------------------------------------- files in a browser

@needs_ui
@needs_browser
def test_upload_the_demo_play_its_stems_and_download_them(ui, tmp_path, scaled_model):
    from selenium.webdriver.common.by import By

    from realtime_split import Separator

    reference = Separator(scaled_model).separate_file(DEMO, tmp_path / "reference" / "")
    driver = browser(tmp_path)
    try:
        driver.get(ui.url)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#model option"), what="the options")
        driver.find_element(By.ID, "file-input").send_keys(str(DEMO))
        wait_for(lambda: attr(driver, "#job-1", "data-ready") == "1", what="the stems in the players")
        # The players: every stem decoded at the clip's length, in stereo.
        assert float(attr(driver, "#job-1", "data-duration")) == pytest.approx(sf.info(str(DEMO)).duration, abs=0.01)
        assert attr(driver, "#job-1", "data-channels") == "2,2,2,2"
        rows = driver.find_elements(By.CSS_SELECTOR, "#job-1 .stem")
        assert [r.get_attribute("data-stem") for r in rows] == list(reference.outputs)
        painted = "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; " \
                  "let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;"
        for canvas in driver.find_elements(By.CSS_SELECTOR, "#job-1 .stem canvas"):  # a waveform per stem
            wait_for(lambda c=canvas: driver.execute_script(painted, c) > 100, what="a waveform")
        driver.find_element(By.CSS_SELECTOR, "#job-1 .play").click()
        wait_for(lambda: float(attr(driver, "#job-1", "data-position") or 0) > 0.3, what="the players to play")
        driver.find_element(By.CSS_SELECTOR, "#job-1 .play").click()  # pause
        # The downloads the page offers are separate_file's stems, sample for sample.
        for link in driver.find_elements(By.CSS_SELECTOR, "#job-1 a.download"):
            stem = link.get_attribute("data-stem")
            got, rate = sf.read(BytesIO(_fetch(link.get_attribute("href"))), dtype="float32")
            want, _ = sf.read(str(reference.outputs[stem]), dtype="float32")
            assert rate == reference.sample_rate and np.array_equal(got, want), stem
        archive = zipfile.ZipFile(BytesIO(_fetch(attr(driver, "#job-1 a.zip", "href"))))
        assert sorted(archive.namelist()) == sorted(f"demo/{stem}.wav" for stem in reference.outputs)
        driver.save_screenshot(str(tmp_path / "web-files.png"))
        # The karaoke mix with the page's gains: vocals muted, drums at -6 dB.
        driver.find_element(By.CSS_SELECTOR, "#job-1 .stem[data-stem=vocals] .mute").click()
        fader = driver.find_element(By.CSS_SELECTOR, "#job-1 .stem[data-stem=drums] .gain")
        driver.execute_script("arguments[0].value = -6; arguments[0].dispatchEvent(new Event('input'))", fader)
        driver.find_element(By.CSS_SELECTOR, "#job-1 .karaoke").click()
        wait_for(lambda: attr(driver, "#job-2 a.download", "href"), what="the mix")
        mix, _ = sf.read(BytesIO(_fetch(attr(driver, "#job-2 a.download", "href"))), dtype="float32")
        want = Separator(scaled_model, gains={"vocals": -math.inf, "drums": -6.0}).separate_file(
            DEMO, tmp_path / "karaoke.wav", mix=True)
        assert np.array_equal(mix, sf.read(str(want.outputs["mix"]), dtype="float32")[0])
        # A reload reattaches: the finished job is there with its players.
        driver.refresh()
        wait_for(lambda: attr(driver, "#job-1", "data-ready") == "1", what="the job after a reload")
    finally:
        driver.quit()
    assert ui.stop() == 128 + signal.SIGINT  # as the command line exits after Ctrl-C
    assert not list(tmp_path.glob("realtime-split-ui-*")), "the uploads' temporary folder is left after exit"


def _fetch(href: str) -> bytes:
    import httpx

    response = httpx.get(href, timeout=WAIT)
    assert response.status_code == 200, response.text
    return response.content


# ----------------------------------------------------------------------------------------- jobs over HTTP

@needs_ui
def test_a_bad_upload_fails_with_one_line_and_a_cancelled_job_leaves_nothing(ui, tmp_path):
    bad = ui.post("/api/files", files={"files": ("notes.wav", b"this is not audio at all")})
    assert bad.status_code == 200
    failed = ui.job(int(bad.json()["added"][0]["job"]))
    assert failed["state"] == "failed" and "\n" not in failed["error"] and "notes.wav" in failed["error"]
    assert str(tmp_path) not in failed["error"]  # the page is not told where the server keeps files
    assert failed["stems"] == []
    # A long file by path (the folder is allowed): cancelled while it runs, nothing of it is offered or kept.
    long = ui.allowed / "long.wav"
    sf.write(str(long), np.zeros((44100 * 600, 2), np.float32) + 0.01, 44100, subtype="PCM_16")
    running = ui.post("/api/paths", json={"path": str(long)}).json()["added"][0]["job"]
    queued = ui.post("/api/paths", json={"path": str(long)}).json()["added"][0]["job"]
    ui.job(running, until=("running",))
    assert ui.state()["jobs"][-1]["state"] == "queued"  # one job at a time
    assert ui.post(f"/api/jobs/{queued}/cancel").json() == {"cancelled": True}
    assert ui.post(f"/api/jobs/{running}/cancel").json() == {"cancelled": True}
    for job_id in (running, queued):
        job = ui.job(job_id)
        assert job["state"] == "cancelled" and job["stems"] == []
        assert ui.get(f"/api/jobs/{job_id}/stems/vocals").status_code == 404
    assert not [p for p in tmp_path.rglob("*.wav") if "job-" in str(p)], "a cancelled job left files"
    assert ui.get("/api/options").status_code == 200  # still serving


@needs_ui
def test_stopping_the_server_finishes_the_running_file_like_ctrl_c(tmp_path, scaled_model):
    allowed, kept = tmp_path / "allowed", tmp_path / "kept"
    allowed.mkdir()
    long = allowed / "long.wav"
    sf.write(str(long), np.zeros((44100 * 600, 2), np.float32) + 0.01, 44100, subtype="PCM_16")
    server = Server(tmp_path, "--model", scaled_model, "--allow-paths", allowed, "--output", kept)
    try:
        job = server.post("/api/paths", json={"path": str(long)}).json()["added"][0]["job"]
        deadline = time.monotonic() + WAIT
        while server.job(job, until=("running", "done"))["fraction"] <= 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        code = server.stop()
    assert code == 128 + signal.SIGINT
    stems = sorted((kept / f"job-{job}").glob("*.wav"))
    assert [p.name for p in stems] == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
    lengths = {sf.info(str(p)).frames for p in stems}  # headers finished: readable, one length, part of the input
    assert len(lengths) == 1 and 0 < lengths.pop() < 44100 * 600


# ----------------------------------------------------------------------------------------- security

@needs_ui
def test_refuses_requests_without_its_token_host_or_origin_and_keeps_serving(ui):
    import httpx
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    def ok() -> None:
        assert ui.get("/api/options").status_code == 200

    assert httpx.get(ui.base + "/", timeout=WAIT).status_code == 401
    ok()
    assert httpx.get(ui.base + "/?token=wrong", timeout=WAIT).status_code == 401
    ok()
    assert ui.get("/").status_code == 200 and ui.token in ui.get("/").text
    assert ui.get("/api/options", headers={"Host": "evil.example:80"}).status_code == 400  # DNS rebinding
    ok()
    assert ui.post("/api/live/stop", headers={"Origin": "http://evil.example"}).status_code == 403  # another tab
    ok()
    big = ui.post("/api/files", files={"files": ("big.wav", b"\0" * 1_500_000)})  # --max-upload-mb 1
    assert big.status_code == 413 and "--max-upload-mb" in big.text
    ok()

    def chunked():  # no Content-Length: counted while it is read
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.wav"\r\n\r\n'
        for _ in range(24):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    big = ui.post("/api/files", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert big.status_code == 413
    ok()
    outside = ui.post("/api/paths", json={"path": str(DEMO)})
    assert outside.status_code == 403 and "--allow-paths" in outside.json()["error"]
    ok()
    ws = f"{ui.base.replace('http', 'ws')}/ws"
    for url, origin in ((f"{ws}?token=wrong", ui.base), (f"{ws}?token={ui.token}", "http://evil.example")):
        with pytest.raises(InvalidStatus) as refused:  # refused during the handshake
            with connect(url, origin=origin) as socket:
                socket.recv(timeout=5)
        assert refused.value.response.status_code == 403
    ok()
    assert ui.state()["jobs"] == []  # none of the refused requests made a job


@needs_ui
def test_every_interface_is_served_only_with_a_warning(tmp_path):
    server = Server(tmp_path, "--host", "0.0.0.0")
    try:
        assert server.base.startswith("http://127.0.0.1:")  # the printed address still works here
        assert server.get("/api/options").status_code == 200
    finally:
        server.stop()
    assert "warning: --host 0.0.0.0" in server.proc.stderr.read()


# ----------------------------------------------------------------------------------------- live in a browser

@needs_ui
@needs_browser
@pytest.mark.jack
def test_live_page_shows_meters_and_its_vocals_fader_moves_the_port(jack_server, tmp_path, scaled_model):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from jack_harness import Harness

    server = Server(tmp_path, "--model", scaled_model, **jack_server.env)
    driver = browser(tmp_path)
    try:
        driver.get(server.url + "#live")
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#live-preset option"), what="the options")
        Select(driver.find_element(By.ID, "live-input")).select_by_value("demo")
        Select(driver.find_element(By.ID, "live-output")).select_by_value("jack")
        driver.find_element(By.ID, "live-start").click()
        wait_for(lambda: driver.find_element(By.ID, "live-state").text == "running", what="the session to start")
        error = driver.find_element(By.ID, "live-error").text
        assert not error, error
        wait_for(lambda: float(attr(driver, "[data-channel=input]", "data-level") or 0) > 0, what="the input meter")
        wait_for(lambda: float(attr(driver, "[data-channel=vocals]", "data-level") or 0) > 0, what="a stem meter")
        first = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates"))
        time.sleep(1.0)
        updates = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-updates")) - first
        assert updates >= 10, f"{updates} updates in a second"
        assert driver.find_element(By.ID, "live-latency").text.endswith(" ms")
        assert driver.find_element(By.ID, "live-missed").text.isdigit()
        assert driver.find_element(By.ID, "live-xruns").text.isdigit()
        driver.save_screenshot(str(tmp_path / "web-live.png"))
        with Harness(jack_server, channels=1, record_seconds=20) as harness:
            harness.connect(program_outputs=["realtime-split-ui:vocals_L"])
            harness.start_recording()
            time.sleep(1.0)
            before = harness.take()[-harness.rate // 2:, 0]
            fader = driver.find_element(By.CSS_SELECTOR, "[data-channel=vocals] .fader")
            driver.execute_script("arguments[0].value = -40; arguments[0].dispatchEvent(new Event('input'))", fader)
            wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "[data-channel=vocals] .fader-db").text == "-40 dB")
            time.sleep(1.0)
            after = harness.take()[-harness.rate // 2:, 0]
        rms = [float(np.sqrt(np.mean(np.square(x)))) for x in (before, after)]
        assert rms[0] > 1e-3 and rms[1] < 0.05 * rms[0], f"vocals port RMS before and after the fader: {rms}"
        mix = {m["stem"]: m for m in server.state()["live"]["mix"]}
        assert mix["vocals"]["db"] == -40 and mix["drums"]["db"] == 0
        driver.find_element(By.ID, "live-stop").click()
        wait_for(lambda: driver.find_element(By.ID, "live-state").text == "stopped", what="the session to stop")
    finally:
        driver.quit()
        code = server.stop()
    assert code == 128 + signal.SIGINT
