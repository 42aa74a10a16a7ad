"""The library validates what the command line validates (issue 31): sample rates, dtypes, shapes, hops and a
model's output shape give a ``ParameterError`` (or ``ModelFormatError``) naming the parameter, never a crash,
a hang or stems at the wrong scale; and the command line's option values get one true line each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import realtime_split as rs
from cli_helpers import command, fails, music, subprocess_env, write_music
from onnx_models import make_short_output_model
from realtime_split.cli import main
from realtime_split.errors import ModelFormatError, ParameterError, UserError

REPO = Path(__file__).resolve().parents[1]


# Integer PCM: scaled in process() and separate() alike ------------------------------------------------------------

@pytest.mark.parametrize("dtype, scale", [(np.int16, 2 ** 15), (np.int32, 2 ** 31), (np.int8, 2 ** 7)])
def test_integer_pcm_blocks_are_scaled_like_soundfile_reads_them(identity_model, dtype, scale):
    x = music(0.1, 44100, 2, seed=3)
    pcm = np.round(np.clip(x, -1, 0.999) * (scale - 1)).astype(dtype)
    as_float = pcm.astype(np.float64) / scale
    streamed = rs.StreamingSeparator(identity_model, stems="vocals", latency="low")
    floats = rs.StreamingSeparator(identity_model, stems="vocals", latency="low")
    got, want = streamed.process(pcm), floats.process(as_float.astype(np.float32))
    assert np.abs(got).max() <= 1.0  # not the +82 dBFS of int16 taken as floats
    np.testing.assert_allclose(got, want, atol=1e-6)
    whole = rs.separate(pcm, 44100, model=identity_model, stems="vocals")
    np.testing.assert_allclose(whole.stems["vocals"], as_float, atol=1e-6)


def test_unsigned_8_bit_pcm_is_centred_on_128(identity_model):
    pcm = np.array([0, 128, 255, 64] * 100, np.uint8)
    out = rs.separate(pcm, 44100, model=identity_model, stems="vocals").stems["vocals"]
    np.testing.assert_allclose(out, (pcm.astype(np.float32) - 128) / 128, atol=1e-6)


@pytest.mark.parametrize("audio", [np.ones((100, 2), bool), np.ones((100, 2), np.complex64), np.ones(100, np.int64),
                                   np.array(["a", "b"]), [[0.0, 1.0], [0.5]]])
def test_other_dtypes_are_a_parameter_error_in_both_forms(identity_model, audio):
    with pytest.raises(ParameterError, match="audio") as whole:
        rs.separate(audio, model=identity_model)
    with pytest.raises(ParameterError, match="block") as streamed:
        rs.StreamingSeparator(identity_model, latency="low").process(audio)
    assert whole.value.parameter == "audio" and streamed.value.parameter == "block"


@pytest.mark.parametrize("audio", [np.float32(0.5), np.int16(7)])
def test_a_single_sample_with_no_time_axis_is_not_audio(identity_model, audio):
    """A 0-d array is no signal: refused by its shape (it came back as one frame of stems)."""
    with pytest.raises(ParameterError, match=r"got shape \(\)"):
        rs.separate(audio, model=identity_model)


# Sample rates and hops: one bound, in the library ---------------------------------------------------------------

def _library_call(code: str, model: Path) -> subprocess.CompletedProcess:
    """Run ``code`` (with ``rs``, ``np`` and ``model`` defined) in its own interpreter: on the old code some of
    these calls crashed the interpreter inside soxr or never returned."""
    script = f"import numpy as np, realtime_split as rs\nmodel = {str(model)!r}\n{code}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                          timeout=120, cwd=REPO)


RATES = ["1", "10**9", "0", "-44100", "float('nan')", "float('inf')", "44100.5", "True", "'44100'"]


def test_impossible_sample_rates_are_refused_by_separate_and_the_streaming_engine(identity_model):
    done = _library_call(f"""
x = np.zeros((2000, 2), np.float32)
for rate in ({", ".join(RATES)},):
    for call in (lambda: rs.separate(x, rate, model=model), lambda: rs.StreamingSeparator(model, sample_rate=rate)):
        print(f"{{rate!r}}:", end=" ", flush=True)  # a crash or hang names its rate
        try:
            call()
            print("accepted", flush=True)
        except rs.ParameterError as exc:
            assert exc.parameter == "sample_rate", exc
            print("refused:", exc, flush=True)
