"""Prometheus metrics shared by uvicorn's workers: client_python's multiprocess mode, with the
two chores it leaves to the application.

With `PROMETHEUS_MULTIPROC_DIR` set before `prometheus_client` is imported, every worker keeps
its counters, histograms and gauges in memory-mapped files of its own in that directory, and a
scrape merges the files of all of them (`MultiProcessCollector`). `recsys serve` sets it for
several workers (`prepare`) and empties the directory first: files from an earlier run would
add their counts to this one's.

The files of a worker that is gone stay (its counts must not vanish from the sums), so a service
whose workers are restarted collects files without bound and each scrape reads them all
(client_python issue #367). `compact`, run under an exclusive lock at every scrape, folds the
counters and histograms of dead workers into one archive file per type and deletes their files,
and deletes dead workers' gauge files (every gauge here is a `live*` one: a dead worker has no
current value).

`prometheus_client` is imported inside the functions: `recsys serve` imports this module before
it sets the variable, and the client picks its value class when it is first imported.
"""

# client_python's multiprocess module has no type annotations.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
ARCHIVE = "archive"  # <type>_archive.db: the merged counts of workers that are gone
LOCK = ".lock"


def directory() -> Path | None:
    """The shared metrics directory, when this process runs in multiprocess mode."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def prepare(path: Path) -> None:
    """Make `path` the (empty) metrics directory of the workers started after this call."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[ENV] = str(path)


def render(path: Path) -> bytes:
    """Every worker's metrics, summed, in the text format (dead workers' files compacted)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    with _locked(path):
        compact(path)
        registry = CollectorRegistry(auto_describe=True)
        MultiProcessCollector(registry, str(path))
        return generate_latest(registry)


def compact(path: Path) -> int:
    """Fold the counter and histogram files of processes that no longer run into the archive
    files, and delete their gauge files. Returns how many files were removed. Call it holding
    the lock (`render` does): a scrape must never see a worker counted twice or not at all."""
    dead: dict[str, list[Path]] = {}
    for file in path.glob("*.db"):
        kind, *_, tail = file.stem.split("_")
        if tail == ARCHIVE or not tail.isdigit() or _alive(int(tail)):
            continue
        dead.setdefault(kind, []).append(file)
    removed = 0
    for kind, files in dead.items():
        if kind in ("counter", "histogram", "summary"):
            _archive(path / f"{kind}_{ARCHIVE}.db", files)
        for file in files:
            file.unlink()
            removed += 1
    return removed


def _archive(archive: Path, files: list[Path]) -> None:
    """Rewrite `archive` as the sum of itself and `files` (written aside, then renamed in)."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    sources = [str(f) for f in ([archive] if archive.exists() else []) + files]
    merged = MultiProcessCollector.merge(sources, accumulate=False)
    staged = archive.with_suffix(".tmp")
    staged.unlink(missing_ok=True)
    out = MmapedDict(str(staged))
    try:
        for metric in merged:
            for sample in metric.samples:
                key = mmap_key(
                    metric.name,
                    sample.name,
                    list(sample.labels),
                    list(sample.labels.values()),
                    metric.documentation,
                )
                out.write_value(key, sample.value, 0.0)
    finally:
        out.close()
    os.replace(staged, archive)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
