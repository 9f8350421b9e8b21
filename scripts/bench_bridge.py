"""Benchmark of the VapourSynth bridge (foundation issue).

1. Cost per frame of the bridge alone at 1920x1080: YUV420P8 -> RGBS (core.resize) -> tensor
   (frames_to_tensor) -> identity "network" -> frame (tensor_to_frame) -> YUV420P16 (core.resize),
   compared with the same resizes without the bridge in between.
2. The num_streams speed-up with a CPU-bound stand-in network (a small conv net).

Usage: ./dev python scripts/bench_bridge.py [--frames N]
"""
from __future__ import annotations

import argparse
import time

import torch
import vapoursynth as vs

from vsrestore.bridge import (
    ColourInfo, SlidingWindow, copy_props, frames_to_tensor, from_rgb, tensor_to_frame, to_rgb, windowed_node,
)

core = vs.core


def render_all(node: vs.VideoNode) -> float:
    start = time.perf_counter()
    for _ in node.frames(prefetch=core.num_threads, backlog=core.num_threads * 2):
        pass
    return time.perf_counter() - start


def through_network(clip: vs.VideoNode, network, num_streams: int = 1) -> vs.VideoNode:
    window = SlidingWindow(clip, 0)
    template = core.std.BlankClip(clip, keep=True)

    def render(n, frames, out):
        win = window.resolve(n, frames)
        x = frames_to_tensor(win.frames)[0]
        with torch.inference_mode():
            tensor_to_frame(network(x), out)
        copy_props(win.centre, out)

    return windowed_node(template, window.clips(), render, num_streams=num_streams)


def bridge_cost(frames: int) -> None:
    src = core.std.BlankClip(format=vs.YUV420P8, width=1920, height=1080, length=frames, color=[100, 120, 140])
    colour = ColourInfo.default_for(src)
    rgb = to_rgb(src, vs.RGBS, colour)
    resize_only = from_rgb(rgb, vs.YUV420P16, colour)
    bridged = from_rgb(through_network(rgb, lambda x: x), vs.YUV420P16, colour)
    render_all(resize_only[:2])  # warm up
    t_resize = render_all(resize_only) / frames
    t_bridge = render_all(bridged) / frames
    print(f"1920x1080 YUV420P8 -> RGBS -> YUV420P16, {frames} frames, core.num_threads={core.num_threads}")
    print(f"  resizes only:            {t_resize * 1000:7.1f} ms/frame")
    print(f"  resizes + bridge:        {t_bridge * 1000:7.1f} ms/frame")
    print(f"  bridge (unpack + pack):  {(t_bridge - t_resize) * 1000:7.1f} ms/frame")


def streams_speedup(frames: int) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
        *[m for _ in range(4) for m in (torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU())],
        torch.nn.Conv2d(32, 3, 3, padding=1),
    ).eval()
    src = core.std.BlankClip(format=vs.RGBS, width=480, height=272, length=frames)
    print(f"stand-in conv net at 480x272 RGBS, {frames} frames, core.num_threads={core.num_threads}")
    default_threads = torch.get_num_threads()
    base = None
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for streams in (1, 2, 3):
            node = through_network(src, lambda x: net(x[None])[0], num_streams=streams)
            render_all(node[:2])
            t = render_all(node) / frames
            base = base or t
            print(f"  torch threads={threads} num_streams={streams}: {t * 1000:7.1f} ms/frame  "
                  f"speed-up x{base / t:.2f} (vs threads={default_threads}, 1 stream)")
    torch.set_num_threads(default_threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    bridge_cost(args.frames)
    streams_speedup(args.frames)


if __name__ == "__main__":
    main()
