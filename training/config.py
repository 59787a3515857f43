"""The training configuration: plain data, importable without TensorFlow (the CLI builds its
options from it).

Each model kind has its own defaults (optimizer included) and learning rates per optimizer, in
the kinds table (`training.models.kinds`). `TrainConfig.for_model(kind, **overrides)` starts from
them; `TrainConfig()` is mf_bias's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from training.models.kinds import LARGE_ALS, LARGE_DATA, model_kind

# How TrainConfig.split_by holds data out.
SPLITS = ("rating", "user", "time", "user-time")
SOLVERS = ("gradient", "als")  # how the rating model is fitted (training.als for "als")
# How the retrieval vectors are fitted (RetrievalConfig.solver).
RETRIEVAL_SOLVERS = ("auto", "softmax", "als")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. The field defaults are mf_bias's."""

    model: str = "mf_bias"
    factors: int = 64
    l2: float = 0.1
    bias_l2: float = 0.0
    regularization: str = "example"
    init_std: float = 0.01
    dropout: float = 0.0
    dense_l2: float = 0.0
    # "gradient": `optimizer` on mini-batches (training.loop); "als": alternating least
    # squares, mf and mf_bias only (training.als; `optimizer`, `learning_rate` and
    # `batch_size` unused).
    solver: str = "gradient"
    # Where ALS starts: "spectral" (item factors from the residuals' leading singular vectors,
    # training.spectral) or "random" (the model's own small random tables).
    als_start: str = "spectral"
    # ALS passes after the first: 0 solves each row exactly; n > 0 takes n conjugate-gradient
    # steps from each row's previous solution (training.als_steps.conjugate_gradient).
    als_cg_steps: int = 0
    optimizer: str = "adam"
    learning_rate: float = 0.001
    batch_size: int = 256
    epochs: int = 60
    patience: int = 3
    # Early stopping counts an epoch as a gain only when it lowers the best validation loss by
    # this share of it (0: any gain; large-data ALS takes 0.001, training.models.kinds).
    min_gain: float = 0.0
    refit: bool = True
    seed: int = 42
    validation: float = 0.1
    test: float = 0.1
    # "rating": a random share of all ratings is held out; "user": a share of each user's
    # ratings (RecBole's 8:1:1 protocol); "time": the newest ratings of all (one cut-off in
    # time); "user-time": each user's newest.
    split_by: str = "rating"

    @classmethod
    def for_model(
        cls, model: str = "mf_bias", ratings: int | None = None, **overrides: Any
    ) -> TrainConfig:
        """The tuned defaults of `model` (and of its optimizer's learning rate), its settings
        for large data when `ratings` reaches LARGE_DATA, then any overrides that are not None.

        Large data: mf and mf_bias take alternating least squares (LARGE_ALS) unless a solver,
        an optimizer, a learning rate or a batch size is given; the gradient loop with Adam
        takes a large batch, its learning rate, no refit and at most 20 epochs.

        Raises:
            ValueError: an unknown option, optimizer or solver, or ALS for a model it cannot fit.
        """
        kind = model_kind(model)
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}")
        optimizer = given.get("optimizer", kind.defaults.get("optimizer", cls.optimizer))
        if optimizer not in kind.learning_rates:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(kind.learning_rates)}"
            )
        solver = given.get("solver", cls.solver)
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
        if solver == "als" and not kind.als:
            raise ValueError(f"--solver als trains mf and mf_bias, not {model}")
        values = {**kind.defaults, "learning_rate": kind.learning_rates[optimizer]}
        large = ratings is not None and ratings >= LARGE_DATA
        chosen = given.keys() & {"solver", "optimizer", "learning_rate", "batch_size"}
        if large and kind.als and not chosen:
            solver = "als"
        if large and solver == "als":
            values.update(LARGE_ALS)
        elif large and optimizer == "adam":
            values.update(kind.large)
        return cls(**{**values, **given, "model": model})

    def model_params(self) -> dict[str, Any]:
        """The arguments the architecture itself takes (see training.models.kinds.build_model)."""
        return {
            "factors": self.factors,
            "l2": self.l2,
            "bias_l2": self.bias_l2,
            "regularization": self.regularization,
            "init_std": self.init_std,
            "dropout": self.dropout,
            "dense_l2": self.dense_l2,
        }


