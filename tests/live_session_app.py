"""A small application of the public ``LiveSession`` for tests/test_live_session.py: one session, its
readings printed as JSON lines (``started``, then ``ended`` with the stats and levels, or ``error``)."""

import argparse
import dataclasses
import json

from realtime_split import LiveSession, UserError

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--input", help="a file to play; default: the microphone")
parser.add_argument("--record")
parser.add_argument("--input-device")
parser.add_argument("--seconds", type=float, default=3.0, help="how long to wait for the session to end by itself")
args = parser.parse_args()


def emit(**fields) -> None:
    print(json.dumps(fields, default=str), flush=True)


try:
    with LiveSession(args.model, input=args.input, record=args.record, input_device=args.input_device) as session:
        emit(started=True, latency=dataclasses.asdict(session.latency), blocksize=session.blocksize, hop=session.hop,
             stems=list(session.separator.stems), heard=[s.name for s in session.mix.stems if not s.muted])
        ended = session.wait(timeout=args.seconds)
        levels = session.levels()
    emit(ended=ended, stats=dataclasses.asdict(session.stats()), levels=dataclasses.asdict(levels))
except UserError as exc:
    emit(error=type(exc).__name__, parameter=exc.parameter, message=str(exc),
         kinds=[kind.__name__ for kind in type(exc).__mro__])
