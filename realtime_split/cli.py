"""Command line: ``realtime-split --input FILE|mic --stem ... --output FILE|DIR/|speakers``.

A thin adapter over the library: it parses the options, turns them into a ``Separator`` (files)
or a ``LiveSession`` (live audio), and shows what those report (the model in use, a progress bar
or status line, the summary and warnings). A ``UserError`` or a bad option becomes one line on
stderr and exit code 2; the library's messages name its parameters (``model='x'``), shown here
as the flags that set them (``--model x``). Ctrl-C (SIGINT), SIGTERM and SIGHUP exit with
128 + the signal number (130, 143, 129) after the library has finalized the outputs.
"""

from __future__ import annotations

import argparse
import ast
import errno
import math
import os
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, registry
from .audio_files import STDIO
from .errors import UserError, signals_raise_interrupted
from .live.devices import JACK, SPEAKERS, check_blocksize

if TYPE_CHECKING:  # the library modules load numpy, ONNX Runtime and numba: only when a mode runs
    from .api import Separator
    from .file_mode import FileResult, Progress

# The keys cli_keys.py reads (listed here: --help must not load the library).
HELP_KEYS = ("live audio plays every stem the model separates; --stem and --gain set where the mix starts.\n"
             "keys while it plays (on a terminal): 1-9 choose a stem, up/down or +/- change its gain by 1 dB,\n"
             "  m mute or unmute it, s solo or release it, 0 back to 0 dB")
LIVE_INPUT = "mic"
LIVE_OUTPUT = SPEAKERS  # --output speakers; JACK (--input jack, --output jack): ports of its own JACK client
DEFAULT_OUTPUT_DIR = "separated/"
# The live options a file run has no use for: refused there rather than dropped without a word.
LIVE_ONLY = ("duration", "blocksize", "inference_budget", "jack_name", "connect", "input_device", "output_device",
             "osc", "midi", "midi_map", "midi_learn")

# The library's parameters (as its messages write them, ``name=value``) and the flags that set them.
FLAGS = {
    "model": "--model", "stems": "--stem", "gains": "--gain", "latency": "--latency", "hop": "--hop",
    "provider": "--provider", "channels": "--channels", "input": "--input", "output": "--output",
    "record": "--output", "format": "--format", "subtype": "--subtype", "input_device": "--input-device",
    "output_device": "--output-device", "blocksize": "--blocksize", "connect": "--connect",
    "jack_name": "--jack-name", "inference_budget": "--inference-budget", "osc": "--osc",
    "workers": "--workers", "threads_per_worker": "--threads-per-worker", "cluster": "--cluster",
    "midi": "--midi", "midi_map": "--midi-map", "midi_learn": "--midi-learn",
}
# Library spellings that are not a ``name=value``.
PHRASES = {"list_devices()": "--list-devices", "midi=True": "--midi", "mix=True": "--gain STEM=DB (e.g. vocals=-inf)"}
_PARAMETER = re.compile(r"(?<![\w.-])(" + "|".join(FLAGS) + r")=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;:)]+)?")


