"""A broken version directory is refused with a message naming the file and the reason.

One case per way a version can be wrong. Most cases re-sign the manifest after breaking a file,
as a buggy exporter would: the checksum then agrees, and the deeper check has to catch it. Each
case is checked twice: `load_version` refuses it, and a service with an older good version beside
it serves that one, and says on /ready why the newer one was refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.serving.loader import load_newest, load_version
from artifact.errors import ArtifactError
from artifact.item_columns import write_item_columns
from tests.helpers import MODEL_NAME, make_client


def edit_manifest(directory: Path, **changes) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.update(changes)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def resign(version: Path, *relative: str) -> None:
    """Record the current SHA-256 of `relative` in the manifest, as if the exporter wrote it."""
    manifest = json.loads((version / "manifest.json").read_text())
    for name in relative:
        manifest["files"][name] = hashlib.sha256((version / name).read_bytes()).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))


def save_signed(version: Path, name: str, array: np.ndarray) -> None:
    np.save(version / name, array)
    resign(version, name)


def write_signed(version: Path, name: str, text: str) -> None:
    (version / name).write_text(text)
    resign(version, name)


def load(version: Path, name: str) -> np.ndarray:
    return np.load(version / name)


def truncate(version: Path, name: str, keep: int = 100) -> None:
    with open(version / name, "r+b") as f:
        f.truncate(keep)


def drop_from_manifest(version: Path, name: str) -> None:
    manifest = json.loads((version / "manifest.json").read_text())
    del manifest["files"][name]
    (version / "manifest.json").write_text(json.dumps(manifest))
    (version / name).unlink()


def with_nan(array: np.ndarray, value: float = np.nan) -> np.ndarray:
    array = array.copy()
    array.flat[3] = value
    return array


def swap_first_and_last(version: Path, name: str) -> None:
    ids = json.loads((version / name).read_text())
    ids[0], ids[-1] = ids[-1], ids[0]
    write_signed(version, name, json.dumps(ids))


def add_id(version: Path, name: str) -> None:
    ids = json.loads((version / name).read_text())
    write_signed(version, name, json.dumps([*ids, "extra"]))


# (what breaks, how, the message: file and reason)
CASES: list[tuple[str, Callable[[Path], object], str]] = [
    # files missing
    ("no manifest", lambda v: (v / "manifest.json").unlink(), r"manifest.json: missing"),
    (
        "a listed file missing",
        lambda v: (v / "seen_indices.npy").unlink(),
        r"seen_indices.npy: missing \(listed in manifest.json\)",
    ),
    (
        "a needed file missing and unlisted",
        lambda v: drop_from_manifest(v, "item_bias.npy"),
        r"item_bias.npy: missing",
    ),
    (
        "SavedModel variables missing",
        lambda v: (v / "variables" / "variables.index").unlink(),
        r"variables/variables.index: missing \(listed in manifest.json\)",
    ),
    # files altered after export
    (
        "checksum mismatch",
        lambda v: np.save(v / "item_factors.npy", load(v, "item_factors.npy") * 1.01),
        r"item_factors.npy: SHA-256 [0-9a-f]{64} != manifest's [0-9a-f]{64}",
    ),
    (
        "truncated .npy (checksum catches it)",
        lambda v: truncate(v, "user_factors.npy"),
        r"user_factors.npy: SHA-256 [0-9a-f]{64} != manifest's",
    ),
    # files wrong from the start (re-signed)
    (
        "truncated .npy",
        lambda v: (truncate(v, "user_factors.npy"), resign(v, "user_factors.npy")),
        r"user_factors.npy: not a readable .npy array",
    ),
    (
        "not an .npy at all",
        lambda v: write_signed(v, "item_bias.npy", "hello"),
        r"item_bias.npy: not a readable .npy array",
    ),
    (
        "wrong dtype",
        lambda v: save_signed(v, "user_factors.npy", load(v, "user_factors.npy").astype("f8")),
        r"user_factors.npy: dtype float64, expected float32",
    ),
    (
        "object array (would need unpickling)",
        lambda v: save_signed(v, "item_bias.npy", np.array([{"x": 1}] * 40, dtype=object)),
        r"item_bias.npy: not a readable .npy array \(.*Python objects",
    ),
    (
        "factors with a row fewer than the id list",
        lambda v: save_signed(v, "item_factors.npy", load(v, "item_factors.npy")[:-1]),
        r"item_factors.npy: shape \(39, 8\), expected \(40, 8\) from the id lists",
    ),
    (
        "user and item factors of different widths",
        lambda v: save_signed(v, "item_factors.npy", load(v, "item_factors.npy")[:, :7]),
        r"item_factors.npy: shape \(40, 7\), expected \(40, 8\)",
    ),
    (
        "an id list longer than the factors",
        lambda v: add_id(v, "user_ids.json"),
        r"user_factors.npy: shape \(60, 8\), expected \(61, 'any'\)",
    ),
    (
        "bias of the wrong length",
        lambda v: save_signed(v, "user_bias.npy", load(v, "user_bias.npy")[:10]),
        r"user_bias.npy: shape \(10,\), expected \(60,\)",
    ),
    (
        "id lists in another order than the SavedModel's",
        lambda v: swap_first_and_last(v, "user_ids.json"),
        r"saved_model.pb: SavedModel and factor files disagree by",
    ),
    (
        "factors that are not the SavedModel's",
        lambda v: save_signed(v, "item_factors.npy", load(v, "item_factors.npy")[::-1].copy()),
        r"saved_model.pb: SavedModel and factor files disagree by",
    ),
    (
        "NaN in the factors",
        lambda v: save_signed(v, "user_factors.npy", with_nan(load(v, "user_factors.npy"))),
        r"user_factors.npy: contains NaN or infinite values",
    ),
    (
        "inf in a bias",
        lambda v: save_signed(v, "item_bias.npy", with_nan(load(v, "item_bias.npy"), np.inf)),
        r"item_bias.npy: contains NaN or infinite values",
    ),
    (
        "duplicate ids",
        lambda v: write_signed(v, "item_ids.json", json.dumps(["a"] * 40)),
        r"item_ids.json: 39 duplicate ids",
    ),
    (
        "ids that are not strings",
        lambda v: write_signed(v, "item_ids.json", json.dumps(list(range(40)))),
        r"item_ids.json: expected a JSON list of string ids",
    ),
    (
        "seen items pointing past the catalogue",
        lambda v: save_signed(v, "seen_indices.npy", load(v, "seen_indices.npy") + 1000),
        r"seen_indices.npy: item rows outside 0..39",
    ),
    (
        "a seen-items index that is not a CSR pointer",
        lambda v: save_signed(v, "seen_indptr.npy", load(v, "seen_indptr.npy")[::-1].copy()),
        r"seen_indptr.npy: not a valid CSR index pointer",
    ),
    (
        "item columns of fewer rows than the id list",
        lambda v: (
            write_item_columns(v / "item_columns.npz", ["x"] * 39, [[]] * 39, [None] * 39),
            resign(v, "item_columns.npz"),
        ),
        r"item_columns.npz: title_ends has 39 rows, the id list 40 items",
    ),
    (
        "item columns that are not an .npz",
        lambda v: write_signed(v, "item_columns.npz", "hello"),
        r"item_columns.npz: not a readable .npz of arrays",
    ),
    (
        "a broken SavedModel",
        lambda v: write_signed(v, "saved_model.pb", "not a protobuf"),
        r"saved_model.pb: SavedModel does not load",
    ),
    # the manifest itself
    (
        "another format version",
        lambda v: edit_manifest(v, format_version=2),
        r"manifest.json: format_version 2, this service reads 1",
    ),
    (
        "manifest not JSON",
        lambda v: (v / "manifest.json").write_text("{"),
        r"manifest.json: unreadable JSON",
    ),
    (
        "manifest missing a field",
        lambda v: edit_manifest(v, model=None),
        r"manifest.json: model: Input should be a valid dictionary",
    ),
    (
        "manifest pointing outside the version",
        lambda v: edit_manifest(v, files={"../../secret": "0" * 64}),
        r"manifest.json: file entry '../../secret' leaves the dir",
    ),
    (
        "manifest of another version number",
        lambda v: edit_manifest(v, version=7),
        r"manifest.json: says version 7 but lives in directory 2",
    ),
    (
        "a signature the service cannot call",
        lambda v: edit_manifest(v, model={"kind": "mf_bias", "factors": 8, "signature": "x"}),
        r"saved_model.pb: no signature 'x' \(has \['serving_default'\]\)",
    ),
]


@pytest.fixture
def good_and_bad(version_dir, tmp_path) -> tuple[Path, Path]:
    """models/tiny/1: the good version; models/tiny/2: a copy to break."""
    good = tmp_path / "models" / MODEL_NAME / "1"
    shutil.copytree(version_dir, good)
    bad = good.parent / "2"
    shutil.copytree(version_dir, bad)
    edit_manifest(bad, version=2)
    return good, bad


@pytest.mark.parametrize(("break_it", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_broken_version_is_refused_naming_the_file_and_an_older_one_serves(
    good_and_bad, break_it, message
):
    good, bad = good_and_bad
    break_it(bad)
    with pytest.raises(ArtifactError, match=message) as refused:
        load_version(bad)
    assert str(bad) in str(refused.value) or "saved_model.pb" in str(refused.value)

    assert load_newest(good.parent).version == 1
    with make_client(models_dir=good.parent.parent, model_name=MODEL_NAME, poll_seconds=0) as c:
        ready = c.get("/ready").json()
        assert ready["model"]["version"] == 1
        reason = ready["refused"]["2"]
        assert reason.startswith(f"{MODEL_NAME}/2/")  # relative: no host paths in answers
        assert str(good.parent.parent) not in reason


def test_with_only_broken_versions_ready_is_503_and_says_why(good_and_bad):
    good, bad = good_and_bad
    shutil.rmtree(good)
    (bad / "item_bias.npy").unlink()
    with make_client(models_dir=good.parent.parent, model_name=MODEL_NAME, poll_seconds=0) as c:
        response = c.get("/ready")
        assert response.status_code == 503
        assert response.json() == {
            "status": "no model loaded",
            "model": None,
            "store": {
                "status": "ok",
                "url": "sqlite:events.sqlite3",
                "id": c.app.state.service.events.store.identity.id,
                "applied_through": 0,
                "error": None,
            },  # fmt: skip
            "refused": {"2": f"{MODEL_NAME}/2/item_bias.npy: missing (listed in manifest.json)"},
            "fold_in": [],
            "problems": [],
        }
