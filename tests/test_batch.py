"""``realtime-split batch``: a catalogue separated by worker processes or a Ray cluster, resumably.

Real parts: a tiny ONNX model from onnx_models.py, real audio files (one of them corrupt), real worker
processes, and for the Ray tests a two-node Ray cluster on this machine made here (slow: Ray takes
seconds to start; skipped with the reason when the ``cluster`` extra is not installed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from realtime_split import separate_file
from realtime_split.catalogue.job import batch, find_inputs
from realtime_split.cli import main
from realtime_split.errors import AudioIOError, ParameterError

REPO = Path(__file__).resolve().parents[1]
RATE = 44100
CORRUPT = "broken"


def _music(seconds: float, seed: int, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * (110 + 40 * seed) * t)
    noise = 0.05 * rng.standard_normal(len(t))
    return np.repeat((tone + noise)[:, None], channels, axis=1).astype(np.float32)


def _catalogue(folder: Path, good: int, long_seconds: float = 0.0) -> list[str]:
    """``good`` short songs in nested folders, in wav, flac and ogg, one mono, plus one corrupt file; with
    ``long_seconds`` one more song that long (so a worker can be caught mid-file). Returns their names."""
    names = []
    for i in range(good):
        sub = ("", "album-a/", "album-b/cd1/")[i % 3]
        ext = ("wav", "flac", "ogg")[i % 3]
        path = folder / f"{sub}song{i:02d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _music(0.5 + 0.1 * i, i, 1 if i == 4 else 2), RATE)
        names.append(f"{sub}song{i:02d}")
    if long_seconds:
        sf.write(folder / "long.wav", _music(long_seconds, 99), RATE)
        names.append("long")
    (folder / f"{CORRUPT}.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))  # a damaged header
    (folder / ".hidden.wav").write_bytes(b"not audio")  # hidden: a folder search leaves it alone
    (folder / "notes.txt").write_text("not an input: folders are searched for audio files\n")
    return names


def _stems(folder: Path) -> dict[str, tuple[np.ndarray, int, str, str]]:
    """Every stem in ``folder``: samples, rate, format, subtype."""
    found = {}
    for path in sorted(folder.glob("*.*")):
        info = sf.info(path)
        found[path.stem] = (sf.read(path, dtype="float32")[0], info.samplerate, info.format, info.subtype)
    return found


def _assert_equal_outputs(out: Path, reference: Path, names: list[str]) -> None:
    """Every song's stems in ``out`` are ``separate_file``'s, sample for sample, in the same format."""
    for name in names:
        got, want = _stems(out / name), _stems(reference / name)
        assert sorted(got) == sorted(want) == ["bass", "drums", "other", "vocals"], name
        for stem, (samples, *info) in want.items():
            assert got[stem][1:] == tuple(info), (name, stem)
            np.testing.assert_array_equal(got[stem][0], samples, err_msg=f"{name}/{stem}")


def _leftovers(out: Path) -> list[Path]:
    """Temporary or lock files of a stem: a killed or stopped worker must not leave any behind a finished job."""
    return [p for p in out.rglob(".*") if ".partial-" in p.name or p.name.endswith(".lock") and p.parent != out]


def _manifest(out: Path) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(out / "batch-manifest.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {row["name"]: row for row in db.execute("SELECT * FROM files")}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, scaled_model) -> tuple[Path, list[str], Path]:
    """11 good songs and a corrupt file (12 inputs), and each good song separated by ``separate_file``."""
    folder = tmp_path_factory.mktemp("catalogue")
    names = _catalogue(folder, 11)
    reference = tmp_path_factory.mktemp("reference")
    for name in names:
        source = next(folder.glob(f"{name}.*"))
        separate_file(source, reference / name / "", model=scaled_model)
    return folder, names, reference


def _run_cli(*args: str) -> int:
    return main(["batch", *args, "--no-progress"])


# The local engine (processes, the default) --------------------------------------------------------------------------

def test_local_default_gives_separate_file_outputs_and_records_the_corrupt_file(catalogue, scaled_model, tmp_path,
                                                                                 capsys):
    folder, names, reference = catalogue
    out = tmp_path / "stems"
    code = _run_cli(str(folder), "--output", str(out), "--model", str(scaled_model), "--workers", "2")
    assert code == 1  # something failed
    _assert_equal_outputs(out, reference, names)
    rows = _manifest(out)
    assert sorted(rows) == sorted([*names, CORRUPT])  # the hidden file and the .txt are not inputs
    assert {rows[n]["status"] for n in names} == {"done"}
    assert rows[CORRUPT]["status"] == "failed" and "damaged" in rows[CORRUPT]["error"]
    assert all(rows[n]["model_name"] == "test-model" and rows[n]["preset"] == "offline" and
               len(rows[n]["model_version"]) == 64 and rows[n]["seconds"] > 0 for n in names)
    text = capsys.readouterr().out
    assert "11 done, 0 skipped (done before), 1 failed" in text
    assert f"failed: {folder / CORRUPT}.wav: cannot read" in text
    assert not list(out.rglob("*.wav.lock")) and not _leftovers(out)


def test_rerun_skips_what_is_done_touching_redoes_one_and_retry_failed_retries(tmp_path, scaled_model,
                                                                              identity_model):
    folder = tmp_path / "music"
    names = _catalogue(folder, 3)
    out = tmp_path / "stems"

    def run(**options):
        return batch([folder], out, model=scaled_model, workers=1, **options)

    first = run()
    assert [f.status for f in first.files] == ["failed", "done", "done", "done"]  # broken.wav sorts first
    modified = {p: p.stat().st_mtime_ns for p in out.rglob("vocals.wav")}

    again = run()
    assert [f.status for f in again.files] == ["failed", "skipped", "skipped", "skipped"]
    assert again.files[0].earlier and "damaged" in again.files[0].error and not again.ok
    assert again.workers == 0  # nothing to do: no worker was started
    assert {p: p.stat().st_mtime_ns for p in out.rglob("vocals.wav")} == modified

    touched = next(folder.glob(f"{names[1]}.*"))
    os.utime(touched, ns=(time.time_ns(), touched.stat().st_mtime_ns + 10**9))
    redone = run()
    assert {f.name: f.status for f in redone.files} == {CORRUPT: "failed", names[0]: "skipped", names[1]: "done",
                                                        names[2]: "skipped"}
    assert redone.files[0].earlier  # the failure is not tried again without retry_failed

    retried = run(retry_failed=True)
    assert {f.name: f.status for f in retried.files}[CORRUPT] == "failed"
    assert not retried.files[0].earlier and retried.files[0].attempts == 1
    assert [f.status for f in retried.files[1:]] == ["skipped"] * 3
    assert _manifest(out)[CORRUPT]["attempts"] == 2  # tried in the first run and in this one

    vocals_only = run(stems="vocals")  # an option that changes the outputs redoes every file
    assert [f.status for f in vocals_only.files[1:]] == ["done"] * 3
    assert all(list(f.outputs) == ["vocals"] for f in vocals_only.files[1:])
    assert [f.status for f in run(stems="vocals").files[1:]] == ["skipped"] * 3

    before = _manifest(out)[names[0]]["model_version"]
    other_model = batch([folder], out, model=identity_model, stems="vocals", workers=1)  # so does another model
    assert [f.status for f in other_model.files[1:]] == ["done"] * 3
    assert _manifest(out)[names[0]]["model_version"] != before


def test_inputs_from_globs_and_lists_mirror_their_folders(tmp_path):
    folder = tmp_path / "music"
    _catalogue(folder, 3)
    globbed = find_inputs([str(folder / "**" / "*.flac"), str(folder / "song00.wav")])
    assert [i.name for i in globbed] == ["album-a/song01", "song00"]
    (tmp_path / "list.txt").write_text(f"# my catalogue\nmusic/song00.wav\n\n{folder / 'album-a/song01.flac'}\n")
    (tmp_path / "list.csv").write_text("artist,path\nx,music/album-b/cd1/song02.ogg\n")
    listed = find_inputs([tmp_path / "list.txt", tmp_path / "list.csv"])
    assert [i.name for i in listed] == ["music/song00", "music/album-a/song01", "music/album-b/cd1/song02"]
    assert all(i.path.is_absolute() for i in listed)
    # The output folder inside an input folder is not searched (a rerun must not separate its own stems).
    (folder / "stems" / "song00").mkdir(parents=True)
    sf.write(folder / "stems" / "song00" / "vocals.wav", _music(0.1, 0), RATE)
    assert "stems/song00/vocals" not in [i.name for i in find_inputs([folder], exclude=folder / "stems")]


def test_bad_job_options_fail_before_any_work_in_one_line(tmp_path, scaled_model, capsys):
    folder = tmp_path / "music"
    _catalogue(folder, 1)
    (folder / "song00.flac").write_bytes((folder / "song00.wav").read_bytes())  # song00.wav and .flac: one folder
    with pytest.raises(ParameterError, match="both be written to the folder song00/"):
        batch([folder], tmp_path / "out", model=scaled_model)
    (folder / "song00.flac").unlink()
    with pytest.raises(ParameterError, match="matches no file"):
        batch([str(folder / "*.mp3")], tmp_path / "out", model=scaled_model)
    (tmp_path / "bad.csv").write_text("file\nsong00.wav\n")
    code = _run_cli(str(tmp_path / "bad.csv"), "--output", str(tmp_path / "out"), "--model", str(scaled_model))
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no 'path' column" in err[0]
    code = _run_cli(str(folder), "--output", str(tmp_path / "out"), "--model", str(scaled_model), "--stem", "kazoo")
    assert code == 2 and "--stem" in capsys.readouterr().err
    assert not (tmp_path / "out" / "song00").exists()


def test_a_second_job_on_the_same_output_is_refused(tmp_path, scaled_model):
    from realtime_split.catalogue.manifest import Manifest

    folder = tmp_path / "music"
    _catalogue(folder, 1)
    with Manifest(tmp_path / "out"):  # a job holding the output
        with pytest.raises(AudioIOError, match="another batch job is writing to"):
            batch([folder], tmp_path / "out", model=scaled_model, workers=1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except OSError:
        return False


class _Killer:
    """Kills the first worker process caught writing a stem (a ``.partial-`` file open under ``out``) with ``signum``,
    and notes whether that song's stems had their final names at that moment."""

    def __init__(self, out: Path, signum: int = signal.SIGKILL):
        self.out, self.signum, self.killed, self.final_names = out, signum, None, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _holder(self, partial: Path) -> int | None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == str(partial):
                        return int(pid)
            except OSError:
                continue
        return None

    def _watch(self) -> None:
        while not self._stop.is_set() and self.killed is None:
            for partial in self.out.rglob(".*.partial-*") if self.out.is_dir() else ():
                if partial.parent.name == "long" and (pid := self._holder(partial)) is not None:
                    os.kill(pid, self.signum)
                    self.killed = pid
                    while _alive(pid):  # its last act may be to give stems their names: look once it is gone
                        time.sleep(0.001)
                    self.final_names = sorted(p.name for p in partial.parent.glob("*.wav"))
                    return
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _killed_worker_job(tmp_path: Path, model: Path, attempts: int, signum: int = signal.SIGKILL, **options) -> None:
    """A job whose worker is killed while it writes the long song: every file ends done exactly once, equal to
    separate_file's, and the killed song's stems never had their final names before they were whole."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("finding the worker that writes a file needs /proc")
    folder = tmp_path / "music"
    names = _catalogue(folder, 3, long_seconds=30.0)
    (folder / f"{CORRUPT}.wav").unlink()
    reference = tmp_path / "reference"
    for name in names:
        separate_file(next(folder.glob(f"{name}.*")), reference / name / "", model=model)
    out = tmp_path / "stems"
    killer = _Killer(out, signum)
    try:
        result = batch([folder], out, model=model, **options)
    finally:
        killer.stop()
    assert killer.killed is not None, "no worker was caught writing the long song"
    assert killer.final_names == []  # when the worker was gone, its half-written stems had hidden names only
    assert sorted(f.name for f in result.files) == sorted(names)  # each input once
    assert all(f.status == "done" for f in result.files)
    assert {f.name: f.attempts for f in result.files}["long"] == attempts
    rows = _manifest(out)
    assert {r["status"] for r in rows.values()} == {"done"} and rows["long"]["attempts"] == attempts
    _assert_equal_outputs(out, reference, names)
    assert not _leftovers(out)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_worker_process_is_replaced_and_its_file_done_once(tmp_path, scaled_model, signum):
    """SIGKILL (out of memory, a crash) or SIGTERM (which separate_file answers by keeping a stopped file's stems,
    and the worker by taking them away again): the file is sent to a new worker and done once."""
    _killed_worker_job(tmp_path, scaled_model, 2, signum, workers=2)


def test_a_stopped_job_leaves_no_file_looking_finished_and_the_same_command_goes_on(tmp_path, scaled_model):
    folder = tmp_path / "music"
    names = _catalogue(folder, 2, long_seconds=30.0)
    (folder / f"{CORRUPT}.wav").unlink()
    out = tmp_path / "stems"
    command = [sys.executable, "-m", "realtime_split", "batch", str(folder), "--output", str(out), "--model",
               str(scaled_model), "--workers", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list((out / "long").glob(".*.partial-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)  # as a scheduler stops a job; the long song is being written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "run the same command again to go on" in err
    assert list((out / "long").glob("*.wav")) == []  # its half-written stems never had their names
    assert _manifest(out)["long"]["status"] == "running"  # so the next run does it
    again = batch([folder], out, model=scaled_model, workers=1)
    assert {f.name: f.status for f in again.files}["long"] == "done" and again.ok
    assert sorted(f.name for f in again.files) == sorted(names)
    assert not _leftovers(out)


# Ray ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster of two nodes (a head and a worker, one CPU each) on 127.0.0.1, for this module."""
    ray = pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    # The nodes' worker processes import this checkout's realtime_split, whatever is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray's switch for a single-machine cluster: loopback
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.slow
def test_ray_cluster_gives_separate_file_outputs_and_records_the_corrupt_file(catalogue, scaled_model, ray_cluster,
                                                                              tmp_path, capsys):
    folder, names, reference = catalogue
    out = tmp_path / "stems"
    code = _run_cli(str(folder), "--output", str(out), "--model", str(scaled_model), "--cluster", ray_cluster,
                    "--json")
    assert code == 1
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == f"ray {ray_cluster}" and report["workers"] == 2  # one per CPU of the two nodes
    assert (report["done"], report["skipped"], report["failed"]) == (11, 0, 1)
    assert len(report["peak_rss_bytes"]) == 2  # both actors separated files
    failed = [f for f in report["files"] if f["status"] == "failed"]
    assert [f["name"] for f in failed] == [CORRUPT] and "damaged" in failed[0]["error"]
    _assert_equal_outputs(out, reference, names)
    assert _manifest(out)[CORRUPT]["status"] == "failed"
    # The same outputs as the local default; a rerun skips everything, without starting Ray.
    code = _run_cli(str(folder), "--output", str(out), "--model", str(scaled_model), "--cluster", ray_cluster)
    assert code == 1 and "0 done, 11 skipped (done before), 1 failed" in capsys.readouterr().out


