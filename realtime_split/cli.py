"""Command line: ``realtime-split --input FILE|mic --stem ... --output FILE|DIR/|speakers``.

Parses arguments and hands over to file mode (``file_mode.run``) or live mode
(``live.run``). A ``UserError`` or a bad option becomes one line on stderr and exit
code 2; the library's messages name its parameters (``model='x'``), shown here as the
flags that set them (``--model x``). Ctrl-C (SIGINT), SIGTERM and SIGHUP exit with 128 + the signal number
(130, 143, 129) after the mode has finalized its outputs.
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import shlex
import signal
import sys

from . import __version__, registry
from .errors import UserError, signals_raise_interrupted

LIVE_INPUT = "mic"
LIVE_OUTPUT = "speakers"
STDIO = "-"  # --input - reads standard input, --output - writes standard output
MIN_HOP = 32  # model samples: below this the model runs so often that a song takes hours
BLOCKSIZES = (16, 16384)  # live audio callback frames

# The library's parameters (as its messages write them, ``name=value``) and the flags that set them.
FLAGS = {
    "model": "--model", "stems": "--stem", "gains": "--gain", "latency": "--latency", "hop": "--hop",
    "provider": "--provider", "channels": "--channels", "input": "--input", "output": "--output",
    "record": "--output", "format": "--format", "subtype": "--subtype", "input_device": "--input-device",
    "output_device": "--output-device", "blocksize": "--blocksize",
}
# Library spellings that are not a ``name=value``.
PHRASES = {"list_devices()": "--list-devices", "mix=True": "--gain STEM=DB (e.g. vocals=-inf)"}
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
            value = shlex.quote(str(ast.literal_eval(value)))
        return f"{FLAGS[name]} {value}"

    return _PARAMETER.sub(flag, message)



class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A bad option is one line like every other error, not the usage block first."""
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="realtime-split",
        description="Separate music into stems (vocals, drums, bass, other) while it plays.",
        epilog="examples:\n"
        "  realtime-split --input mic --stem vocals            # hear the vocals of what the mic picks up\n"
        "  realtime-split --input song.flac --stem all --output stems/\n"
        "  realtime-split --input song.flac --output speakers --gain vocals=-inf   # karaoke\n"
        "  realtime-split --input song.flac --output karaoke.wav --gain vocals=-inf   # karaoke in one file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", nargs="+", metavar="FILE|mic|-",
                   help="audio file(s) to separate, 'mic' for the default input device, or '-' for standard "
                        "input (wav, ogg or au through a pipe)")
    p.add_argument("-o", "--output", metavar="FILE|DIR/|speakers|-",
                   help="a file (one stem, or with --gain the mix of the stems), a directory (one file per stem; "
                        "DIR/<name>/<stem>.wav for several inputs), 'speakers', or '-' for standard output (like "
                        "a file, au unless --format says otherwise); default: speakers for live input, separated/ "
                        "for files")
    p.add_argument("-s", "--stem", metavar="STEMS",
                   help="comma-separated stems (vocals,drums,bass,other,accompaniment) or 'all'; "
                        "default: all for files, vocals for live input")
    p.add_argument("--latency", default=None, metavar="PRESET",
                   help="latency preset: low (11.6 ms) or balanced (24.7 ms, the default for live audio) on "
                        "the fast model, quality (243.8 ms) on the quality model; for files it reproduces live "
                        "streaming at that preset instead of the offline default; with --model fast, quality "
                        "is that model's 52.2 ms preset")
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
                   help="output file format (wav, flac, ogg, mp3...; default: from the output name, else wav)")
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
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return p


def list_models() -> int:
    """Print one block per bundled model (``--list-models``)."""
    models = registry.bundled_models()
    if not models:
        raise UserError(f"no bundled models in this build (none in {registry.MODELS_DIR}); pass --model PATH")
    print("\n\n".join(registry.describe(m) for m in models))
    return 0


def announce_model(args: argparse.Namespace, sep) -> None:
    """Say on stderr which bundled model and preset serve the run when the user named no model."""
    if args.model is None:
        hop = f", hop {sep.geometry.hop}" if args.hop else ""
        name = f" ({sep.info.name})" if sep.info.name else ""
        print(f"realtime-split: model {sep.model_path.stem}{name}, preset {sep.preset}{hop}", file=sys.stderr)


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values that parse but make no sense, before anything is loaded."""
    if args.hop is not None and args.hop < MIN_HOP:
        raise UserError(f"--hop {args.hop}: the hop must be at least {MIN_HOP} model samples (a smaller one runs "
                        "the model so often that separating takes far longer than the song); try --hop 256 or "
                        "a --latency preset")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise UserError(f"--duration {args.duration}: give a positive number of seconds, e.g. --duration 30, or "
                        "leave it out to run until the input ends or Ctrl-C")
    if args.blocksize is not None and not BLOCKSIZES[0] <= args.blocksize <= BLOCKSIZES[1]:
        raise UserError(f"--blocksize {args.blocksize}: choose between {BLOCKSIZES[0]} and {BLOCKSIZES[1]} "
                        "frames (e.g. 256), or leave it out for the hop of the latency preset")
    if args.stem is not None and not args.stem.replace(",", "").strip():
        raise UserError(f"--stem {args.stem!r} names no stem; pass e.g. --stem vocals,drums, or --stem all")
    if args.input and args.input.count(STDIO) > 1:
        raise UserError("--input - (standard input) can be given only once")


def exit_code_for(exc: KeyboardInterrupt) -> int:
    return 128 + getattr(exc, "signum", signal.SIGINT)


def is_live(args: argparse.Namespace) -> bool:
    return bool(args.input and args.input == [LIVE_INPUT]) or args.output == LIVE_OUTPUT


def main(argv: list[str] | None = None) -> int:
    with signals_raise_interrupted():  # SIGTERM, SIGHUP: the same clean way out as Ctrl-C
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:
            name = signal.Signals(exit_code_for(exc) - 128).name
            print("realtime-split: interrupted" + ("" if name == "SIGINT" else f" by {name}"), file=sys.stderr)
            return exit_code_for(exc)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_devices:
            from . import live

            return live.list_devices()
        if args.list_models:
            return list_models()
        if not args.input:
            raise UserError("no input given; pass --input FILE or --input mic (see realtime-split --help)")
        check_options(args)
        if is_live(args):
            from . import live

            return live.run(args)
        from . import file_mode

        return file_mode.run(args)
    except UserError as exc:
        print(f"realtime-split: error: {command_line(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
