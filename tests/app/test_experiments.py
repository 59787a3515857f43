"""Experiments through the service: started, followed by every worker of the store, answering
each user from their variant (A/B) or from both (interleaved, each item credited to the
variant that placed it), reported with their hit rates and winner, ended with the report kept,
kept across restarts; bad designs refused naming the field, nothing stored."""

from __future__ import annotations

import pytest

from app.experiments.assign import variant_of
from app.experiments.spec import Experiment
from tests.helpers import (
    MODEL_NAME,
    corrupt_copy,
    fresh_store_url,
    make_client,
    two_versions_of,
    wait_for,
)

AUTH = {"Authorization": "Bearer s3cret"}
AB = {
    "method": "ab",
    "variants": {"control": {"version": 1}, "treatment": {"version": 2}},
    "split": {"control": 0.5, "treatment": 0.5},
}


@pytest.fixture
def models(models_dir, tmp_path):
    return two_versions_of(models_dir, tmp_path / "models")


@pytest.fixture
def store():
    return fresh_store_url()


def service(models, store, **settings):
    return make_client(
        models_dir=models, model_name=MODEL_NAME, store_url=store, admin_token="s3cret",
        poll_seconds=0, sync_seconds=0.1, **settings,
    )  # fmt: skip


def test_ab_users_keep_their_variant_on_every_request_and_worker(models, store):
    with service(models, store) as a, service(models, store) as b:
        started = a.put("/admin/experiments/exp-1", json=AB, headers=AUTH)
        assert started.status_code == 200, started.text
        assert started.json()["status"] == "running" and started.json()["winner"] is None
        design = Experiment.from_json(a.app.state.service.experiments.running.to_json())
        wait_for(lambda: b.app.state.service.experiments.running is not None, 5)
        users = [f"u{k}" for k in range(40)]
        for user in users:
            answers = [c.get(f"/recommend/{user}?n=3").json() for c in (a, b, a)]
            variants = {x["variant"] for x in answers}
            assert variants == {variant_of(design, user)}  # the hash, on both workers
            assert {x["experiment"] for x in answers} == {"exp-1"}
            assert {x["version"] for x in answers} == {design.variants[variants.pop()]}
        assert {variant_of(design, u) for u in users} == {"control", "treatment"}
        # Every ranking route answers through the variant.
        user = users[0]
        for answer in (
            a.post("/recommend", json={"user_ids": [user], "n": 2}).json()["results"][0],
            a.post("/rank", json={"user_id": user, "item_ids": ["1", "2"]}).json(),
            a.get(f"/similar/1?n=2&user_id={user}").json(),
            a.get(f"/popular?n=2&user_id={user}").json(),
        ):
            assert answer["variant"] == variant_of(design, user)
        assert "experiment" not in a.get("/popular?n=2").json()  # nobody: the default


def test_the_report_counts_hits_per_variant_and_names_a_clear_winner(models, store):
    with service(models, store) as c:
        assert c.put("/admin/experiments/clear", json=AB, headers=AUTH).status_code == 200
        design = c.app.state.service.experiments.running
        for k in range(120):
            user = f"reader-{k}"
            answer = c.get(f"/recommend/{user}?n=5").json()
            if answer["variant"] == "treatment":  # treatment's users rate what they were shown
                event = {"user_id": user, "item_id": answer["items"][0]["item_id"], "rating": 5,
                         "recommendation_id": answer["recommendation_id"]}  # fmt: skip
            else:  # control's rate something else: they came back, nothing shown was a hit
                shown = {i["item_id"] for i in answer["items"]}
                other = next(str(i) for i in range(1, 41) if str(i) not in shown)
                event = {"user_id": user, "item_id": other, "rating": 3}
            assert c.post("/events", json={"events": [event]}).status_code == 200
        report = c.get("/admin/experiments/clear", headers=AUTH).json()
        treated = sum(variant_of(design, f"reader-{k}") == "treatment" for k in range(120))
        treatment, control = report["variants"]["treatment"], report["variants"]["control"]
        assert (treatment["impressions"], control["impressions"]) == (treated, 120 - treated)
        assert treatment["hit_impressions"] == treatment["could_be_hit"] == treated
        assert control["hit_impressions"] == 0 and control["could_be_hit"] == 120 - treated
        assert (
            treatment["hit_rate"]["value"] == 1.0 and treatment["mean_rating_of_hits"]["value"] == 5
        )
        diff = report["difference"]["treatment"]
        assert diff["versus"] == "control" and diff["value"] == 1.0 and diff["p_value"] < 1e-6
        assert report["winner"] == "treatment"
        online = c.get("/admin/online?window=1h&buckets=4", headers=AUTH).json()
        groups = {(g["version"], g["variant"]): g for g in online["groups"]}
        assert groups[(2, "treatment")]["hit_impressions"] == treated
        assert len({b["start"] for b in online["series"]}) <= 4


