"""Command line: ``realtime-split --input FILE|mic --stem ... --output FILE|DIR/|speakers``.

Parses arguments and hands over to file mode (``file_mode.run``) or live mode
(``live.run``). A ``UserError`` becomes one line on stderr and a non-zero exit;
Ctrl-C exits with 130 after the mode has finalized its outputs.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__, registry
from .errors import UserError

LIVE_INPUT = "mic"
LIVE_OUTPUT = "speakers"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="realtime-split",
        description="Separate music into stems (vocals, drums, bass, other) while it plays.",
        epilog="examples:\n"
        "  realtime-split --input mic --stem vocals            # hear the vocals of what the mic picks up\n"
        "  realtime-split --input song.flac --stem all --output stems/\n"
        "  realtime-split --input song.flac --output speakers --gain vocals=-inf   # karaoke",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-i", "--input", nargs="+", metavar="FILE|mic",
                   help="audio file(s) to separate, or 'mic' for the default input device")
    p.add_argument("-o", "--output", metavar="FILE|DIR/|speakers",
                   help="a file (one stem), a directory (one file per stem; DIR/<name>/<stem>.wav for several "
                        "inputs) or 'speakers'; default: speakers for live input, separated/ for files")
    p.add_argument("-s", "--stem", metavar="STEMS",
                   help="comma-separated stems (vocals,drums,bass,other,accompaniment) or 'all'; "
                        "default: all for files, vocals for live input")
    p.add_argument("--latency", default=None, metavar="PRESET",
                   help="latency preset: low, balanced (default for live audio) or quality; for files it "
                        "reproduces live streaming at that preset instead of the offline default; without "
                        "--model, quality and offline use the quality model when it is bundled")
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="explicit hop in model samples instead of a preset (latency = hop + crossfade + lookahead)")
    p.add_argument("--offline", action="store_true",
                   help="files only: full-context best quality instead of streaming (the default for files "
                        "unless --latency or --hop is given)")
    p.add_argument("--gain", action="append", default=[], metavar="STEM=DB",
                   help="per-stem gain in dB, repeatable; 'vocals=-inf' mutes the vocals (karaoke)")
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


def is_live(args: argparse.Namespace) -> bool:
    return bool(args.input and args.input == [LIVE_INPUT]) or args.output == LIVE_OUTPUT


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.list_devices:
            from . import live

            return live.list_devices()
        if args.list_models:
            return list_models()
        if not args.input:
            parser.print_usage(sys.stderr)
            raise UserError("no input given; pass --input FILE or --input mic")
        if is_live(args):
            from . import live

            return live.run(args)
        from . import file_mode

        return file_mode.run(args)
    except UserError as exc:
        print(f"realtime-split: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("realtime-split: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
