"""Helpers of the output tests (atomic outputs, stop signals, full disks): the real command started, caught while
it writes under its temporary names, and stopped; a disk with little room; what a full disk's message must say."""

from __future__ import annotations

import contextlib
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import soundfile as sf

from cli_helpers import command, music, partial_bytes, subprocess_env


def long_song(path: Path, seconds: int = 120) -> Path:
    block = music(10.0, 44100, 2)
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


def start(song: Path, out: Path, model: Path, *options: str) -> subprocess.Popen:
    """The real command separating ``song`` into ``out/`` slowly enough (the low preset) to be caught running."""
    return subprocess.Popen([*command(), "--input", str(song), "--output", f"{out}/", "--model", str(model),
                             "--latency", "low", "--no-progress", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def wait_for_partial(proc: subprocess.Popen, path: Path, size: int = 200_000) -> None:
    deadline = time.monotonic() + 120
    while partial_bytes(path) <= size:
        assert proc.poll() is None, f"finished before it could be caught: {proc.communicate()}"
        assert time.monotonic() < deadline, "no output after 120 s"
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> tuple[int, str]:
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def run_cli(*args, stdin=None, timeout: float = 120, preexec_fn=None, **kwargs) -> subprocess.CompletedProcess:
    """The real command; stdout and stderr captured unless ``stdout=`` says where standard output goes."""
    streams = {"stderr": subprocess.PIPE} if "stdout" in kwargs else {"capture_output": True}
    return subprocess.run([*command(), *map(str, args)], stdin=stdin, timeout=timeout, env=subprocess_env(),
                          preexec_fn=preexec_fn, **streams, **kwargs)


def file_size_limit(limit: int):
    """For preexec_fn: files may grow to ``limit`` bytes; past it a write fails with EFBIG (not SIGXFSZ)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@contextlib.contextmanager
def small_disk(folder: Path, free: int):
    """A file system with ``free`` bytes left: a tmpfs mounted here (root only), filled but for ``free`` bytes.
    Yields (folder, preexec_fn): without the mount, the folder is plain and preexec_fn limits each file to
    ``free`` bytes (RLIMIT_FSIZE) instead."""
    folder.mkdir()
    size = free + 256 * 1024
    mounted = shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        yield folder, file_size_limit(free)
        return
    try:
        with open(folder / ".filler", "wb") as f:  # hidden: what a test lists of the folder is the run's
            f.write(b"\0" * (size - free))
        yield folder, None
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def assert_the_message_tells_what_is_left(stderr: str, out: Path, ext: str, stems: tuple[str, ...]) -> None:
    """One line naming the full disk; each output it says is kept decodes and holds the seconds it says; nothing
    it says was not kept exists; no temporary or lock file is left."""
    line = stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith("realtime-split: error: cannot write ") and \
        ("No space left on device" in line or "File too large" in line), line
    names = sorted(p.name for p in out.iterdir() if p.name != ".filler")
    assert all(name in {f"{stem}.{ext}" for stem in stems} for name in names), names  # only final names
    held = re.search(r"holds the first ([\d.]+)(?: to ([\d.]+))? s", line)
    if not names:
        assert held is None and ("nothing was" in line or "not kept" in line), line
        return
    assert held is not None, line
    seconds = []
    for name in names:
        data, _ = sf.read(out / name, dtype="float32", always_2d=True)  # decodes to its end
        assert len(data) == sf.info(str(out / name)).frames > 0
        seconds.append(f"{len(data) / 44100:.1f}")
    assert (min(seconds, key=float), max(seconds, key=float)) == (held.group(1), held.group(2) or held.group(1))
    if len(names) < len(stems):
        missing = [f"{stem}.{ext}" for stem in stems if f"{stem}.{ext}" not in names]
        assert all(name in line for name in missing) and "not kept" in line, line
