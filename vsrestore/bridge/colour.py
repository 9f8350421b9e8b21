"""Colour: reading a clip's colour props and converting YUV to RGB for a network and back.

Conversions go through ``core.resize``. The forward conversion honours every frame's own props
(``_Matrix``, ``_Range``/``_ColorRange``, ``_Transfer``, ``_Primaries``, ``_ChromaLocation``): props
override the ``*_in`` arguments in VapourSynth's resizer, so the arguments only fill in what a frame
lacks. The defaults for missing props are documented on :class:`ColourInfo`. Converting back uses the
colour of the clip's first frame (a clip whose matrix changes mid-stream is converted back with the
first one) and then restores every source prop frame by frame.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import vapoursynth as vs

core = vs.core

MATRIX_RGB, MATRIX_BT709, MATRIX_UNSPECIFIED, MATRIX_BT470BG, MATRIX_ST170M = 0, 1, 2, 5, 6
RANGE_LIMITED, RANGE_FULL = 0, 1  # the `_Range` and resize convention (R81+)
CHROMALOC_LEFT = 0
COLOUR_PROPS = ("_Matrix", "_Range", "_ColorRange", "_Transfer", "_Primaries", "_ChromaLocation")


@dataclass(frozen=True)
class ColourInfo:
    """What the resizer needs to take a clip to RGB and back.

    Defaults when a prop is missing or unspecified:
    - matrix: BT.709 for frames at least 1280 wide or 720 high, else ST 170M (BT.601);
    - range: limited for YUV and GRAY, full for RGB (``_Range``; the deprecated ``_ColorRange``,
      where 0 means full, is read when ``_Range`` is absent);
    - chroma location: left (MPEG-2/H.264 default);
    - transfer and primaries: left as they are (the conversion does not change them).
    """

    matrix: int
    range: int
    chromaloc: int

    @classmethod
    def default_for(cls, clip: vs.VideoNode) -> ColourInfo:
        hd = clip.width >= 1280 or clip.height >= 720
        is_rgb = clip.format.color_family == vs.RGB
        return cls(
            matrix=MATRIX_RGB if is_rgb else (MATRIX_BT709 if hd else MATRIX_ST170M),
            range=RANGE_FULL if is_rgb else RANGE_LIMITED,
            chromaloc=CHROMALOC_LEFT,
        )

    @classmethod
    def from_props(cls, props: vs.FrameProps | dict, fallback: ColourInfo) -> ColourInfo:
        """Colour described by one frame's props, ``fallback`` for what they lack."""
        matrix = int(props.get("_Matrix", MATRIX_UNSPECIFIED))
        if matrix == MATRIX_UNSPECIFIED or matrix == 3:  # 3 is reserved
            matrix = fallback.matrix
        if "_Range" in props:
            rng = int(props["_Range"])
        elif "_ColorRange" in props:
            rng = RANGE_FULL if int(props["_ColorRange"]) == 0 else RANGE_LIMITED
        else:
            rng = fallback.range
        chromaloc = int(props.get("_ChromaLocation", fallback.chromaloc))
        return cls(matrix=matrix, range=rng, chromaloc=chromaloc)


def read_colour(clip: vs.VideoNode) -> ColourInfo:
    """Colour of ``clip`` from its first frame's props, with :class:`ColourInfo` defaults.

    Requesting frame 0 here happens while the graph is built, never inside a frame callback.
    """
    fallback = ColourInfo.default_for(clip)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # reading _ColorRange is deliberate
        props = dict(clip.get_frame(0).props)
    return ColourInfo.from_props(props, fallback)


def to_rgb(clip: vs.VideoNode, rgb_format: int, colour: ColourInfo) -> vs.VideoNode:
    """Convert ``clip`` (YUV or RGB) to the RGB format ``rgb_format``.

    Frame props take priority; ``colour`` fills in what a frame lacks.
    """
    return _resize_rgb(clip, rgb_format, colour, yuv_side="in")


def from_rgb(rgb: vs.VideoNode, out_format: int, colour: ColourInfo) -> vs.VideoNode:
    """Convert an RGB result to ``out_format`` (same family and subsampling as the source)."""
    return _resize_rgb(rgb, out_format, colour, yuv_side="out")


def _resize_rgb(clip: vs.VideoNode, fmt: int, colour: ColourInfo, yuv_side: Literal["in", "out"]) -> vs.VideoNode:
    """``clip`` to ``fmt`` across RGB, ``yuv_side`` being the side that may be YUV: between two RGB
    formats a point resize (``clip`` itself when the format is the same), else a bicubic one with
    ``colour`` as that side's matrix, range and chroma location."""
    yuv_family = (clip.format if yuv_side == "in" else core.get_video_format(fmt)).color_family
    if yuv_family == vs.RGB:
        return clip if clip.format.id == fmt else core.resize.Point(clip, format=fmt)
    suffix = "_in" if yuv_side == "in" else ""
    return core.resize.Bicubic(
        clip,
        format=fmt,
        **{f"matrix{suffix}": colour.matrix, f"range{suffix}": colour.range, f"chromaloc{suffix}": colour.chromaloc},
    )


@dataclass(frozen=True)
class RGBRoundTrip:
    """A clip as an RGB network sees it, and the way back to the source's family.

    For YUV the network reads ``rgb`` (the source in ``rgb_format``) and writes float RGB frames;
    :meth:`back` converts them to ``out_format`` with the source's colour. RGB sources go through
    untouched and the network writes ``out_format`` directly.
    """

    rgb: vs.VideoNode
    work_format: vs.VideoFormat  # what the network's output frames are built in
    out_format: vs.VideoFormat
    colour: ColourInfo | None  # None: the source is RGB

    def back(self, node: vs.VideoNode) -> vs.VideoNode:
        return node if self.colour is None else from_rgb(node, self.out_format.id, self.colour)


def rgb_round_trip(clip: vs.VideoNode, rgb_format: int, out_format: vs.VideoFormat) -> RGBRoundTrip:
    """Plan the RGB round trip of ``clip`` (YUV or RGB) for a network: ``rgb_format`` is what it
    reads from a YUV source, ``out_format`` (same family as ``clip``) what the filter returns."""
    if clip.format.color_family != vs.YUV:
        return RGBRoundTrip(clip, out_format, out_format, None)
    colour = read_colour(clip)
    return RGBRoundTrip(to_rgb(clip, rgb_format, colour), core.get_video_format(vs.RGBS), out_format, colour)
