"""Render the bundled demo clip, a four-stem pop song (vocals, drums, bass, other), with FluidSynth.

This makes `realtime_split/demo/demo.ogg` from an original song that the script composes itself
(`compose_original`), so the project owns every note of it:

    pip install mido                     # script-only dependency, not needed by realtime-split itself
    sudo apt-get install -y fluidsynth fluid-soundfont-gm
    python tools/make_demo_clip.py --out realtime_split/demo/demo.ogg

`--seed N` composes a different song. `--pop909 DIR --song NNN` renders a POP909 song instead (research
and training material only, never for shipping). The renderer is training/pop909.py's (drums and a bass line
written from the beats and chords, each stem group rendered to its own file, so the mix is exactly the sum
of the stems); `--stems-dir` writes the stems too. POP909 songs as a training dataset:
`python -m training.pop909 --dataset OUT` (its docstring).

The "vocals" are a synthesized voice preset (choir "ahh" layered with "ooh", with a little vibrato),
not a real singer.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/ runs from the checkout

from training.pop909 import (  # noqa: E402
    FADE_IN,
    SAMPLE_RATE,
    SOUNDFONT,
    Beat,
    Chord,
    Note,
    Song,
    check_tools,
    find_excerpt,
    mix_stems,
    read_song,
    render_stems,
    whole_bars,
)

# --- An original song ------------------------------------------------------------------------------
# The shipped demo is this song, composed by the code below, so the project owns every note of it.
# C major, 100 bpm, 4/4, on a grid of eighth notes ("steps").

DEFAULT_SEED = 8
TEMPO_BPM = 100
STEPS_PER_BAR = 8
STEP_SECONDS = 60 / TEMPO_BPM / 2
C_MAJOR = (0, 2, 4, 5, 7, 9, 11)
PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
TRIADS = {"I": (0, "maj"), "IV": (5, "maj"), "V": (7, "maj"), "vi": (9, "min")}  # root pitch class, quality

# The chords of each bar (two numerals split a bar in halves), phrase by phrase: two verse phrases on
# vi-IV-I-V, two chorus phrases on I-V-vi-IV, the second one turning to V and ending on I.
VERSE = (("vi",), ("IV",), ("I",), ("V",))
CHORUS = (("I",), ("V",), ("vi",), ("IV",))
FORM = VERSE + VERSE + CHORUS + (("I",), ("V",), ("vi",), ("IV", "V"), ("I",))
CHORUS_FIRST_BAR = 8
DEMO_FIRST_BAR = 4  # the demo: the second verse phrase, the chorus, and its hook once more

# Melody rhythms, one bar each, as (step, length) pairs. A phrase opens after a breath, flows, and ends
# on a held note followed by a rest; the chorus opens with a syncopated hook and a held note.
OPENINGS = (((1, 1), (2, 1), (3, 1), (4, 2), (6, 2)),
            ((1, 1), (2, 2), (4, 2), (6, 2)),
            ((0, 2), (2, 1), (3, 1), (4, 2), (6, 2)),
            ((1, 1), (2, 1), (3, 3), (6, 2)))
FLOWS = (((0, 2), (2, 1), (3, 1), (4, 2), (6, 2)),
         ((0, 1), (1, 1), (2, 2), (4, 2), (6, 2)),
         ((0, 3), (3, 1), (4, 2), (6, 2)),
         ((0, 2), (2, 2), (4, 4)),
         ((0, 1), (1, 1), (2, 1), (3, 1), (4, 4)))
CADENCES = (((0, 6),), ((0, 2), (2, 4)), ((0, 1), (1, 1), (2, 4)))
HOOKS = (((0, 1), (1, 1), (2, 1), (3, 3), (6, 2)),
         ((0, 1), (1, 2), (3, 1), (4, 4)),
         ((0, 2), (2, 1), (3, 3), (6, 2)))
HOOK_ENDS = (((0, 2), (2, 5)), ((0, 7),), ((0, 1), (1, 1), (2, 5)))
LEAD_IN, ENDING = ((0, 2), (2, 2), (4, 4)), ((0, 8),)

VERSE_SPAN, CHORUS_SPAN = (60, 72), (64, 76)  # C4-C5, E4-E5: a comfortable range, the chorus higher
BREATH = 0.04  # seconds between legato sung notes


def compose_original(seed: int = DEFAULT_SEED) -> Song:
    """An original 17-bar pop song, the same for the same seed: melody, piano, strings, beats, chords.

    The melody is built like a songwriter's: 4-bar phrases separated by rests, the second verse phrase
    repeating the rhythm and opening of the first, both chorus phrases opening with the same 2-bar hook;
    chord tones on the beats, passing and neighbour notes between them."""
    rng = random.Random(seed)  # only its random() is used: Python keeps that sequence across versions

    def pick(options):
        return options[int(rng.random() * len(options))]

    melody: list[Note] = []

    def phrase(first_bar, bars, span, contour, cadence, velocity, motif=()):
        rhythm = [(b * STEPS_PER_BAR + step, length) for b, bar in enumerate(bars) for step, length in bar]
        chords = FORM[first_bar:first_bar + len(bars)]
        previous = melody[-1].pitch if melody else None
        pitches = _phrase_melody(rng, rhythm, chords, span, contour, cadence, list(motif), previous)
        for (step, length), pitch in zip(rhythm, pitches):
            start = (first_bar * STEPS_PER_BAR + step) * STEP_SECONDS
            accent = 0 if step % 2 == 0 else -10
            melody.append(Note(start, start + length * STEP_SECONDS - BREATH, pitch, velocity + accent))
        return pitches

    verse_bars, hook_bars = [pick(OPENINGS), pick(FLOWS), pick(FLOWS)], [pick(HOOKS), pick(HOOK_ENDS)]
    verse = phrase(0, verse_bars + [pick(CADENCES)], VERSE_SPAN, (64, 69, 67), (2, 7), 92)
    phrase(4, verse_bars + [pick(CADENCES)], VERSE_SPAN, (64, 71, 69), (11, 2), 96,
           motif=verse[:len(verse_bars[0])])
    chorus = phrase(8, hook_bars + [pick(FLOWS), pick(CADENCES)], CHORUS_SPAN, (67, 76, 69), (9, 0), 104)
    phrase(12, hook_bars + [pick(FLOWS), LEAD_IN, ENDING], CHORUS_SPAN, (72, 76, 72), (0,), 104,
           motif=chorus[:len(hook_bars[0]) + len(hook_bars[1])])

    bar_seconds = STEPS_PER_BAR * STEP_SECONDS
    beats = [Beat(i * bar_seconds / 4, i % 4 == 0) for i in range(4 * len(FORM) + 1)]
    chords = [Chord((b + k / len(bar)) * bar_seconds, (b + (k + 1) / len(bar)) * bar_seconds,
                    f"{PITCH_NAMES[TRIADS[numeral][0]]}:{TRIADS[numeral][1]}")
              for b, bar in enumerate(FORM) for k, numeral in enumerate(bar)]
    piano, strings = _accompaniment(chords)
    return Song(f"original-{seed}", {"melody": melody, "piano": piano, "strings": strings}, beats, chords,
                C_MAJOR)


def _triad(numeral: str) -> tuple[int, int, int]:
    root, quality = TRIADS[numeral]
    return root, (root + (4 if quality == "maj" else 3)) % 12, (root + 7) % 12


def _phrase_melody(rng: random.Random, rhythm: list[tuple[int, int]], chords: tuple[tuple[str, ...], ...],
                   span: tuple[int, int], contour: tuple[int, int, int], cadence: tuple[int, ...],
                   motif: list[int], previous: int | None) -> list[int]:
    """Pitches for one phrase's rhythm ((step, length) from the phrase's first bar); `motif` fixes the
    first ones, to repeat an opening or a hook.

    Notes on the beat or longer than an eighth are chord tones, near the contour (a target pitch at the
    start, at the peak 60 % in, and at the end) and near the previous note, without awkward leaps (a
    tritone, more than a sixth); the last one lands on the `cadence` pitch classes. The short off-beat
    notes between them fill in as a singer would: a passing note across a third, a neighbour note around
    a repeated pitch, otherwise a step into the next note."""
    total = len(chords) * STEPS_PER_BAR
    low, high = span

    def chord_at(step: int) -> tuple[int, ...]:
        bar = chords[step // STEPS_PER_BAR]
        return _triad(bar[(step % STEPS_PER_BAR) * len(bar) // STEPS_PER_BAR])

    def target(step: int) -> float:
        start, peak, end = contour
        u = step / total
        return start + (peak - start) * u / 0.6 if u < 0.6 else peak + (end - peak) * (u - 0.6) / 0.4

    last = len(rhythm) - 1
    pitches: list[int | None] = motif + [None] * (len(rhythm) - len(motif))
    for i, (step, length) in enumerate(rhythm):
        if pitches[i] is not None:
            previous = pitches[i]
            continue
        if step % 2 == 1 and length == 1 and 0 < i < last:
            continue  # an off-beat eighth: filled in below, once the next note is known
        tones = cadence if i == last else chord_at(step)

        # cost is used right away by min() below, so the loop's current step and previous are the ones meant.
        def cost(p: int) -> float:  # semitones off the contour and of leap, a repeat, a big or awkward leap
            c = 0.5 * abs(p - target(step)) + 3 * rng.random()  # noqa: B023
            if previous is not None:  # noqa: B023
                leap = abs(p - previous)  # noqa: B023
                c += 0.25 * leap + 2.5 * (leap == 0) + 3 * (leap > 5) + 50 * (leap == 6 or leap > 9)
            return c

        pitches[i] = previous = min((p for p in range(low, high + 1) if p % 12 in tones), key=cost)
    for i, pitch in enumerate(pitches):
        if pitch is None:
            before, after = pitches[i - 1], pitches[i + 1]
            scale = [p for p in range(low - 2, high + 3) if p % 12 in C_MAJOR]
            if abs(after - before) in (3, 4):
                pitches[i] = next(p for p in scale if min(before, after) < p < max(before, after))
            elif after == before:
                above = next(p for p in scale if p > before)
                below = max(p for p in scale if p < before)
                pitches[i] = above if rng.random() < 0.6 else below
            elif abs(after - before) <= 2:
                pitches[i] = before if rng.random() < 0.5 else after
            else:  # a leap: arrive by step, from the side the line comes from
                pitches[i] = scale[scale.index(after) + (1 if before > after else -1)]
    return pitches


def _voicing(tones: tuple[int, ...], low: int, high: int, centre: float) -> list[int]:
    """The close-position triad of pitch classes `tones` within [low, high] whose mean is nearest to
    `centre`: passing the previous chord's mean keeps the voices moving by small steps."""
    options = []
    for bottom in (p for p in range(low, high + 1) if p % 12 in tones):
        chord = [bottom]
        while len(chord) < 3:
            chord.append(next(p for p in range(chord[-1] + 1, chord[-1] + 12) if p % 12 in tones))
        if chord[-1] <= high:
            options.append(chord)
    return min(options, key=lambda c: abs(sum(c) / 3 - centre))


