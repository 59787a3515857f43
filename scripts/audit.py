"""CI's dependency audit: pip-audit over the pinned `constraints.txt`, failing only on fixable
advisories.

Exit 1 when a pinned release has an advisory with a fixed release (bump the pin: `make lock`).
Advisories without a fix, and packages the advisory service could not be asked about, are
reported and do not fail the build: nothing can be done about the first, and the second is the
network, not the code. Usage: python scripts/audit.py [constraints.txt] [pip-audit options]
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit status and the lines to print for one `pip-audit -f json` report."""
    fixable, unfixable, skipped, audited = [], [], [], 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            line = f"{dep['name']} {dep['version']}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixable.append(f"{line} (no fixed release yet)")
    lines = [f"audited {audited} pinned packages; {len(skipped)} could not be audited"]
    lines += [f"FIXABLE  {line}" for line in fixable]
    lines += [f"no fix   {line}" for line in unfixable]
    if skipped:
        lines.append(
            "not audited (the advisory service had no answer for them):"
            if audited
            else "WARNING: nothing was audited: the advisory service answered for no package"
        )
        lines += [f"  {line}" for line in skipped[:10]]
        lines += [f"  ... and {len(skipped) - 10} more"] if len(skipped) > 10 else []
    return (1 if fixable else 0), lines


def main(argv: list[str]) -> int:
    constraints = argv[0] if argv else "constraints.txt"
    command = [sys.executable, "-m", "pip_audit", "-r", constraints, "--no-deps", "--disable-pip"]
    command += ["-f", "json", "--progress-spinner", "off", *argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        # pip-audit could not reach its advisory service at all (it raises before reporting).
        print("WARNING: pip-audit produced no report; nothing was audited:", file=sys.stderr)
        print("\n".join(done.stderr.strip().splitlines()[-3:]), file=sys.stderr)
        return 0
    status, lines = verdict(report)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