def test_interleaving_credits_each_item_to_the_variant_that_placed_it(models, store):
    design = {"method": "interleave", "variants": {"a": {"version": 1}, "b": {"version": 2}}}
    with service(models, store) as c:
        assert c.put("/admin/experiments/mix", json=design, headers=AUTH).status_code == 200
        answer = c.get("/recommend/mixer?n=6").json()
        assert (answer["experiment"], answer["variant"]) == ("mix", None)
        ids = [i["item_id"] for i in answer["items"]]
        assert len(ids) == 6 == len(set(ids))
        c.app.state.service.events.impressions.pending  # noqa: B018 (flushed with the write)
        event = {"user_id": "mixer", "item_id": ids[0], "rating": 5,
                 "recommendation_id": answer["recommendation_id"]}  # fmt: skip
        assert c.post("/events", json={"events": [event]}).json()["attributed"] == 1
        report = c.get("/admin/experiments/mix", headers=AUTH).json()
        credited = [v for v, r in report["variants"].items() if r["hits"] == 1]
        assert len(credited) == 1 and report["variants"][credited[0]]["wins"] == 1
        assert report["preference"] and report["winner"] is None  # one impression decides nothing


def test_ending_keeps_the_report_and_a_restart_keeps_a_running_one(models, store):
    with service(models, store) as c:
        assert c.put("/admin/experiments/first", json=AB, headers=AUTH).status_code == 200
        again = c.put("/admin/experiments/first", json=AB, headers=AUTH)
        assert again.status_code == 200  # the same design: answered as it runs
        other = c.put("/admin/experiments/second", json=AB, headers=AUTH)
        assert other.status_code == 409 and "'first' is running" in other.json()["detail"]
        ended = c.delete("/admin/experiments/first", headers=AUTH).json()
        assert ended["status"] == "ended" and ended["ended"] >= ended["started"]
        assert "experiment" not in c.get("/recommend/u1").json()
        assert c.get("/admin/experiments/first", headers=AUTH).json()["status"] == "ended"
        reused = c.put("/admin/experiments/first", json=AB, headers=AUTH)
        assert reused.status_code == 409 and "has ended" in reused.json()["detail"]
        assert c.put("/admin/experiments/second", json=AB, headers=AUTH).status_code == 200
    with service(models, store) as later:
        assert later.get("/recommend/u1").json()["experiment"] == "second"
        listed = later.get("/admin/experiments", headers=AUTH).json()["experiments"]
        assert [(e["name"], e["status"]) for e in listed] == [
            ("second", "running"),
            ("first", "ended"),
        ]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({**AB, "method": "bandit"}, ["body", "method"]),
        ({**AB, "variants": {"only": {"version": 1}}}, ["body", "variants"]),
        ({**AB, "split": {"control": 0.7, "treatment": 0.7}}, ["body"]),
        ({**AB, "split": {"control": 0.5, "other": 0.5}}, ["body"]),
        (
            {**AB, "variants": {"control": {"version": 0}, "t": {"version": 1}}},
            ["body", "variants", "control", "version"],
        ),
        ({**AB, "surprise": 1}, ["body", "surprise"]),
        ({"method": "interleave", "variants": AB["variants"], "split": AB["split"]}, ["body"]),
    ],
)
def test_a_bad_design_is_a_422_naming_the_field_and_nothing_is_stored(models, store, body, loc):
    with service(models, store) as c:
        answer = c.put("/admin/experiments/bad", json=body, headers=AUTH)
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"][: len(loc)] == loc
        assert c.get("/admin/experiments", headers=AUTH).json() == {"experiments": []}


def test_versions_that_cannot_serve_refuse_the_experiment(models, store):
    with service(models, store) as c:
        missing = {**AB, "variants": {"control": {"version": 1}, "treatment": {"version": 9}}}
        answer = c.put("/admin/experiments/x", json=missing, headers=AUTH)
        assert answer.status_code == 404
        assert answer.json() == {"detail": f"no version 9 of {MODEL_NAME}"}  # no host path
        corrupt_copy(models / MODEL_NAME / "2", models / MODEL_NAME / "3")
        broken = {**AB, "variants": {"control": {"version": 1}, "treatment": {"version": 3}}}
        refused = c.put("/admin/experiments/x", json=broken, headers=AUTH)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert f"{MODEL_NAME}/3/item_factors.npy" in detail and str(models) not in detail
        assert c.put("/admin/experiments/bad name", json=AB, headers=AUTH).status_code == 422
        assert c.get("/admin/experiments/none", headers=AUTH).status_code == 404
        assert c.get("/admin/experiments", headers=AUTH).json() == {"experiments": []}
        assert c.put("/admin/experiments/x", json=AB).status_code == 401
        assert c.get("/admin/online?window=3y", headers=AUTH).status_code == 422
    with make_client(models_dir=models, model_name=MODEL_NAME) as open_service:
        assert open_service.get("/admin/experiments").status_code == 404  # no admin token
