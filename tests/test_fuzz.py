"""Generated bad input to the public entry points: the filters, ``models.load`` and the command line.

Each must either work or fail with the error type its contract names (``vs.Error`` for the filters,
``ValueError`` for ``load``, exit status 2 and one stderr line for the command line), with a message
that names the parameter at fault; any other exception type is a bug. Bounded: a few dozen cases
per target, no deadline (two busy cores), the file well under a minute.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import vsrestore
from vsrestore.cli import main as cli
from vsrestore.networks.mstfn import MSTFN, MSTFNConfig
from vsrestore.networks.stifn import STIFN, STIFNConfig

core = vs.core

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --------------------------------------------------------------------------------------------------
# the filters


class TinyMSITF(torch.nn.Module):
    """Stand-in for MSITF with random small weights: 4 frames in, 7 out, x4 nearest up-sampling."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(3, 3, 1)
        torch.nn.init.normal_(self.mix.weight, std=0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 4, 3, h, w) -> (B, 7, 3, 4h, 4w)
        frames = [x[:, k // 2] if k % 2 == 0 else (x[:, k // 2] + x[:, k // 2 + 1]) / 2 for k in range(7)]
        return torch.stack([F.interpolate(f + self.mix(f), scale_factor=4, mode="nearest") for f in frames], 1)


@pytest.fixture(scope="module")
def networks() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "mstfn": MSTFN(MSTFNConfig(features=8, num_rpb=1, num_tail=1)).eval(),
        "stifn": STIFN(STIFNConfig(features_3d=4, num_res3d=1, features_fused=8, features_qe=8, num_qe_mid=1)).eval(),
        "msitf": TinyMSITF().eval(),
    }


FORMATS = [vs.GRAY8, vs.GRAY16, vs.GRAYS, vs.GRAYH, vs.YUV420P8, vs.YUV420P10, vs.YUV422P16, vs.YUV444P8,
           vs.YUV444PS, vs.YUV420PH, vs.YUV410P8, vs.YUV411P8, vs.YUV440P8, vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBS,
           vs.RGBH, vs.GRAY32]


@st.composite
def clips(draw) -> tuple[Any, bool]:
    """A clip and whether it is a fuzzed one (else a plain 8-bit YUV clip every filter takes)."""
    # half plain clips, so that most cases also reach the parameter checks
    kind = draw(st.sampled_from(["plain"] * 5 + ["format", "format", "variable", "vfr", "not a clip"]))
    if kind == "not a clip":
        return draw(st.sampled_from([None, 3, "clip.mkv", [], core.std.BlankAudio()])), True
    if kind == "variable":
        a = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=3)
        return core.std.Splice([a, core.std.BlankClip(format=vs.RGB24, width=16, height=16, length=3)],
                               mismatch=True), True
    fmt = core.get_video_format(draw(st.sampled_from(FORMATS)) if kind == "format" else vs.YUV420P8)
    sw, sh = 1 << fmt.subsampling_w, 1 << fmt.subsampling_h
    width = draw(st.sampled_from([1, 8, 15, 16, 17, 24, 32])) if kind == "format" else 32
    height = draw(st.sampled_from([1, 8, 15, 16, 17, 24, 32])) if kind == "format" else 24
    width, height = -(-width // sw) * sw, -(-height // sh) * sh  # BlankClip needs whole chroma samples
    length = draw(st.sampled_from([1, 2, 5])) if kind != "plain" else 5
    fps = (0, 1) if kind == "vfr" else (24, 1)
    clip = core.std.BlankClip(format=fmt.id, width=width, height=height, length=length, fpsnum=fps[0],
                              fpsden=fps[1], color=[60] * fmt.num_planes if fmt.sample_type == vs.INTEGER else None)
    return clip, kind != "plain"


WEIRD = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2, 3, 7, 8, 10, 12, 15, 16, 17, 31, 32, 33, 37, 51, 52, 64,
                     10**9, 0.5, 16.0, math.nan, math.inf, "", "auto", "cpu", "cuda", "cuda:7", "fp32", "fp16",
                     "bf16", "2n", "2n-1", "3n", "lite", "r3", "r3l", [0], [0, 1, 2], [3], [0, 0], [], (16, 16),
                     (16,), (0, 16), {}, b"16", [1.5]]),
    st.integers(-300, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
PARAMETERS = {
    "mstfn": ["in_bits", "out_depth", "device", "precision", "tile", "overlap", "num_streams", "stage1_cache"],
    "stifn": ["qp", "size", "planes", "device", "precision", "tile", "overlap", "num_streams"],
    "msitf": ["length", "out_depth", "device", "precision", "tile", "overlap", "num_streams"],
}
# argument combinations that would only make a case slow, not more interesting
HUGE = 33


def check_filter(name: str, net: torch.nn.Module, clip: Any, fuzzed_clip: bool, kwargs: dict[str, Any]) -> None:
    """Build the node, render its first and last frames; only a vs.Error naming a fuzzed parameter
    (or ``clip``), raised while building, may come out."""
    if isinstance(kwargs.get("tile"), int) and not isinstance(kwargs["tile"], bool) and kwargs["tile"] > 4096:
        kwargs["tile"] = HUGE  # same checks, without tiling a huge frame
    try:
        node = getattr(vsrestore, name)(clip, model=net, **kwargs)
    except vs.Error as exc:
        message = str(exc)
        assert message.startswith(f"vsrestore.{name}: "), message
        named = [*kwargs, "clip"] if fuzzed_clip else list(kwargs)
        assert any(p in message for p in named), f"{message!r} names none of {named}"
        assert "\n" not in message, message
        event(f"refused: {message.split(':')[1].split()[0]}")
        return
    assert not fuzzed_clip or isinstance(clip, vs.VideoNode), "a non-clip was accepted"
    assert isinstance(node, vs.VideoNode)
    event("accepted and rendered")
    for n in {0, node.num_frames - 1}:
        frame = node.get_frame(n)  # an accepted call must render: no error may surface this late
        assert frame.width == node.width and frame.height == node.height


def filter_cases(name: str):
    return st.tuples(
        clips(),
        st.dictionaries(st.sampled_from(PARAMETERS[name]), WEIRD, max_size=2),
    )


@FUZZ
@given(case=filter_cases("mstfn"))
def test_fuzz_mstfn(networks, case):
    (clip, fuzzed), kwargs = case
    check_filter("mstfn", networks["mstfn"], clip, fuzzed, kwargs)


@FUZZ
@given(case=filter_cases("stifn"))
def test_fuzz_stifn(networks, case):
    (clip, fuzzed), kwargs = case
    check_filter("stifn", networks["stifn"], clip, fuzzed, kwargs)


@settings(FUZZ, max_examples=30)
@given(case=filter_cases("msitf"))
def test_fuzz_msitf(networks, case):
    (clip, fuzzed), kwargs = case
    check_filter("msitf", networks["msitf"], clip, fuzzed, kwargs)


@settings(FUZZ, max_examples=15)
@given(model=st.one_of(WEIRD, st.builds(object), st.builds(torch.nn.Linear, st.just(2), st.just(2))))
def test_fuzz_model_argument_of_the_filters(model):
    clip = core.std.BlankClip(format=vs.YUV420P8, width=32, height=32, length=3)
    for name in ("mstfn", "stifn", "msitf"):
        try:
            node = getattr(vsrestore, name)(clip, model=model)
        except vs.Error as exc:
            assert str(exc).startswith(f"vsrestore.{name}: ") and "model" in str(exc), str(exc)
            continue
        # A module is taken as the caller's network (stand-ins are modules too): whether it fits
        # shows when it runs. Anything else that was accepted must be a model this filter runs.
        if not isinstance(model, torch.nn.Module):
            node.get_frame(0)


# --------------------------------------------------------------------------------------------------
# models.load: every bad input is a ValueError


def expect_value_error(source: Any, **kwargs: Any) -> None:
    """``models.load(source)`` must raise ValueError (the documented contract), nothing else."""
    try:
        vsrestore.models.load(source, **kwargs)
    except ValueError as exc:
        assert str(exc), "an empty message"
        return
    raise AssertionError(f"models.load accepted {source!r}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_models")


@pytest.fixture(scope="module")
def valid_file(folder) -> Path:
    torch.manual_seed(0)
    return vsrestore.models.save(MSTFN(MSTFNConfig(features=4, num_rpb=0, num_tail=1)), folder / "valid.safetensors")


@settings(FUZZ, max_examples=40)
@given(source=st.one_of(
    st.integers(), st.none(), st.floats(), st.booleans(), st.binary(max_size=8),
    st.lists(st.integers(), max_size=3), st.tuples(st.text(max_size=3)), st.builds(object),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=12).filter(lambda t: t not in vsrestore.models.shipped_models()),
))
def test_fuzz_load_non_paths(source):
    expect_value_error(source)


