"""Readers of vsrestore.training.data on synthetic files written here, and on shared material."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import shared_path
from vsrestore.training import data
from vsrestore.evaluation.metrics import psnr


def smooth_rgb(h: int = 48, w: int = 64, t: int = 1, seed: int = 0) -> np.ndarray:
    """(t, h, w, 3) uint8 of slowly varying colours (about 5 levels a pixel at most)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    frames = []
    for _ in range(t):
        phase = rng.uniform(0, 2 * np.pi, 3)
        rgb = [0.5 + 0.4 * np.sin(3 * xx + 2 * yy + p) for p in phase]
        frames.append(np.rint(np.stack(rgb, -1) * 255).astype(np.uint8))
    return np.stack(frames)


# --------------------------------------------------------------------------------------------------
# PNG


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip_is_exact(tmp_path: Path, dtype) -> None:
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(1)
    image = rng.integers(0, top, (48, 64, 3), dtype=dtype, endpoint=True)
    image[0, 0], image[0, 1] = 0, top
    data.write_image(tmp_path / "a%d.png", image)  # '%' must not be taken for a pattern
    back = data.read_image(tmp_path / "a%d.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)


def test_write_image_rejects_other_dtypes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        data.write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        data.write_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))


def test_natural_sort_key() -> None:
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame2b.png", "a.png"]
    assert sorted(names, key=data.natural_sort_key) == [
        "a.png", "Frame1.png", "frame2.png", "frame2b.png", "frame10.png"
    ]


