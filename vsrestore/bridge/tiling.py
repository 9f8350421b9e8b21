"""Tiled inference: split a frame into tiles with overlap and stitch the results.

Each tile owns a core rectangle; the cores partition the frame. The network sees the core plus up to
``overlap`` pixels of real context on every side (less at the frame's border, where the untiled
network sees its own padding too) and only the core of its result is kept. When ``overlap`` is at
least the network's receptive radius, every kept pixel saw exactly the context it sees untiled, so
tiled and untiled results agree up to float rounding.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tile:
    """A tile in input pixel coordinates: the region fed to the network and the core it owns."""

    y0: int
    y1: int
    x0: int
    x1: int
    core_y0: int
    core_y1: int
    core_x0: int
    core_x1: int


def parse_tile(tile: int | tuple[int, int] | list[int] | None, name: str = "tile") -> tuple[int, int] | None:
    """Validate a ``tile`` argument: None, a square size, or (width, height); sizes >= 16."""
    if tile is None:
        return None
    if isinstance(tile, int) and not isinstance(tile, bool):
        tile = (tile, tile)
    if (
        not isinstance(tile, (tuple, list))
        or len(tile) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 16 for v in tile)
    ):
        raise ValueError(f"{name} must be None, an integer >= 16 or a (width, height) pair of them, not {tile!r}")
    return int(tile[0]), int(tile[1])


def tile_grid(height: int, width: int, tile: tuple[int, int] | None, overlap: int) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` frame; one whole-frame tile when ``tile`` is None."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, not {overlap}")
    tile_w, tile_h = tile if tile is not None else (width, height)
    tiles = []
    for cy0 in range(0, height, tile_h):
        cy1 = min(cy0 + tile_h, height)
        for cx0 in range(0, width, tile_w):
            cx1 = min(cx0 + tile_w, width)
            tiles.append(
                Tile(
                    y0=max(cy0 - overlap, 0), y1=min(cy1 + overlap, height),
                    x0=max(cx0 - overlap, 0), x1=min(cx1 + overlap, width),
                    core_y0=cy0, core_y1=cy1, core_x0=cx0, core_x1=cx1,
                )
            )
    return tiles


def run_tiled(
    fn: Callable[[Tile], torch.Tensor],
    tiles: list[Tile],
    out_shape: tuple[int, ...],
    *,
    scale: int = 1,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Stitch ``fn(tile)`` results into a tensor of ``out_shape`` (``(..., scale*H, scale*W)``).

    ``fn`` returns the network output for the tile's whole input region; its core is kept.
    """
    if len(tiles) == 1:
        return fn(tiles[0])
    out = torch.empty(out_shape, device=device, dtype=dtype)
    for t in tiles:
        result = fn(t)
        ry0, rx0 = (t.core_y0 - t.y0) * scale, (t.core_x0 - t.x0) * scale
        ry1 = ry0 + (t.core_y1 - t.core_y0) * scale
        rx1 = rx0 + (t.core_x1 - t.core_x0) * scale
        out[..., t.core_y0 * scale : t.core_y1 * scale, t.core_x0 * scale : t.core_x1 * scale] = result[
            ..., ry0:ry1, rx0:rx1
        ]
    return out
