"""GET /recommend/{user_id}'s raw ASGI path answers exactly what the declared FastAPI route
answers, serves the plain queries itself and leaves everything else to FastAPI."""

from __future__ import annotations

import json
import re

import pytest

from app import fast_recommend, routes
from app.fast_recommend import NotPlain, parse
from app.settings import Settings
from tests.helpers import make_client

QUERIES = [
    "",
    "n=3",
    "n=010",
    "n=3&n=5",
    "n=20&exclude_seen=false",
    "exclude_seen=0&fallback=yes",
    "by=rating&n=4",
    "diversity=0.5&n=6",
    "diversity=1",
    "explain=true&n=2",
    "explain=on&by=rating",
    "genres=Comedy,Drama&year_min=1990",
    "genres=&exclude_genres=Horror",
    "exclude_genres=nosuchgenre",
    "year_min=2000&year_max=1990",
    "exclude_items=1,2,3&n=5",
    "unknown=parameter&n=2",
    "genres=Com%65dy",
    # not plain: FastAPI answers (the errors)
    "n=0",
    "n=21",
    "n=",
    "n=-1",
    "n=1.5",
    "n=%20%203",
    "exclude_seen=maybe",
    "by=popularity",
    "diversity=1.5",
    "diversity=nan",
    "diversity=.5",
    "diversity=1e-1",
    "year_min=1700",
    "genres=" + "x" * 9000,
]


@pytest.fixture(scope="module")
def client(default_version):
    models, version = default_version
    with make_client(models_dir=models, model_name=version.parent.name, max_n=20) as c:
        yield c


def answers(client, user: str) -> list[tuple[int, bytes]]:
    """Status and bytes of each query's answer, its recommendation id (unique per answer by
    design) masked."""
    return [
        (
            r.status_code,
            re.sub(rb'"recommendation_id":"[^"]+"', b'"recommendation_id":"-"', r.content),
        )
        for r in (client.get(f"/recommend/{user}?{q}") for q in QUERIES)
    ]


@pytest.mark.parametrize("user", ["1", "no-such-user"])
def test_both_paths_answer_the_same_bytes(client, user, monkeypatch):
    fast = answers(client, user)
    with monkeypatch.context() as patched:
        patched.setattr(fast_recommend, "parse", refuse)  # every request goes to FastAPI
        declared = answers(client, user)
    for query, got, expected in zip(QUERIES, fast, declared, strict=True):
        assert got == expected, query
    assert {status for status, _ in fast} == {200, 422}


def refuse(query: bytes, settings: Settings) -> dict:
    raise NotPlain


def test_plain_queries_never_reach_fastapi_and_domain_errors_do(client, monkeypatch):
    reached: list[str] = []
    ranking = routes.recommend.ranking  # the raw path holds its own reference to it

    def counting(service, live, user_id, *args):
        reached.append(user_id)
        return ranking(service, live, user_id, *args)

    monkeypatch.setattr(routes.recommend, "ranking", counting)
    plain = [q for q in QUERIES if plainly(q)]
    assert len(plain) == 18
    assert all(client.get(f"/recommend/1?{q}").status_code == 200 for q in plain)
    assert reached == []
    # Forms FastAPI reads and this parser does not (".5", "1e-1", spaces) go to FastAPI.
    for q in QUERIES:
        if not plainly(q) and client.get(f"/recommend/1?{q}").status_code == 200:
            assert reached.pop() == "1", q
    assert reached == []
    # An unknown user with fallback off is the endpoint's to answer (a 404, FastAPI's shape).
    answer = client.get("/recommend/no-such-user?fallback=false")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "unknown user_id 'no-such-user'"}
    assert reached == ["no-such-user"]


def plainly(query: str) -> bool:
    try:
        parse(query.encode(), Settings(max_n=20))
    except NotPlain:
        return False
    return True


def test_the_answer_is_the_ranking_with_the_response_headers(client):
    answer = client.get("/recommend/1?n=3", headers={"X-Request-ID": "abc"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] == "abc"
    body = json.loads(answer.content)
    assert len(body["items"]) == 3 and body["user_id"] == "1" and body["source"] == "model"


def test_the_parser_reads_every_declared_parameter_and_refuses_what_it_does_not_read_plainly():
    """Names and defaults are the declared route's (and its filter dependency's)."""
    settings = Settings(max_n=100)
    assert parse(b"n=7&by=rating&genres=a,b", settings) == {
        "n": 7,
        "exclude_seen": True,
        "by": "rating",
        "fallback": True,
        "diversity": 0.0,
        "explain": False,
        "genres": "a,b",
        "exclude_genres": None,
        "year_min": None,
        "year_max": None,
        "exclude_items": None,
    }
    for query in (b"n=101", b"n=%ff", b"year_max=2201", b"fallback=", b"diversity=1.0000001"):
        with pytest.raises(NotPlain):
            parse(query, settings)


def test_the_parser_knows_every_parameter_the_route_declares():
    from fastapi.routing import APIRoute

    from app.routes.recommend import router

    (route,) = [
        r for r in router.routes if isinstance(r, APIRoute) and r.path == fast_recommend.PATH
    ]
    declared = {p.alias for p in route.dependant.query_params}
    declared |= {p.alias for d in route.dependant.dependencies for p in d.query_params}
    assert set(fast_recommend.PARAMETERS) == declared