def command_line(message: str) -> str:
    """A library message in the command line's terms: ``model='x.onnx'`` -> ``--model x.onnx``, ``stems=`` ->
    ``--stem``, ``list_devices()`` -> ``--list-devices``; values quoted as a shell needs them."""
    for phrase, spelled in PHRASES.items():
        message = message.replace(phrase, spelled)

    def flag(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if value is None:
            return FLAGS[name]
        if value[0] in "'\"":
            try:
                value = shlex.quote(str(ast.literal_eval(value)))
            except (ValueError, SyntaxError):  # not a repr after all: show it as it is
                pass
        return f"{FLAGS[name]} {value}"

    return _PARAMETER.sub(flag, message)


class _Parser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        """A value that starts with a dash is the option's value, not an option: ``--channels -1,2`` and
        ``--duration -inf`` reach the checks that say what is wrong with them (argparse would say "expected one
        argument"). A known option, or ``-`` (standard input or output), keeps argparse's meaning."""
        args = list(sys.argv[1:] if args is None else args)
        takes_value = {flag for action in self._actions if action.nargs is None and action.option_strings
                       for flag in action.option_strings}
        known = {flag for action in self._actions for flag in action.option_strings}
        joined, i = [], 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                joined += args[i:]
                break
            following = args[i + 1] if i + 1 < len(args) else None
            if arg in takes_value and following is not None and following.startswith("-") and following != "-" \
                    and following.split("=", 1)[0] not in known:
                joined.append(f"{arg}={following}")
                i += 2
                continue
            joined.append(arg)
            i += 1
        return super().parse_args(joined, namespace)

    def error(self, message: str):
        """A bad option is one line like every other error, not the usage block first."""
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def format_help(self) -> str:
        """The help, with the presets' latencies read from the bundled models (only when help is shown: reading
        them loads ONNX Runtime)."""
        for action in self._actions:
            if "--latency" in action.option_strings:
                action.help = latency_help()
        return super().format_help()


def latency_help() -> str:
    """``--latency``'s help: each bundled model's presets with the model's latency and, for the streaming presets,
    the delay live audio measures between JACK ports at the model's rate with 256- and 128-frame periods."""
    from .live.bridge import live_delay

    parts = []
    try:
        models = registry.bundled_models()
    except UserError:
        models = []
    for model in models:
        info = model.info
        presets = []
        for name, g in registry.by_latency(info):
            if name == "offline":
                continue
            text = f"{name} {1000 * g.latency / info.sample_rate:.1f} ms"
            if name in ("low", "balanced"):
                live = [1000 * live_delay(g, info.sample_rate, period) / info.sample_rate for period in (256, 128)]
                text += f" (live {live[0]:.1f} / {live[1]:.1f} ms at 256 / 128 frames)"
            presets.append(text)
        parts.append(f"{model.name}: {', '.join(presets)}")
    figures = "; ".join(parts) or "see --list-models"
    return ("latency preset (low, balanced, quality, offline; default: balanced for live audio, on the fast model, "
            "offline for files, the same as --offline; quality and offline use the quality model unless --model "
            f"fast): {figures}. Live delays are input port to output port with "
            "--input jack --output jack at the model's rate; at a rate it also runs at unresampled (--list-models; "
            "the fast model: 48 kHz) they shrink with the rate, at others resampling adds about 1 ms, and up to a "
            "period where the hop falls inside periods; a live run's first line gives its own. For files, a preset "
            "reproduces live streaming instead of the offline default")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="realtime-split",
        description="Separate music into stems (vocals, drums, bass, other) while it plays.",
        epilog="examples:\n"
        "  realtime-split --input mic --stem vocals            # hear the vocals of what the mic picks up\n"
        "  realtime-split --input song.flac --stem all --output stems/\n"
        "  realtime-split --input song.flac --output speakers --gain vocals=-inf   # karaoke\n"
        "  realtime-split --input song.flac --output karaoke.wav --gain vocals=-inf   # karaoke in one file\n"
        "  realtime-split batch music/ --output stems/          # a catalogue, resumably (batch --help)\n"
        "  realtime-split ui                                    # a page in your browser (ui --help)\n\n"
        + HELP_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", nargs="+", metavar="FILE|mic|jack|-",
                   help="audio file(s) to separate, 'mic' for the default input device, 'jack' for JACK input ports "
                        "(in_L, in_R; see --connect), or '-' for standard input (wav, ogg or au through a pipe)")
    p.add_argument("-o", "--output", metavar="FILE|DIR/|speakers|jack|-",
                   help="a file (one stem, or with --gain the mix of the stems), a directory (one file per stem; "
                        "DIR/<name>/<stem>.wav for several inputs), 'speakers', 'jack' (one pair of JACK ports per "
                        "stem, vocals_L/vocals_R..., and dry_L/dry_R, the input as late as the stems; with --input "
                        "jack or a file), or '-' for standard output (like a file, au unless --format says "
                        "otherwise); default: speakers for live input (with --input jack: the ports out_L/out_R), "
                        "separated/ for files")
    p.add_argument("-s", "--stem", metavar="STEMS",
                   help="comma-separated stems (vocals,drums,bass,other,accompaniment) or 'all'; "
                        "default: all for files, vocals for live input")
    p.add_argument("--latency", default=None, metavar="PRESET",
                   help="latency preset (low, balanced, quality, offline); --help lists their latencies")
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="explicit hop in model samples instead of a preset (latency = hop + crossfade + lookahead)")
    p.add_argument("--offline", action="store_true",
                   help="files only: full-context best quality instead of streaming (the default for files "
                        "unless --latency or --hop is given)")
    p.add_argument("--gain", action="append", default=[], metavar="STEM=DB",
                   help="per-stem gain in dB, repeatable; 'vocals=-inf' mutes the vocals (karaoke); with one "
                        "output file (not a directory) the file holds the mix of the stems, gains applied")
    p.add_argument("--model", metavar="NAME|PATH",
                   help=f"a bundled model ({', '.join(registry.bundled_names()) or 'none in this build'}; see "
                        "--list-models) or an ONNX model file; default: quality for files and for --latency "
                        "quality when bundled, else fast")
    p.add_argument("--list-models", action="store_true",
                   help="list the bundled models with their presets, latencies and scores, and exit")
    p.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto",
                   help="ONNX Runtime provider (default: auto = CUDA when available, else CPU)")
    p.add_argument("--channels", metavar="N,M",
                   help="1-based input channels to separate when the input has more than two")
    p.add_argument("--format", dest="file_format", metavar="FMT",
                   help="output file format (wav, flac, ogg, mp3...; default: from the output name, else wav, "
                        "written as RF64 when it passes 4 GiB; --format wav keeps it plain WAV, refusing longer "
                        "inputs; rf64 is always RF64)")
    p.add_argument("--subtype", metavar="SUBTYPE",
                   help="output sample subtype (PCM_16, PCM_24, FLOAT...; default: the format's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or status line")
    live = p.add_argument_group("live audio")
    live.add_argument("-l", "--list-devices", action="store_true", help="list audio devices and exit")
    live.add_argument("--input-device", metavar="ID|NAME", help="input device by index or name substring")
    live.add_argument("--output-device", metavar="ID|NAME", help="output device by index or name substring")
    live.add_argument("--blocksize", type=int, default=None, metavar="FRAMES",
                      help="audio callback block size (default: the hop of the latency preset)")
    live.add_argument("--duration", type=float, metavar="SECONDS", help="stop live mode after this long")
    live.add_argument("--connect", action="append", default=[], metavar="[NAME=]PORTS",
                      help="JACK ports to connect at start, repeatable: PORTS (a regular expression, e.g. 'mpv' or "
                           "'system:capture') feeds the input ports in order; NAME=PORTS sends the output pair NAME "
                           "(a stem, dry, or out) to them, e.g. vocals=system:playback")
    live.add_argument("--jack-name", metavar="NAME", help="the JACK client's name (default: realtime-split)")
    live.add_argument("--inference-budget", type=float, metavar="SECONDS",
                      help="time separation may take for one audio block's input before the block plays dry, "
                           "rounded up to whole blocks (default 0.008); each block beyond the first adds one block "
                           "of delay")
    live.add_argument("--osc", metavar="[HOST:]PORT",
                      help="change the mix over OSC (UDP; needs the control extra): /stem/NAME/gain DB, "
                           "/stem/NAME/mute 0|1, /stem/NAME/solo 0|1, and /mix, which replies with those for every "
                           "stem; listens on 127.0.0.1 unless HOST is given")
    live.add_argument("--midi", nargs="?", const=True, default=None, metavar="PORTS",
                      help="MIDI messages change the mix: CC 7 on channels 1-4 sets the gain of stems 1-4 (127 = 0 "
                           "dB, GM's curve), notes 0 and 1 on a stem's channel toggle its mute and solo. On JACK "
                           "ports: the input port midi_in, connected to the MIDI output ports PORTS matches (a "
                           "regular expression, e.g. a2j) if given; otherwise the ALSA/CoreMIDI input port whose "
                           "name contains PORTS, default the first (needs the control extra)")
    live.add_argument("--midi-map", metavar="FILE",
                      help="with --midi: bindings instead of the default, one a line: STEM gain|mute|solo cc|note "
                           "NUMBER [channel N], e.g. 'vocals gain cc 1'")
    live.add_argument("--midi-learn", metavar="STEM=FILE",
                      help="with --midi: the first control change received becomes STEM's gain (in place of its "
                           "binding in the map), and the map is written to FILE for --midi-map next time")
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return p


