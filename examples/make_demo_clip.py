"""Render a POP909 song into a four-stem clip (vocals, drums, bass, other) with FluidSynth.

This makes the bundled demo clip `realtime_split/demo/demo.ogg`:

    pip install mido                     # script-only dependency, not needed by realtime-split itself
    sudo apt-get install -y fluidsynth fluid-soundfont-gm
    python examples/make_demo_clip.py --pop909 ../shared/data/pop909 --song 001 \\
        --out realtime_split/demo/demo.ogg

POP909 songs are MIDI with three tracks: MELODY (the sung line), BRIDGE and PIANO, plus beat and chord
annotations. They have no drums and no bass, so we add them from the annotations: a drum pattern on the
annotated beats and a bass line on the annotated chord roots. Each stem group is rendered to its own file,
so the mix is exactly the sum of the stems; `--stems-dir` writes them too, which makes this a small
synthetic multitrack renderer (the functions below take any time span, e.g. a whole song).

The "vocals" are a synthesized voice preset (choir "ahh" layered with "ooh", with a little vibrato),
not a real singer.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DRUM_CHANNEL = 9  # GM channel 10

# General MIDI programs (0-based) and pans of every rendered part, grouped by stem. FluidR3_GM names:
# 52 "Ahh Choir", 53 "Ohh Voices", 33 "Fingered Bass", 0 "Yamaha Grand Piano", 48 "Strings".
# The voice layers the bright "ahh" vowel (formants around 0.5-1 kHz and 2-3 kHz) over the "ooh",
# whose attack is quick enough for syllables.
VOICE_LAYERS = ((52, 1.0), (53, 0.8))  # (program, velocity scale)
VIBRATO_DEPTH = 64  # CC1 modulation wheel; FluidSynth turns it into vibrato (64: about 30 cents peak to peak)
BASS_PROGRAM = 33
PIANO_PROGRAM, PIANO_PAN = 0, 48
BRIDGE_PROGRAM, BRIDGE_PAN, BRIDGE_VELOCITY = 48, 84, 0.75

# GM percussion keys.
KICK, SNARE, CLOSED_HAT = 36, 38, 42

# Relative loudness of the stems in the mix (dB RMS over the frames where a stem sounds): the lead voice
# sits on top, as in a pop mix.
STEM_LEVELS_DB = {"vocals": 0.0, "drums": -4.0, "bass": -5.0, "other": -6.0}
# Stereo width (side-signal gain) per stem: the choir presets and reverb are wide, a lead vocal sits in the
# centre.
STEM_WIDTHS = {"vocals": 0.3, "drums": 1.0, "bass": 1.0, "other": 1.0}
PEAK_DBFS = -1.0
FADE_IN, FADE_OUT = 0.05, 1.0  # seconds


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Beat:
    time: float  # seconds
    downbeat: bool  # first beat of a bar


@dataclass(frozen=True)
class Chord:
    start: float
    end: float
    label: str  # Harte syntax as in POP909: "N", "C:maj", "A:min7", "F:maj/3", ...


@dataclass(frozen=True)
class Song:
    name: str
    parts: dict[str, list[Note]]  # "MELODY", "BRIDGE", "PIANO"
    beats: list[Beat]
    chords: list[Chord]


def read_song(song_dir: Path) -> Song:
    """Read one POP909 folder: <nnn>.mid plus beat_midi.txt and chord_midi.txt (times in seconds)."""
    midi = mido.MidiFile(song_dir / f"{song_dir.name}.mid")
    to_seconds = _tick_to_seconds(midi)
    parts = {track.name: _track_notes(track, to_seconds) for track in midi.tracks if track.name}
    beats = []
    for line in (song_dir / "beat_midi.txt").read_text().split("\n"):
        if line.strip():
            time, _, bar_start = line.split()  # third column: downbeat of a 4-beat (or 3-beat) bar
            beats.append(Beat(float(time), float(bar_start) == 1.0))
    chords = []
    for line in (song_dir / "chord_midi.txt").read_text().split("\n"):
        if line.strip():
            start, end, label = line.split()
            chords.append(Chord(float(start), float(end), label))
    return Song(song_dir.name, parts, beats, chords)


def _tick_to_seconds(midi: mido.MidiFile):
    """Map absolute ticks to seconds through every tempo change of the file."""
    changes = {0: 500000}
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes[tick] = msg.tempo
    ticks = sorted(changes)
    starts = [0.0]
    for a, b in zip(ticks, ticks[1:]):
        starts.append(starts[-1] + mido.tick2second(b - a, midi.ticks_per_beat, changes[a]))

    def to_seconds(tick: int) -> float:
        i = int(np.searchsorted(ticks, tick, side="right")) - 1
        return starts[i] + mido.tick2second(tick - ticks[i], midi.ticks_per_beat, changes[ticks[i]])

    return to_seconds


def _track_notes(track: mido.MidiTrack, to_seconds) -> list[Note]:
    notes, sounding, tick = [], {}, 0
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault(msg.note, []).append((tick, msg.velocity))
        elif msg.type in ("note_off", "note_on") and sounding.get(msg.note):
            start, velocity = sounding[msg.note].pop(0)
            notes.append(Note(to_seconds(start), to_seconds(tick), msg.note, velocity))
    return sorted(notes, key=lambda n: n.start)


def add_drums(beats: list[Beat]) -> list[Note]:
    """A plain pop beat on the annotated beats: kick on the odd beats of a bar, snare on the even ones
    (2 and 4 in 4/4), closed hi-hat on every eighth."""
    first_downbeat = next((i for i, b in enumerate(beats) if b.downbeat), 0)
    position = -first_downbeat % 4 - 1  # pickup beats count back from the first bar
    notes = []
    for beat, following in zip(beats, beats[1:]):
        position = 0 if beat.downbeat else position + 1
        step = following.time - beat.time
        hit = min(step / 2, 0.1)
        if position % 2 == 0:
            notes.append(Note(beat.time, beat.time + hit, KICK, 110 if position == 0 else 96))
        else:
            notes.append(Note(beat.time, beat.time + hit, SNARE, 100))
        notes.append(Note(beat.time, beat.time + hit, CLOSED_HAT, 84 if position % 2 == 0 else 70))
        notes.append(Note(beat.time + step / 2, beat.time + step / 2 + hit, CLOSED_HAT, 58))
    return notes


# Semitones above the root for the bass degree after "/" in a slash chord (POP909 uses these).
_DEGREES = {"b2": 1, "2": 2, "b3": 3, "3": 4, "4": 5, "b5": 6, "5": 7, "#5": 8, "6": 9, "b7": 10, "7": 11}
_PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def chord_bass_pitch(label: str) -> int | None:
    """The bass note of a chord label in the octave E1..D#2 (MIDI 28-39); None for "N" (no chord).
    Slash chords ("C:maj/3") play their inverted bass note."""
    if label == "N" or ":" not in label:
        return None
    root, quality = label.split(":", 1)
    pitch_class = _PITCH_CLASSES[root[0]] + root[1:].count("#") - root[1:].count("b")
    if "/" in quality:
        pitch_class += _DEGREES.get(quality.split("/", 1)[1], 0)
    return 28 + (pitch_class - 4) % 12


def add_bass(chords: list[Chord], beats: list[Beat]) -> list[Note]:
    """A bass line on the chord roots: one note per beat, slightly detached, the chord change accented."""
    times = [b.time for b in beats]
    notes = []
    for chord in chords:
        pitch = chord_bass_pitch(chord.label)
        if pitch is None:
            continue
        onsets = [t for t in times if chord.start - 1e-3 <= t < chord.end - 1e-3] or [chord.start]
        for k, (onset, next_onset) in enumerate(zip(onsets, onsets[1:] + [chord.end])):
            notes.append(Note(onset, onset + 0.85 * (next_onset - onset), pitch, 108 if k == 0 else 92))
    return notes


def legato(notes: list[Note], max_gap: float = 0.5, breath: float = 0.03) -> list[Note]:
    """Hold each note until the next one (minus a short breath) when the gap is shorter than `max_gap`:
    POP909 melodies are often transcribed staccato, but a singer connects the notes of a phrase."""
    joined = []
    for note, following in zip(notes, notes[1:] + [None]):
        end = note.end
        if following is not None and following.start - note.end < max_gap:
            end = max(note.end, following.start - breath)
        joined.append(Note(note.start, end, note.pitch, note.velocity))
    return joined


@dataclass(frozen=True)
class Part:
    """One MIDI channel: its notes and how it is played."""
    notes: list[Note]
    program: int
    channel: int
    pan: int = 64
    velocity_scale: float = 1.0
    modulation: int = 0


def arrange(song: Song) -> dict[str, list[Part]]:
    """The instrumentation: which parts make up each stem."""
    melody = legato(song.parts["MELODY"])
    vocals = [Part(melody, program, channel, velocity_scale=scale, modulation=VIBRATO_DEPTH)
              for channel, (program, scale) in enumerate(VOICE_LAYERS)]
    return {
        "vocals": vocals,
        "drums": [Part(add_drums(song.beats), 0, DRUM_CHANNEL)],
        "bass": [Part(add_bass(song.chords, song.beats), BASS_PROGRAM, 0)],
        "other": [Part(song.parts["PIANO"], PIANO_PROGRAM, 0, pan=PIANO_PAN),
                  Part(song.parts["BRIDGE"], BRIDGE_PROGRAM, 1, pan=BRIDGE_PAN, velocity_scale=BRIDGE_VELOCITY)],
    }


def write_midi(parts: list[Part], start: float, end: float, path: Path) -> None:
    """One MIDI file with the parts' notes inside [start, end), shifted so that `start` is time 0.

    The file runs at 1 tick = 1 ms (1000 ticks per beat at 60 bpm), so no tempo map is needed; notes that
    began before `start` are cut to begin at it."""
    events = []  # (ms, order, message): note-offs sort before note-ons at the same time
    for part in parts:
        events.append((0, 0, mido.Message("program_change", channel=part.channel, program=part.program)))
        events.append((0, 0, mido.Message("control_change", channel=part.channel, control=10, value=part.pan)))
        events.append((0, 0, mido.Message("control_change", channel=part.channel, control=1,
                                          value=part.modulation)))
        for note in part.notes:
            if note.end <= start or note.start >= end:
                continue
            on = round((max(note.start, start) - start) * 1000)
            off = max(on + 1, round((min(note.end, end) - start) * 1000))
            velocity = max(1, min(127, round(note.velocity * part.velocity_scale)))
            events.append((on, 2, mido.Message("note_on", channel=part.channel, note=note.pitch, velocity=velocity)))
            events.append((off, 1, mido.Message("note_off", channel=part.channel, note=note.pitch)))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000)])
    now = 0
    for ms, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=ms - now))
        now = ms
    midi = mido.MidiFile(ticks_per_beat=1000)
    midi.tracks.append(track)
    midi.save(path)


def render_midi(midi_path: Path, soundfont: Path = SOUNDFONT) -> np.ndarray:
    """FluidSynth's offline render of one MIDI file: float32 (frames, 2) at SAMPLE_RATE.
    Float output avoids clipping and the random dither of 16-bit output, so renders are repeatable."""
    wav = midi_path.with_suffix(".wav")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(SAMPLE_RATE), "-O", "float",
                    "-F", str(wav), str(soundfont), str(midi_path)], check=True, stdout=subprocess.DEVNULL)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE, rate
    return audio


def render_stems(song: Song, start: float, end: float, soundfont: Path = SOUNDFONT,
                 preroll: float = 2.0) -> dict[str, np.ndarray]:
    """Render each stem of `song` between `start` and `end` seconds: {stem: float32 (frames, 2)}.

    Rendering begins `preroll` seconds early so notes held across `start` sound as they would in the
    song, and it is trimmed to exactly the same length for every stem."""
    begin = max(0.0, start - preroll)
    offset, frames = round((start - begin) * SAMPLE_RATE), round((end - start) * SAMPLE_RATE)
    stems = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stem, parts in arrange(song).items():
            midi_path = Path(tmp) / f"{stem}.mid"
            write_midi(parts, begin, end, midi_path)
            audio = render_midi(midi_path, soundfont)[offset:offset + frames]
            stems[stem] = np.pad(audio, ((0, frames - len(audio)), (0, 0)))
    return stems


def active_rms_db(audio: np.ndarray, block: int = 4410) -> float:
    """RMS in dB over the 100 ms blocks where the signal sounds (within 30 dB of its loudest block), so
    a stem with pauses is judged by its level while it plays."""
    usable = len(audio) // block * block
    blocks = np.sqrt(np.mean(audio[:usable].reshape(-1, block * audio.shape[1]) ** 2, axis=1)) + 1e-12
    loud = blocks[blocks > blocks.max() * 10 ** (-30 / 20)]
    return float(20 * np.log10(np.sqrt(np.mean(loud ** 2))))


def narrow(audio: np.ndarray, width: float) -> np.ndarray:
    """Scale the side signal (L - R) by `width`, keeping the mid: 0 is mono, 1 unchanged."""
    mid, side = audio.mean(axis=1, keepdims=True), (audio[:, :1] - audio[:, 1:]) / 2
    return np.hstack([mid + width * side, mid - width * side])


def mix_stems(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Set each stem's width and level (STEM_WIDTHS, STEM_LEVELS_DB), fade in and out, and scale all of
    them together so the mix peaks at PEAK_DBFS. Returns the stems as they sit in the mix plus
    "mixture", their exact sum."""
    placed = {name: narrow(audio, STEM_WIDTHS[name]) for name, audio in stems.items()}
    placed = {name: audio * 10 ** ((STEM_LEVELS_DB[name] - active_rms_db(audio)) / 20)
              for name, audio in placed.items()}
    frames = len(next(iter(placed.values())))
    envelope = np.ones(frames)
    n_in, n_out = round(FADE_IN * SAMPLE_RATE), round(FADE_OUT * SAMPLE_RATE)
    envelope[:n_in] = np.linspace(0, 1, n_in, endpoint=False)
    envelope[frames - n_out:] *= np.linspace(1, 0, n_out)
    placed = {name: audio * envelope[:, None] for name, audio in placed.items()}
    gain = 10 ** (PEAK_DBFS / 20) / np.abs(sum(placed.values())).max()
    out = {name: (audio * gain).astype(np.float32) for name, audio in placed.items()}
    out["mixture"] = sum(out.values())
    return out


