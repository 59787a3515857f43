"""The client against a real `recsys serve` (keys, tokens and a store on): every route answers
into the service's models, errors come back typed, a re-sent batch is stored once; and the
client's routes are the served description's, model for model."""

from __future__ import annotations

import httpx
import pytest

from recsys_client import Client, Invalid, NotFound, Unauthorized, calls
from recsys_client import models as m
from tests.helpers import running_site, wait_for

pytestmark = pytest.mark.integration

KEY, WRITE, ADMIN = "k3y", "wr1te", "adm1n"


@pytest.fixture(scope="module")
def service(default_version, tmp_path_factory):
    models_dir, _ = default_version
    log = tmp_path_factory.mktemp("client") / "server.log"
    with running_site(models_dir, log, ("-m", "cli", "serve"), api_key=KEY, write_token=WRITE,
                      admin_token=ADMIN) as base:  # fmt: skip
        yield base


@pytest.fixture(scope="module")
def known(tiny_data):
    ratings = tiny_data.ratings
    return str(ratings["user_id"].iloc[0]), [str(i) for i in ratings["item_id"].unique()[:5]]


def test_reads_answer_into_the_services_models(service, known):
    user, items = known
    with Client(service, api_key=KEY) as c:
        top = c.recommend(user, n=3, explain=True)
        assert isinstance(top, m.RecommendResponse) and len(top.items) == 3
        assert top.user_id == user and top.recommendation_id and top.source == "model"
        many = c.recommend_many([user, "someone-new"], n=2)
        assert [u.user_id for u in many.results] == [user, "someone-new"]
        predicted = c.predict([(user, items[0]), (user, items[1])])
        assert len(predicted.predictions) == 2
        ranked = c.rank(user, items[:3])
        assert sorted(i.item_id for i in ranked.items) == sorted(items[:3])
        assert c.similar(items[0], n=2).items
        assert len(c.popular(n=4).items) == 4
        assert c.item(items[0]).item_id == items[0]
        assert c.models().version == 1 and c.ready().status == "ready"
        assert c.genres().genres == sorted(c.genres().genres)


def test_writes_are_stored_once_however_often_they_are_sent(service, known):
    _, items = known
    user = "client-user"
    events = [{"user_id": user, "item_id": i, "rating": 4, "event_id": f"c-{i}"} for i in items]
    with Client(service, api_key=KEY, token=WRITE) as c:
        first = c.send_events(events, batch_size=2)
        again = c.send_events(events)  # the service's limit: one batch
        assert (first.accepted, first.batches) == (5, 3)
        assert (again.accepted, again.duplicates, again.batches) == (0, 5, 1)
        history = c.user_ratings(user)
        assert sorted(r.item_id for r in history.ratings) == sorted(items)
        assert c.put_item("client-film", title="A Film (2001)", genres=["Drama"]).item_id == (
            "client-film"
        )
        assert c.forget_user(user).user_id == user
        with pytest.raises(NotFound):
            c.user_ratings(user)


def test_errors_come_back_typed(service, known):
    user, _ = known
    with Client(service, api_key="wrong") as c, pytest.raises(Unauthorized):
        c.recommend(user)
    with Client(service, api_key=KEY) as c:
        with pytest.raises(NotFound) as err:
            c.recommend("nobody-at-all", fallback=False)
        assert "nobody-at-all" in err.value.detail
        with pytest.raises(Invalid) as invalid:
            c.recommend(user, n=100_000)  # over RECSYS_MAX_N: the service's own 422
        assert invalid.value.status == 422 and invalid.value.field == "n"
        with pytest.raises(Unauthorized):
            c.send_events([{"user_id": user, "item_id": "1", "rating": 3}])  # no write token


