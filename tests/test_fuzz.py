"""Property-based and corpus tests: the engine keeps its promises for any blocks, the CLI never shows a
traceback for any option values, and damaged audio files never crash, hang or write outside the output.

hypothesis draws the cases (a modest number of examples each, no deadline: a loaded machine must not
fail them); the corrupt files are made here from real encodings of test music.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings, strategies as st

from realtime_split import StreamingSeparator
from realtime_split.cli import main
from test_cli_errors import command, subprocess_env
from test_cli_files import music, write_music

pytestmark = pytest.mark.slow  # the property tests and the corpus of damaged files

MODEL_RATE = 44100
FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# One separator per (model, rate, channels) for the whole module: loading a session per example is the slow part.
_separators: dict[tuple, StreamingSeparator] = {}


def separator(model: Path, rate: int, channels: int) -> StreamingSeparator:
    key = (str(model), rate, channels)
    if key not in _separators:
        _separators[key] = StreamingSeparator(model, stems="vocals,drums", latency="low", sample_rate=rate,
                                              channels=channels)
    sep = _separators[key]
    sep.reset()
    return sep


@st.composite
def streams(draw):
    """(sample rate, channels, signal with NaN/Inf bursts, block sizes that cover it)."""
    rate = draw(st.sampled_from([MODEL_RATE, 48000, 22050]))
    channels = draw(st.sampled_from([1, 2]))
    frames = draw(st.integers(0, 12000))
    x = music((frames + 16) / rate, rate, channels, seed=draw(st.integers(0, 1000)))[:frames]
    for _ in range(draw(st.integers(0, 3))):  # bursts of NaN, +Inf or -Inf
        if frames:
            start = draw(st.integers(0, frames - 1))
            x[start:start + draw(st.integers(1, 64)), draw(st.integers(0, channels - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf]))
    blocks, left = [], frames
    while left > 0:
        blocks.append(min(left, draw(st.one_of(st.integers(0, 5), st.integers(1, 700), st.integers(1, 5000)))))
        left -= blocks[-1]
    return rate, channels, x, blocks


@FAST
@given(case=streams())
def test_engine_output_has_the_input_length_is_finite_and_aligned(identity_model, case):
    rate, channels, x, blocks = case
    sep = separator(identity_model, rate, channels)
    outputs, done = [], 0
    for n in blocks:
        out = sep.process(x[done:done + n])
        assert out.shape == (2, n, channels)
        outputs.append(out)
        done += n
    tail = sep.flush()
    assert tail.shape == (2, sep.latency_samples, channels)
    stems = np.concatenate([*outputs, tail], axis=1)[:, sep.latency_samples:]
    assert stems.shape[1] == len(x)
    assert np.all(np.isfinite(stems))
    clean = np.where(np.isfinite(x), x, 0.0)
    if rate == MODEL_RATE:  # the identity model gives back the input, sample for sample
        np.testing.assert_allclose(stems[0], clean, atol=1e-5)
        np.testing.assert_allclose(stems[1], clean, atol=1e-5)
    elif len(x) > rate // 5 and np.std(clean) > 0:  # through soxr both ways: aligned, so still correlated
        corr = np.dot(stems[0].ravel(), clean.ravel()) / (np.linalg.norm(stems[0]) * np.linalg.norm(clean) + 1e-12)
        assert corr > 0.95


# The CLI: any option values give exit 0 or one line and exit 2, never a traceback --------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)
NUMBER = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(str), st.floats(allow_nan=True).map(repr),
                   st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0x10", "1_0", " 3 "]), TEXT)
OPTIONS = {
    "--stem": st.one_of(st.sampled_from(["all", "vocals", "accompaniment", "vocals,,drums", "", ",", "VOCALS"]), TEXT),
    "--gain": st.one_of(st.tuples(st.sampled_from(["vocals", "drums", "", "kazoo"]), NUMBER).map("=".join), TEXT),
    "--hop": NUMBER,
    "--latency": st.one_of(st.sampled_from(["low", "balanced", "quality", "offline", ""]), TEXT),
    "--channels": st.one_of(st.sampled_from(["1", "2", "1,2", "2,1", "0", "3", "1,2,1", ",", "-1"]), TEXT),
    "--format": st.one_of(st.sampled_from(["wav", "flac", "ogg", "mp3", "au", "raw", "m4a", ""]), TEXT),
    "--subtype": st.one_of(st.sampled_from(["PCM_16", "FLOAT", "VORBIS", "PCM_S8", "ULAW", ""]), TEXT),
    "--duration": NUMBER,
    "--blocksize": NUMBER,
    "--offline": st.none(),
    "--provider": st.sampled_from(["auto", "cpu", "cuda", "tpu"]),
}


@st.composite
def option_sets(draw):
    names = draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=4, unique=True))
    argv = []
    for name in names:
        value = draw(OPTIONS[name])
        argv += [name] if value is None else [f"{name}={value}"]  # = keeps a value like "-5" a value
    return argv


@pytest.fixture(scope="module")
def short_song(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "song.wav"
    write_music(path, seconds=0.1)
    return path


@FAST
@given(argv=option_sets())
def test_any_option_values_give_a_result_or_one_line(short_song, scaled_model, capsys, argv):
    with tempfile.TemporaryDirectory() as out:
        try:
            code = main(["--input", str(short_song), "--output", f"{out}/", "--model", str(scaled_model),
                         "--no-progress", *argv])
        except SystemExit as exc:  # argparse: a value of the wrong type, or a choice that does not exist
            code = exc.code
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            errors = [line for line in err.splitlines() if "error" in line]
            assert len(errors) == 1 and errors[0].startswith("realtime-split: error: "), (argv, err)
        else:
            assert any(Path(out).iterdir()), argv


# Damaged files through the command --------------------------------------------------------------------------------

def _corpus(folder: Path) -> list[Path]:
    """Damaged audio of every kind a user meets: cut short, empty, wrong headers, noise, lies in the header."""
    rng = np.random.default_rng(7)
    made = []
    formats = ["wav", "flac", "ogg"] + (["mp3"] if "MP3" in sf.available_formats() else [])
    for ext in formats:
        good = folder / f"good.{ext}"
        write_music(good, seconds=1.0)
        data = good.read_bytes()
        for name, content in [
            ("empty", b""),
            ("header-only", data[:44 if ext == "wav" else 64]),
            ("cut-at-10pc", data[:len(data) // 10]),
            ("cut-at-60pc", data[:len(data) * 6 // 10]),
            ("noise-body", data[:64] + rng.bytes(len(data) - 64)),
            ("bit-flips", bytes(b ^ 0x5A if i % 97 == 13 else b for i, b in enumerate(data))),
        ]:
            made.append(folder / f"{name}.{ext}")
            made[-1].write_bytes(content)
        good.unlink()
    wav = bytearray((folder / "cut-at-60pc.wav").read_bytes())
    for name, offset, value in [("zero-channels", 22, b"\x00\x00"), ("zero-rate", 24, b"\x00\x00\x00\x00"),
                                ("huge-rate", 24, b"\xff\xff\xff\x7f"), ("odd-bits", 34, b"\x07\x00")]:
        bad = bytearray(wav)
        bad[offset:offset + len(value)] = value
        made.append(folder / f"{name}.wav")
        made[-1].write_bytes(bytes(bad))
    made.append(folder / "random.wav")
    made[-1].write_bytes(rng.bytes(5000))
    made.append(folder / "flac-named-wav.wav")
    write_music(folder / "tmp.flac", seconds=0.3)
    (folder / "tmp.flac").rename(made[-1])
    return made


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_damaged_files_never_crash_hang_or_write_outside_the_output(tmp_path, scaled_model):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = _corpus(corpus)
    before = _snapshot(tmp_path)
    outcomes = {}
    for path in files:
        out = tmp_path / "out" / path.name
        try:
            done = subprocess.run([*command(), "--input", str(path), "--stem", "vocals", "--output", f"{out}/",
                                   "--model", str(scaled_model), "--no-progress"], capture_output=True, text=True,
                                  env=subprocess_env(), timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{path.name}: no answer after 60 s")
        assert done.returncode in (0, 2), (path.name, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "Error:" not in done.stdout, (path.name, done.stderr)
        ours = [line for line in done.stderr.splitlines() if line.startswith("realtime-split:")]
        if done.returncode == 2:
            assert len([line for line in ours if "error:" in line]) == 1, (path.name, done.stderr)
        else:
            sf.info(str(out / "vocals.wav"))  # a valid file (empty when the input held no audio)
        outcomes[path.name] = done.returncode
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before  # inputs untouched, nothing else
    print(outcomes)
    assert 2 in outcomes.values() and 0 in outcomes.values()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg decodes m4a")
def test_a_damaged_m4a_through_ffmpeg_is_one_line(tmp_path, scaled_model):
    write_music(tmp_path / "song.wav", seconds=1.0)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "song.wav"), "-c:a", "aac",
                    str(tmp_path / "song.m4a")], check=True)
    data = (tmp_path / "song.m4a").read_bytes()
    (tmp_path / "cut.m4a").write_bytes(data[:len(data) // 2])
    (tmp_path / "noise.m4a").write_bytes(np.random.default_rng(1).bytes(len(data)))
    for name in ("cut.m4a", "noise.m4a"):
        done = subprocess.run([*command(), "--input", str(tmp_path / name), "--stem", "vocals", "--output",
                               str(tmp_path / f"{name}.wav"), "--model", str(scaled_model)], capture_output=True,
                              text=True, env=subprocess_env(), timeout=60)
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, (name, done.stderr)
        if done.returncode == 2:
            assert done.stderr.strip().count("\n") == 0, done.stderr


# Outputs under stress (issue 31): concurrent runs, stop signals, full disks -----------------------------------------

STRESS = settings(max_examples=3, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
STEMS = ("vocals", "drums", "bass", "other")
GAINS = {"vocals": 0.5, "drums": 0.25, "bass": 0.125, "other": 0.125}  # the scaled model's


def _leftovers(folder: Path) -> list[str]:
    """Hidden files a run left (temporaries, locks); a tmpfs's filler is the test's own."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".filler")