@pytest.mark.slow
def test_ray_actor_killed_mid_file_is_restarted_and_its_file_done_once(tmp_path, scaled_model, ray_cluster):
    # Ray sends the task to the restarted actor itself, so the job sees one attempt.
    _killed_worker_job(tmp_path, scaled_model, 1, cluster=ray_cluster)


def test_cluster_without_ray_says_how_to_install_it(tmp_path, scaled_model, monkeypatch):
    folder = tmp_path / "music"
    _catalogue(folder, 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the cluster extra were not installed
    with pytest.raises(ParameterError, match=r"realtime-split\[cluster\]"):
        batch([folder], tmp_path / "out", model=scaled_model, cluster="auto")


def test_readme_batch_command_runs(tmp_path, scaled_model):
    """The README's batch example, on a copy of the bundled demo (the tiny model keeps it quick)."""
    demo = REPO / "realtime_split" / "demo" / "demo.ogg"
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(demo, music / demo.name)
    assert _run_cli(str(music), "--output", str(tmp_path / "stems"), "--model", str(scaled_model)) == 0
    assert sorted(p.name for p in (tmp_path / "stems" / demo.stem).iterdir()) == [
        "bass.wav", "drums.wav", "other.wav", "vocals.wav"]


def test_a_file_sent_after_a_worker_died_unnoticed_is_done_with_the_dead_workers_file(tmp_path, scaled_model):
    """The job sends the next file as soon as one is done, which may fall between a worker's death and the
    engine's next look at its results: the pool is already broken then. Both files are done, once each."""
    from realtime_split.catalogue.engines import LocalEngine, Task
    from realtime_split.catalogue.job import _settings

    folder = tmp_path / "music"
    _catalogue(folder, 1, long_seconds=30.0)
    long, short = folder / "long.wav", folder / "song00.wav"
    settings, *_ = _settings(scaled_model, None, None, None, None, "cpu", None, None, None, None)
    engine = LocalEngine(settings, workers=1, threads=1, gpu=False)
    try:
        engine.submit(Task("long", str(long), str(tmp_path / "stems" / "long"), None, None, None))
        killer = _Killer(tmp_path / "stems")
        deadline = time.monotonic() + 60
        while killer.killed is None:  # the worker is killed while it writes the long song's stems
            assert time.monotonic() < deadline, "no worker was caught writing the long song"
            time.sleep(0.01)
        killer.stop()
        while not engine._pool._broken:  # the standard library's flag: the pool has seen its worker die
            assert time.monotonic() < deadline, "the pool never noticed its dead worker"
            time.sleep(0.01)
        engine.submit(Task("short", str(short), str(tmp_path / "stems" / "short"), None, None, None))
        outcomes = {o.name: o for o in (engine.next_outcome(), engine.next_outcome())}
    finally:
        engine.close(stop=True)
    assert {name: (o.status, o.attempts) for name, o in outcomes.items()} == {"long": ("done", 2),
                                                                               "short": ("done", 1)}
    assert engine.pending() == 0