def list_models() -> int:
    """Print one block per bundled model (``--list-models``)."""
    models = registry.bundled_models()
    if not models:
        raise UserError(f"no bundled models in this build (none in {registry.MODELS_DIR}); pass --model PATH")
    print("\n\n".join(registry.describe(m) for m in models))
    return 0


def list_devices() -> int:
    """Print the devices like ``python -m sounddevice``, marking with ``>`` and ``<`` the input and
    output live mode uses by default (``--list-devices``)."""
    from .live.devices import list_devices as devices

    found = devices()
    if not found:
        raise UserError("no audio devices found; is a sound server (PipeWire, PulseAudio or JACK) running?")
    for d in found:
        marks = (">" if d.default_input else "") + ("<" if d.default_output else "")
        print(f"{marks:>2} {d.index:>3} {d.name}, {d.hostapi} ({d.input_channels} in, {d.output_channels} out, "
              f"{d.default_samplerate:g} Hz)")
    server = os.environ.get("JACK_DEFAULT_SERVER")
    print("\n> default input, < default output" + (f"; JACK server {server!r}" if server else ""))
    return 0


def announce_model(args: argparse.Namespace, sep) -> None:
    """Say on stderr which bundled model and preset serve the run when the user named no model."""
    if args.model is None:
        hop = f", hop {sep.geometry.hop}" if args.hop else ""
        name = f" ({sep.info.name})" if sep.info.name else ""
        print(f"realtime-split: model {sep.model_path.stem}{name}, preset {sep.preset}{hop}", file=sys.stderr)


