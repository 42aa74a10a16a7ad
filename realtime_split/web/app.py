"""The web app's routes (Starlette): the page, files in, stems out, the live session, and the push WebSocket.

Every route is a few lines over ``JobQueue`` (jobs.py) and ``LiveHolder`` (live.py); ``Guard``
(security.py) wraps the whole app. State lives on the server, so a reloaded page reattaches: the
WebSocket sends every job and the live session's readings 20 times a second to each open page, and
takes the live mixer's moves back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import UserError
from ..registry import bundled_names
from .jobs import JobQueue
from .live import LiveHolder, devices, presets
from .security import Guard, TooLarge

STATIC = Path(__file__).resolve().parent / "static"
DEMO = Path(__file__).resolve().parents[1] / "demo" / "demo.ogg"
PUSH_SECONDS = 0.05  # 20 updates a second: meters move smoothly, a fader's echo comes back within a frame or two
MEDIA = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png"}


@dataclass
class Settings:
    """What ``realtime-split ui`` was started with."""

    root: Path  # the temporary folder: uploads and (without --output) the stems
    token: str
    host: str = "127.0.0.1"
    port: int = 0
    hosts: set[str] | None = None  # allowed Host headers (None: any)
    max_upload: int = 500_000_000
    allow_paths: list[Path] = field(default_factory=list)
    output: Path | None = None  # where stems go (None: under root)
    model: str | None = None  # the model the page offers first


def create_app(settings: Settings) -> Guard:
    uploads = settings.root / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    jobs = JobQueue(settings.output or settings.root / "stems", settings.model)
    live = LiveHolder()
    sockets: set[WebSocket] = set()
    upload_ids = itertools.count(1)
    live_files: dict[str, Path] = {}  # upload id -> a file the live page may play

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def allowed(text: str) -> Path | None:
        """A typed path, opened only under a folder --allow-paths names."""
        path = Path(text).expanduser().resolve()
        return path if any(path.is_relative_to(folder) for folder in settings.allow_paths) else None

    async def index(request: Request) -> Response:
        page = (STATIC / "index.html").read_text().replace("__TOKEN__", settings.token)
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or not path.is_file():
            return error(404, f"no file {name}")
        return FileResponse(path, media_type=MEDIA.get(path.suffix))

    async def options(request: Request) -> Response:
        models = bundled_names()
        if settings.model and settings.model not in models:
            models = [settings.model, *models]
        found = await asyncio.to_thread(devices)
        return JSONResponse({"models": models, "model": settings.model or "", "presets": presets(),
                             "stems": ["vocals", "drums", "bass", "other", "accompaniment"],
                             "devices": found, "max_upload": settings.max_upload,
                             "allow_paths": bool(settings.allow_paths)})

    async def add_files(request: Request) -> Response:
        """Uploaded files become jobs (or, with purpose=live, files the live page may play)."""
        try:
            form = await request.form(max_files=100, max_part_size=settings.max_upload)
        except TooLarge:
            return error(413, "the upload is larger than the limit; restart with --max-upload-mb to raise it")
        added: list[dict[str, str]] = []
        for upload in form.getlist("files"):
            if isinstance(upload, str):
                continue
            name = Path(upload.filename or "upload").name or "upload"
            folder = uploads / str(next(upload_ids))
            folder.mkdir()
            target = folder / name
            with target.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            await upload.close()
            if form.get("purpose") == "live":
                key = folder.name
                live_files[key] = target
                added.append({"upload": key, "name": name})
            else:
                job = jobs.add(name, target, model=_text(form.get("model")), latency=_text(form.get("latency")),
                               stems=_text(form.get("stems")) or "all")
                added.append({"job": str(job.id), "name": name})
        if not added:
            return error(400, "no file in the upload: choose or drop one or more audio files")
        return JSONResponse({"added": added})

    async def add_path(request: Request) -> Response:
        """A path typed into the page: separated only when it is under a folder --allow-paths names."""
        body = await _json(request)
        text = str(body.get("path") or "")
        path = allowed(text) if text else None
        if path is None:
            return error(403, f"{text!r} is not under a folder the server allows; restart it with --allow-paths DIR "
                              "to separate files there, or upload the file")
        if not path.is_file():
            return error(404, f"no file {path}")
        job = jobs.add(path.name, path, model=_text(body.get("model")), latency=_text(body.get("latency")),
                       stems=_text(body.get("stems")) or "all")
        return JSONResponse({"added": [{"job": job.id, "name": path.name}]})

    def job_or_404(request: Request):
        return jobs.get(int(request.path_params["job"]))

    async def cancel(request: Request) -> Response:
        job = job_or_404(request)
        if job is None:
            return error(404, "no such job")
        return JSONResponse({"cancelled": jobs.cancel(job.id)})

    async def mix(request: Request) -> Response:
        """The karaoke mix of a job's input with the page's gains: ``Separator(gains=...)`` with ``mix=True``."""
        job = job_or_404(request)
        if job is None or job.state != "done":
            return error(404, "no finished job to mix")
        body = await _json(request)
        gains = {str(k): (-math.inf if v is None else float(v)) for k, v in dict(body.get("gains") or {}).items()}
        added = jobs.add(f"{job.name} (mix)", job.input, model=job.model, latency=job.latency, gains=gains,
                         mix_of=job.id)
        return JSONResponse({"added": [{"job": added.id, "name": added.name}]})

    async def download(request: Request) -> Response:
        job = job_or_404(request)
        stem = request.path_params["stem"]
        if job is None or job.state != "done" or stem not in job.outputs:
            return error(404, "no such stem (a job's stems are offered once it is done)")
        path = job.outputs[stem]
        stemname = Path(job.name).stem
        return FileResponse(path, filename=f"{stemname}-{path.name}" if request.query_params.get("download")
                            else None, media_type="audio/wav" if path.suffix == ".wav" else None)

    async def waveforms(request: Request) -> Response:
        job = job_or_404(request)
        if job is None or job.state != "done":
            return error(404, "no finished job")
        return JSONResponse(job.peaks)

    async def archive(request: Request) -> Response:
        job = job_or_404(request)
        if job is None or job.state != "done":
            return error(404, "no finished job")
        stemname = Path(job.name).stem
        path = job.folder / f".{stemname}-stems.zip"
        if not path.exists():
            def build() -> None:
                partial = path.with_suffix(".partial")
                with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
                    for out in job.outputs.values():
                        z.write(out, f"{stemname}/{out.name}")
                partial.replace(path)
            await asyncio.to_thread(build)
        return FileResponse(path, filename=f"{stemname}-stems.zip", media_type="application/zip")

    async def live_start(request: Request) -> Response:
        body = await _json(request)
        kind = str(body.get("input") or "device")
        source: str | Path | None
        if kind == "device":
            source = None
        elif kind == "jack":
            source = "jack"
        elif kind == "demo":
            source = DEMO
        elif kind == "upload":
            source = live_files.get(str(body.get("upload")))
            if source is None:
                return error(400, "choose a file to play first")
        elif kind == "path":
            source = allowed(str(body.get("path") or ""))
            if source is None:
                return error(403, f"{body.get('path')!r} is not under a folder the server allows; restart it with "
                                  "--allow-paths DIR, or upload the file")
        else:
            return error(400, f"input={kind!r}: give device, jack, demo, upload or path")
        out = str(body.get("output") or "speakers")
        connect = [str(c) for c in body.get("connect") or [] if str(c).strip()]
        try:
            await asyncio.to_thread(
                live.start, model=_text(body.get("model")), latency=_text(body.get("latency")), input=source,
                output="jack" if out == "jack" else "speakers", input_device=_text(body.get("input_device")),
                output_device=_text(body.get("output_device")) if out == "device" else None, connect=connect)
        except UserError as exc:
            return error(400, str(exc))
        return JSONResponse({"state": live.state})

    async def live_stop(request: Request) -> Response:
        await asyncio.to_thread(live.stop)
        return JSONResponse({"state": live.state, "error": live.error})

    async def live_control(request: Request) -> Response:
        body = await _json(request)
        try:
            live.control(str(body.get("action")), str(body.get("stem")), body.get("value"))
        except UserError as exc:
            return error(400, str(exc))
        return JSONResponse({"ok": True})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        sockets.add(websocket)
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                try:
                    live.control(str(message.get("action")), str(message.get("stem")), message.get("value"))
                except UserError as exc:
                    await websocket.send_text(json.dumps({"error": str(exc)}))
        except (WebSocketDisconnect, json.JSONDecodeError, AttributeError):
            pass
        finally:
            sockets.discard(websocket)

    async def push() -> None:
        while True:
            await asyncio.sleep(PUSH_SECONDS)
            if not sockets:
                live.poll()  # a session that ends with no page open is stopped all the same
                continue
            text = json.dumps({"jobs": jobs.snapshot(), "live": live.poll()}, allow_nan=False, default=str)
            for ws in list(sockets):
                try:
                    await ws.send_text(text)
                except Exception:  # noqa: BLE001 - a page that went away
                    sockets.discard(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(push())
        try:
            yield
        finally:
            task.cancel()
            # Stopping the server stops the live session and finishes the files like Ctrl-C.
            await asyncio.to_thread(live.stop)
            await asyncio.to_thread(jobs.close)

    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/options", options),
        Route("/api/files", add_files, methods=["POST"]),
        Route("/api/paths", add_path, methods=["POST"]),
        Route("/api/jobs/{job:int}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{job:int}/mix", mix, methods=["POST"]),
        Route("/api/jobs/{job:int}/stems/{stem}", download),
        Route("/api/jobs/{job:int}/zip", archive),
        Route("/api/jobs/{job:int}/peaks", waveforms),
        Route("/api/live/start", live_start, methods=["POST"]),
        Route("/api/live/stop", live_stop, methods=["POST"]),
        Route("/api/live/control", live_control, methods=["POST"]),
        WebSocketRoute("/ws", socket),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Guard(app, settings.token, settings.hosts, settings.max_upload)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}