@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=256), suffix=st.sampled_from([".pth", ".pt", ".safetensors", ".bin", ".ckpt", ""]))
def test_fuzz_load_random_bytes(folder, data, suffix):
    path = folder / f"random{suffix}"
    path.write_bytes(data)
    expect_value_error(path)


@settings(FUZZ, max_examples=15)
@given(fraction=st.floats(0.0, 0.999))
def test_fuzz_load_truncated_safetensors(folder, valid_file, fraction):
    data = valid_file.read_bytes()
    path = folder / "truncated.safetensors"
    path.write_bytes(data[: int(len(data) * fraction)])
    expect_value_error(path)


@settings(FUZZ, max_examples=15)
@given(key=st.sampled_from(["arch", "config", "in_bits", "task", "name"]),
       value=st.one_of(st.text(max_size=8), st.sampled_from(["{", "[1,", "nan", "'x'", "{\"features\": -1}",
                                                             "{\"nope\": 1}", "5", "null", "[]", "\"stifn\""])))
def test_fuzz_load_safetensors_with_bad_metadata(folder, valid_file, key, value):
    from safetensors.torch import load_file, save_file

    try:
        json.loads(value)
        is_json = True
    except ValueError:
        is_json = False
    path = folder / "meta.safetensors"
    save_file(load_file(str(valid_file)), str(path), metadata={"arch": "\"mstfn\"", key: value})
    try:
        vsrestore.models.load(path)
    except ValueError as exc:
        assert str(exc)
        return
    # accepted: only JSON metadata may be, and only where the value does not contradict the weights
    assert is_json, f"non-JSON metadata {key}={value!r} was accepted"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on protocol 4 payloads