def check_separation_options(args: argparse.Namespace) -> None:
    """Refuse the separation options' values (--hop, --latency, --stem) that parse but make no sense, before
    anything is loaded: the file and live command lines and ``realtime-split batch`` share them."""
    from . import limits

    limits.hop(args.hop)  # the library's bound and message
    if args.latency is not None and not args.latency.strip():
        raise UserError(f"--latency {args.latency!r} names no preset; pass low, balanced, quality or offline, or leave "
                        "it out (files: offline, live audio: balanced)")
    if args.stem is not None and not args.stem.replace(",", "").strip():
        raise UserError(f"--stem {args.stem!r} names no stem; pass e.g. --stem vocals,drums, or --stem all")


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values that parse but make no sense, before anything is loaded."""
    check_separation_options(args)
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise UserError(f"--duration {args.duration}: give a positive number of seconds, e.g. --duration 30, or "
                        "leave it out to run until the input ends or Ctrl-C")
    if args.blocksize is not None:
        check_blocksize(args.blocksize)
    if args.input and args.input.count(STDIO) > 1:
        raise UserError("--input - (standard input) can be given only once")
    if args.osc is not None:
        from .live.osc import parse_address

        parse_address(args.osc)
    live_input = next((i for i in args.input or () if i in (LIVE_INPUT, JACK)), None)
    if live_input is not None and len(args.input) > 1:
        raise UserError(f"--input {live_input} is live input and plays alone; pass --input {live_input} on its own, "
                        f"or files only (a file named {live_input}: --input ./{live_input})")


def exit_code_for(exc: KeyboardInterrupt) -> int:
    return 128 + getattr(exc, "signum", signal.SIGINT)


def is_live(args: argparse.Namespace) -> bool:
    return bool(args.input and args.input[0] in (LIVE_INPUT, JACK) and len(args.input) == 1) or \
        args.output in (LIVE_OUTPUT, JACK)


def main(argv: list[str] | None = None) -> int:
    with signals_raise_interrupted():  # SIGTERM, SIGHUP: the same clean way out as Ctrl-C
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:
            name = signal.Signals(exit_code_for(exc) - 128).name
            print("realtime-split: interrupted" + ("" if name == "SIGINT" else f" by {name}"), file=sys.stderr)
            return exit_code_for(exc)
        except BrokenPipeError:
            return reader_went_away()


def reader_went_away() -> int:
    """Text for standard output whose reader closed early (``--list-models | head -1``): stop quietly.

    As a Unix tool killed by SIGPIPE does: no message, exit 128 + SIGPIPE. Standard output is pointed at
    /dev/null first, so Python's flush at exit cannot raise the same error again (Python's documented
    recipe, "Note on SIGPIPE" in the signal module). Audio written to standard output has its own message
    (audio_files.py), since a separation cut short is worth saying.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + getattr(signal, "SIGPIPE", 13)  # 13 where the platform has no SIGPIPE (Windows)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ui"]:  # the local web app (cli_ui.py, realtime_split/web/)
        from .cli_ui import main as ui

        try:
            return ui(argv[1:])
        except UserError as exc:
            print(f"realtime-split ui: error: {exc}", file=sys.stderr)
            return exc.exit_code
    if argv[:1] == ["batch"]:  # the batch subcommand has its own parser (cli_batch.py)
        from .cli_batch import main as batch

        try:
            return batch(argv[1:])
        except UserError as exc:
            print(f"realtime-split batch: error: {command_line(str(exc))}", file=sys.stderr)
            return exc.exit_code
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_devices:
            return list_devices()
        if args.list_models:
            return list_models()
        if not args.input:
            raise UserError("no input given; pass --input FILE or --input mic (see realtime-split --help)")
        check_options(args)
        return live(args) if is_live(args) else files(args)
    except UserError as exc:
        print(f"realtime-split: error: {command_line(str(exc))}", file=sys.stderr)
        return exc.exit_code


