"""The sliding-window engine: edges, scene cuts, streams, request order, threads, props."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import vapoursynth as vs

from standins import assert_same_bytes_in_any_order, frame_bytes, frame_value, index_clip
from vsrestore import scene_changes
from vsrestore.bridge import SlidingWindow, copy_props, frames_to_tensor, shift, tensor_to_frame, windowed_node

core = vs.core


def window_standin(clip: vs.VideoNode, radius: int, num_streams: int = 1) -> vs.VideoNode:
    """A stand-in 'network' that writes its window's source frame numbers into row 0 of its output.

    It reads the frames through the bridge (frames_to_tensor), so the numbers it writes are what the
    window really held, not what the window claims.
    """
    window = SlidingWindow(clip, radius)
    template = core.std.BlankClip(clip, format=vs.GRAY16, width=2 * radius + 1, height=2, keep=True)

    def render(n: int, frames, out: vs.VideoFrame) -> None:
        win = window.resolve(n, frames)
        x = frames_to_tensor(win.frames, planes=[0], scale=1.0)  # (T, 1, H, W) stored values
        seen = x[:, 0, 0, 0]
        assert seen.tolist() == list(win.indices)
        result = torch.stack([seen, seen]).unsqueeze(0) / 65535.0  # (1, 2, T)
        tensor_to_frame(result, out)
        copy_props(win.centre, out)

    return windowed_node(template, window.clips(), render, num_streams=num_streams)


def windows_of(node: vs.VideoNode) -> list[list[int]]:
    return [np.asarray(f[0])[0].tolist() for f in node.frames()]


def test_shift_clamps_at_both_edges():
    clip = index_clip(5)
    assert [frame_value(f) for f in shift(clip, 2).frames()] == [2, 3, 4, 4, 4]
    assert [frame_value(f) for f in shift(clip, -3).frames()] == [0, 0, 0, 0, 1]
    assert [frame_value(f) for f in shift(clip, 9).frames()] == [4] * 5
    assert [frame_value(f) for f in shift(clip, -9).frames()] == [0] * 5


def test_windows_clamp_at_clip_edges():
    got = windows_of(window_standin(index_clip(7), radius=2))
    assert got == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
        [0, 1, 2, 3, 4],
        [1, 2, 3, 4, 5],
        [2, 3, 4, 5, 6],
        [3, 4, 5, 6, 6],
        [4, 5, 6, 6, 6],
    ]


@pytest.mark.parametrize("flag", ["next", "prev"])
def test_windows_never_cross_scene_cuts(flag):
    # Scenes: 0-2 | 3 | 4-8
    got = windows_of(window_standin(index_clip(9, cuts={2, 3}, flag=flag), radius=2))
    assert got == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 2],
        [0, 1, 2, 2, 2],
        [3, 3, 3, 3, 3],
        [4, 4, 4, 5, 6],
        [4, 4, 5, 6, 7],
        [4, 5, 6, 7, 8],
        [5, 6, 7, 8, 8],
        [6, 7, 8, 8, 8],
    ]


def test_short_clip_windows_repeat_the_only_frames():
    assert windows_of(window_standin(index_clip(2), radius=3)) == [
        [0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1],
    ]


def test_scene_changes_marks_hard_cuts_only():
    # Frames 0-3 dark with a slow ramp, 4-7 bright: one cut between 3 and 4.
    values = [1000, 1100, 1200, 1300, 50000, 50100, 50200, 50300]
    blank = core.std.BlankClip(format=vs.YUV420P16, width=32, height=32, length=len(values))

    def fill(n, f):
        out = f.copy()
        np.asarray(out[0]).fill(values[n])
        return out

    marked = scene_changes(core.std.ModifyFrame(blank, blank, fill), threshold=0.1)
    props = [(f.props["_SceneChangePrev"], f.props["_SceneChangeNext"]) for f in marked.frames()]
    assert props == [(0, 0), (0, 0), (0, 0), (0, 1), (1, 0), (0, 0), (0, 0), (0, 0)]


@pytest.mark.parametrize("threshold", [0, 1, -0.5, "x"])
def test_scene_changes_rejects_bad_threshold(threshold):
    with pytest.raises(vs.Error, match="vsrestore.scene_changes: threshold"):
        scene_changes(index_clip(3), threshold=threshold)


def test_streams_request_order_and_threads_give_identical_bytes():
    clip = index_clip(23, cuts={9})
    reference = [frame_bytes(f) for f in window_standin(clip, 3).frames()]
    for streams in (2, 3):
        node = window_standin(clip, 3, num_streams=streams)
        assert node.num_frames == 23
        assert_same_bytes_in_any_order(node, reference, seed=streams)


def test_output_keeps_length_rate_and_props():
    clip = index_clip(6, cuts={2})
    node = window_standin(clip, 1, num_streams=2)
    assert node.num_frames == 6
    assert node.fps.numerator == 24000 and node.fps.denominator == 1001
    for n, f in enumerate(node.frames()):
        src = dict(clip.get_frame(n).props)
        assert dict(f.props) == src
        assert (f.props["_DurationNum"], f.props["_DurationDen"]) == (1001, 24000)


@pytest.mark.parametrize("streams", [0, -1, 1.5, True])
def test_num_streams_must_be_a_positive_integer(streams):
    clip = index_clip(3)
    with pytest.raises(ValueError, match="num_streams"):
        windowed_node(clip, [clip], lambda n, f, o: None, num_streams=streams)
