"""The web page's files: served at / and /static, outside the API schema. (The page itself is
driven in a real browser by tests/web/test_browser.py.)"""

from __future__ import annotations


def test_the_page_and_its_files_are_served_and_kept_out_of_the_schema(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>recsys: try the recommender</title>" in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "fetch(path" in script.text  # the page only talks to the public API
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_genres_lists_the_catalogues_genres(client):
    body = client.get("/genres").json()
    assert body["genres"] == sorted(body["genres"], key=str.casefold) and "Drama" in body["genres"]