# File mode ---------------------------------------------------------------------------------------------------------

def files(args: argparse.Namespace) -> int:
    """``--input FILE [FILE ...]``: a ``Separator`` writes the stems; a bar per input while a person watches, a
    summary line per input and its warnings afterwards."""
    from .api import Separator
    from .file_mode import is_directory_target

    for name in LIVE_ONLY:
        if getattr(args, name) not in (None, []):
            flag = FLAGS.get(name, f"--{name}")
            raise UserError(f"{flag} is for live audio (--input mic or jack, or --output speakers or jack); this run "
                            f"separates files to {args.output or DEFAULT_OUTPUT_DIR}, so drop {flag}")
    if args.offline and (args.latency or args.hop is not None):
        raise UserError("--offline excludes --latency and --hop; files are separated offline unless you pick a "
                        "latency preset to hear what live mode gives")
    # Offline (full context, fastest) unless --latency or --hop asks to reproduce live streaming; the output's
    # latency is compensated either way.
    latency = "offline" if args.offline or (args.latency is None and args.hop is None) else args.latency
    separator = Separator(args.model, stems=args.stem or "all", latency=latency, hop=args.hop,
                          gains=args.gain or None, provider=args.provider)
    output = args.output or DEFAULT_OUTPUT_DIR
    shown = _FileProgress(args, separator)
    try:
        separator.separate_files(args.input, output, channels=args.channels, format=args.file_format,
                                 subtype=args.subtype, mix=bool(args.gain) and not is_directory_target(output),
                                 subfolders=True if args.output is None else None, progress=shown.update)
    except KeyboardInterrupt:
        shown.stopped()
        raise
    finally:
        shown.close()
    return 0


