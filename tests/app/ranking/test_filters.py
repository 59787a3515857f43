"""Filters on /recommend (GET and POST) and /similar: genres (any of), exclude_genres, year
bounds and exclude_items, applied inside the one scoring pass. Each answer is checked against a
reference ranking computed here from the version's files."""

from __future__ import annotations

import numpy as np


def reference(loaded, row, n, allowed):
    """The user's top n among `allowed` unseen items, from the files."""
    v = loaded.vectors
    scores = np.asarray(v.item_factors, np.float64) @ np.asarray(v.user_factors[row], np.float64)
    scores += np.asarray(v.item_bias, np.float64)
    scores[loaded.seen.of(row)] = -np.inf
    scores[~allowed] = -np.inf
    order = [r for r in np.argsort(-scores, kind="stable") if scores[r] > -np.inf]
    return [loaded.item_ids[r] for r in order[:n]]


def mask(loaded, genres=(), exclude_genres=(), year_min=None, year_max=None, exclude=()):
    out = []
    for row, item in enumerate(loaded.item_ids):
        kinds, year = set(loaded.genres[row]), loaded.years[row]
        out.append(
            (not genres or bool(kinds & set(genres)))
            and not kinds & set(exclude_genres)
            and (year_min is None or year >= year_min)
            and (year_max is None or year <= year_max)
            and item not in exclude
        )
    return np.array(out)


def test_years_come_from_the_titles_of_the_version(served):
    _, loaded = served
    assert loaded.years[:3] == [1950, 1951, 1952]  # "Movie 1 (1950)", ...


def test_filtered_recommendations_are_the_best_items_that_pass(served):
    client, loaded = served
    user = list(loaded.user_index)[3]
    row = loaded.user_index[user]
    excluded = reference(loaded, row, 2, mask(loaded))  # the user's two favourites
    params = {
        "n": 5,
        "genres": "drama,Comedy",  # case-insensitive
        "exclude_genres": "Horror",
        "year_min": 1960,
        "year_max": 2000,
        "exclude_items": ",".join(excluded),
    }
    body = client.get(f"/recommend/{user}", params=params).json()
    allowed = mask(loaded, {"Drama", "Comedy"}, {"Horror"}, 1960, 2000, set(excluded))
    want = reference(loaded, row, 5, allowed)
    assert len(want) == 5 and [i["item_id"] for i in body["items"]] == want
    for item in body["items"]:
        assert {"Drama", "Comedy"} & set(item["genres"]) and "Horror" not in item["genres"]


def test_every_item_that_passes_comes_back_when_fewer_than_n_pass(served):
    client, loaded = served
    user = list(loaded.user_index)[5]
    row = loaded.user_index[user]
    params = {"n": 40, "genres": "Sci-Fi", "year_max": 1990}
    body = client.get(f"/recommend/{user}", params=params).json()
    want = reference(loaded, row, 40, mask(loaded, {"Sci-Fi"}, year_max=1990))
    assert 0 < len(want) < 40 and [i["item_id"] for i in body["items"]] == want


def test_the_batch_route_filters_each_user_as_the_single_one_does(served):
    client, loaded = served
    users = list(loaded.user_index)[:4] + ["someone-new"]
    filters = {"genres": ["Action"], "year_min": 1970, "exclude_items": ["1", "2", "nope"]}
    batch = client.post("/recommend", json={"user_ids": users, "n": 4, **filters}).json()
    query = {"n": 4, "genres": "Action", "year_min": 1970, "exclude_items": "1,2,nope"}
    for user, got in zip(users, batch["results"], strict=True):
        one = client.get(f"/recommend/{user}", params=query).json()
        assert got["items"] == one["items"] and got["source"] == one["source"]
    assert batch["results"][-1]["source"] == "popular"
    popular = [i["item_id"] for i in batch["results"][-1]["items"]]
    assert len(popular) == 4 and not {"1", "2"} & set(popular)


def test_similar_items_are_the_nearest_that_pass_the_filters(served):
    client, loaded = served
    item = loaded.item_ids[0]
    body = client.get(f"/similar/{item}", params={"n": 40, "exclude_genres": "Drama"}).json()
    q = np.asarray(loaded.vectors.item_factors, np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    cosine = q @ q[0]
    allowed = mask(loaded, exclude_genres={"Drama"})
    allowed[0] = False
    cosine[~allowed] = -np.inf
    want = [loaded.item_ids[r] for r in np.argsort(-cosine, kind="stable") if allowed[r]]
    assert 0 < len(want) < 39 and [i["item_id"] for i in body["items"]] == want


def test_a_misspelt_genre_or_reversed_years_passes_nothing_and_the_answer_says_why(served):
    client, loaded = served
    user = list(loaded.user_index)[0]
    row = loaded.user_index[user]
    body = client.get(f"/recommend/{user}", params={"n": 40, "genres": "Drama,Scifi"}).json()
    (note,) = body["warnings"]
    assert note.startswith("genres: no item has the genre 'Scifi' (known: Action, Comedy")
    assert "Sci-Fi" in note
    # The known genre still filters: what comes back is the Drama items alone.
    assert [i["item_id"] for i in body["items"]] == reference(
        loaded, row, 40, mask(loaded, {"Drama"})
    )
    batch = client.post("/recommend", json={"user_ids": [user], "exclude_genres": ["Westerns"]})
    assert batch.status_code == 200 and batch.json()["warnings"][0].startswith("exclude_genres")
    years = client.get(
        f"/similar/{loaded.item_ids[0]}", params={"year_min": 2000, "year_max": 1990}
    ).json()
    assert years["items"] == []
    assert years["warnings"] == ["year_min 2000 is above year_max 1990: no item passes"]
    plain = client.get(f"/recommend/{user}", params={"genres": "drama"}).json()
    assert "warnings" not in plain


def test_put_items_changes_what_a_catalogue_item_passes(served):
    client, loaded = served
    user = list(loaded.user_index)[7]
    row = loaded.user_index[user]
    unseen = [loaded.item_ids[r] for r in range(40) if r not in set(loaded.seen.of(row))]
    target = next(i for i in unseen if "Horror" not in loaded.genres[loaded.item_index[i]])
    film = {"title": "Renamed (1999)", "genres": ["Horror", "Noir"]}
    assert client.put(f"/items/{target}", json=film).status_code == 200
    body = client.get(f"/recommend/{user}", params={"n": 40, "genres": "noir"}).json()
    assert [i["item_id"] for i in body["items"]] == [target]
    assert body["items"][0]["title"] == "Renamed (1999)"
    dated = client.get(f"/recommend/{user}", params={"n": 40, "year_min": 1999, "year_max": 1999})
    assert target in [i["item_id"] for i in dated.json()["items"]]  # the year its title ends with
