"""What each encoder takes: VapourSynth formats as FFmpeg pixel formats, depth checks, colour tags.

Nothing here renders or encodes; :mod:`.segment` uses it in the workers and :mod:`.job` in the
driver, so a format an encoder cannot take is refused before any frame is rendered.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import vapoursynth as vs

from .choices import Codec, Dither

CODECS: dict[str, str] = {"x265": "libx265", "x264": "libx264", "ffv1": "ffv1"}

# (VapourSynth subsampling w, h) -> FFmpeg's name for the chroma layout
_SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (2, 0): "411", (2, 2): "410", (0, 1): "440"}
_CHROMA_NAMES = {"420": "4:2:0", "422": "4:2:2", "444": "4:4:4", "411": "4:1:1", "410": "4:1:0", "440": "4:4:0"}
_DEPTHS = (8, 9, 10, 12, 14, 16)


@dataclass(frozen=True)
class EncoderSettings:
    """How a segment is encoded; every worker gets the same settings (segments must match to concatenate)."""

    codec: Codec = "x265"
    crf: int | None = None
    qp: int | None = None
    preset: str | None = None
    params: str = ""
    depth: int | None = None  # convert the output to this integer depth first (dithered)
    dither: Dither = "error_diffusion"

    def options(self) -> dict[str, str]:
        """The encoder's private options (PyAV ``options=``)."""
        if self.codec == "ffv1":
            # Level 3: per-slice CRCs (a damaged segment is detected) and multi-threaded slices.
            return {"level": "3", "slicecrc": "1"}
        options = {"preset": self.preset or "medium"}
        if self.qp is not None:
            options["qp"] = str(self.qp)
        elif self.crf is not None:
            options["crf"] = str(self.crf)
        if self.codec == "x265":
            options["x265-params"] = ":".join(filter(None, ["log-level=error", self.params]))
        elif self.params:
            options["x264-params"] = self.params
        return options


def pix_fmt_name(family: int, sample_type: int, bits: int, ssw: int, ssh: int, codec: Codec) -> str | None:
    """FFmpeg's pixel format for a VapourSynth format, or None when FFmpeg has none for it.

    RGB is planar G, B, R in FFmpeg (``gbrp``); FFV1 takes 8-bit RGB only packed (``bgr0``), which
    the frame copy handles. Float has none here: FFmpeg's float FFV1 is experimental, and no
    encoder of the three takes float YUV (``--depth`` converts).
    """
    if sample_type == vs.FLOAT:
        return None
    suffix = "" if bits == 8 else f"{bits}le"
    if family == vs.GRAY:
        return f"gray{suffix}"
    if family == vs.RGB:
        return "bgr0" if bits == 8 and codec == "ffv1" else f"gbrp{suffix}"
    if family == vs.YUV and (ssw, ssh) in _SUBSAMPLING:
        return f"yuv{_SUBSAMPLING[ssw, ssh]}p{suffix}"
    return None


@cache
def encoder_formats(codec: Codec) -> frozenset[str]:
    """Pixel formats the bundled encoder accepts."""
    import av

    return frozenset(f.name for f in av.codec.Codec(CODECS[codec], "w").video_formats or ())


def _describe(fmt: vs.VideoFormat) -> str:
    family = {vs.YUV: "YUV", vs.RGB: "RGB", vs.GRAY: "GRAY"}.get(fmt.color_family, fmt.name)
    if fmt.color_family == vs.YUV:
        family += " " + _CHROMA_NAMES.get(_SUBSAMPLING.get((fmt.subsampling_w, fmt.subsampling_h), ""), "?")
    return family


def target_format(fmt: vs.VideoFormat, settings: EncoderSettings) -> vs.VideoFormat:
    """The format the segments hold: ``fmt``, or ``fmt`` at ``settings.depth`` (integer) when given."""
    if settings.depth is None:
        return fmt
    return fmt.replace(sample_type=vs.INTEGER, bits_per_sample=settings.depth)


