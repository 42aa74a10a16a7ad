"""POP909 rendered as exactly labelled multitracks: training data (``python -m training.pop909``).

POP909 (github.com/music-x-lab/POP909-Dataset, MIT) is piano arrangements of existing songs: MIDI with
MELODY, BRIDGE and PIANO tracks plus beat and chord annotations. Drums and a bass line are written from the
beats and chords, each stem group is rendered to its own file with FluidSynth, so the mix is exactly the sum
of the stems: a small synthetic multitrack renderer (the functions below take any time span, e.g. a whole
song). The bundled demo clip is rendered by the same functions (``tools/make_demo_clip.py``, an original song).

``--dataset OUT`` renders many POP909 songs as a "folder" training dataset (training/datasets.py) of exactly
labelled drums, bass and other:

    pip install mido                     # not needed by realtime-split itself
    sudo apt-get install -y fluidsynth fluid-soundfont-gm
    python -m training.pop909 --pop909 POP909 --dataset OUT --songs 1-150 --excerpt 45 --seed 0

Each song becomes OUT/pop909-s<nnn>/{vocals,drums,bass,other}.flac (44.1 kHz stereo, 24 bit; the mix is
their sum), a random excerpt where drums and bass play throughout. The choir preset that voices the demo's
melody is no singer, so here the melody is played by a lead instrument (flute, sax, trumpet, violin, guitar,
synth lead, organ...) in "other" and "vocals" is silent. Per song and reproducibly from --seed: the lead,
accompaniment, pad, bass programs, the drum kit (FluidR3_GM's bank 128 kits, and the acoustic kits of
Debian's GPL-2+ avldrums.lv2-soundfont when installed) and beat variations, pans, reverb sends, stem levels
(within 3 dB of a pop balance) and peak level. Songs already rendered are skipped, so a run can be resumed.
These renders, like every POP909 render, are for training and research only, never for shipping.

The FluidR3_GM soundfont is MIT-licensed (Debian's fluid-soundfont-gm).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
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
STRINGS_PROGRAM, STRINGS_PAN, STRINGS_VELOCITY = 48, 84, 0.75

# GM percussion keys.
KICK, SNARE, CLOSED_HAT, CRASH, HIGH_TOM, LOW_TOM = 36, 38, 42, 49, 50, 45
PHRASE_BARS = 4  # the drums play a fill at the end of every 4-bar phrase and a crash on the next downbeat

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
    parts: dict[str, list[Note]]  # "melody" (sung), "piano", "strings"
    beats: list[Beat]  # up to the end of the song: the last beat only closes the one before it
    chords: list[Chord]
    scale: tuple[int, ...] | None = None  # pitch classes of the key, when it is known




# POP909's tracks and the parts they become: BRIDGE is a counter-melody, played on strings.
POP909_PARTS = {"MELODY": "melody", "PIANO": "piano", "BRIDGE": "strings"}


def read_song(song_dir: Path) -> Song:
    """Read one POP909 folder: <nnn>.mid plus beat_midi.txt and chord_midi.txt (times in seconds)."""
    midi = mido.MidiFile(song_dir / f"{song_dir.name}.mid")
    to_seconds = _tick_to_seconds(midi)
    parts = {POP909_PARTS[track.name]: _track_notes(track, to_seconds)
             for track in midi.tracks if track.name in POP909_PARTS}
    parts["melody"] = legato(parts["melody"])
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
    notes: list[Note] = []
    sounding: dict[int, list[tuple[int, int]]] = {}  # note -> (start tick, velocity) of each held press
    tick = 0
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault(msg.note, []).append((tick, msg.velocity))
        elif msg.type in ("note_off", "note_on") and sounding.get(msg.note):
            start, velocity = sounding[msg.note].pop(0)
            notes.append(Note(to_seconds(start), to_seconds(tick), msg.note, velocity))
    return sorted(notes, key=lambda n: n.start)


def add_drums(beats: list[Beat], cymbal: int = CLOSED_HAT, sixteenths: bool = False,
              kick_push: bool = False) -> list[Note]:
    """A plain pop beat on the annotated beats: kick on the odd beats of a bar, snare on the even ones
    (2 and 4 in 4/4), closed hi-hat on every eighth. Bars are grouped into phrases of PHRASE_BARS from
    the first downbeat: the last beat of a phrase is a snare-and-toms fill, the next downbeat has a crash,
    so the form is audible. Variations for the training data: another `cymbal` (ride, open hat), soft
    `sixteenths` between the eighths, and a `kick_push` on the "and" of beat 3."""
    first_downbeat = next((i for i, b in enumerate(beats) if b.downbeat), 0)
    position = -first_downbeat % 4 - 1  # pickup beats count back from the first bar
    bar = -1  # pickup beats belong to no phrase
    notes = []
    for beat, following in zip(beats, beats[1:]):
        if beat.downbeat:
            position, bar = 0, bar + 1
        else:
            position += 1
        step = following.time - beat.time
        hit = min(step / 2, 0.1)
        if position == 0 and bar > 0 and bar % PHRASE_BARS == 0:
            notes.append(Note(beat.time, beat.time + step, CRASH, 100))
        if position == 3 and bar % PHRASE_BARS == PHRASE_BARS - 1:
            for k, (key, velocity) in enumerate(((SNARE, 84), (SNARE, 96), (HIGH_TOM, 104), (LOW_TOM, 112))):
                onset = beat.time + k * step / 4
                notes.append(Note(onset, onset + min(step / 4, 0.1), key, velocity))
            continue
        if position % 2 == 0:
            notes.append(Note(beat.time, beat.time + hit, KICK, 110 if position == 0 else 96))
        else:
            notes.append(Note(beat.time, beat.time + hit, SNARE, 100))
        notes.append(Note(beat.time, beat.time + hit, cymbal, 84 if position % 2 == 0 else 70))
        notes.append(Note(beat.time + step / 2, beat.time + step / 2 + hit, cymbal, 58))
        if sixteenths:
            notes.extend(Note(beat.time + k * step / 4, beat.time + k * step / 4 + min(hit, step / 4), cymbal, 44)
                         for k in (1, 3))
        if kick_push and position == 2:
            notes.append(Note(beat.time + step / 2, beat.time + step / 2 + hit, KICK, 84))
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


def add_bass(chords: list[Chord], beats: list[Beat], scale: tuple[int, ...] | None) -> list[Note]:
    """A bass line on the chord roots: one note per beat, slightly detached, the chord change accented.

    With the key's `scale` (pitch classes) known, a root that moves by a third to the next chord gets a
    passing note: the scale tone in between, on the last beat before the change."""
    times = [b.time for b in beats]
    notes = []
    for chord, following in zip(chords, chords[1:] + [None]):
        pitch = chord_bass_pitch(chord.label)
        if pitch is None:
            continue
        onsets = [t for t in times if chord.start - 1e-3 <= t < chord.end - 1e-3] or [chord.start]
        pitches = [pitch] * len(onsets)
        target = chord_bass_pitch(following.label) if following is not None else None
        if scale is not None and target is not None and len(onsets) > 2:
            between = [p for p in range(min(pitch, target) + 1, max(pitch, target)) if p % 12 in scale]
            if abs(target - pitch) in (3, 4) and len(between) == 1:
                pitches[-1] = between[0]
        for k, (onset, next_onset, note) in enumerate(zip(onsets, onsets[1:] + [chord.end], pitches)):
            notes.append(Note(onset, onset + 0.85 * (next_onset - onset), note, 108 if k == 0 else 92))
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
    reverb: int | None = None  # CC91 reverb send; None leaves FluidSynth's default


def arrange(song: Song) -> dict[str, list[Part]]:
    """The instrumentation: which parts make up each stem."""
    vocals = [Part(song.parts["melody"], program, channel, velocity_scale=scale, modulation=VIBRATO_DEPTH)
              for channel, (program, scale) in enumerate(VOICE_LAYERS)]
    return {
        "vocals": vocals,
        "drums": [Part(add_drums(song.beats), 0, DRUM_CHANNEL)],
        "bass": [Part(add_bass(song.chords, song.beats, song.scale), BASS_PROGRAM, 0)],
        "other": [Part(song.parts["piano"], PIANO_PROGRAM, 0, pan=PIANO_PAN),
                  Part(song.parts["strings"], STRINGS_PROGRAM, 1, pan=STRINGS_PAN, velocity_scale=STRINGS_VELOCITY)],
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
        if part.reverb is not None:
            events.append((0, 0, mido.Message("control_change", channel=part.channel, control=91,
                                              value=part.reverb)))
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
                 preroll: float = 2.0, arrangement: dict[str, list[Part]] | None = None,
                 soundfonts: dict[str, Path] | None = None) -> dict[str, np.ndarray]:
    """Render each stem of `song` between `start` and `end` seconds: {stem: float32 (frames, 2)}.

    Rendering begins `preroll` seconds early so notes held across `start` sound as they would in the
    song, and it is trimmed to exactly the same length for every stem. `arrangement` replaces
    `arrange(song)`; `soundfonts` overrides `soundfont` per stem (e.g. another drum kit)."""
    begin = max(0.0, start - preroll)
    offset, frames = round((start - begin) * SAMPLE_RATE), round((end - start) * SAMPLE_RATE)
    stems = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stem, parts in (arrangement or arrange(song)).items():
            midi_path = Path(tmp) / f"{stem}.mid"
            write_midi(parts, begin, end, midi_path)
            audio = render_midi(midi_path, (soundfonts or {}).get(stem, soundfont))[offset:offset + frames]
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


def mix_stems(stems: dict[str, np.ndarray], levels_db: dict[str, float] = STEM_LEVELS_DB,
              fade_in: float = FADE_IN, fade_out: float = FADE_OUT,
              peak_dbfs: float = PEAK_DBFS) -> dict[str, np.ndarray]:
    """Set each stem's width and level (STEM_WIDTHS, `levels_db`), fade in and out, and scale all of
    them together so the mix peaks at `peak_dbfs`. Returns the stems as they sit in the mix plus
    "mixture", their exact sum."""
    placed = {name: narrow(audio, STEM_WIDTHS[name]) for name, audio in stems.items()}
    placed = {name: audio * 10 ** ((levels_db[name] - active_rms_db(audio)) / 20)
              for name, audio in placed.items()}
    frames = len(next(iter(placed.values())))
    envelope = np.ones(frames)
    n_in, n_out = round(fade_in * SAMPLE_RATE), round(fade_out * SAMPLE_RATE)
    envelope[:n_in] = np.linspace(0, 1, n_in, endpoint=False)
    envelope[frames - n_out:] *= np.linspace(1, 0, n_out)
    placed = {name: audio * envelope[:, None] for name, audio in placed.items()}
    gain = 10 ** (peak_dbfs / 20) / np.abs(sum(placed.values())).max()
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
        melody = _sounding_fraction(song.parts["melody"], first, last)
        busy = sum(first <= n.start < last for n in all_notes) / (last - first)
        candidates.append((melody >= 0.7, busy if melody >= 0.7 else melody, -first, last))
    if not candidates:
        raise SystemExit(f"song {song.name} is shorter than {n_bars} bars")
    _, _, first, last = max(candidates)  # ties: the earliest
    return -first, last


def whole_bars(song: Song, first_bar: int, duration: float) -> tuple[float, float]:
    """The span from the downbeat of `first_bar` lasting the whole number of bars nearest to `duration`
    seconds (at most to the end of the song)."""
    downbeats = [b.time for b in song.beats if b.downbeat]
    n_bars = max(1, round(duration / (downbeats[1] - downbeats[0])))
    return downbeats[first_bar], downbeats[min(first_bar + n_bars, len(downbeats) - 1)]


def _sounding_fraction(notes: list[Note], start: float, end: float, gap: float = 0.3) -> float:
    """Fraction of [start, end) covered by notes, counting breaths shorter than `gap` as sounding."""
    covered, reach = 0.0, start
    for n in notes:
        a, b = max(n.start, reach), min(n.end + gap, end)
        if b > a:
            covered += b - a
            reach = b
    return covered / (end - start)


# --- Training data: many POP909 songs, each instrumented at random ----------------------------------
# The choir preset is not a singer, so here the melody is played by a lead instrument in "other" and
# "vocals" is silence: these mixes teach the model what is *not* a voice. Voice-like programs (52-54
# choirs and voices, 85 "voice" lead, 91 choir pad, 94 halo pad) are in none of the lists.
LEAD_PROGRAMS = (73, 71, 68, 65, 66, 56, 40, 27, 29, 80, 81, 16, 22, 11)  # flute, clarinet, oboe, alto and
# tenor sax, trumpet, violin, clean and overdriven guitar, square and saw lead, organ, harmonica, vibraphone
VIBRATO_LEADS = frozenset((73, 71, 68, 65, 66, 56, 40))  # winds and violin: played with some vibrato
PIANO_PROGRAMS = (0, 0, 1, 2, 4, 5, 7, 16, 17, 24, 25, 26, 27, 46)  # grand (twice as likely), bright,
# electric grand, electric pianos, clavinet, organs, nylon/steel/jazz/clean guitars, harp
STRINGS_PROGRAMS = (48, 49, 50, 51, 61, 88, 89, 90, 92, 19)  # strings, synth strings, brass, pads, organ
BASS_PROGRAMS = (32, 33, 33, 34, 35, 36, 38, 39)  # acoustic, fingered (twice), picked, fretless, slap, synth
# FluidR3_GM's drum kits (bank 128 programs, selected on the drum channel): standard 1 and 4, room,
# power, electronic, TR-808, jazz, brush; plus the two multi-sampled acoustic kits of Debian's
# avldrums.lv2-soundfont (GPL-2+) when installed.
DRUM_KITS = (0, 1, 4, 8, 16, 24, 25, 32, 40)
AVL_KITS = tuple(Path("/usr/share/sounds/sf2") / name for name in ("Black_Pearl_4_LV2.sf2", "Red_Zeppelin_4_LV2.sf2"))
RIDE = 51
DATASET_STEMS = ("vocals", "drums", "bass", "other")
DATASET_LEVELS_DB = {"drums": -4.0, "bass": -5.0, "other": -3.0}  # the lead in "other" takes the voice's place
LEVEL_SPREAD_DB = 3.0  # each stem's level varies by up to this much either way
SILENCE_DBFS = -60.0


def random_arrangement(song: Song, rng: random.Random) -> tuple[dict[str, list[Part]], dict[str, Path], str]:
    """A random instrumentation of `song` for the training data: the parts of each stem (no vocals), the
    soundfont of any stem not played by FluidR3_GM, and a one-line description."""
    lead, piano, strings, bass = (rng.choice(programs) for programs in
                                  (LEAD_PROGRAMS, PIANO_PROGRAMS, STRINGS_PROGRAMS, BASS_PROGRAMS))
    kits = [kit for kit in AVL_KITS if kit.is_file()]
    use_avl = bool(kits) and rng.random() < 0.25
    avl_kit = rng.choice(kits) if use_avl else None
    kit = 0 if use_avl else rng.choice(DRUM_KITS)  # an avldrums kit is program 0 of its own soundfont
    cymbal = rng.choice((CLOSED_HAT, CLOSED_HAT, RIDE))
    beat = add_drums(song.beats, cymbal, sixteenths=rng.random() < 0.3, kick_push=rng.random() < 0.4)
    piano_pan = rng.randint(34, 94)
    # an avldrums kit is the only preset of its soundfont, played as an ordinary instrument on channel 1
    drums = Part(beat, kit, 0 if use_avl else DRUM_CHANNEL, reverb=rng.randint(0, 50))
    arrangement = {
        "drums": [drums],
        "bass": [Part(add_bass(song.chords, song.beats, song.scale), bass, 0, pan=64 + rng.randint(-6, 6),
                      reverb=rng.randint(0, 25))],
        "other": [Part(song.parts["melody"], lead, 0, pan=rng.randint(52, 76),
                       modulation=rng.randint(20, 60) if lead in VIBRATO_LEADS else 0, reverb=rng.randint(20, 70)),
                  Part(song.parts.get("piano", []), piano, 1, pan=piano_pan, velocity_scale=rng.uniform(0.75, 1.0),
                       reverb=rng.randint(10, 70)),
                  Part(song.parts.get("strings", []), strings, 2, pan=128 - piano_pan + rng.randint(-10, 10),
                       velocity_scale=rng.uniform(0.55, 0.85), reverb=rng.randint(20, 80))],
    }
    kit_name = avl_kit.stem if avl_kit is not None else f"kit {kit}"
    description = f"lead {lead}, piano {piano}, strings {strings}, bass {bass}, drums {kit_name}"
    return arrangement, ({"drums": avl_kit} if avl_kit is not None else {}), description


def random_excerpt(song: Song, duration: float, rng: random.Random) -> tuple[float, float] | None:
    """A random `duration`-second span from a downbeat where the bass and drums play throughout (chords
    cover at least 90 % of it, beats all of it) and the melody sounds at least 40 % of the time; None
    when the song has no such span."""
    last_beat = song.beats[-1].time
    starts = [b.time for b in song.beats if b.downbeat and b.time + duration <= last_beat
              and _chord_fraction(song.chords, b.time, b.time + duration) >= 0.9
              and _sounding_fraction(song.parts["melody"], b.time, b.time + duration) >= 0.4]
    if not starts:
        return None
    start = rng.choice(starts)
    return start, start + duration


def _chord_fraction(chords: list[Chord], start: float, end: float) -> float:
    """Fraction of [start, end) under a chord (not "N"), i.e. where the bass plays."""
    return sum(max(0.0, min(c.end, end) - max(c.start, start)) for c in chords if c.label != "N") / (end - start)


def silent_fraction(audio: np.ndarray) -> float:
    """Fraction of the whole seconds of `audio` whose RMS is below SILENCE_DBFS."""
    seconds = len(audio) // SAMPLE_RATE
    frames = audio[:seconds * SAMPLE_RATE].reshape(seconds, -1)
    return float(np.mean(np.sqrt(np.mean(frames ** 2, axis=1)) < 10 ** (SILENCE_DBFS / 20)))


def parse_songs(spec: str) -> list[int]:
    """Song numbers from "1-909" or "1-150,200,300-310"."""
    numbers: list[int] = []
    for item in spec.split(","):
        first, _, last = item.partition("-")
        numbers.extend(range(int(first), int(last or first) + 1))
    return numbers


def render_dataset(pop909: Path, out: Path, songs: list[int], excerpt: float, seed: int,
                   soundfont: Path = SOUNDFONT) -> None:
    """Render POP909 songs as a "folder" training dataset: out/pop909-s<nnn>/{vocals,drums,bass,other}.flac
    (44.1 kHz stereo, 24 bit; the mix is their sum). The choices of each song depend only on `seed` and
    the song, so a re-run renders the same audio; songs already complete are skipped, and a song is
    written to a hidden folder first, so an interrupted run leaves no half-written track.

    The folder name avoids ending in "-<digits>", which the trainer reads as a clip of a song."""
    out.mkdir(parents=True, exist_ok=True)
    for i, number in enumerate(songs, 1):
        name, began = f"pop909-s{number:03d}", time.monotonic()
        target, progress = out / name, f"[{i}/{len(songs)}] {name}:"
        if all((target / f"{stem}.flac").is_file() for stem in DATASET_STEMS):
            print(progress, "done already", flush=True)
            continue
        song_dir = pop909 / f"{number:03d}"
        if not song_dir.is_dir():
            print(progress, f"skipped, no folder {song_dir}", flush=True)
            continue
        song = read_song(song_dir)
        rng = random.Random(f"{seed}:{name}")
        span = random_excerpt(song, excerpt, rng)
        if span is None:
            print(progress, f"skipped, no {excerpt:g} s span with steady chords and melody", flush=True)
            continue
        arrangement, soundfonts, description = random_arrangement(song, rng)
        levels = {stem: level + rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB)
                  for stem, level in DATASET_LEVELS_DB.items()}
        stems = render_stems(song, *span, soundfont, arrangement=arrangement, soundfonts=soundfonts)
        tracks = mix_stems(stems, levels, fade_in=0.01, fade_out=0.01, peak_dbfs=rng.uniform(-6.0, -1.0))
        del tracks["mixture"]
        tracks["vocals"] = np.zeros_like(tracks["drums"])
        peak = max(np.abs(audio).max() for audio in tracks.values())
        if peak > 0.99:  # a stem can peak above the mix it sits in; 24-bit FLAC would clip it
            tracks = {stem: audio * (0.99 / peak) for stem, audio in tracks.items()}
        partial = out / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for stem in DATASET_STEMS:
            sf.write(partial / f"{stem}.flac", tracks[stem], SAMPLE_RATE, subtype="PCM_24")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        silent = ", ".join(f"{stem} {silent_fraction(tracks[stem]):.0%}" for stem in ("drums", "bass", "other"))
        print(progress, f"{span[0]:.1f}-{span[1]:.1f} s, {description}; silent seconds: {silent}; "
              f"{time.monotonic() - began:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pop909", description=__doc__.split("\n")[0])
    parser.add_argument("--pop909", type=Path, required=True, help="the POP909 folder (holds 001/ ... 909/)")
    parser.add_argument("--dataset", type=Path, required=True, help="render --songs as a folder training dataset "
                        "here (pop909-s<nnn>/{vocals,drums,bass,other}.flac), skipping songs already done")
    parser.add_argument("--songs", default="1-909", help="song numbers, e.g. 1-150 or 1-9,20")
    parser.add_argument("--excerpt", type=float, default=45.0, help="seconds per song")
    parser.add_argument("--seed", type=int, default=8, help="the seed of every random choice (default: 8)")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT)
    args = parser.parse_args(argv)
    check_tools(parser, args.soundfont)
    if not args.pop909.is_dir():
        parser.error(f"no POP909 folder {args.pop909}; pass --pop909 DIR")
    render_dataset(args.pop909, args.dataset, parse_songs(args.songs), args.excerpt, args.seed, args.soundfont)
    return 0


def check_tools(parser: argparse.ArgumentParser, soundfont: Path) -> None:
    """FluidSynth and the soundfont, before any rendering (a parser error names the fix)."""
    if shutil.which("fluidsynth") is None:
        parser.error("fluidsynth not found; install it (sudo apt-get install fluidsynth)")
    if not soundfont.is_file():
        parser.error(f"no soundfont at {soundfont}; install fluid-soundfont-gm or pass --soundfont")


if __name__ == "__main__":
    raise SystemExit(main())
