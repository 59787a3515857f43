"""`train_version`: ratings in, a served-ready version out. The rating model and the retrieval
vectors are fitted on one split (so their rows line up), then exported as the next version.
The CLI, the benchmarks and the tests all train through here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from artifact.manifest import GateSpec
from training.config import ItemItemConfig, RetrievalConfig, TrainConfig
from training.data.ratings import RatingsData
from training.fitting import Log
from training.rating import TrainedModel, train_rating
from training.retrieval import RetrievalResult


@dataclass
class TrainedVersion:
    path: Path | None  # models_dir/name/<version>; None on a worker that does not export
    rating: TrainedModel
    retrieval: RetrievalResult | None
    # Wall seconds per stage: "rating model", "retrieval", "item-item", "ranker", "export".
    stages: dict[str, float] = field(default_factory=dict)

    def describe_stages(self) -> str:
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.stages.items())


def train_version(
    data: RatingsData,
    models_dir: str | Path,
    name: str,
    config: TrainConfig | None = None,
    retrieval: RetrievalConfig | None = RetrievalConfig(),  # noqa: B008 (frozen)
    log: Log = print,
    item_item: ItemItemConfig | None = ItemItemConfig(),  # noqa: B008 (frozen)
    export: bool = True,
    ann_min_items: int | None = None,
    gate: GateSpec | None = None,
) -> TrainedVersion:
    """Train the rating model of `config` (default mf_bias's) and the retrieval vectors of
    `retrieval` (None: no retrieval vectors; /recommend then ranks by predicted rating) on the
    same split, and the item-item weights of `item_item` blended with those vectors (None, or a
    catalogue over its size: none); export them as the next version of `models_dir/name`.
    Without `export` (a worker of a cluster other than its chief: training.distribute) it
    stops after training the models every worker trains together. Catalogues of at least
    `ann_min_items` items (default `artifact.ann.MIN_ITEMS`) get an approximate top-N index;
    `gate` records how the retrain loop let the version through.

    Raises:
        ValueError: data a model cannot learn from (too few users, items or ratings).
        TrainingDiverged: a loss became NaN or infinite; nothing is exported.
    """
    from training.export import export_version
    from training.retrieval import train_retrieval

    stages: dict[str, float] = {}
    started = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal started
        stages[name] = time.perf_counter() - started
        started = time.perf_counter()

    rating = train_rating(data, config, log)
    stage("rating model")
    vectors = None
    if retrieval is not None:
        vectors = train_retrieval(rating.split, retrieval, refit=rating.refitted, log=log)
        stage("retrieval")
    if not export:
        return TrainedVersion(None, rating, vectors, stages)
    if vectors is not None and item_item is not None:
        from training.itemitem import train_item_item

        vectors.item_item = train_item_item(rating.split, vectors, item_item, log)
        stage("item-item")
        if item_item.ranker is not None and vectors.item_item is not None:
            from training.ranker import fit_ranker

            vectors.ranker = fit_ranker(rating, vectors, data.items, item_item.ranker, log)
            stage("ranker")
    events = None
    if data.store is not None:
        from dataclasses import asdict

        from artifact.manifest import EventsSpec

        events = EventsSpec(**asdict(data.store))
    from artifact import ann

    path = export_version(
        rating, models_dir, name, data.ratings, data.items, vectors, events,
        ann_min_items=ann.MIN_ITEMS if ann_min_items is None else ann_min_items, gate=gate,
    )  # fmt: skip
    stage("export")
    return TrainedVersion(path, rating, vectors, stages)
