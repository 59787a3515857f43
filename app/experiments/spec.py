"""What an experiment is: `PUT /admin/experiments/{name}`'s body, checked, and the record kept
as a control row of the event store (`experiment:<name>`), so every worker and replica runs the
same experiments and a restart keeps them."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME = re.compile(NAME_PATTERN)
VariantName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
PREFIX = "experiment:"


class VariantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the version this variant's users are answered by")


class ExperimentBody(BaseModel):
    """An experiment to start: A/B (each user in one variant, by a hash of experiment and user)
    or interleave (every user sees both variants' lists merged by team draft; exactly two)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "method": "ab",
                    "variants": {"control": {"version": 6}, "treatment": {"version": 7}},
                    "split": {"control": 0.5, "treatment": 0.5},
                }
            ]
        },
    )

    method: Literal["ab", "interleave"]
    variants: dict[VariantName, VariantBody] = Field(
        min_length=2, max_length=8, json_schema_extra={"additionalProperties": False}
    )
    split: dict[VariantName, Annotated[float, Field(gt=0, le=1)]] | None = Field(
        None,
        description="A/B: each variant's share of users, summing to 1; default equal",
        json_schema_extra={"additionalProperties": False},
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentBody:
        if self.method == "interleave":
            if len(self.variants) != 2:
                raise ValueError(f"interleave takes exactly two variants, not {len(self.variants)}")
            if self.split is not None:
                raise ValueError("interleave has no split: every user sees both variants")
            return self
        if self.split is None:
            return self
        if set(self.split) != set(self.variants):
            raise ValueError(
                f"split names {sorted(self.split)} but the variants are {sorted(self.variants)}"
            )
        if any(not (0 < share <= 1) or not math.isfinite(share) for share in self.split.values()):
            raise ValueError("each share of the split must be in (0, 1]")
        if abs(sum(self.split.values()) - 1) > 1e-6:
            raise ValueError(f"the split must sum to 1, not {sum(self.split.values()):g}")
        return self


@dataclass(frozen=True)
class Experiment:
    name: str
    method: Literal["ab", "interleave"]
    variants: dict[str, int]  # variant -> version
    split: dict[str, float]  # A/B shares (equal by default); empty for interleave
    started: float
    ended: float | None = None

    @classmethod
    def of(cls, name: str, body: ExperimentBody, started: float) -> Experiment:
        variants = {v: spec.version for v, spec in body.variants.items()}
        split: dict[str, float] = {}
        if body.method == "ab":
            split = dict(body.split) if body.split else {v: 1 / len(variants) for v in variants}
        return cls(name, body.method, variants, split, started)

    @property
    def running(self) -> bool:
        return self.ended is None

    @property
    def versions(self) -> set[int]:
        return set(self.variants.values())

    def to_json(self) -> str:
        return json.dumps(self.public(), sort_keys=True)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "variants": {v: {"version": n} for v, n in self.variants.items()},
            "split": self.split or None,
            "started": self.started,
            "ended": self.ended,
            "status": "running" if self.running else "ended",
        }

    @classmethod
    def from_json(cls, value: str) -> Experiment:
        raw = json.loads(value)
        return cls(
            raw["name"],
            raw["method"],
            {v: int(spec["version"]) for v, spec in raw["variants"].items()},
            {v: float(s) for v, s in (raw.get("split") or {}).items()},
            float(raw["started"]),
            None if raw.get("ended") is None else float(raw["ended"]),
        )