def find_excerpt(song: Song, duration: float) -> tuple[float, float]:
    """A chorus-like excerpt of whole bars lasting about `duration` seconds, starting on a downbeat.

    Among the windows where the melody sounds at least 70 % of the time, take the busiest one (most
    notes across all parts, the usual sign of a chorus); if none qualifies, the one with most melody."""
    downbeats = [b.time for b in song.beats if b.downbeat]
    bar = float(np.median(np.diff(downbeats)))
    n_bars = max(1, round(duration / bar))
    all_notes = [n for notes in song.parts.values() for n in notes]
    candidates = []
    for first, last in zip(downbeats, downbeats[n_bars:]):
        melody = _sounding_fraction(song.parts["MELODY"], first, last)
        busy = sum(first <= n.start < last for n in all_notes) / (last - first)
        candidates.append((melody >= 0.7, busy if melody >= 0.7 else melody, -first, last))
    if not candidates:
        raise SystemExit(f"song {song.name} is shorter than {n_bars} bars")
    _, _, first, last = max(candidates)  # ties: the earliest
    return -first, last


def _sounding_fraction(notes: list[Note], start: float, end: float, gap: float = 0.3) -> float:
    """Fraction of [start, end) covered by notes, counting breaths shorter than `gap` as sounding."""
    covered, reach = 0.0, start
    for n in notes:
        a, b = max(n.start, reach), min(n.end + gap, end)
        if b > a:
            covered += b - a
            reach = b
    return covered / (end - start)


