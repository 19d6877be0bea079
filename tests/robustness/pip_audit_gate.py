"""Run ``pip-audit`` and fail only on vulnerabilities found, not on an unreachable database.

    python -m tests.robustness.pip_audit_gate [extra pip-audit args]

Exit 0: audited and clean, or the vulnerability service could not be reached (a warning
says so, and how many packages went unaudited). Exit 1: vulnerabilities found (listed).
Exit 2: pip-audit is not installed. pip-audit itself exits 1 for both findings and
network errors, so its JSON report is read instead of its exit code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

NETWORK_HINTS = ("ConnectionError", "NameResolutionError", "Max retries exceeded",
                 "Temporary failure in name resolution", "timed out", "SSLError",
                 "ProxyError", "Network is unreachable")


def verdict(returncode: int, report: str | None, stderr: str) -> tuple[int, str]:
    """(exit code, message) for one pip-audit run."""
    deps = []
    if report:
        try:
            deps = json.loads(report).get("dependencies", [])
        except ValueError:
            deps = []
    vulnerable = [d for d in deps if d.get("vulns")]
    if vulnerable:
        lines = [f"{d['name']} {d.get('version', '?')}: "
                 f"{', '.join(v['id'] for v in d['vulns'])}" for d in vulnerable]
        return 1, "pip-audit found vulnerabilities:\n  " + "\n  ".join(lines)
    if not deps:
        if returncode != 0 and any(h in stderr for h in NETWORK_HINTS):
            return 0, ("warning: pip-audit could not reach its vulnerability database; "
                       "nothing was audited")
        if returncode != 0:
            tail = stderr.strip().splitlines()[-1:] or ["no output"]
            return 1, f"pip-audit failed: {tail[0]}"
        return 0, "pip-audit: no dependencies to audit"
    skipped = [d for d in deps if "skip_reason" in d]
    if len(skipped) == len(deps):
        return 0, (f"warning: pip-audit could not audit any of {len(deps)} packages "
                   f"({skipped[0]['skip_reason'].split(':')[0]}); the vulnerability "
                   f"database is probably unreachable from here")
    note = f" ({len(skipped)} not audited)" if skipped else ""
    return 0, f"pip-audit: no known vulnerabilities in {len(deps) - len(skipped)} " \
              f"packages{note}"


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "-f", "json",
               "-o", str(out), *argv]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            print("warning: pip-audit timed out (database unreachable?); nothing audited")
            return 0
        if "No module named pip_audit" in proc.stderr:
            print("pip-audit is not installed: pip install pip-audit", file=sys.stderr)
            return 2
        report = out.read_text(encoding="utf-8") if out.exists() else None
    code, message = verdict(proc.returncode, report, proc.stderr)
    print(message, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
