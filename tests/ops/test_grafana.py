"""ops/grafana/recsys.json: every panel's query names only series that exist (the service's
metrics or a recording rule of ops/prometheus/rules.yml), so a renamed metric fails here, not
on somebody's dashboard; and the provisioning points at the dashboard and the datasource it
uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.ops.test_prometheus import exported_series

OPS = Path(__file__).resolve().parents[2] / "ops"
# A series name in PromQL: not a function (followed by "("), a label, a keyword or a unit.
NAME = re.compile(r"(?<![\w:\"{,=])([a-z_][a-z0-9_]*(?::[a-z0-9_]+)*)(?![\w:(\"=])")
KEYWORDS = {"sum", "by", "max", "min", "rate", "le", "without", "on", "unless", "and", "or"}


def dashboard() -> dict:
    return json.loads((OPS / "grafana" / "recsys.json").read_text())


def recorded() -> set[str]:
    rules = yaml.safe_load((OPS / "prometheus" / "rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def series_in(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
    without_groups = re.sub(r"\b(by|without|on)\s*\([^)]*\)", "", without_labels)
    names = set(NAME.findall(without_groups))
    return {n for n in names if n not in KEYWORDS and not re.fullmatch(r"[0-9.]+", n)}


def test_every_panel_reads_series_that_exist():
    known = exported_series() | recorded()
    panels = dashboard()["panels"]
    assert len(panels) >= 12
    for panel in panels:
        for target in panel["targets"]:
            named = series_in(target["expr"])
            assert named, (panel["title"], target["expr"])
            assert named <= known, (panel["title"], named - known)


def test_the_check_catches_a_renamed_metric():
    assert series_in("max by (instance) (recsys_versions_refused)") == {"recsys_versions_refused"}
    assert series_in('sum(rate(recsys_requests_total{status=~"5.."}[5m]))') == {
        "recsys_requests_total"
    }
    assert not series_in("recsys_version_refused") <= exported_series() | recorded()


def test_every_recording_rule_is_on_the_dashboard():
    used = {n for p in dashboard()["panels"] for t in p["targets"] for n in series_in(t["expr"])}
    assert recorded() <= used


def test_the_provisioning_loads_this_dashboard_from_this_datasource():
    uids = {
        d["uid"]
        for d in yaml.safe_load(
            (OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
        )["datasources"]
    }
    assert {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p["targets"]} <= uids
    compose = yaml.safe_load((OPS.parent / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    provider = yaml.safe_load(
        (OPS / "grafana" / "provisioning" / "dashboards" / "recsys.yml").read_text()
    )["providers"][0]
    mounted = {v.split(":")[1] for v in grafana["volumes"]}
    assert f"{provider['options']['path']}/recsys.json" in mounted