""", identity_model)
    assert done.returncode == 0, (done.stdout[-300:], done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert len(lines) == 2 * len(RATES), done.stdout
    assert all(": refused: sample_rate=" in line and "from 1000 to 768000" in line for line in lines), done.stdout


def test_the_command_line_and_the_library_share_the_sample_rate_bounds():
    from realtime_split import audio_files, limits

    assert audio_files.SAMPLE_RATES is limits.SAMPLE_RATES
    for rate in limits.SAMPLE_RATES:
        assert limits.sample_rate(rate) == rate
        assert limits.sample_rate(float(rate)) == rate  # a device's rate, as PortAudio gives it
    for rate in (limits.SAMPLE_RATES[0] - 1, limits.SAMPLE_RATES[1] + 1):
        with pytest.raises(ParameterError):
            limits.sample_rate(rate)


@pytest.mark.parametrize("hop", [-1, 0, 5, 31, 100.0, "256"])
def test_a_hop_below_the_command_lines_bound_is_refused_in_the_library_terms(identity_model, hop):
    with pytest.raises(ParameterError, match=r"^hop=.*at least 32 model samples") as raised:
        rs.StreamingSeparator(identity_model, hop=hop)
    assert raised.value.parameter == "hop"
    assert "--hop" not in str(raised.value) and "non-negative" not in str(raised.value)


@pytest.mark.parametrize("make, parameter", [
    (lambda m: rs.StreamingSeparator(m, max_batch="x"), "max_batch"),
    (lambda m: rs.StreamingSeparator(m, threads=0), "threads"),
    (lambda m: rs.StreamingSeparator(m, latency=""), "latency"),
    (lambda m: rs.StreamingSeparator(m, gains=""), "gains"),
    (lambda m: rs.StreamingSeparator(m, gains=[" ", ","]), "gains"),
    (lambda m: rs.StreamingSeparator(m, channels=True), "channels"),
    (lambda m: rs.StreamingSeparator(m, latency="low").process(np.zeros((4, 2)), out=np.zeros((1, 4, 2))), "out"),
    (lambda m: rs.LiveSession(m, open_stream=False, sample_rate=1), "sample_rate"),
    (lambda m: rs.LiveSession(m, open_stream=False, blocksize="256"), "blocksize"),
    (lambda m: rs.LiveSession(m, open_stream=False, inference_budget=True), "inference_budget"),
    (lambda m: rs.LiveSession(m, jack_name="mine"), "jack_name"),  # no JACK ports to name
    (lambda m: rs.LiveSession(m, input="jack", jack_name="a:b"), "jack_name"),
    (lambda m: rs.LiveSession(m, input="jack", connect="(["), "connect"),
])
def test_other_library_arguments_are_a_parameter_error_naming_them(identity_model, make, parameter):
    with pytest.raises(ParameterError, match=f"{parameter}=") as raised:
        make(identity_model)
    assert raised.value.parameter == parameter


# A model whose output does not match its metadata -----------------------------------------------------------------

@pytest.fixture(scope="module")
def short_output_model(tmp_path_factory) -> Path:
    return make_short_output_model(tmp_path_factory.mktemp("bad") / "short.onnx")


def test_a_model_whose_output_is_shorter_than_its_input_is_refused_at_load(short_output_model):
    with pytest.raises(ModelFormatError, match=r"output 'stems' is \[1, 4, 2, 1984\].*promises \[1, 4, 2, 2048\]") \
            as raised:
        rs.StreamingSeparator(short_output_model)
    assert raised.value.parameter == "model"


def test_a_wrong_model_is_one_line_in_file_mode_and_writes_no_stem(tmp_path, short_output_model):
    song = tmp_path / "song.wav"
    write_music(song, seconds=0.3)
    done = subprocess.run([*command(), "--input", str(song), "--output", str(tmp_path / "out") + "/", "--model",
                           str(short_output_model), "--no-progress"], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{short_output_model}: output 'stems'" in done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.wav"))


def test_a_wrong_model_is_refused_before_a_live_session_opens_anything(short_output_model):
    session = rs.LiveSession(short_output_model, open_stream=False)
    with pytest.raises(ModelFormatError, match="output 'stems'"):
        session.start()


def test_a_user_error_is_what_the_command_line_catches(short_output_model):
    with pytest.raises(UserError):
        rs.Separator(short_output_model)


# The README quotes the bundled models' stamped scores as --list-models shows them -------------------------------

def test_the_readme_quotes_the_bundled_models_stamped_scores():
    from realtime_split import registry

    models = {m.name: m.info for m in registry.bundled_models()}
    if set(models) != {"fast", "quality"}:
        pytest.skip(f"the README describes the fast and quality models; this build bundles {sorted(models)}")
    readme = " ".join((REPO / "README.md").read_text().split())

    def scores(name: str, preset: str) -> dict[str, str]:
        import json

        return {stem: registry.score(v) for stem, v in json.loads(models[name].extra["scores"])[preset].items()}

    def ms(name: str, preset: str, digits: int) -> str:
        info = models[name]
        return f"{1000 * info.presets[preset].latency / info.sample_rate:.{digits}f}"

    q, q_live, f = scores("quality", "offline"), scores("quality", "quality"), scores("fast", "balanced")
    claims = [
        f"{q['vocals']} dB SDR on vocals ({q['drums']} drums, {q['bass']} bass, {q['other']} other, "
        f"{q['accompaniment']} accompaniment) offline for files",
        f"{q_live['vocals']} dB on vocals at {ms('quality', 'quality', 0)} ms",
        f"{f['vocals']} dB SDR on vocals ({f['drums']} drums, {f['bass']} bass, {f['other']} other) at "
        f"{ms('fast', 'balanced', 1)} ms",
    ]
    for claim in claims:
        assert claim in readme, f"README.md should say {claim!r}, as --list-models does"


# The command line's option values: one true line each -----------------------------------------------------------

@pytest.fixture
def song(tmp_path) -> Path:
    write_music(tmp_path / "song.wav", seconds=0.3)
    return tmp_path / "song.wav"


@pytest.mark.parametrize("options, contains", [
    (["--gain", ""], "--gain '' names no stem"),
    (["--gain", ","], "--gain , names no stem"),
    (["--latency", ""], "--latency '' names no preset"),
    (["--channels", "-1,2"], "--channels -1,2: pick one or two channels"),
    (["--duration", "-inf"], "--duration"),
    (["--gain", "vocal=-inf"], "gain for 'vocal', which is not an output stem; did you mean 'vocals'?"),
    (["--stem", "vocals", "--gain", "drums=-6"], "gain for 'drums', which is not an output stem; the output stems "
                                                 "are vocals (add it to --stem)"),
    (["--hop", "-1"], "--hop -1: the hop must be a whole number of at least 32 model samples"),
])
def test_option_values_get_one_true_line(tmp_path, capsys, song, scaled_model, options, contains):
    fails(capsys, "--input", song, "--output", tmp_path / "out/", *options, model=scaled_model, contains=contains)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [["--duration", "3"], ["--blocksize", "256"], ["--inference-budget", "0.01"],
                                     ["--jack-name", "mine"], ["--connect", "mpv"], ["--input-device", "1"],
                                     ["--output-device", "2"]])
def test_live_options_on_a_file_run_are_refused_not_dropped(tmp_path, capsys, song, scaled_model, options):
    fails(capsys, "--input", song, "--output", tmp_path / "out/", *options, model=scaled_model,
          contains=f"{options[0]} is for live audio")
    assert not (tmp_path / "out").exists()


def test_live_input_named_with_files_says_it_plays_alone(tmp_path, capsys, song, scaled_model):
    fails(capsys, "--input", "jack", song, model=scaled_model, contains="--input jack is live input and plays alone")


@pytest.mark.parametrize("options, contains", [
    (["--jack-name", "x" * 300], "--jack-name " + "x" * 300 + ": a JACK client's name has 1 to 63 characters"),
    (["--jack-name", "a:b"], "--jack-name a:b: a JACK client's name has 1 to 63 characters and no colon"),
    (["--connect", "(["], "--connect '([' is not a valid regular expression"),
    (["--connect", "vocals=(["], "--connect 'vocals=([' is not a valid regular expression"),
])
def test_jack_names_and_patterns_are_checked_before_any_server_is_asked(capsys, scaled_model, options, contains):
    fails(capsys, "--input", "jack", "--output", "jack", *options, model=scaled_model, contains=contains)


def test_a_model_name_given_as_latency_points_to_model(tmp_path, capsys, song):
    from realtime_split import registry

    if "fast" not in registry.bundled_names():
        pytest.skip("no bundled fast model in this build")
    assert main(["--input", str(song), "--output", f"{tmp_path}/out/", "--latency", "fast", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--latency fast names a model, not a latency preset; pass --model fast" in err, err


def test_the_latency_help_lists_every_preset_an_error_offers(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "latency preset (low, balanced, quality, offline;" in help_text


def test_a_model_path_over_255_bytes_is_one_line(tmp_path, capsys, song):
    fails(capsys, "--input", song, "--output", tmp_path / "out/", model="m" * 300 + ".onnx",
          contains="cannot be looked up (File name too long)")


@pytest.mark.slow
@pytest.mark.jack
def test_a_live_karaoke_run_names_its_gains_and_a_file_fed_run_no_input_port(tmp_path, scaled_model):
    from jack_harness import JackServer, jackd_path

    if jackd_path() is None:
        pytest.skip("jackd not found: the live run needs a real JACK server (apt-get install jackd2)")
    song = tmp_path / "song.wav"
    write_music(song, seconds=2.0)
    with JackServer(rate=44100, period=256):
        done = subprocess.run([*command(), "--input", str(song), "--output", "jack", "--gain", "vocals=-inf",
                               "--duration", "0.3", "--model", str(scaled_model), "--no-progress"],
                              capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    first = next(line for line in done.stderr.splitlines() if line.startswith("realtime-split: live "))
    assert first.startswith("realtime-split: live vocals -inf dB, drums, bass, other from "), first
    assert "file to output port" in first and "input port" not in first, first
