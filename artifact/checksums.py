"""SHA-256 of every file in a version, recorded in the manifest on export and checked on load."""

from __future__ import annotations

import hashlib
from pathlib import Path

from artifact.errors import ArtifactError
from artifact.layout import MANIFEST

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksums_of(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `directory`, in sorted order."""
    return {
        str(p.relative_to(directory)): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def verify_checksums(directory: Path, files: dict[str, str]) -> None:
    """Check every file the manifest lists against its recorded SHA-256.

    Raises:
        ArtifactError: an entry leaves the directory, a file is missing, or a digest differs
            (the message names the file).
    """
    root = directory.resolve()
    for relative, expected in files.items():
        file = directory / relative
        if not file.resolve().is_relative_to(root):
            raise ArtifactError(f"{directory / MANIFEST}: file entry {relative!r} leaves the dir")
        if not file.is_file():
            raise ArtifactError(f"{file}: missing (listed in {MANIFEST})")
        actual = sha256_file(file)
        if actual != expected:
            raise ArtifactError(f"{file}: SHA-256 {actual} != manifest's {expected}")