def test_admin_and_experiment_routes(service, known):
    user, _ = known
    with Client(service, token=ADMIN) as c:
        assert c.experiments().experiments == []
        assert c.recommend(user).experiment is None
        started = c.put_experiment("client-ab", "ab", {"control": 1, "treatment": 1})
        assert started.name == "client-ab" and started.method == "ab"
        # Every answer says which experiment and variant made it (the service's JSON, read
        # through the declared model: a field the model lacked would be dropped here).
        wait_for(lambda: c.recommend(user).experiment == "client-ab", 10)
        assert c.recommend(user).variant in ("control", "treatment")
        assert c.similar(c.popular(n=1).items[0].item_id, user_id=user).experiment == "client-ab"
        assert c.experiment("client-ab").name == "client-ab"
        assert [e.name for e in c.experiments().experiments] == ["client-ab"]
        assert c.end_experiment("client-ab").name == "client-ab"
        assert isinstance(c.online(window="1h"), m.Online)
        assert c.reload()["model"]["version"] == 1


def route_of(call: calls.Call, paths: dict) -> str:
    """The described path template `call` hits ({name} matches one segment)."""
    got = call.path.split("/")
    for template, operations in paths.items():
        parts = template.split("/")
        if (
            len(parts) == len(got)
            and call.method.lower() in operations
            and all(
                p == g or (p.startswith("{") and p.endswith("}"))
                for p, g in zip(parts, got, strict=True)
            )
        ):
            return template
    raise AssertionError(f"{call.method} {call.path} is not in the served description")


SAMPLES = [
    calls.recommend(1), calls.recommend_many([1]), calls.predict([(1, 2)]), calls.similar(1),
    calls.rank(1, [2]), calls.popular(), calls.events([]), calls.put_item(1), calls.item(1),
    calls.search_items("a"), calls.genres(), calls.user_ratings(1), calls.forget_user(1),
    calls.models(), calls.ready(), calls.health(), calls.experiments(),
    calls.put_experiment("e", "ab", {"a": 1, "b": 2}), calls.experiment("e"),
    calls.end_experiment("e"), calls.online(),
]  # fmt: skip


def test_the_clients_routes_and_models_are_the_served_descriptions(service):
    schema = httpx.get(service + "/openapi.json").json()
    paths = schema["paths"]
    covered = set()
    for call in SAMPLES:
        template = route_of(call, paths)
        operation = paths[template][call.method.lower()]
        covered.add((call.method, template))
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"].split("/")[-1] == call.model.__name__, (call.method, template)
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            # The client builds the body with the model the service validates it with.
            assert call.json is not None, template
        # The models are the service's: their JSON schema is the described one.
        described = schema["components"]["schemas"][call.model.__name__]
        assert set(described["properties"]) == set(call.model.model_json_schema()["properties"])
    described = {(method.upper(), p) for p, ops in paths.items() for method in ops}
    assert described - covered == {("GET", "/metrics")}  # text, for Prometheus


def test_recsys_import_loads_a_file_once_and_reports_what_it_refused(
    service, known, tmp_path, capsys
):
    from cli import main as recsys

    _, items = known
    lines = ["userId,movieId,rating,timestamp"]
    good = items[:4]
    lines += [f"importer,{item},{4 + i % 2},{964982703 + i}" for i, item in enumerate(good)]
    lines.append(f"importer,{items[4]},9,964982800")  # off the model's 1-5 scale
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    args = ["import", str(path), "--url", service, "--api-key", KEY, "--token", WRITE]
    assert recsys([*args, "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert f"5 ratings from {path}: 4 accepted, 0 duplicates, 1 refused (2 batches)" in out
    assert "refused: rating 5 (rating): Input should be within the served model's rating" in out
    assert recsys(args) == 0
    assert "0 accepted, 4 duplicates, 1 refused (1 batches)" in capsys.readouterr().out
    with Client(service, api_key=KEY) as c:
        stored = c.user_ratings("importer").ratings
    assert sorted((r.item_id, r.rating) for r in stored) == sorted(
        (item, float(4 + i % 2)) for i, item in enumerate(good)
    )
