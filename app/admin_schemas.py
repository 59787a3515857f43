"""The bodies of the admin routes that say how answers did: `GET /admin/online` and the
experiments' reports (`/admin/experiments`). Rates come with Wilson 95% intervals, means with
normal ones; null where there is nothing to estimate from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Estimate(BaseModel):
    value: float | None
    low: float | None = Field(description="95% interval")
    high: float | None


class Coverage(BaseModel):
    items: int = Field(description="distinct items shown")
    of: int = Field(description="the catalogue's items")
    share: float | None
    impressions_read: int = Field(description="the newest impressions the count read")


class Group(BaseModel):
    """How one version (in an experiment: one variant) did."""

    version: int
    experiment: str | None = None
    variant: str | None = None
    users: int | None = None
    impressions: int
    could_be_hit: int = Field(
        description="impressions with a hit, or whose user rated anything within the "
        "attribution window after them"
    )
    hit_impressions: int
    hits: int = Field(description="ratings attributed to these impressions")
    hit_rate: Estimate = Field(description="hit_impressions / could_be_hit")
    mean_rating_of_hits: Estimate
    share_of_hits_4_plus: Estimate
    coverage: Coverage | None = None
    wins: int | None = Field(None, description="interleaved: impressions this variant won")
    user_hit_rate: Estimate | None = Field(
        None, description="A/B: the mean over users of each one's hit rate (the verdict's unit)"
    )


class Bucket(BaseModel):
    start: float
    version: int
    experiment: str | None
    variant: str | None
    impressions: int
    hit_impressions: int


class Span(BaseModel):
    start: float
    end: float
    seconds: float


class Online(BaseModel):
    window: Span
    attribution_window: float = Field(description="seconds (RECSYS_ATTRIBUTION_WINDOW)")
    groups: list[Group] = Field(description="per version and variant, interleaved answers aside")
    series: list[Bucket] = Field(description="the window in equal slices, for charts")
    retrain: list[dict[str, object]] = Field(
        default_factory=list, description="the retrain loop's recent rounds, refusals included"
    )


class FixedHorizon(BaseModel):
    low: float | None
    high: float | None
    p_value: float | None


class Comparison(BaseModel):
    versus: str = Field(description="the variant compared with")
    value: float | None = Field(
        description="A/B: this variant's user hit rate minus the other's; interleaved: the mean "
        "user preference for this variant over the other (in -1..1)"
    )
    low: float | None = Field(description="95% interval: always valid where fixed_horizon is given")
    high: float | None
    p_value: float | None
    fixed_horizon: FixedHorizon | None = Field(
        None, description="the interval and p-value for one look at a sample size fixed in advance"
    )


class VariantSpec(BaseModel):
    version: int


class Experiment(BaseModel):
    name: str
    method: Literal["ab", "interleave"]
    status: Literal["running", "ended"]
    started: float
    ended: float | None
    split: dict[str, float] | None


class ExperimentList(BaseModel):
    experiments: list[Experiment]


class ExperimentReport(Experiment):
    variants: dict[str, Group]
    difference: dict[str, Comparison] = Field(
        description="A/B: each variant's user hit rate against the control's (Welch); "
        "interleaved: the credited hit rates (the same answers: informative, not the verdict)"
    )
    preference: dict[str, Comparison] | None = Field(
        None,
        description="interleaved: the users' mean preference for this variant over the other",
    )
    winner: str | None = Field(
        description="the variant that does better beyond the 95% interval; null until then"
    )
