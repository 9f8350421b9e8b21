"""Multi-output windows (7 frames from 4, stride 3; 5 from 3): layout, cuts, caching, rates, durations."""
from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
import vapoursynth as vs

from standins import assert_same_bytes_in_any_order, frame_bytes, index_clip
from vsrestore.bridge import BoundedCache, frames_to_tensor, tensor_to_frame
from vsrestore.bridge.spacetime import SpaceTimeWindows, doubled_rate_template, look_around, spacetime_node

core = vs.core


class Standin:
    """A '2W-1 from W' network (7 from 4 by default): output p of a window holds the window's
    source frames and p."""

    def __init__(self, window: int = 4) -> None:
        self.window = window
        self.calls: list[tuple[int, ...]] = []
        self.lock = threading.Lock()

    def infer(self, win) -> torch.Tensor:
        with self.lock:
            self.calls.append(win.indices)
        seen = frames_to_tensor(win.frames, planes=[0])[:, 0, 0, 0]  # what the window really holds
        rows = [torch.cat([seen, torch.tensor([float(p)])]) for p in range(2 * self.window - 1)]
        return torch.stack(rows)[:, None, None, :] / 65535.0  # (2W-1, 1, 1, W+1): (7, 1, 1, 5) for 4

    def node(
        self, clip: vs.VideoNode, length: str = "2n-1", num_streams: int = 1, window: int | None = None
    ) -> vs.VideoNode:
        """The stand-in's clip; ``window`` (default: the stand-in's own) is what the node is told."""
        template = doubled_rate_template(clip, vs.GRAY16, self.window + 1, 1, length)
        return spacetime_node(
            clip, template, self.infer, lambda out, f: tensor_to_frame(out, f), window=window or self.window,
            length=length, num_streams=num_streams,
        )


def layout(node: vs.VideoNode) -> list[tuple[tuple[int, ...], int]]:
    """(window's source frames, output position) of every output frame of a :class:`Standin` clip."""
    rows = [np.asarray(f[0])[0].tolist() for f in node.frames()]
    return [(tuple(r[:-1]), r[-1]) for r in rows]


def test_layout_without_cuts_follows_the_authors_grid_and_covers_the_tail():
    got = layout(Standin().node(index_clip(11)))
    assert len(got) == 21
    expected = (
        [((0, 1, 2, 3), p) for p in range(7)]
        + [((3, 4, 5, 6), p) for p in range(1, 7)]
        + [((6, 7, 8, 9), p) for p in range(1, 7)]
        # the authors drop frame 10; vsrestore aligns a last window to the clip's end
        + [((7, 8, 9, 10), p) for p in (5, 6)]
    )
    assert got == expected


def test_each_window_is_inferred_once():
    net = Standin()
    node = net.node(index_clip(31))
    for _ in node.frames():
        pass
    assert len(net.calls) == len(set(net.calls)) == 10  # windows start at 0, 3, ..., 27


def test_cut_restarts_windows_and_midpoint_repeats_last_frame():
    # Scenes 0-4 | 5-11
    got = layout(Standin().node(index_clip(12, cuts={4})))
    by_frame = {m: got[m] for m in range(len(got))}
    assert by_frame[8] == ((1, 2, 3, 4), 6)  # frame 4: window aligned to its scene's end
    assert by_frame[9] == ((1, 2, 3, 4), 6)  # midpoint across the cut repeats frame 4
    assert by_frame[10] == ((5, 6, 7, 8), 0)  # frame 5 starts its scene's window
    for m, (indices, _) in by_frame.items():
        scene = set(range(0, 5)) if m <= 9 else set(range(5, 12))
        assert set(indices) <= scene, (m, indices)


def test_short_scene_and_short_clip_pad_with_their_last_frame():
    got = layout(Standin().node(index_clip(12, cuts={5, 6})))
    assert got[12] == ((6, 6, 6, 6), 0)  # the one-frame scene
    assert got[13] == ((6, 6, 6, 6), 0)
    assert layout(Standin().node(index_clip(2))) == [((0, 1, 1, 1), 0), ((0, 1, 1, 1), 1), ((0, 1, 1, 1), 2)]