@dataclass(frozen=True)
class RetrievalConfig:
    """Defaults tuned on ml-100k's validation split (bench/retrieval.py; bench/README.md)."""

    factors: int = 64
    l2: float = 5e-5
    init_std: float = 0.05
    learning_rate: float = 0.01
    # A step takes this many users with all their positives (the softmax is computed once per
    # user, not once per positive: the same loss, ~50x less work per epoch on ml-100k).
    batch_users: int = 64
    # Over this many items the softmax is sampled (the batch's positives' items plus
    # `negatives` uniform ones, logQ-corrected; training.models.retrieval); None: never.
    sampled_above: int | None = 10000
    negatives: int = 4096
    epochs: int = 60
    patience: int = 3
    # Which ratings count as "the user wants this": at or above `positive_from` (None: every
    # rating). `weighting="rating"` weights each positive by its rating over the mean rating.
    # Every rating, weighted, won on validation (a 1-star rating still says "seen it"; a 5-star
    # one counts 5x as much).
    positive_from: float | None = None
    weighting: str = "rating"
    seed: int = 42
    # Validation NDCG@10 is measured on at most this many users per epoch (all on ml-100k).
    eval_users: int = 2000
    # How the vectors are fitted: "softmax" (the gradient loop above), "als" (implicit-feedback
    # alternating least squares, training.als_implicit: confidence 1 + alpha * weight for a
    # positive, l2 `als_l2`, one pass an epoch), or "auto": ALS where the softmax would be
    # sampled (catalogues over `sampled_above`), where the sampled softmax learned popularity
    # and little else (bench/README.md, "Implicit ALS for the retrieval vectors").
    solver: str = "auto"
    # Chosen on the validation splits of the planted 3M (12k items) and 20M (27k items) sets
    # from alpha 0.3-10 x l2 1-1000: 100 ranked best on the first and close to best on the
    # second (200: +0.003 NDCG@10 there in twice the passes); from 300 on the first it falls to
    # popularity. L2 is absolute, so a much smaller catalogue may want less.
    alpha: float = 1.0
    als_l2: float = 100.0

    def __post_init__(self):
        if self.weighting not in ("none", "rating"):
            raise ValueError(f"weighting must be 'none' or 'rating', not {self.weighting!r}")
        if self.solver not in RETRIEVAL_SOLVERS:
            raise ValueError(
                f"retrieval solver must be one of {', '.join(RETRIEVAL_SOLVERS)}, not "
                f"{self.solver!r}"
            )
        if self.alpha <= 0 or self.als_l2 <= 0:
            raise ValueError(
                f"retrieval ALS needs alpha > 0 and l2 > 0, not {self.alpha:g} and {self.als_l2:g}"
            )

    def sampled(self, n_items: int) -> bool:
        """Whether the softmax over a catalogue of `n_items` is sampled (`sampled_above`)."""
        return self.sampled_above is not None and n_items > self.sampled_above

    def resolved(self, n_items: int) -> RetrievalConfig:
        """This config with "auto" replaced by the solver a catalogue of `n_items` gets."""
        if self.solver != "auto":
            return self
        return replace(self, solver="als" if self.sampled(n_items) else "softmax")


@dataclass(frozen=True)
class RankerConfig:
    """/recommend's learned second stage (`training.ranker`); `widths` is searched, and the
    epochs chosen, on held-out validation users."""

    per_source: int = 100  # candidates from each first-stage score (their union is ranked)
    widths: tuple[int, ...] = (16, 32)
    learning_rate: float = 0.01
    batch_users: int = 32
    max_epochs: int = 40
    patience: int = 4
    held_out_share: float = 0.25  # of validation users, for early stopping and the width
    seed: int = 42
    # Keep the ranker only if, on those held-out users, it beats the blend's own order of the
    # same candidates (False: keep it whatever they say, for tests and experiments).
    require_gain: bool = True


@dataclass(frozen=True)
class ItemItemConfig:
    """The item-item weights blended into /recommend's ranking (`training.itemitem`); the grid
    is searched on validation NDCG@10 (bench/README.md, "Top-N on ml-100k")."""

    # Over this many items the items x items matrix is not built (27k items: 2.9 GB, minutes).
    max_items: int = 8000
    strengths: tuple[float, ...] = (2.0, 5.0, 12.0)  # in units of the mean item's sum of r^2
    dropouts: tuple[float, ...] = (0.25, 0.5)
    blends: tuple[float, ...] = (0.2, 0.35, 0.5, 0.65)  # the item-item ranking's share
    # The learned second stage over the blend's candidates; None: the blend ranks alone.
    ranker: RankerConfig | None = RankerConfig()  # noqa: RUF009 (frozen)
