"""The CI gate around pip-audit fails on findings only, never on network trouble."""

import json

from tests.robustness.pip_audit_gate import verdict


def report(*deps):
    return json.dumps({"dependencies": list(deps), "fixes": []})


def test_found_vulnerabilities_fail():
    code, msg = verdict(1, report({"name": "jinja2", "version": "2.0",
                                   "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.1"]}]},
                                  {"name": "numpy", "version": "2.0", "vulns": []}), "")
    assert code == 1 and "jinja2 2.0: PYSEC-1" in msg


def test_clean_audit_passes():
    code, msg = verdict(0, report({"name": "numpy", "version": "2.0", "vulns": []}), "")
    assert code == 0 and "no known vulnerabilities in 1 packages" in msg


def test_unreachable_database_passes_with_a_warning():
    err = "requests.exceptions.ConnectionError: ... NameResolutionError(...)"
    assert verdict(1, None, err)[0] == 0
    skipped = report({"name": "numpy", "skip_reason": "Dependency not found on PyPI and "
                                                       "could not be audited: numpy (2.0)"})
    code, msg = verdict(0, skipped, "")
    assert code == 0 and msg.startswith("warning")


def test_other_failures_fail():
    assert verdict(1, None, "error: invalid requirement")[0] == 1
