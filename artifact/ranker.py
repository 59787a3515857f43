"""The second stage of /recommend: a small learned ranker over a candidate set.

The first stage scores the whole catalogue twice, with the vectors (p_u Q' + b) and with the
item-item weights (x_u B), each standardised over the catalogue for the user
(`app.ranking.blend`). The candidates are the union of each one's best `per_source` items the
user has not rated. Each candidate gets one row of features:

    vectors     the vectors' standardised score
    item_item   the item-item standardised score
    rating      the rating model's prediction (offset_u + p_u q_i + b_i), unclipped
    popularity  log(1 + raters) in what the version learned from
    year        the release year (the catalogue's mean where unknown)
    activity    log(1 + the user's ratings)
    genre       over the candidate's genres, the sum of the share of the user's stars given
                to films of each

The rows are standardised with the training lists' mean and scale, and a network with one
hidden layer (relu) scores each; the candidates are ranked by it, above every other item.
`training.ranker` fits it with softmax cross-entropy over each user's candidates. Training and
the service both compute the features here, so the two cannot drift apart; one matrix per
request, no loop over items.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from artifact.errors import ArtifactError
from artifact.files import read_array
from artifact.layout import RANKER_HIDDEN, RANKER_ITEMS, RANKER_OUTPUT
from artifact.topn import best_rows

if TYPE_CHECKING:
    from artifact.manifest import RankerSpec

FEATURES = ("vectors", "item_item", "rating", "popularity", "year", "activity", "genre")
# The columns of the per-item table (`RankerWeights.items`) before the genre indicators.
ITEM_COLUMNS = ("popularity", "year")


def candidates(
    z_vec: np.ndarray, z_ii: np.ndarray, exclude: np.ndarray | None, per_source: int
) -> np.ndarray:
    """The rows in either score's best `per_source` among those not in `exclude`, ascending.

    `z_vec` may be longer than `z_ii` (items folded in after the version: no item-item
    weights); those rows compete through the vectors alone. Any order-preserving transform
    of either score picks the same rows (the raw scores will do).
    """
    n, m = len(z_vec), len(z_ii)
    vec, ii = np.array(z_vec, np.float32), np.array(z_ii, np.float32)  # copies: written below
    if exclude is None:
        exclude = np.empty(0, np.int64)
    vec[exclude[exclude < n]] = -np.inf
    ii[exclude[exclude < m]] = -np.inf
    chosen = np.zeros(n, bool)
    for scores in (vec, ii):
        k = min(per_source, len(scores))
        if k > 0:
            chosen[best_rows(scores, k)] = True  # the top-N kernel's selection, unsorted
    chosen[exclude[exclude < n]] = False  # picked only where fewer rows were left
    return np.flatnonzero(chosen)


@dataclass(frozen=True)
class RankerWeights:
    """What a version exports of its ranker: the per-item table and the network."""

    items: np.ndarray  # (catalogue, 2 + genres): ITEM_COLUMNS, then 0/1 per genre
    mean: np.ndarray  # (features,) the training lists' mean of each feature
    scale: np.ndarray  # (features,) and their standard deviation (1 where constant)
    hidden: np.ndarray  # (features + 1, H): weights, then the bias row
    output: np.ndarray  # (H + 1,): weights, then the bias
    per_source: int

    def check(self) -> None:
        """Raises ValueError when the pieces do not fit together (the message says how)."""
        f = len(FEATURES)
        if self.items.ndim != 2 or self.items.shape[1] < len(ITEM_COLUMNS):
            raise ValueError(f"item table of shape {self.items.shape}: expected (items, >= 2)")
        if self.mean.shape != (f,) or self.scale.shape != (f,):
            raise ValueError(f"mean {self.mean.shape} and scale {self.scale.shape}: want ({f},)")
        if self.hidden.ndim != 2 or self.hidden.shape[0] != f + 1:
            raise ValueError(f"hidden layer of shape {self.hidden.shape}: expected ({f + 1}, H)")
        if self.output.shape != (self.hidden.shape[1] + 1,):
            raise ValueError(
                f"output of shape {self.output.shape}: expected ({self.hidden.shape[1] + 1},)"
            )
        if self.per_source < 1:
            raise ValueError(f"per_source {self.per_source}: at least 1")

    def features(
        self,
        rows: np.ndarray,
        z_vec: np.ndarray,
        z_ii: np.ndarray,
        rating: np.ndarray,
        rated_rows: np.ndarray,
        ratings: np.ndarray,
    ) -> np.ndarray:
        """The (len(rows), FEATURES) matrix for candidate `rows` of one user, unstandardised.

        Args:
            z_vec, z_ii, rating: the user's standardised vectors' and item-item scores and the
                rating model's predictions, each at `rows` (aligned with them). Rows past the
                catalogue (items folded in after the version) have no item-item weights: give
                them 0, the catalogue's mean; their table row is the mean year and no raters.
            rated_rows, ratings: the user's rated catalogue rows and their stars.
        """
        n_catalogue = len(self.items)
        out = np.empty((len(rows), len(FEATURES)), np.float32)
        out[:, 0] = z_vec
        out[:, 1] = z_ii
        out[:, 2] = rating
        out[:, 5] = np.log1p(len(rated_rows))
        if len(rows) == 0 or rows.max() < n_catalogue:
            table = self.items[rows]
        else:
            inside = rows < n_catalogue
            table = np.zeros((len(rows), self.items.shape[1]), np.float32)
            table[inside] = self.items[rows[inside]]
            table[~inside, 1] = self.mean[FEATURES.index("year")]
        out[:, 3:5] = table[:, :2]
        np.matmul(table[:, 2:], genre_profile(self._genres, rated_rows, ratings), out=out[:, 6])
        return out

    @cached_property
    def _genres(self) -> np.ndarray:
        """The item table's genre indicators as one contiguous block (a faster gather)."""
        return np.ascontiguousarray(self.items[:, len(ITEM_COLUMNS) :])

    def score(self, features: np.ndarray) -> np.ndarray:
        """The network's score of each row of `features` (unstandardised, as `features`)."""
        weights, bias, output, output_bias = self._folded
        hidden = features @ weights
        hidden += bias
        np.maximum(hidden, 0.0, out=hidden)
        out: np.ndarray = hidden @ output
        out += output_bias
        return out

    @cached_property
    def _folded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.float32]:
        """The hidden layer with the standardisation folded in: ((x - m) / s) W + b is
        x (W / s') + (b - (m / s) W), one product per request instead of three passes."""
        w = np.asarray(self.hidden[:-1], np.float64)
        scale = np.asarray(self.scale, np.float64)[:, None]
        folded = (w / scale).astype(np.float32)
        bias = self.hidden[-1] - (np.asarray(self.mean, np.float64) / scale[:, 0]) @ w
        output = np.ascontiguousarray(self.output[:-1], np.float32)
        return np.ascontiguousarray(folded), bias.astype(np.float32), output, self.output[-1]