@pytest.mark.parametrize(
    "fps, length, frames, rate, duration",
    [
        ((24000, 1001), "2n-1", 19, Fraction(48000, 1001), Fraction(1001, 48000)),
        ((25, 1), "2n-1", 19, Fraction(50, 1), Fraction(1, 50)),
        ((24000, 1001), "2n", 20, Fraction(48000, 1001), Fraction(1001, 48000)),
    ],
)
def test_frame_count_rate_and_durations(fps, length, frames, rate, duration):
    clip = index_clip(10, fpsnum=fps[0], fpsden=fps[1])
    node = Standin().node(clip, length)
    assert node.num_frames == frames
    assert Fraction(node.fps.numerator, node.fps.denominator) == rate
    for m, f in enumerate(node.frames()):
        assert Fraction(f.props["_DurationNum"], f.props["_DurationDen"]) == duration
        assert f.props["SourceIndex"] == min(m // 2, 9)  # props of the frame it belongs to
        assert f.props["_Matrix"] == 1 and f.props["_Transfer"] == 1
    if length == "2n":
        assert frame_bytes(node.get_frame(19)) == frame_bytes(node.get_frame(18))


def test_any_order_and_threads_give_identical_bytes():
    clip = index_clip(20, cuts={7})
    reference = [frame_bytes(f) for f in Standin().node(clip).frames()]
    for streams in (1, 2):
        assert_same_bytes_in_any_order(Standin().node(clip, num_streams=streams), reference, seed=7)


def test_memory_stays_bounded_over_a_long_clip():
    net = Standin()
    clip = index_clip(900)
    cache = BoundedCache(4)
    template = doubled_rate_template(clip, vs.GRAY16, 5, 1, "2n-1")
    node = spacetime_node(clip, template, net.infer, lambda out, f: tensor_to_frame(out, f), window=4, cache=cache)
    peak = 0
    for _ in node.frames():
        peak = max(peak, len(cache))
    assert peak <= 4
    assert len(net.calls) == 300  # every window once: sequential rendering never recomputes


def test_variable_frame_rate_is_refused():
    clip = index_clip(5, fpsnum=0, fpsden=1)
    assert clip.fps.numerator == 0
    with pytest.raises(ValueError, match="variable frame rate"):
        doubled_rate_template(clip, vs.GRAY16, 4, 4, "2n-1")


def test_length_must_be_known():
    with pytest.raises(ValueError, match="length"):
        SpaceTimeWindows(index_clip(5), "3n", window=4)


def test_window_length_is_a_parameter_and_sets_stride_outputs_and_reach():
    four = SpaceTimeWindows(index_clip(5), window=4)
    assert (four.stride, four.outputs_per_window, four.look_behind, four.look_ahead) == (3, 7, 5, 6)
    assert len(four.clips()) == 12  # the graph MSITF's windows have always been wired with
    three = SpaceTimeWindows(index_clip(5), window=3)
    assert (three.stride, three.outputs_per_window) == (2, 5)
    assert look_around(3) == (three.look_behind, three.look_ahead) == (3, 4)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="window"):
            SpaceTimeWindows(index_clip(5), window=bad)


def test_window_of_three_layout_with_cut_and_clip_end():
    # Scenes 0-4 | 5-9; windows of 3 frames, stride 2, 5 outputs each (positions 0..4).
    net = Standin(window=3)
    got = layout(net.node(index_clip(10, cuts={4})))
    assert len(got) == 19
    expected = (
        [((0, 1, 2), p) for p in range(5)]  # outputs 0-4: grid window 0
        + [((2, 3, 4), p) for p in range(1, 5)]  # outputs 5-8: grid window 2-4 (output 4 came from 0-2)
        + [((2, 3, 4), 4)]  # output 9, midpoint across the cut: repeats frame 4 (window 4-6 is cut)
        + [((5, 6, 7), p) for p in range(3)]  # outputs 10-12: frame 5 opens its scene's window
        + [((6, 7, 8), p) for p in range(1, 5)]  # outputs 13-16: grid window 6-8
        + [((7, 8, 9), p) for p in (3, 4)]  # outputs 17-18: window 8-10 aligned to the clip's end
    )
    assert got == expected
    assert sorted(set(net.calls)) == sorted(set(indices for indices, _ in expected))
    assert len(net.calls) == len(set(net.calls)) == 5  # each window inferred once
    # The "2n" tail repeats the last output; a two-frame clip pads its window with its last frame.
    tail = layout(Standin(window=3).node(index_clip(10, cuts={4}), "2n"))
    assert tail == expected + [((7, 8, 9), 4)]
    assert layout(Standin(window=3).node(index_clip(2))) == [((0, 1, 1), 0), ((0, 1, 1), 1), ((0, 1, 1), 2)]


def test_network_with_another_window_length_is_reported():
    node = Standin(window=4).node(index_clip(6), window=3)  # 7 outputs where 5 are expected
    with pytest.raises(vs.Error, match="made 7 outputs from a window of 3 frames; expected 5"):
        node.get_frame(0)