def test_fuzz_load_a_pickle_payload_never_runs(folder):
    marker = folder / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for protocol in (2, 4):
        path = folder / f"payload{protocol}.pth"
        path.write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=protocol))
        expect_value_error(path)
    zipped = folder / "payload.pt"
    torch.save({"state_dict": Payload()}, zipped)
    expect_value_error(zipped)
    assert not marker.exists()


@settings(FUZZ, max_examples=10)
@given(arch=WEIRD)
def test_fuzz_load_arch_argument(valid_file, arch):
    if arch is None or arch == "mstfn":  # the default and the file's own architecture load
        return
    expect_value_error(valid_file, arch=arch)


# --------------------------------------------------------------------------------------------------
# the command line: bad values exit with 2 and one stderr line naming the option


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


JUNK = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6).filter(
    lambda t: not _is_number(t))


def below(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(max_value=limit - 1).map(str), JUNK)


def outside(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(max_value=low - 1).map(str), st.integers(min_value=high + 1).map(str), JUNK)


def not_positive() -> st.SearchStrategy[str]:
    return st.one_of(st.floats(max_value=0.0).map(repr), st.sampled_from(["nan", "inf", "-inf"]), JUNK)


def negative() -> st.SearchStrategy[str]:
    return st.one_of(st.floats(max_value=-1e-9).map(repr), st.sampled_from(["nan", "inf", "-inf"]), JUNK)


def not_in(choices: list[str]) -> st.SearchStrategy[str]:
    return st.text(max_size=8).filter(lambda t: t not in choices)


TRAIN = ["train", "--task", "mstfn", "--out", "never-created", "--data", "missing"]
EVALUATE = ["evaluate", "--task", "mstfn", "--model", "m", "--clips", "c", "--out", "never-created"]
STIFN_TRAIN = ["train", "--task", "stifn", "--out", "never-created", "--data", "missing"]
CLI_CASES: list[tuple[list[str], str, st.SearchStrategy[str]]] = [
    (TRAIN, "--batch", below(1)), (TRAIN, "--max-frames", below(1)), (TRAIN, "--steps", below(1)),
    (TRAIN, "--patch", below(1)), (TRAIN, "--val-every", below(1)), (TRAIN, "--threads", below(0)),
    (TRAIN, "--seed", below(0)), (TRAIN, "--minutes", negative()), (TRAIN, "--lr", not_positive()),
    (TRAIN, "--checkpoint-minutes", not_positive()), (TRAIN, "--in-bits", outside(1, 16)),
    (TRAIN, "--precision", not_in(["auto", "fp32", "bf16", "fp16"])),
    (TRAIN, "--task", not_in(["mstfn", "stifn", "msitf"])),
    (STIFN_TRAIN, "--qp", outside(0, 51)), (STIFN_TRAIN, "--codec", not_in(["x265", "x264"])),
    (EVALUATE, "--tile", below(16)), (EVALUATE, "--max-frames", below(1)), (EVALUATE, "--in-bits", outside(1, 16)),
    (["encode", "o.mkv"], "--crf", outside(0, 51)), (["encode", "o.mkv"], "--qp", outside(0, 51)),
    (["encode", "o.mkv", "--codec", "x264"], "--qp", outside(0, 69)),
    (["encode", "o.mkv"], "--preset", not_in(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                              "slow", "slower", "veryslow", "placebo"])),
    (["encode", "o.mkv"], "--codec", not_in(["x265", "x264", "ffv1"])),
]


def run_cli(argv: list[str]) -> tuple[int | str | None, str]:
    """``main(argv)``'s exit status (SystemExit's code, or the return value) and its stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli(argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


@settings(FUZZ, max_examples=80)
@given(data=st.data(), case=st.sampled_from(CLI_CASES))
def test_fuzz_cli_option_values(data, case):
    base, option, values = case
    value = data.draw(values, label=option)
    argv = [*base, option, value] if option != "--task" else [base[0], option, value, *base[3:]]
    with tempfile.TemporaryDirectory() as cwd:  # nothing may be written, but never into the checkout
        here = os.getcwd()
        os.chdir(cwd)
        try:
            code, err = run_cli(argv)
        finally:
            os.chdir(here)
        assert os.listdir(cwd) == [], "a rejected command wrote files"
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, err
    assert option in lines[0] or "argument" in lines[0] and option.lstrip("-") in lines[0], lines[0]


@settings(FUZZ, max_examples=15)
@given(command=st.sampled_from(["train", "evaluate", "export", "encode", "info"]),
       flag=st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=3, max_size=8))
def test_fuzz_cli_unknown_options(command, flag):
    code, err = run_cli([command, f"--zz{flag}"])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vsrestore") and f"--zz{flag}" in err or \
        "required" in err, err
