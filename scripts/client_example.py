"""The README's Python client session, run for real against a service (default
http://127.0.0.1:8000, serving the default ml-100k version): each line as typed at a prompt and
what it answered.

    PYTHONPATH=. .venv/bin/python scripts/client_example.py [URL]
"""

from __future__ import annotations

import sys

from recsys_client import Client, RecsysError

SESSION = [
    "top = client.recommend(196, n=3)",
    "[(i.item_id, i.title, round(i.score, 3)) for i in top.items]",
    "[[i.item_id for i in u.items] for u in client.recommend_many([196, 186], n=3).results]",
    "[i.title for i in client.popular(n=3, filters={'genres': ['Comedy']}).items]",
    "[(i.item_id, i.title) for i in client.search_items('star wars', n=2).items]",
    "client.predict([(196, 242), (196, 302)]).predictions",
    "[i.title for i in client.similar(50, n=3).items]",
    "[i.item_id for i in client.rank(196, [50, 181, 1]).items]",
    "shown = client.recommend('new-reader', n=3)",
    "shown.source",
    "client.send_events({'user_id': 'new-reader', 'item_id': i.item_id, 'rating': 5,"
    " 'recommendation_id': shown.recommendation_id} for i in shown.items)",
    "client.recommend('new-reader', n=2).source",
    "[(r.item_id, r.rating) for r in client.user_ratings('new-reader').ratings]",
    "client.recommend(99999, fallback=False)",
    "client.recommend(196, n=500)",
    "client.forget_user('new-reader').events_deleted",
]


def main(url: str = "http://127.0.0.1:8000") -> None:
    with Client(url) as client:  # api_key=..., token=... where the service asks for them
        scope = {"client": client}
        for line in SESSION:
            print(">>>", line)
            try:
                if " = " in line.split("(")[0]:
                    exec(line, scope)
                else:
                    print(repr(eval(line, scope)))
            except RecsysError as err:
                field = getattr(err, "field", None)
                print(f"{type(err).__name__}: {err}" + (f" (field {field!r})" if field else ""))


if __name__ == "__main__":
    main(*sys.argv[1:])
