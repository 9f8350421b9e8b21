"""Tiled inference: vsrestore.bridge.tiling grid, argument parsing and stitching."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from vsrestore.bridge.tiling import Tile, parse_tile, run_tiled, tile_grid


@pytest.fixture(autouse=True, scope="module")
def _plain_cpu_convolutions():
    """oneDNN builds a new kernel for every tile shape (seconds each); the native path is instant."""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous

# --------------------------------------------------------------------------------------------------
# tile_grid


SIZES = [(1, 1), (16, 16), (17, 33), (48, 80), (100, 37), (64, 200)]
TILES = [None, (16, 16), (32, 16), (16, 40), (23, 17), (64, 64), (300, 200)]
OVERLAPS = [0, 3, 8, 40]


@pytest.mark.parametrize("height, width", SIZES)
def test_cores_partition_the_frame(height: int, width: int) -> None:
    for tile, overlap in itertools.product(TILES, OVERLAPS):
        tiles = tile_grid(height, width, tile, overlap)
        tile_w, tile_h = tile if tile is not None else (width, height)
        assert len(tiles) == math.ceil(height / tile_h) * math.ceil(width / tile_w)
        owners = np.zeros((height, width), dtype=np.int64)
        for t in tiles:
            assert isinstance(t, Tile)
            # a non-empty core no larger than the tile
            assert 0 <= t.core_y0 < t.core_y1 <= height and 0 <= t.core_x0 < t.core_x1 <= width
            assert t.core_y1 - t.core_y0 <= tile_h and t.core_x1 - t.core_x0 <= tile_w
            # the region is the core grown by `overlap`, clipped to the frame
            assert t.y0 == max(t.core_y0 - overlap, 0) and t.y1 == min(t.core_y1 + overlap, height)
            assert t.x0 == max(t.core_x0 - overlap, 0) and t.x1 == min(t.core_x1 + overlap, width)
            owners[t.core_y0 : t.core_y1, t.core_x0 : t.core_x1] += 1
        assert (owners == 1).all(), (tile, overlap)


def test_grid_layout_example() -> None:
    # 40 x 50 frame, tiles 20 wide and 16 high, overlap 4
    tiles = tile_grid(40, 50, (20, 16), 4)
    cores = [(t.core_y0, t.core_y1, t.core_x0, t.core_x1) for t in tiles]
    assert cores == [
        (0, 16, 0, 20), (0, 16, 20, 40), (0, 16, 40, 50),
        (16, 32, 0, 20), (16, 32, 20, 40), (16, 32, 40, 50),
        (32, 40, 0, 20), (32, 40, 20, 40), (32, 40, 40, 50),
    ]  # fmt: skip
    middle = tiles[4]
    assert (middle.y0, middle.y1, middle.x0, middle.x1) == (12, 36, 16, 44)
    corner = tiles[8]
    assert (corner.y0, corner.y1, corner.x0, corner.x1) == (28, 40, 36, 50)


def test_no_tile_is_one_whole_frame_tile() -> None:
    assert tile_grid(30, 45, None, 7) == [Tile(0, 30, 0, 45, 0, 30, 0, 45)]


def test_negative_overlap_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_grid(32, 32, (16, 16), -1)


# --------------------------------------------------------------------------------------------------
# parse_tile


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (16, (16, 16)), (256, (256, 256)), ((32, 48), (32, 48)), ([48, 16], (48, 16))],
)
def test_parse_tile_accepts(value, expected) -> None:
    assert parse_tile(value) == expected


@pytest.mark.parametrize(
    "value",
    [0, 15, -64, True, 64.0, "64", (16,), (16, 16, 16), (15, 32), (32, 8), (32, 16.0), (True, 32), (), {16: 16}],
)
def test_parse_tile_rejects(value) -> None:
    with pytest.raises(ValueError, match=r"^tile must be"):
        parse_tile(value)


def test_parse_tile_error_names_the_given_parameter() -> None:
    with pytest.raises(ValueError, match=r"^tile_size must be.*\b8\b"):
        parse_tile(8, name="tile_size")


# --------------------------------------------------------------------------------------------------
# run_tiled against the untiled network


def dilated_net() -> tuple[nn.Module, int]:
    """3x3 conv, 3x3 conv with dilation 2, 3x3 conv: receptive radius 1 + 2 + 1 = 4."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
        nn.Tanh(),
        nn.Conv2d(8, 2, 3, padding=1),
    ).eval()
    radius = sum(m.dilation[0] * (m.kernel_size[0] // 2) for m in net if isinstance(m, nn.Conv2d))
    assert radius == 4
    return net, radius


def upscale_net() -> tuple[nn.Module, int]:
    """Two 3x3 convs then PixelShuffle(2): radius 2 input pixels, output twice the size."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3 * 4, 3, padding=1),
        nn.PixelShuffle(2),
    ).eval()
    return net, 2


def tiled(net: nn.Module, x: torch.Tensor, tile, overlap: int, out_channels: int, scale: int = 1) -> torch.Tensor:
    tiles = tile_grid(x.shape[-2], x.shape[-1], tile, overlap)
    calls = []

    def fn(t: Tile) -> torch.Tensor:
        calls.append(t)
        return net(x[..., t.y0 : t.y1, t.x0 : t.x1])

    out_shape = (x.shape[0], out_channels, x.shape[-2] * scale, x.shape[-1] * scale)
    with torch.no_grad():
        out = run_tiled(fn, tiles, out_shape, scale=scale)
    assert calls == tiles  # one call per tile
    assert out.shape == out_shape
    return out


INPUT = torch.rand(2, 3, 53, 70, generator=torch.Generator().manual_seed(42))


@pytest.mark.parametrize("tile", [(16, 16), (24, 20), (33, 17)])
def test_tiled_equals_untiled_with_enough_overlap(tile) -> None:
    net, radius = dilated_net()
    with torch.no_grad():
        whole = net(INPUT)
    for overlap in (radius, radius + 5):
        diff = (tiled(net, INPUT, tile, overlap, 2) - whole).abs().max().item()
        assert diff <= 1e-5, (tile, overlap, diff)


@pytest.mark.parametrize("tile", [(16, 16), (24, 20)])
def test_tiled_differs_without_enough_overlap(tile) -> None:
    net, radius = dilated_net()
    with torch.no_grad():
        whole = net(INPUT)
    for overlap in (0, radius - 1):
        diff = (tiled(net, INPUT, tile, overlap, 2) - whole).abs().max().item()
        assert diff > 1e-4, (tile, overlap, diff)


def test_scaled_output_tiles() -> None:
    net, radius = upscale_net()
    with torch.no_grad():
        whole = net(INPUT)
    assert whole.shape == (2, 3, 106, 140)
    good = tiled(net, INPUT, (20, 16), radius, 3, scale=2)
    assert (good - whole).abs().max().item() <= 1e-5
    for overlap in (0, radius - 1):
        bad = tiled(net, INPUT, (20, 16), overlap, 3, scale=2)
        assert (bad - whole).abs().max().item() > 1e-4, overlap


def test_scaled_stitching_places_each_core() -> None:
    """An fn that writes its tile's index everywhere: each output pixel shows its core's owner."""
    height, width, scale = 37, 45, 3
    tiles = tile_grid(height, width, (16, 20), 5)
    index = {t: i for i, t in enumerate(tiles)}

    def fn(t: Tile) -> torch.Tensor:
        return torch.full((1, (t.y1 - t.y0) * scale, (t.x1 - t.x0) * scale), float(index[t]))

    out = run_tiled(fn, tiles, (1, height * scale, width * scale), scale=scale)
    expected = torch.empty(1, height * scale, width * scale)
    for t, i in index.items():
        expected[:, t.core_y0 * scale : t.core_y1 * scale, t.core_x0 * scale : t.core_x1 * scale] = i
    assert torch.equal(out, expected)


def test_single_tile_is_returned_as_is() -> None:
    net, _ = upscale_net()
    with torch.no_grad():
        out = tiled(net, INPUT, None, 0, 3, scale=2)
        assert torch.equal(out, net(INPUT))