def genre_profile(genres: np.ndarray, rated_rows: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    """The share of a user's stars given to films of each genre (zeros without ratings), from
    the (items, genres) indicators; rated rows past them (new items) count for none."""
    stars = np.asarray(ratings, np.float32)
    if len(rated_rows) and rated_rows.max() >= len(genres):
        inside = rated_rows < len(genres)
        rated_rows, stars = rated_rows[inside], stars[inside]
    total = float(stars.sum())
    if total <= 0:
        return np.zeros(genres.shape[1], np.float32)
    profile: np.ndarray = stars @ genres[rated_rows]
    profile /= total
    return profile


def item_table(
    counts: np.ndarray, years: np.ndarray, genre_sets: list[list[str]], vocabulary: list[str]
) -> np.ndarray:
    """The per-item table: log(1 + raters), the year (NaN: the mean of the known ones, 0 when
    none is), then one indicator per genre of `vocabulary`."""
    years = np.asarray(years, np.float64)
    known = np.isfinite(years)
    fill = float(years[known].mean()) if known.any() else 0.0
    table = np.zeros((len(counts), len(ITEM_COLUMNS) + len(vocabulary)), np.float32)
    table[:, 0] = np.log1p(np.asarray(counts, np.float64))
    table[:, 1] = np.where(known, years, fill)
    column = {g: len(ITEM_COLUMNS) + i for i, g in enumerate(vocabulary)}
    for row, genres in enumerate(genre_sets):
        for g in genres:
            if g in column:
                table[row, column[g]] = 1.0
    return table


def reranked(scores: np.ndarray, rows: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """`scores` (the first stage's, full length) with candidate `rows` given their `ranked`
    scores and every other row moved below the lowest of those, its order kept: a fresh
    array the top-N kernel ranks (filters can still reach past the candidates)."""
    out = np.array(scores, np.float32)
    if len(rows) == 0:
        return out
    top = float(out.max())  # -inf rows (excluded) stay -inf below
    out -= (top if np.isfinite(top) else 0.0) - float(ranked.min()) + 1.0
    out[rows] = ranked
    return out


def write_ranker(directory: Path, weights: RankerWeights) -> None:
    """Write the ranker's three arrays into a version's (staging) directory."""
    weights.check()
    for name, array in (
        (RANKER_ITEMS, weights.items),
        (RANKER_HIDDEN, weights.hidden),
        (RANKER_OUTPUT, weights.output),
    ):
        np.save(directory / name, np.ascontiguousarray(array, np.float32))


def read_ranker(directory: Path, spec: RankerSpec, n_items: int) -> RankerWeights:
    """The ranker of a version, each file checked against `spec` and the catalogue.

    Raises:
        ArtifactError: a file missing or of the wrong shape, or features this code does not
            compute (the message names the file or the manifest's list).
    """
    if tuple(spec.features) != FEATURES:
        raise ArtifactError(
            f"{directory / 'manifest.json'}: ranker features {spec.features}, this service "
            f"computes {list(FEATURES)}"
        )
    f = len(FEATURES)
    items = read_array(directory / spec.items, (n_items, len(ITEM_COLUMNS) + len(spec.genres)))
    hidden = read_array(directory / spec.hidden, (f + 1, spec.width))
    output = read_array(directory / spec.output, (spec.width + 1,))
    mean, scale = (np.asarray(v, np.float32) for v in (spec.mean, spec.scale))
    return RankerWeights(items, mean, scale, hidden, output, spec.per_source)
