"""Prove an ONNX file computes what the Keras model computes, on noise and on music.

Random audio exercises every weight; music-like audio exercises the level and
spectrum the model meets in use; a length longer than the window checks that the
dynamic time axis really is dynamic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from realtime_split.errors import UserError
from realtime_split.model_format import INPUT_NAME, ModelInfo, parse_metadata

DEFAULT_TOLERANCE = 1e-4

Separate = Callable[[np.ndarray], np.ndarray]  # [b, 2, t] -> [b, S, 2, t]


class ParityError(Exception):
    """The exported file does not reproduce the Keras model: shipping it would be a silent bug."""


@dataclass(frozen=True)
class ParityResult:
    signal: str
    length: int
    max_abs_error: float
    snr_db: float  # reference energy over error energy: meaningful for lossy (quantized) files


def music_like(length: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic stereo [2, length] mix of a bass line, chords, a voice-like glide and drums."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / sample_rate
    beat = 0.5  # seconds per beat (120 bpm)
    phase = (t % beat) / beat
    out = np.zeros((2, length))
    for harmonic in range(1, 6):  # bass: 55 Hz saw-ish, centre
        out += 0.15 / harmonic * np.sin(2 * np.pi * 55 * harmonic * t) * np.exp(-3 * phase)
    for freq, pan in ((220.0, 0.3), (277.2, 0.5), (329.6, 0.7)):  # A major chord, spread
        tone = 0.08 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        out += np.stack([tone * (1 - pan), tone * pan])
    glide = 440 * 2 ** (0.25 * np.sin(2 * np.pi * 0.7 * t))  # vibrato/glide "voice"
    voice = 0.12 * np.sin(2 * np.pi * np.cumsum(glide) / sample_rate) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    out += voice
    kick = 0.5 * np.sin(2 * np.pi * 60 * t) * np.exp(-12 * phase)
    hats = 0.05 * rng.standard_normal((2, length)) * np.exp(-30 * ((t % (beat / 2)) / beat))
    out += kick + hats
    return (out / max(1.0, np.abs(out).max() / 0.9)).astype(np.float32)


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """A real recording as stereo [2, n] at the model rate."""
    import soundfile as sf
    import soxr

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for unreadable files
        raise UserError(f"cannot read parity audio {path} ({exc}); use a WAV/FLAC/OGG file") from None
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    audio = audio[:, :2]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate)
    return np.ascontiguousarray(audio.T, dtype=np.float32)


def parity_signals(info: ModelInfo, audio: np.ndarray | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Named [1, 2, t] inputs at the window length and at a longer length (both valid multiples)."""
    window = max(g.window for g in info.presets.values())
    m = info.length_multiple
    longer = -(-(3 * window + window // 2) // m) * m
    needed = longer
    if audio is None:
        audio = music_like(needed, info.sample_rate, seed)
        music = "music-like"
    else:
        music = "audio"
        if audio.shape[1] < needed:  # loop a short recording rather than pad it with silence
            audio = np.tile(audio, (1, -(-needed // audio.shape[1])))
        start = (audio.shape[1] - needed) // 2
        audio = audio[:, start:start + needed]
    rng = np.random.default_rng(seed)
    signals = {}
    for length in (window, longer):
        signals[f"random/{length}"] = (0.5 * rng.standard_normal((1, 2, length))).astype(np.float32)
        signals[f"{music}/{length}"] = np.ascontiguousarray(audio[None, :, :length])
    return signals


def onnx_runner(path: Path) -> Separate:
    """The file as the runtime runs it: a spectral model (metadata ``frontend``) behind the runtime's STFT."""
    from realtime_split.spectral import SpectralRunner

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    info = parse_metadata(dict(session.get_modelmeta().custom_metadata_map), source=str(path))
    frontend = info.frontend
    if frontend is None:
        return lambda mix: session.run(None, {INPUT_NAME: mix})[0]

    def separate(mix: np.ndarray) -> np.ndarray:
        length = mix.shape[-1]
        return SpectralRunner(session, frontend, len(info.stems), length, len(mix), 0, length).separate(mix)

    return separate


def compare(reference: Separate, candidate: Separate, signals: dict[str, np.ndarray]) -> list[ParityResult]:
    results = []
    for name, mix in signals.items():
        want, got = reference(mix), candidate(mix)
        if got.shape != want.shape:
            raise ParityError(f"parity check failed on {name}: ONNX output shape {got.shape} != Keras {want.shape}")
        error = got.astype(np.float64) - want
        energy, noise = float(np.sum(want.astype(np.float64) ** 2)), float(np.sum(error**2))
        snr = float("inf") if noise == 0 else 10 * np.log10(max(energy, 1e-30) / noise)
        results.append(ParityResult(name.split("/")[0], mix.shape[-1], float(np.max(np.abs(error))), snr))
    return results


def require_parity(results: list[ParityResult], tolerance: float, what: str) -> None:
    worst = max(results, key=lambda r: r.max_abs_error)
    if not worst.max_abs_error <= tolerance:  # also catches NaN
        raise ParityError(
            f"parity check failed for {what}: max abs error {worst.max_abs_error:.3g} > {tolerance:g} "
            f"on {worst.signal} audio of {worst.length} samples; the ONNX file does not reproduce the Keras model"
        )


def summary(results: list[ParityResult]) -> str:
    return ", ".join(f"{r.signal}@{r.length}: {r.max_abs_error:.2e} ({r.snr_db:.1f} dB)" for r in results)