def write_ogg(path: Path, audio: np.ndarray, quality: float = 4.0) -> None:
    """Ogg Vorbis at a Vorbis quality level (-1..10); libsndfile takes it as compression 1 - q/10."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, format="OGG", subtype="VORBIS", compression_level=1 - quality / 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pop909", type=Path, required=True, help="the POP909 folder (holds 001/ ... 909/)")
    parser.add_argument("--song", default="001", help="song number, e.g. 001")
    parser.add_argument("--out", type=Path, required=True, help="the mix, Ogg Vorbis (.ogg) or any soundfile format")
    parser.add_argument("--stems-dir", type=Path, help="also write <stem>.wav (float) for each stem and the mixture")
    parser.add_argument("--duration", type=float, default=24.0,
                        help="excerpt length in seconds (rounded to whole bars unless --start is given)")
    parser.add_argument("--start", type=float, help="excerpt start in song seconds (default: a chorus-like span)")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args(argv)
    if shutil.which("fluidsynth") is None:
        parser.error("fluidsynth not found; install it (sudo apt-get install fluidsynth)")
    if not args.soundfont.is_file():
        parser.error(f"no soundfont at {args.soundfont}; install fluid-soundfont-gm or pass --soundfont")
    if not (args.pop909 / args.song).is_dir():
        parser.error(f"no song folder {args.pop909 / args.song}; pass the POP909 folder with --pop909")

    song = read_song(args.pop909 / args.song)
    if args.start is None:
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
