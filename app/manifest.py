"""The version contract: `manifest.json` as training writes it, parsed and checked on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class ArtifactError(Exception):
    """A version directory that cannot be served. The message names the file and the reason."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())


class ModelSpec(_Frozen):
    kind: str
    factors: int = Field(ge=1)
    signature: str = "serving_default"


class RecommendSpec(_Frozen):
    """Which arrays /recommend ranks with and what its score means."""

    source: str = "rating"  # "retrieval" or the rating model's kind
    user_factors: str
    item_factors: str
    item_bias: str | None = None
    user_bias: str | None = None
    # "rating": score + global_mean + user_bias is the predicted rating; "dot": a ranking score.
    score: Literal["rating", "dot"] = "dot"


class Manifest(_Frozen):
    format_version: int
    name: str
    version: int = Field(ge=1)
    created: str
    model: ModelSpec
    global_mean: float
    rating_range: tuple[float, float]
    counts: dict[str, int]
    metrics: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    training: dict = Field(default_factory=dict)
    recommend: RecommendSpec
    recommend_by_rating: RecommendSpec | None = None
    files: dict[str, str]
    tensorflow_version: str = ""


def read_json_artifact(path: Path, missing: str = "missing") -> Any:
    """Parse one JSON file of a version.

    Raises:
        ArtifactError: the file is missing (message `missing`) or is not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {missing}") from None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path}: unreadable JSON ({err})") from None


def read_manifest(version_dir: Path) -> Manifest:
    """Parse and check `version_dir/manifest.json`.

    Raises:
        ArtifactError: missing, not JSON, another format version, or fields missing/wrong.
    """
    path = version_dir / MANIFEST
    raw = read_json_artifact(path, "missing (not a complete exported version)")
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format_version {raw.get('format_version')!r}, this service reads "
            f"{FORMAT_VERSION}"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ArtifactError(f"{path}: {problems}") from None
    if (
        version_dir.name.isascii()
        and version_dir.name.isdigit()
        and manifest.version != int(version_dir.name)
    ):
        raise ArtifactError(
            f"{path}: says version {manifest.version} but lives in directory {version_dir.name}"
        )
    return manifest
