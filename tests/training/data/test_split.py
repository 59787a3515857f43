from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data.split import IdIndex, split_ratings


def frame(n=1000):
    return pd.DataFrame(
        {
            "user_id": [str(i % 37) for i in range(n)],
            "item_id": [str(i % 53) for i in range(n)],
            "rating": np.ones(n, np.float32),
            "row": range(n),
        }
    )


def test_split_is_seeded_disjoint_and_complete():
    data = frame()
    a, b = split_ratings(data, 0.1, 0.1, seed=7), split_ratings(data, 0.1, 0.1, seed=7)
    for part in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert (len(a.train), len(a.validation), len(a.test)) == (800, 100, 100)
    together = pd.concat([a.train, a.validation, a.test])["row"]
    assert sorted(together) == list(range(1000))
    other = split_ratings(data, 0.1, 0.1, seed=8)
    assert set(other.test["row"]) != set(a.test["row"])


@pytest.mark.parametrize("validation,test", [(0.6, 0.5), (-0.1, 0.1), (0.1, 1.0)])
def test_split_rejects_bad_fractions(validation, test):
    with pytest.raises(ValueError, match="fractions"):
        split_ratings(frame(), validation, test)


def test_id_index_sorts_naturally_and_maps_unknown_to_oov():
    index = IdIndex.from_column(pd.Series(["10", "2", "b", "2", "a"]))
    assert index.to_list() == ["2", "10", "a", "b"]
    assert index.lookup(["10", "zzz", "a"]).tolist() == [1, 4, 2]
    assert index.oov == 4