class _FileProgress:
    """The library's progress reports as the command line shows them: the model line before the first input,
    a tqdm bar per input (on a terminal only), the summary and warnings when an input is done."""

    def __init__(self, args: argparse.Namespace, separator: Separator):
        self.args, self.separator = args, separator
        self.show = not args.no_progress and sys.stderr.isatty()  # logs and pipes get the summary lines alone
        self.last: Progress | None = None
        self.bar: Any = None  # tqdm's, for the input being separated

    def update(self, progress: Progress) -> None:
        from .audio_files import label

        if self.last is None:
            announce_model(self.args, self.separator)
        if self.bar is None:
            self.bar = _progress_bar(label(progress.input), progress.seconds_total, self.show)
        self.bar.update(progress.seconds_done - self.bar.n)
        self.last = progress
        if progress.result is not None:
            self.close()
            _report(progress.result, self.args)

    def stopped(self) -> None:
        """Ctrl-C or a signal: say how far the input being separated got and where its partial output is."""
        from .audio_files import label

        self.close()
        last = self.last
        if last is not None and last.result is None:
            if last.stopped and not last.outputs:
                kept = "nothing was written"
            else:
                kept = f"the partial output in {_where(last.outputs)} holds its first {last.seconds_written:.1f} s"
            print(f"realtime-split: {label(last.input)}: stopped after {last.seconds_done:.1f} s of input; {kept}",
                  file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_bar(name: str, seconds: float | None, show: bool):
    """Seconds of audio done; the rate reads as "x real time" in s/s. Some ffmpeg streams have no duration."""
    from tqdm import tqdm

    known = "{percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}, {rate_fmt}]"
    unknown = "{n:.0f} s [{elapsed}, {rate_fmt}]"
    return tqdm(total=seconds, unit="s", desc=name, disable=not show, file=sys.stderr, leave=False,
                bar_format="{desc}: " + (known if seconds else unknown))


def _where(outputs: list[Path] | tuple[Path, ...]) -> str:
    from .audio_files import label

    return label(outputs[0], output=True) if len(outputs) == 1 else f"{outputs[0].parent}/"


_stdout_lost: list[str] = []  # why standard output stopped taking the summaries, once it has


def say(line: str) -> None:
    """A summary line on standard output. Where that is closed, full or a pipe nobody reads (``| true``), the
    line goes to standard error with one note, and the run goes on: the stems matter, not their summary."""
    if not _stdout_lost:
        try:
            if sys.stdout is None:
                raise OSError(errno.EBADF, "it is closed")
            try:
                sys.stdout.write(line + "\n")
            except UnicodeEncodeError:  # a file name that is not in the terminal's encoding: its bytes as they are
                sys.stdout.flush()
                sys.stdout.buffer.write(os.fsencode(line) + b"\n")
            sys.stdout.flush()
            return
        except OSError as exc:
            _stdout_lost.append(exc.strerror or str(exc))
            _silence_stdout()
            print(f"realtime-split: note: standard output does not take the summary ({_stdout_lost[0]}); it goes "
                  "here instead", file=sys.stderr)
    print(line, file=sys.stderr)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's flush at exit finds nothing to fail on."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (stays open for the rest of the process)


def _contents(result: FileResult) -> str:
    """What the summary says is in the output: the stems, or their mix with the gains that shaped it."""
    if not result.mix:
        return ", ".join(result.stems)
    return "mix of " + _with_gains(result.stems, result.gains_db)


def _with_gains(stems, gains_db) -> str:
    """``vocals -inf dB, drums, bass``: the stems, each with its gain when it has one."""
    return ", ".join(f"{s} {gains_db[s]:+g} dB" if s in gains_db else s for s in stems)


def _report(result: FileResult, args: argparse.Namespace) -> None:
    """The summary line of one input (stdout; stderr when the audio is on stdout) and its warnings."""
    from .audio_files import label

    name = label(result.input)
    outputs = list(result.outputs.values())
    preset = result.preset + (f", hop {result.hop}" if args.hop else "")
    line = (f"{name} -> {_where(outputs)} ({_contents(result)}): {result.seconds:.1f} s of audio, "
            f"{result.speed:.1f}x real time on {result.provider}, latency {preset} "
            f"{result.latency_seconds * 1000:.1f} ms")
    if str(outputs[0]) == STDIO:
        print(line, file=sys.stderr)
    else:
        say(line)
    if result.rf64:
        paths = list(result.rf64)
        what = label(paths[0], output=True) if len(paths) == 1 else \
            f"{', '.join(p.name for p in paths[:-1])} and {paths[-1].name} in {paths[0].parent}/"
        print(f"realtime-split: note: {what} {'is' if len(paths) == 1 else 'are'} RF64 (WAV over 4 GiB)",
              file=sys.stderr)
    if result.ended_early:
        print(f"realtime-split: warning: {name} ended early, at {result.seconds:.1f} s ({result.ended_early}); "
              "the stems cover what was read", file=sys.stderr)
    if result.nonfinite_inputs:
        print(f"realtime-split: warning: {name}: {result.nonfinite_inputs} NaN/Inf samples in the input were "
              "replaced by silence", file=sys.stderr)
    if result.nonfinite_outputs:
        print(f"realtime-split: warning: {name}: the model produced {result.nonfinite_outputs} NaN/Inf samples, "
              "replaced by silence; the model may be broken (try another --model)", file=sys.stderr)
    if result.clipped:
        print(f"realtime-split: warning: {name}: {result.clipped} samples beyond full scale were clipped; "
              "write float wav (the default) or lower --gain to keep them", file=sys.stderr)


# Live mode ---------------------------------------------------------------------------------------------------------

def live(args: argparse.Namespace) -> int:
    """``--input mic`` or ``--output speakers``: a ``LiveSession`` until --duration, the end of the file, an error
    or Ctrl-C, with the status line while it plays and the summary when it stops."""
    from .cli_keys import Keys
    from .cli_status import StatusLine, summary
    from .live.session import POLL_SECONDS, LiveSession

    if len(args.input) != 1:
        raise UserError("live mode plays one input; pass --input mic, --input jack or --input FILE --output speakers")
    source = {LIVE_INPUT: None}.get(args.input[0], args.input[0])
    if source is not None and args.offline:
        raise UserError("--offline separates files, not live playback; drop it or pass --output DIR/")
    jack_out = args.output == JACK
    default_stems = "all" if jack_out or args.gain else "vocals"  # ports for every stem; a gain alone: the mix
    session = LiveSession(
        args.model, input=source, output=JACK if jack_out else None,
        record=None if args.output in (None, LIVE_OUTPUT, JACK) else args.output,
        stems=args.stem or default_stems, gains=args.gain or None, latency=args.latency, hop=args.hop,
        provider=args.provider, channels=args.channels, input_device=args.input_device,
        output_device=args.output_device, blocksize=args.blocksize, format=args.file_format, subtype=args.subtype,
        connect=args.connect or None, jack_name=args.jack_name, inference_budget=args.inference_budget,
        midi=args.midi or False, midi_map=args.midi_map, midi_learn=args.midi_learn)
    session.start()
    osc = None
    try:
        announce_model(args, session.separator)
        names = session.output_device_name if session.input_device_name is None else \
            f"{session.input_device_name} -> {session.output_device_name}"
        stems = str(session.mix)
        origin = {None: "the microphone", JACK: "JACK"}.get(source, source)
        print(f"realtime-split: live {stems} from {origin} ({names}), block "
              f"{session.blocksize}, hop {session.hop}: {session.latency}", file=sys.stderr, flush=True)
        if session.connections:
            made = ", ".join(f"{a} -> {b}" for a, b in session.connections)
            print(f"realtime-split: connected {made}", file=sys.stderr, flush=True)
        if args.midi:
            bindings = f"the bindings of {args.midi_map}" if args.midi_map else \
                "CC 7 on channels 1-4: the gains of stems 1-4; notes 0 / 1 on a stem's channel: its mute / solo"
            print(f"realtime-split: MIDI on {session.midi_port}: {bindings}", file=sys.stderr, flush=True)
            if args.midi_learn:
                stem, _, path = args.midi_learn.partition("=")
                print(f"realtime-split: MIDI learn: move a control for {stem}'s gain; the map goes to {path}",
                      file=sys.stderr, flush=True)
        if args.osc is not None:
            osc = _start_osc(session, args.osc)
        status = StatusLine(session, enabled=False if args.no_progress else None)
        # Keys change the mix while the status line runs, from a terminal only (never the audio on stdin).
        keys = Keys(session, enabled=status.enabled and source != STDIO)
        if keys.enabled:
            status.selected = lambda: keys.selected
        try:
            while not session.wait(0):
                status.update(session.elapsed)
                if args.duration is not None and session.elapsed >= args.duration:
                    break
                keys.wait(POLL_SECONDS)
        finally:
            keys.close()
            status.close()
    finally:
        if osc is not None:
            osc.stop()
        try:
            session.stop()  # finalizes the recording; raises what went wrong in its threads or with the device
        finally:
            print(summary(session.stats()), file=sys.stderr, flush=True)
            if args.midi_learn:
                learned = session.midi_learned
                print(f"realtime-split: MIDI learn: {learned!r}, written to {args.midi_learn.partition('=')[2]}"
                      if learned else "realtime-split: MIDI learn: no control change arrived; nothing written",
                      file=sys.stderr, flush=True)
            if osc is not None:
                print(f"realtime-split: OSC: {osc.handled} messages handled, {osc.ignored} malformed ignored",
                      file=sys.stderr, flush=True)
    return 0


def _start_osc(session, address: str):
    """The OSC server on the session's mix, announced (with a warning when it listens beyond this machine)."""
    from .live.osc import OscControl

    osc = OscControl(session, address).start()
    print(f"realtime-split: OSC on {osc.host}:{osc.port}: /stem/NAME/gain DB, /stem/NAME/mute 0|1, "
          "/stem/NAME/solo 0|1, /mix", file=sys.stderr, flush=True)
    if not osc.loopback:
        print(f"realtime-split: warning: OSC listens on {osc.host}, beyond this machine, without authentication: "
              "anyone who reaches that port changes the mix", file=sys.stderr, flush=True)
    return osc


if __name__ == "__main__":
    raise SystemExit(main())
