"""ops/prometheus: the rules load, each alert fires and stays quiet where its unit test says
(`promtool test rules`, Debian's `prometheus` package; `.ci/run` installs it), and every series
the rules read is one the service exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.metrics import Metrics

OPS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt-get install prometheus): rules NOT TESTED")
    return found


@pytest.mark.parametrize(
    "command", [["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]]
)
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(command):
    done = subprocess.run([promtool(), *command], cwd=OPS, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def exported_series() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        for suffix in SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return names


def test_every_series_the_rules_read_is_exported():
    rules = yaml.safe_load((OPS / "rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    # Raw series only: a recorded one (`level:recsys_...:operation`) is the rules' own.
    raw = r"(?<![:\w])(recsys_[a-z_]+)(?![:\w])"
    read = {name for expr in exprs for name in re.findall(raw, expr)}
    exported = exported_series()
    assert read - exported == set()
    # The rules cover what the issue lists: requests, latency, ingestion, store, fold-in, loop.
    assert {
        "recsys_requests_total", "recsys_request_duration_seconds_bucket", "recsys_events_total",
        "recsys_store_last_sync_timestamp_seconds", "recsys_fold_in_pending_users",
        "recsys_hits_total", "recsys_impressions_total", "recsys_versions_refused",
        "recsys_retrain_refused_total", "recsys_model_version",
    } <= read  # fmt: skip


def test_the_unit_tests_feed_only_exported_series():
    tests = yaml.safe_load((OPS / "rules_test.yml").read_text())
    fed = {
        series["series"].split("{")[0]
        for test in tests["tests"]
        for series in test.get("input_series", [])
    }
    assert fed - exported_series() - {"up"} == set()
