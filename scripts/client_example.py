"""The README's Python client session, run for real against a service (default
http://127.0.0.1:8000, serving the default ml-100k version): each line as typed at a prompt and
what it answered.

    PYTHONPATH=. .venv/bin/python scripts/client_example.py [URL [ADMIN_TOKEN]]

With ADMIN_TOKEN, the operator's session instead (an experiment between versions 1 and 2, the
online table, a pin and a reload): run it against a service with both versions.
"""

from __future__ import annotations

import sys
import time

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
# With an admin token (and a second version beside the served one): the operator's calls.
ADMIN_SESSION = [
    "admin = Client(url, token=token)",
    "admin.put_experiment('v2-vs-v1', 'ab', {'control': 1, 'treatment': 2}).status",
    "time.sleep(1.5)  # every worker and replica reads it within RECSYS_SYNC_SECONDS",
    "[(u, client.recommend(u, n=4).variant) for u in (196, 186, 22)]",
    "time.sleep(3)  # impressions are written in batches, off the request path",
    "report = admin.experiment('v2-vs-v1')",
    "report.method, report.winner",
    "[(g.version, g.variant, g.impressions) for g in admin.online(window='1h').groups]",
    "sorted((name, g.version, g.impressions) for name, g in report.variants.items())",
    "admin.end_experiment('v2-vs-v1').status",
    "admin.pin_version(2)['model']",
    "admin.reload()['model']",
]


def main(url: str = "http://127.0.0.1:8000", token: str | None = None) -> None:
    with Client(url) as client:  # api_key=..., token=... where the service asks for them
        scope = {"Client": Client, "client": client, "url": url, "token": token, "time": time}
        for line in SESSION if token is None else ADMIN_SESSION:
            print(">>>", line)
            try:
                if " = " in line.split("(")[0] or line.startswith("time."):
                    exec(line, scope)
                else:
                    print(repr(eval(line, scope)))
            except RecsysError as err:
                field = getattr(err, "field", None)
                print(f"{type(err).__name__}: {err}" + (f" (field {field!r})" if field else ""))


if __name__ == "__main__":
    main(*sys.argv[1:])
