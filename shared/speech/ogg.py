"""OGG/Opus: reading a file's duration (pure Python), and encoding audio to it with PyAV.

PyAV's wheel bundles FFmpeg's libraries with libopus, so the encoder runs in a function package
without a system ffmpeg; it is imported only when audio has to be encoded (the OpenAI backend
receives OGG/Opus ready-made and never needs it).
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING, Any

from shared.speech.exceptions import SpeechUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterable

OPUS_RATE = 48_000  # Opus granule positions count 48 kHz samples, whatever the input's rate
_PAGE = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, segs


def pages(data: bytes) -> list[tuple[int, bytes]]:
    """The pages of an OGG stream as (granule position, payload); a ValueError if ``data`` is
    not one (a page header out of place, a page cut short)."""
    found: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _PAGE.size:
            raise ValueError("an OGG page header cut short")
        capture, version, _, granule, _, _, _, segments = _PAGE.unpack_from(data, offset)
        if capture != b"OggS" or version != 0:
            raise ValueError("not an OGG page")
        start = offset + _PAGE.size + segments
        size = sum(data[offset + _PAGE.size : start])
        if start + size > len(data):
            raise ValueError("an OGG page cut short")
        found.append((granule, data[start : start + size]))
        offset = start + size
    if not found:
        raise ValueError("no OGG page")
    return found


def opus_duration(data: bytes) -> float:
    """Seconds of audio in an OGG/Opus file: the last granule position less the header's
    pre-skip, in 48 kHz samples (RFC 7845); a ValueError if it is not OGG/Opus."""
    found = pages(data)
    head = found[0][1]
    if not head.startswith(b"OpusHead") or len(head) < 19:
        raise ValueError("no OpusHead header: not an Opus stream")
    pre_skip: int = struct.unpack_from("<H", head, 10)[0]
    return max(found[-1][0] - pre_skip, 0) / OPUS_RATE


def opus_from_pcm(pcm: bytes, rate: int) -> bytes:
    """Mono signed 16-bit little-endian PCM at ``rate`` Hz as an OGG/Opus file."""
    av = _av()
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm[: len(pcm) // 2 * 2])
    frame.sample_rate = rate
    return _encode(av, [frame])


def opus_from_file(data: bytes) -> bytes:
    """An audio file FFmpeg reads (WAV...) as an OGG/Opus file."""
    av = _av()
    try:
        with av.open(io.BytesIO(data)) as source:
            return _encode(av, list(source.decode(audio=0)))
    except av.FFmpegError as error:
        raise SpeechUnavailableError(f"cannot encode the audio ({type(error).__name__})") from None


def _encode(av: Any, frames: Iterable[Any]) -> bytes:
    try:
        return _encode_frames(av, frames)
    except av.FFmpegError as error:
        raise SpeechUnavailableError(f"cannot encode the audio ({type(error).__name__})") from None


def _encode_frames(av: Any, frames: Iterable[Any]) -> bytes:
    out = io.BytesIO()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE, layout="mono")
        stream.bit_rate = 32_000  # speech: small enough for a phone on a slow network
        for frame in frames:
            for resampled in resampler.resample(frame):
                container.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            container.mux(stream.encode(resampled))
        container.mux(stream.encode(None))
    return out.getvalue()


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise SpeechUnavailableError(
            "encoding OGG/Opus needs PyAV: pip install av (its wheel bundles libopus)"
        ) from None
    return av
