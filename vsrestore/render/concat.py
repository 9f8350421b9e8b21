"""Lossless concatenation of segments into one Matroska file (PyAV remux, no re-encoding).

Every packet is restamped from its frame number: segment k's frames follow the frames of the
segments before it, so timestamps run on without gaps or overlaps, exactly ``n / fps`` for frame n
(rounded once, by the muxer, to Matroska's millisecond clock), whatever rounding each segment had.
"""
from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path


def _signature(stream: object) -> tuple[object, ...]:
    """What must be equal for segments to share one track: codec, size, format, global headers."""
    cc = stream.codec_context  # type: ignore[attr-defined]
    return (cc.name, cc.width, cc.height, cc.pix_fmt, bytes(cc.extradata or b""), cc.colorspace,
            cc.color_range, cc.color_primaries, cc.color_trc)


def _frame_numbers(path: Path, frame_tb: Fraction) -> tuple[tuple[object, ...], list[int]]:
    """A segment's signature and, in decode order, the frame number of each packet (from 0)."""
    import av

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        signature = _signature(stream)
        seg_tb = stream.time_base
        # The segment's own stamps were rounded to milliseconds: rounding back to frames is exact.
        stamps = [round(p.pts * seg_tb / frame_tb) for p in src.demux(stream) if p.size and p.pts is not None]
    first = min(stamps, default=0)  # a muxer may have shifted the segment to start after 0
    return signature, [t - first for t in stamps]


def concat_segments(segments: Sequence[Path], output: Path, fps: Fraction, frames: Sequence[int]) -> int:
    """Remux ``segments`` (each holding ``frames[k]`` frames) into ``output``; returns the frame count.

    Segments whose codec parameters differ (size, pixel format, colour description, the encoder's
    global headers) cannot share one track: a ValueError names the first that differs, as it does a
    segment whose packets are not exactly its frames 0..n-1. The frame rate ``fps`` becomes the
    track's default duration.

    Decode timestamps: Matroska stores none (the demuxer guesses them, or gives none, for
    reordered B-frames), so packet i of a segment gets ``offset + i - D``, D being the largest
    reorder delay of any segment: strictly increasing across segment joins and never after its pts.
    """
    import av

    if not segments:
        raise ValueError("no segments to concatenate")
    frame_tb = Fraction(fps.denominator, fps.numerator)  # one tick per frame
    scanned = []
    for path, count in zip(segments, frames, strict=True):
        signature, numbers = _frame_numbers(path, frame_tb)
        if sorted(numbers) != list(range(count)):
            raise ValueError(f"segment {Path(path).name} holds {len(numbers)} frames numbered "
                             f"{min(numbers, default=0)}..{max(numbers, default=-1)}, expected 0..{count - 1}")
        if scanned and signature != scanned[0][0]:
            raise ValueError(f"segment {Path(path).name} was encoded differently from the first segment "
                             f"(codec, size, format, colour description or encoder headers); "
                             f"did the output's colour props change mid-clip?")
        scanned.append((signature, numbers))
    delay = max(max(i - t for i, t in enumerate(numbers)) for _, numbers in scanned)
    offset = 0
    with av.open(str(output), "w", format="matroska") as dst:
        out_stream = None
        for path, (_, numbers) in zip(segments, scanned):
            with av.open(str(path)) as src:
                stream = src.streams.video[0]
                if out_stream is None:
                    out_stream = dst.add_stream_from_template(stream)
                    out_stream.codec_context.framerate = fps
                packets = (p for p in src.demux(stream) if p.size and p.pts is not None)
                for i, (packet, number) in enumerate(zip(packets, numbers, strict=True)):
                    packet.stream = out_stream
                    packet.time_base = frame_tb
                    packet.pts, packet.dts, packet.duration = offset + number, offset + i - delay, 1
                    dst.mux(packet)
            offset += len(numbers)
    return offset


def count_packets(path: Path) -> int:
    """Video packets in a file (each encoded frame is one packet): a cheap check of the final file."""
    import av

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        return sum(1 for p in src.demux(stream) if p.size)