def check_encodable(fmt: vs.VideoFormat | None, settings: EncoderSettings) -> str:
    """The pixel format the encoder gets for clips of ``fmt``; a ValueError says what it takes instead.

    Refused: variable formats, YUV or GRAY float (FFmpeg has no such pixel format), and depths or
    layouts the encoder cannot take (16-bit into x265, RGB into x264); the message lists the depths
    it takes for the clip's family and suggests ``--depth``, which converts with dithering.
    """
    if fmt is None or fmt.id == vs.NONE:
        raise ValueError("the output has a variable format; render needs a constant one")
    if fmt.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
        raise ValueError(f"the output format {fmt.name} is not YUV, RGB or GRAY")
    target = target_format(fmt, settings)
    name = pix_fmt_name(target.color_family, target.sample_type, target.bits_per_sample,
                        target.subsampling_w, target.subsampling_h, settings.codec)
    taken = encoder_formats(settings.codec)
    if name is not None and name in taken:
        return name
    depths = [
        d for d in _DEPTHS
        if pix_fmt_name(target.color_family, vs.INTEGER, d, target.subsampling_w, target.subsampling_h,
                        settings.codec) in taken
    ]
    what = f"{_describe(target)} {'float' if target.sample_type == vs.FLOAT else f'{target.bits_per_sample}-bit'}"
    if not depths:
        raise ValueError(f"{settings.codec} cannot take {_describe(target)} at any depth (the output is "
                         f"{fmt.name}); convert it in the script")
    listed = ", ".join(map(str, depths[:-1])) + (" or " if len(depths) > 1 else "") + str(depths[-1])
    hint = "" if settings.depth is not None else f"; pass --depth {depths[-1]} to convert with dithering"
    raise ValueError(f"{settings.codec} takes {_describe(target)} at {listed} bits, not {what} "
                     f"(the output is {fmt.name}){hint}")


# --------------------------------------------------------------------------------------------------
# colour description: VapourSynth frame props -> FFmpeg's codec context fields


@dataclass(frozen=True)
class ColourTags:
    """The colour description written into the stream (FFmpeg's enum values; 2 is unspecified)."""

    colorspace: int = 2  # matrix coefficients (H.273, same numbers as _Matrix)
    color_trc: int = 2  # transfer characteristics (H.273)
    color_primaries: int = 2  # colour primaries (H.273)
    color_range: int = 0  # 0 unspecified, 1 limited (MPEG), 2 full (JPEG)
    chroma_location: int = 0  # 0 unspecified, 1 left, 2 center, 3 top-left, 4 top, 5 bottom-left, 6 bottom

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def colour_tags(props: vs.FrameProps | dict, family: int) -> ColourTags:
    """The colour description of a frame's props.

    ``_Matrix``, ``_Transfer`` and ``_Primaries`` use the H.273 numbers FFmpeg uses too; ``_Range``
    (R81+: 0 limited, 1 full; the deprecated ``_ColorRange`` has 0 full) becomes FFmpeg's range, and
    ``_ChromaLocation`` (0 left .. 5 bottom) FFmpeg's chroma location (1 left .. 6 bottom). A prop
    that is missing or out of range stays unspecified, except the matrix of RGB, which is RGB.
    """
    def code(key: str, valid: range) -> int | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # reading _ColorRange is deliberate
            value = props.get(key)
        return int(value) if isinstance(value, int) and int(value) in valid else None

    matrix = code("_Matrix", range(0, 15))
    if family == vs.RGB:
        matrix = 0  # GBR: H.273 matrix 0 whatever the props say
    rng = code("_Range", range(0, 2))
    if rng is not None:
        av_range = 2 if rng == 1 else 1
    else:
        legacy = code("_ColorRange", range(0, 2))
        av_range = 0 if legacy is None else (2 if legacy == 0 else 1)
    loc = code("_ChromaLocation", range(0, 6))
    return ColourTags(
        colorspace=2 if matrix is None else matrix,
        color_trc=code("_Transfer", range(0, 19)) or 2,
        color_primaries=code("_Primaries", range(0, 23)) or 2,
        color_range=av_range,
        chroma_location=0 if loc is None or family != vs.YUV else loc + 1,
    )