def test_read_frame_folder_uses_natural_order(tmp_path: Path) -> None:
    for n in (10, 2, 1):
        data.write_image(tmp_path / f"frame{n}.png", np.full((6, 8, 3), n, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    frames = data.read_frame_folder(tmp_path)
    assert frames.shape == (3, 6, 8, 3)
    assert list(frames[:, 0, 0, 0]) == [1, 2, 10]
    with pytest.raises(FileNotFoundError):
        data.read_frame_folder(tmp_path, pattern="*.jpg")


def test_vimeo_septuplet_discovery(tmp_path: Path) -> None:
    seq = tmp_path / "sequences"
    for clip, part, count in [("00002", "0010", 7), ("00002", "0002", 7), ("00001", "0001", 7),
                              ("00001", "0003", 3)]:  # the last one is incomplete
        folder = seq / clip / part
        folder.mkdir(parents=True)
        for i in range(1, count + 1):
            data.write_image(folder / f"im{i}.png", np.full((4, 6, 3), i, np.uint8))
    expected = [seq / "00001" / "0001", seq / "00002" / "0002", seq / "00002" / "0010"]
    assert data.vimeo_septuplets(tmp_path) == expected
    assert data.vimeo_septuplets(seq) == expected
    frames = data.read_septuplet(expected[0])
    assert frames.shape == (7, 4, 6, 3) and frames.dtype == np.uint8
    assert list(frames[:, 0, 0, 0]) == list(range(1, 8))


# --------------------------------------------------------------------------------------------------
# raw YUV


def write_raw(path: Path, planes: list[np.ndarray], dtype: str) -> None:
    t = len(planes[0])
    path.write_bytes(b"".join(p[i].astype(dtype).tobytes() for i in range(t) for p in planes))


@pytest.mark.parametrize(
    ("bits", "chroma", "w", "h", "cw", "ch"),
    [
        (8, "420", 8, 6, 4, 3),
        (8, "420", 5, 3, 3, 2),  # odd sizes: chroma rounded up
        (10, "420", 8, 6, 4, 3),
        (12, "422", 8, 6, 4, 6),
        (8, "444", 4, 2, 4, 2),
    ],
)
def test_read_raw_yuv_is_exact(tmp_path: Path, bits, chroma, w, h, cw, ch) -> None:
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    planes = [rng.integers(0, top, s, endpoint=True) for s in [(3, h, w), (3, ch, cw), (3, ch, cw)]]
    write_raw(tmp_path / "clip.yuv", planes, "u1" if bits == 8 else "<u2")
    got = data.read_raw_yuv(tmp_path / "clip.yuv", w, h, bits=bits, chroma=chroma)
    for g, p in zip(got, planes):
        assert g.dtype == (np.uint8 if bits == 8 else np.uint16)
        np.testing.assert_array_equal(g, p)


def test_read_raw_yuv_rejects_partial_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.i420"
    path.write_bytes(bytes(8 * 6 * 3 // 2 * 2 + 5))
    with pytest.raises(ValueError, match="72 bytes each"):
        data.read_raw_yuv(path, 8, 6)
    with pytest.raises(ValueError, match="144 bytes each"):
        data.read_raw_yuv(path, 8, 6, bits=10)


# --------------------------------------------------------------------------------------------------
# videos


def write_mp4(path: Path, rgb: np.ndarray, fps: Fraction, pix_fmt: str = "yuv420p") -> None:
    """Encode RGB frames near-losslessly (BT.601 limited, as read_video assumes at this size)."""
    with av.open(str(path), "w") as container:
        codec = "libx264" if pix_fmt == "yuv420p" else "libx265"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], pix_fmt
        key = "x264-params" if codec == "libx264" else "x265-params"
        # one x265 thread pool-less, as training's encodes run: PyAV's libx265 failed now and then on
        # tiny 10-bit frames ("Not yet implemented in FFmpeg") with its default threading
        params = "qp=4:log-level=error:pools=none:frame-threads=1" if codec == "libx265" else "qp=4"
        stream.options = {"preset": "ultrafast", key: params}
        bits = 8 if pix_fmt == "yuv420p" else 10
        for i, frame_rgb in enumerate(rgb):
            y, u, v = data.rgb_to_yuv420(frame_rgb, bits=bits)
            frame = av.VideoFrame(rgb.shape[2], rgb.shape[1], pix_fmt)
            for plane, arr in zip(frame.planes, (y, u, v)):
                row = plane.line_size // arr.itemsize
                padded = np.zeros((arr.shape[0], row), arr.dtype)
                padded[:, : arr.shape[1]] = arr
                plane.update(padded.astype(arr.dtype.newbyteorder("<")).tobytes())
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_mp4_read_back(tmp_path: Path) -> None:
    rgb = smooth_rgb(48, 64, t=5)
    path = tmp_path / "clip.mp4"
    fps = Fraction(30000, 1001)
    write_mp4(path, rgb, fps)
    video = data.read_video(path)
    assert video.frames.shape == (5, 48, 64, 3) and video.frames.dtype == np.uint8
    assert video.fps == fps and video.bits == 8
    assert psnr(video.frames, rgb, 255) > 38  # near-lossless coding plus 4:2:0 chroma
    assert len(data.read_video(path, max_frames=2).frames) == 2
    planes = data.read_video_yuv(path)
    assert len(planes) == 5
    assert [p.shape for p in planes[0]] == [(48, 64), (24, 32), (24, 32)]
    stacked = data.stack_yuv(planes)
    assert stacked.y.shape == (5, 48, 64) and stacked.u.shape == (5, 24, 32)
    assert psnr(stacked.y, data.rgb_to_yuv420(rgb).y, 255) > 45


def test_10bit_video_reads_as_uint16(tmp_path: Path) -> None:
    rgb = smooth_rgb(96, 128, t=2)  # not tiny: see write_mp4
    # Matroska: PyAV's mp4 muxer now and then refused this HEVC stream at the final flush (a CI failure)
    path = tmp_path / "clip10.mkv"
    write_mp4(path, rgb, Fraction(25), pix_fmt="yuv420p10le")
    video = data.read_video(path)
    assert video.bits == 10 and video.frames.dtype == np.uint16
    assert psnr(video.frames / 65535, rgb / 255, 1.0) > 38
    y, u, v = data.read_video_yuv(path)[0]
    assert y.dtype == np.uint16 and 255 < y.max() <= 1023 and u.shape == (48, 64)


# --------------------------------------------------------------------------------------------------
# YUV <-> RGB


def test_rgb_to_yuv420_known_values() -> None:
    white, black, red, green, blue = [255] * 3, [0] * 3, [255, 0, 0], [0, 255, 0], [0, 0, 255]
    colours = np.array([white, black, red, green, blue], np.uint8)
    image = np.repeat(np.repeat(colours[:, None, None, :], 2, axis=1), 2, axis=2)  # (5, 2, 2, 3)
    y, u, v = data.rgb_to_yuv420(image)
    # BT.601 limited range: Y = 16 + 219 E'y, Cb/Cr = 128 + 224 E'c
    assert y[:, 0, 0].tolist() == [235, 16, 81, 145, 41]
    assert u[:, 0, 0].tolist() == [128, 128, 90, 54, 240]
    assert v[:, 0, 0].tolist() == [128, 128, 240, 34, 110]
    y10, u10, _ = data.rgb_to_yuv420(image[:1], bits=10)
    assert (y10.max(), u10.max(), y10.dtype) == (940, 512, np.uint16)
    yf, uf, _ = data.rgb_to_yuv420(image[:2], full_range=True)
    assert yf[:, 0, 0].tolist() == [255, 0] and uf[:, 0, 0].tolist() == [128, 128]
    with pytest.raises(ValueError):
        data.rgb_to_yuv420(np.zeros((3, 4, 3), np.uint8))


def test_grey_luma_survives_yuv_rgb_yuv_exactly() -> None:
    y = np.arange(16, 236, dtype=np.uint8)[:216].reshape(12, 18)
    c = np.full((6, 9), 128, np.uint8)
    for matrix in ("601", "709"):
        rgb = data.yuv420_to_rgb(y, c, c, matrix=matrix)
        back = data.rgb_to_yuv420(rgb, matrix=matrix)
        np.testing.assert_array_equal(back.y, y)
        np.testing.assert_array_equal(back.u, c)


@pytest.mark.parametrize("matrix", ["601", "709"])
def test_rgb_yuv_rgb_round_trip(matrix: str) -> None:
    # flat colours lose only quantisation: < 2/255 per channel
    flat = np.broadcast_to(np.array([200, 60, 30], np.uint8), (4, 6, 3))
    back = data.yuv420_to_rgb(*data.rgb_to_yuv420(flat, matrix=matrix), matrix=matrix)
    assert np.abs(back * 255 - flat).max() < 2.0
    # smooth gradients (about 5 levels a pixel) also lose chroma resolution: < 2.5/255 inside,
    # < 6/255 on the outermost pixels where the replicated chroma border flattens the gradient
    rgb = smooth_rgb(48, 64, t=2)
    back = data.yuv420_to_rgb(*data.rgb_to_yuv420(rgb, matrix=matrix), matrix=matrix)
    assert back.shape == rgb.shape and back.dtype == np.float32
    error = np.abs(back * 255 - rgb)
    assert error[:, 1:-1, 1:-1].max() < 2.5 and error.max() < 6.0
    assert psnr(back * 255, rgb, 255) > 50


def test_chroma_upsampling_is_centre_sited_bilinear() -> None:
    y = np.full((2, 4), 126, np.uint8)
    flat = np.full((1, 2), 128, np.uint8)
    step = np.array([[128, 160]], np.uint8)  # Cr differs between the two chroma samples
    red = data.yuv420_to_rgb(y, flat, step)[0, :, 0] - data.yuv420_to_rgb(y, flat, flat)[0, :, 0]
    # share of the second chroma sample at luma x = 0..3 (left border replicated)
    np.testing.assert_allclose(red / red[-1], [0.0, 0.25, 0.75, 1.0], atol=1e-6)


# --------------------------------------------------------------------------------------------------
# the shared material (skipped when absent)


def test_shared_raw_clips() -> None:
    cars = data.read_raw_yuv(shared_path("data", "clips", "cars_320x240_30f.i420"), 320, 240)
    assert cars.y.shape == (30, 240, 320) and cars.u.shape == (30, 120, 160)
    sparks = data.read_raw_yuv(
        shared_path("data", "clips", "sparks_480x270_5f_yuv420p10le.yuv"), 480, 270, bits=10
    )
    assert sparks.y.shape == (5, 270, 480) and sparks.u.shape == (5, 135, 240)
    assert 255 < sparks.y.max() <= 1023


def test_shared_images_and_video() -> None:
    folders = data.vimeo_septuplets(shared_path("data", "vimeo_septuplet"))
    assert len(folders) == 16
    assert data.read_septuplet(folders[0]).shape == (7, 256, 448, 3)
    sintel = data.read_frame_folder(shared_path("data", "sintel16"))
    assert sintel.shape == (5, 436, 1024, 3) and sintel.dtype == np.uint16
    video = data.read_video(shared_path("data", "clips", "carphone_pristine.mp4"), max_frames=3)
    assert video.frames.shape == (3, 144, 176, 3) and video.fps == Fraction(30000, 1001)


def test_a_still_image_becomes_a_panning_clip(tmp_path: Path) -> None:
    from vsrestore.training.sources import load_sources, pan_clip

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    clip = pan_clip(image, frames=12, seed=7)
    assert clip.dtype == np.uint8 and clip.shape[0] == 12 and clip.shape[3] == 3
    assert np.array_equal(clip, pan_clip(image, frames=12, seed=7))  # the seed fixes the path
    # every frame is a 2x2 area average of the image at some whole-pixel offset (half a pixel at
    # output size); the camera moves, so no two neighbouring frames are equal
    h, w = clip.shape[1:3]
    offsets = []
    for frame in clip:
        found = [(y, x) for y in range(240 - 2 * h + 1) for x in range(320 - 2 * w + 1)
                 if np.array_equal(frame[:2, :2], np.rint(
                     image[y : y + 4, x : x + 4].astype(np.float32).reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))))]
        assert found, "a frame that is no 2x2 average of the image"
        offsets.append(found[0])
    assert all(a != b for a, b in zip(offsets, offsets[1:]))
    pan_16 = pan_clip(image.astype(np.uint16) * 257, frames=4, seed=1)
    assert pan_16.dtype == np.uint16
    with pytest.raises(ValueError, match="too small"):
        pan_clip(image[:60, :60], frames=12, seed=7)

    data.write_image(tmp_path / "still.png", image)
    (source,) = load_sources([tmp_path / "still.png"], max_frames=6)
    assert source.name == "still_pan" and source.frames.shape[0] == 6


def test_a_still_panned_like_video_sways_carries_an_object_and_noise(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    from scipy import ndimage

    from vsrestore.training.sources import load_sources, video_pan_clip

    rng = np.random.default_rng(5)
    smooth = ndimage.gaussian_filter(rng.normal(size=(240, 320, 3)), (2, 2, 0))
    image = np.clip(128 + smooth / smooth.std() * 40, 0, 255).astype(np.uint8)

    clip = video_pan_clip(image, frames=8, seed=2)
    assert clip.dtype == np.uint8 and clip.shape[0] == 8 and clip.shape[3] == 3
    assert np.array_equal(clip, video_pan_clip(image, frames=8, seed=2))  # the seed fixes everything
    assert video_pan_clip(image.astype(np.uint16) * 257, frames=2, seed=2).dtype == np.uint16

    # the noise draws its own numbers: without it the motion is the same, so the difference is
    # the noise alone, zero-mean, at most 2 codes, and fresh in every frame
    quiet = video_pan_clip(image, frames=8, seed=2, noise=0)
    grain = clip.astype(np.float32) - quiet
    assert abs(grain.mean()) < 0.05 and 0.2 < grain.std() < 2.1
    assert not np.array_equal(grain[0], grain[1])

    # without the object and the noise, the motion is still not rigid: the four quarters of a
    # frame move by different amounts (phase correlation to 1/20 pixel); with sway=0 they do not
    from skimage.registration import phase_cross_correlation

    def spread_of_quarter_shifts(sway: float) -> float:
        clip = video_pan_clip(image, frames=12, seed=2, sway=sway, objects=0, noise=0).astype(np.float32).mean(-1)
        h, w = clip.shape[1] // 2, clip.shape[2] // 2
        spreads = []
        for t in range(1, 12):
            shifts = np.array([phase_cross_correlation(clip[0, y : y + h, x : x + w], clip[t, y : y + h, x : x + w],
                                                       upsample_factor=20)[0] for y in (0, h) for x in (0, w)])
            spreads.append(float((shifts.max(0) - shifts.min(0)).max()))
        return max(spreads)

    assert spread_of_quarter_shifts(0) <= 0.3 and spread_of_quarter_shifts(1.5) >= 0.5

    # an object crosses: with it, some pixels differ from the same clip without it
    assert np.abs(video_pan_clip(image, frames=2, seed=2, noise=0).astype(int) - video_pan_clip(
        image, frames=2, seed=2, objects=0, noise=0)).max() > 20
    with pytest.raises(ValueError, match="too small"):
        video_pan_clip(image[:60, :60], frames=12, seed=7)

    data.write_image(tmp_path / "still.png", image)
    (source,) = load_sources([tmp_path / "still.png"], max_frames=6, pan_motion="video")
    assert source.name == "still_pan" and source.frames.shape[0] == 6
    assert not np.array_equal(source.frames, load_sources([tmp_path / "still.png"], max_frames=6)[0].frames)
    with pytest.raises(ValueError, match="pan_motion must be"):
        load_sources([tmp_path / "still.png"], pan_motion="wobbly")  # type: ignore[arg-type]
