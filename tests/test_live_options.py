"""Live options that cannot work together are one line naming the problem and the fix, before any device or
JACK server is touched (and a missing JACK server is one line too)."""

from __future__ import annotations

import pytest

from realtime_split import LiveSession, ParameterError, UserError
from realtime_split.cli import main


def cli_error(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("realtime-split: error: ") and "\n" not in err and "Traceback" not in err, err
    return err.removeprefix("realtime-split: error: ")


@pytest.mark.parametrize("args, message", [
    (["--input", "mic", "--output", "jack"],
     "--output jack takes its input from JACK ports or a file: pass --input jack (and --connect to wire a source) "
     "or --input song.flac"),
    (["--input", "mic", "--connect", "mpv"], "--connect wires JACK ports; it needs --input jack or --output jack"),
    (["--input", "jack", "--output", "monitor.wav"],
     "--output monitor.wav: a recording saves what a sound device plays; with JACK ports record them where they go "
     "(your DAW, or jack_capture)"),
    (["--input", "jack", "--input-device", "3"],
     "--input-device picks a sound device; with JACK ports connect them instead, e.g. --connect system:capture"),
    (["--input", "jack", "--inference-budget", "0"],
     "--inference-budget 0.0: give seconds between 0 and 1, e.g. --inference-budget 0.008"),
])
def test_options_that_cannot_work_with_jack_ports_are_one_line(capsys, scaled_model, args, message):
    assert cli_error(capsys, *args, "--model", scaled_model) == message


def test_the_library_names_its_parameters(scaled_model):
    with pytest.raises(ParameterError) as caught:
        LiveSession(scaled_model, input="jack", open_stream=False)
    assert caught.value.parameter == "open_stream"
    with pytest.raises(ParameterError, match=r"^output='headphones': a live session plays to output='speakers' or "):
        LiveSession(scaled_model, output="headphones")


def test_connect_patterns_name_sources_or_an_output_pair():
    from realtime_split.live.jack_client import parse_connect

    pairs = ["vocals", "drums", "dry"]
    assert parse_connect("mpv", pairs) == (None, "mpv")
    assert parse_connect("system:capture_[12]", pairs) == (None, "system:capture_[12]")
    assert parse_connect("vocals=system:playback", pairs) == ("vocals", "system:playback")
    assert parse_connect("dry=ardour:audio 1/audio_in", pairs) == ("dry", "ardour:audio 1/audio_in")
    with pytest.raises(ParameterError, match=r"^connect='bass=x': 'bass' is not one of this session's outputs; "
                                             r"choose one of vocals, drums, dry$"):
        parse_connect("bass=x", pairs)
    with pytest.raises(UserError, match=r"^connect='' names no ports"):
        parse_connect("", pairs)


def test_no_jack_server_is_a_one_line_error(capsys, scaled_model, monkeypatch):
    pytest.importorskip("jack", reason="JACK-Client opens the client")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "realtime-split-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert cli_error(capsys, "--input", "jack", "--output", "jack", "--model", scaled_model) == (
        "no JACK server is running; start one (jackd -d alsa, or PipeWire with its JACK layer, pipewire-jack), or "
        "set JACK_DEFAULT_SERVER to the one you run")


def test_a_block_size_out_of_range_is_refused_in_the_same_words_by_the_library_and_the_command_line(capsys,
                                                                                                      scaled_model):
    from realtime_split.cli import command_line

    with pytest.raises(ParameterError) as caught:
        LiveSession(scaled_model, blocksize=8)
    assert caught.value.parameter == "blocksize"
    assert cli_error(capsys, "--input", "mic", "--blocksize", "8", "--model", scaled_model) == \
        command_line(str(caught.value)) == ("--blocksize 8: choose between 16 and 16384 frames (e.g. 256); without "
                                            "--blocksize the block is the latency preset's hop")


def test_importing_the_library_or_the_cli_leaves_the_audio_callback_uncompiled_until_live_sessions_are_used():
    import subprocess
    import sys

    code = ("import sys, realtime_split, realtime_split.cli; from realtime_split import list_devices, LiveStats; "
            "loaded = lambda: sorted(m for m in sys.modules if m.startswith('realtime_split.live.') "
            "and m.split('.')[-1] in ('bridge', 'callbacks', 'session')); before = loaded(); "
            "realtime_split.LiveSession; print(before, loaded())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("[] ['realtime_split.live.bridge', 'realtime_split.live.callbacks', "
                                     "'realtime_split.live.session']")
