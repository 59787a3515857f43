"""The README's Python client session, run for real against a service (default
http://127.0.0.1:8000, serving the default ml-100k version): each call and what it answered.

    PYTHONPATH=. .venv/bin/python scripts/client_example.py [URL]
"""

from __future__ import annotations

import sys

from recsys_client import Client, Invalid, NotFound


def main(url: str = "http://127.0.0.1:8000") -> None:
    with Client(url) as client:  # api_key=..., token=... where the service asks for them
        top = client.recommend(196, n=3)
        print(">>> top = client.recommend(196, n=3)")
        print(">>> [(i.item_id, i.title, round(i.score, 3)) for i in top.items]")
        print([(i.item_id, i.title, round(i.score, 3)) for i in top.items])
        print(">>> client.predict([(196, 242), (196, 302)]).predictions")
        print(client.predict([(196, 242), (196, 302)]).predictions)
        print(">>> [i.title for i in client.similar(50, n=3).items]")
        print([i.title for i in client.similar(50, n=3).items])
        print(">>> [i.item_id for i in client.rank(196, [50, 181, 1]).items]")
        print([i.item_id for i in client.rank(196, [50, 181, 1]).items])
        shown = client.recommend("new-reader", n=3)
        print(">>> shown = client.recommend('new-reader', n=3); shown.source")
        print(repr(shown.source))
        events = [
            {
                "user_id": "new-reader",
                "item_id": i.item_id,
                "rating": 5,
                "recommendation_id": shown.recommendation_id,
            }
            for i in shown.items
        ]
        print(">>> client.send_events(events)  # 5 stars for each film shown")
        print(client.send_events(events))
        print(">>> client.recommend('new-reader', n=2).source")
        print(repr(client.recommend("new-reader", n=2).source))
        print(">>> client.recommend(99999, fallback=False)")
        try:
            client.recommend(99999, fallback=False)
        except NotFound as err:
            print(f"NotFound: {err.detail}")
        print(">>> client.recommend(196, n=500)")
        try:
            client.recommend(196, n=500)
        except Invalid as err:
            print(f"Invalid: field {err.field!r}: {err.detail}")
        print(">>> client.forget_user('new-reader').events_deleted")
        print(client.forget_user("new-reader").events_deleted)


if __name__ == "__main__":
    main(*sys.argv[1:])