@pytest.fixture(scope="module")
def two_minutes(tmp_path_factory) -> Path:
    from test_output_set import long_song

    return long_song(tmp_path_factory.mktemp("stress") / "long.wav", seconds=120)


@STRESS
@given(runs=st.integers(2, 3), seconds=st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=3, max_size=3))
def test_concurrent_runs_into_one_folder_never_splice(tmp_path, scaled_model, runs, seconds):
    """Issue 31, 1: runs into one folder each either write whole stems of their own song or are refused."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        folder = Path(work)
        mixes = [write_music(folder / f"song{i}.wav", seconds=seconds[i], seed=i) for i in range(runs)]
        out = folder / "out"
        procs = [subprocess.Popen([*command(), "--input", str(folder / f"song{i}.wav"), "--output", f"{out}/",
                                   "--model", str(scaled_model), "--no-progress"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=subprocess_env()) for i in range(runs)]
        results = [(p, *p.communicate(timeout=120)) for p in procs]
        for proc, _, err in results:
            assert proc.returncode in (0, 2) and "Traceback" not in err, err
            if proc.returncode == 2:
                assert err.startswith("realtime-split: error: another run (pid ") and err.count("\n") == 1, err
        assert any(proc.returncode == 0 for proc, _, _ in results)
        stems = {stem: sf.read(out / f"{stem}.wav", dtype="float32", always_2d=True)[0] for stem in STEMS}
        source = [i for i, mix in enumerate(mixes) if mix.shape == stems["vocals"].shape
                  and np.allclose(stems["vocals"], GAINS["vocals"] * mix, atol=1e-5)]
        assert len(source) == 1, "the vocals are no one song's"
        for stem in STEMS:  # every stem from that one song, whole
            np.testing.assert_allclose(stems[stem], GAINS[stem] * mixes[source[0]], atol=1e-5)
        assert _leftovers(out) == []


@STRESS
@given(ext=st.sampled_from(["wav", "flac", "ogg", "mp3"]),
       sig=st.sampled_from([signal.SIGINT, signal.SIGTERM, signal.SIGHUP]), after=st.integers(0, 300_000))
def test_a_stop_signal_at_any_moment_leaves_whole_stems_of_one_length(tmp_path, conv_model, two_minutes, ext, sig,
                                                                     after):
    """Issue 31, 2 and 6: SIGINT, SIGTERM or SIGHUP in any format, at any point: the stems kept have one length,
    decode to their end, and the message says how long they are; or nothing is kept and the message says so."""
    from test_output_set import start, stop, wait_for_partial

    if signal.getsignal(sig) is signal.SIG_IGN:
        pytest.skip(f"{sig.name} is ignored here (started under nohup?), so the command keeps ignoring it")
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        out = Path(work) / "out"
        proc = start(two_minutes, out, conv_model, "--format", ext)
        wait_for_partial(proc, out / f"other.{ext}", size=after)
        code, err = stop(proc, sig)
        assert code == 128 + sig, err
        assert "Traceback" not in err and err.rstrip().endswith("interrupted" + ("" if sig == signal.SIGINT
                                                                                else f" by {sig.name}")), err
        names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        assert _leftovers(out) == []
        if not names:
            assert "nothing was written" in err, err
            return
        assert names == sorted(f"{stem}.{ext}" for stem in STEMS)
        lengths = set()
        for name in names:
            data, _ = sf.read(out / name, dtype="float32", always_2d=True)
            assert len(data) == sf.info(str(out / name)).frames
            lengths.add(len(data))
        assert len(lengths) == 1, lengths
        assert f"holds its first {lengths.pop() / 44100:.1f} s" in err, err


@STRESS
@given(ext=st.sampled_from(["wav", "flac", "ogg", "mp3"]), free=st.integers(0, 1_200_000))
def test_a_full_disk_of_any_size_in_any_format_says_truly_what_is_left(tmp_path, scaled_model, ext, free):
    """Issue 31, 3: whatever room is left, the outputs kept are whole and the message says what they hold."""
    from test_reliability import assert_the_message_tells_what_is_left, run_cli, small_disk

    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        folder = Path(work)
        mix = write_music(folder / "song.wav", seconds=3.0, subtype="PCM_16")
        with small_disk(folder / "disk", free) as (disk, preexec_fn):
            done = run_cli("--input", folder / "song.wav", "--output", f"{disk / 'o'}/", "--format", ext,
                           "--model", scaled_model, "--no-progress", preexec_fn=preexec_fn, text=True)
            assert done.returncode in (0, 2), done.stderr
            if done.returncode == 2:
                if (disk / "o").is_dir():
                    assert_the_message_tells_what_is_left(done.stderr, disk / "o", ext, STEMS)
                else:  # not even the folder fitted
                    assert done.stderr.startswith("realtime-split: error: cannot write to "), done.stderr
            else:
                for stem in STEMS:
                    assert len(sf.read(disk / "o" / f"{stem}.{ext}")[0]) == len(mix)
                assert _leftovers(disk / "o") == []
