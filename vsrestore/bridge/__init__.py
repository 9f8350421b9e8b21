"""The VapourSynth bridge: frames to tensors, colour, windows, caches and tiling.

Everything here knows VapourSynth and torch; nothing here knows a particular network.
"""
from .cache import BoundedCache
from .colour import ColourInfo, RGBRoundTrip, from_rgb, read_colour, rgb_round_trip, to_rgb
from .frames import frames_to_tensor, sample_scale, tensor_to_frame
from .tiling import Tile, parse_tile, run_tiled, tile_grid
from .windows import SlidingWindow, Window, copy_props, shift, windowed_node

__all__ = [
    "BoundedCache",
    "ColourInfo",
    "RGBRoundTrip",
    "SlidingWindow",
    "Tile",
    "Window",
    "copy_props",
    "frames_to_tensor",
    "from_rgb",
    "parse_tile",
    "read_colour",
    "rgb_round_trip",
    "run_tiled",
    "sample_scale",
    "shift",
    "tensor_to_frame",
    "tile_grid",
    "to_rgb",
    "windowed_node",
]
