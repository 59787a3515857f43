"""The CI audit's policy: fail on advisories with a fix, report the rest."""

from __future__ import annotations

import importlib.util

from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
assert _spec is not None and _spec.loader is not None
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def dep(name, version="1.0", *vulns):
    return {"name": name, "version": version, "vulns": list(vulns)}


def test_an_advisory_with_a_fix_fails_the_build_and_names_the_package_and_fix():
    report = {
        "dependencies": [
            dep("fastapi"),
            dep("h11", "0.13", {"id": "GHSA-vqfr-h8mv-ghfj", "fix_versions": ["0.16.0"]}),
        ]
    }
    status, lines = audit.verdict(report)
    assert status == 1
    assert "FIXABLE  h11 0.13: GHSA-vqfr-h8mv-ghfj (fixed in 0.16.0)" in lines
    assert lines[0] == "audited 2 pinned packages; 0 could not be audited"


def test_an_advisory_without_a_fix_is_reported_but_passes():
    report = {"dependencies": [dep("x", "2.0", {"id": "PYSEC-1", "fix_versions": []})]}
    status, lines = audit.verdict(report)
    assert status == 0
    assert "no fix   x 2.0: PYSEC-1 (no fixed release yet)" in lines


def test_packages_the_service_cannot_answer_for_are_listed_not_failed():
    skipped = [{"name": f"p{i}", "skip_reason": "not found"} for i in range(12)]
    status, lines = audit.verdict({"dependencies": skipped})
    assert status == 0
    assert "WARNING: nothing was audited" in lines[1]
    assert lines[-1] == "  ... and 2 more"
    status, lines = audit.verdict({"dependencies": [dep("a"), *skipped[:1]]})
    assert status == 0 and lines[0] == "audited 1 pinned packages; 1 could not be audited"