def _accompaniment(chords: list[Chord]) -> tuple[list[Note], list[Note]]:
    """Piano and strings for the chords.

    Verse: the piano's left hand holds the root, the right hand breaks the chord in eighths (held as with
    the sustain pedal); strings join softly in the second phrase. Chorus: the piano pushes block chords
    in a 3+3+2 rhythm over the root on beats 1 and 3, the strings hold full chords."""
    piano, strings = [], []
    piano_mean, strings_mean = 62.0, 64.0  # mean pitch of the previous piano and string voicings
    chorus_start = CHORUS_FIRST_BAR * STEPS_PER_BAR * STEP_SECONDS
    for chord in chords:
        root = PITCH_NAMES.index(chord.label.split(":")[0])
        tones = tuple(p % 12 for p in (root, root + (3 if chord.label.endswith("min") else 4), root + 7))
        left = 43 + (root - 7) % 12  # G2..F#3, an octave above the bass
        voicing = _voicing(tones, 55, 69, piano_mean)
        piano_mean = sum(voicing) / 3
        steps = round((chord.end - chord.start) / STEP_SECONDS)
        at = [chord.start + k * STEP_SECONDS for k in range(steps + 1)]
        in_chorus = chord.start >= chorus_start - 1e-6
        if in_chorus:
            for k in range(0, steps, 4):
                piano.append(Note(at[k], at[min(k + 4, steps)] - 0.02, left, 84))
            for k in (k for k in (0, 3, 6) if k < steps):
                end = at[min(k + (2 if k == 6 else 3), steps)] - 0.03
                piano.extend(Note(at[k], end, p, 80 if k == 0 else 72) for p in voicing)
        else:
            piano.append(Note(at[0], at[-1], left, 74))
            arpeggio = [left + 7, *voicing, voicing[1], voicing[0], voicing[1], voicing[2]]
            piano.extend(Note(at[k], at[-1], arpeggio[k % 8], 66 if k % 2 == 0 else 58) for k in range(steps))
        if chord.start >= len(VERSE) * STEPS_PER_BAR * STEP_SECONDS - 1e-6:  # from the second phrase on
            pad = _voicing(tones, 52, 72, strings_mean)
            strings_mean = sum(pad) / 3
            strings.extend(Note(at[0], at[-1] - 0.02, p, 76 if in_chorus else 52) for p in pad)
    return piano, strings


