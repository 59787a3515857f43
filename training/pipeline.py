"""`train_version`: ratings in, a served-ready version out. The rating model and the retrieval
vectors are fitted on one split (so their rows line up), then exported as the next version.
The CLI, the benchmarks and the tests all train through here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.config import ItemItemConfig, RetrievalConfig, TrainConfig
from training.data.ratings import RatingsData
from training.fitting import Log
from training.rating import TrainedModel, train_rating
from training.retrieval import RetrievalResult


@dataclass
class TrainedVersion:
    path: Path  # models_dir/name/<version>
    rating: TrainedModel
    retrieval: RetrievalResult | None


def train_version(
    data: RatingsData,
    models_dir: str | Path,
    name: str,
    config: TrainConfig | None = None,
    retrieval: RetrievalConfig | None = RetrievalConfig(),  # noqa: B008 (frozen)
    log: Log = print,
    item_item: ItemItemConfig | None = ItemItemConfig(),  # noqa: B008 (frozen)
) -> TrainedVersion:
    """Train the rating model of `config` (default mf_bias's) and the retrieval vectors of
    `retrieval` (None: no retrieval vectors; /recommend then ranks by predicted rating) on the
    same split, and the item-item weights of `item_item` blended with those vectors (None, or a
    catalogue over its size: none); export them as the next version of `models_dir/name`.

    Raises:
        ValueError: data a model cannot learn from (too few users, items or ratings).
        TrainingDiverged: a loss became NaN or infinite; nothing is exported.
    """
    from training.export import export_version
    from training.retrieval import train_retrieval

    rating = train_rating(data, config, log)
    vectors = None
    if retrieval is not None:
        vectors = train_retrieval(rating.split, retrieval, refit=rating.refitted, log=log)
        if item_item is not None:
            from training.itemitem import train_item_item

            vectors.item_item = train_item_item(rating.split, vectors, item_item, log)
    events = None
    if data.store is not None:
        from dataclasses import asdict

        from artifact.manifest import EventsSpec

        events = EventsSpec(**asdict(data.store))
    path = export_version(rating, models_dir, name, data.ratings, data.items, vectors, events)
    return TrainedVersion(path, rating, vectors)