def write_ogg(path: Path, audio: np.ndarray, quality: float = 4.0) -> None:
    """Ogg Vorbis at a Vorbis quality level (-1..10); libsndfile takes it as compression 1 - q/10."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=1 - quality / 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"which original song to compose (default: {DEFAULT_SEED}, the demo's)")
    parser.add_argument("--pop909", type=Path, help="render a song from this POP909 folder (holds 001/ ... 909/) "
                        "instead; research and training material only, not for shipping")
    parser.add_argument("--song", default="001", help="POP909 song number, e.g. 001")
    parser.add_argument("--out", type=Path, help="the mix, Ogg Vorbis (.ogg) or any soundfile format")
    parser.add_argument("--stems-dir", type=Path, help="also write <stem>.wav (float) for each stem and the mixture")
    parser.add_argument("--duration", type=float, default=24.0,
                        help="excerpt length in seconds (rounded to whole bars unless --start is given)")
    parser.add_argument("--start", type=float, help="excerpt start in song seconds (default: from the original "
                        "song's second verse phrase; a chorus-like span of a POP909 song)")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args(argv)
    check_tools(parser, args.soundfont)
    if args.out is None:
        parser.error("pass --out FILE (POP909 training data: python -m training.pop909 --dataset DIR)")
    if args.pop909 is None:
        song = compose_original(args.seed)
    elif (args.pop909 / args.song).is_dir():
        song = read_song(args.pop909 / args.song)
    else:
        parser.error(f"no song folder {args.pop909 / args.song}; pass the POP909 folder with --pop909")

    if args.start is None:
        if args.pop909 is None:
            start, end = whole_bars(song, DEMO_FIRST_BAR, args.duration)
        else:
            start, end = find_excerpt(song, args.duration)
        start -= FADE_IN  # the fade-in ends on the first downbeat instead of softening it
    else:
        start, end = args.start, args.start + args.duration
    print(f"song {song.name}: excerpt {start:.2f}-{end:.2f} s ({end - start:.2f} s)")
    tracks = mix_stems(render_stems(song, start, end, args.soundfont))
    if args.out.suffix.lower() == ".ogg":
        write_ogg(args.out, tracks["mixture"])
    else:
        sf.write(args.out, tracks["mixture"], SAMPLE_RATE)
    if args.stems_dir:
        args.stems_dir.mkdir(parents=True, exist_ok=True)
        for name, audio in tracks.items():
            sf.write(args.stems_dir / f"{name}.wav", audio, SAMPLE_RATE, subtype="FLOAT")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1000:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
