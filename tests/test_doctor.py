"""`bootstrap.py doctor` names the cause of a TLS failure — each cause made real in the test bed."""
import datetime
import json
import time
from pathlib import Path

import pytest

from bundle_helpers import copy_bundle
from testbed import by_version, make_venv

pytestmark = pytest.mark.e2e


def doctor(sb, python, bundle, *args, **kw):
    return sb.run([str(python), str(Path(bundle) / "bootstrap.py"), "doctor"] + [str(a) for a in args],
                  cwd=str(bundle), **kw)


def fixed_venv(sb, tmp_path, version=(3, 12)):
    """A venv already fixed by bootstrap (pip 26.3 + truststore)."""
    python = make_venv(by_version(version), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = sb.run([str(python), str(bundle / "bootstrap.py"), "--offline"], cwd=str(bundle))
    assert result.returncode == 0, result.stdout
    return python, bundle


def test_old_pip_behind_the_proxy_with_the_corp_root_in_the_os_store_says_run_bootstrap(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(by_version((3, 11)), tmp_path / "venv", with_pip=True)      # pip 23.x: certifi only
    result = doctor(sb, python, copy_bundle(tmp_path / "bundle"))
    assert result.returncode == 1, result.stdout
    assert "Example Corp Interception" in result.stdout and "the OS store trusts that issuer" in result.stdout
    assert "this pip cannot use the OS store: pip 23." in result.stdout and "the OS store needs pip >= 24.2" in result.stdout
    assert "Fix:     python bootstrap.py   (installs pip >= 24.2 and truststore)" in result.stdout
    assert len(result.stdout.splitlines()) <= 24                                   # one screen


def test_python_39_says_certifi_only_and_run_bootstrap(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(by_version((3, 9)), tmp_path / "venv", with_pip=True)
    result = doctor(sb, python, copy_bundle(tmp_path / "bundle"))
    assert result.returncode == 1
    assert "checks only certifi" in result.stdout and "python bootstrap.py" in result.stdout
    assert "Python 3.9 (pip cannot use the OS store before 3.10)" in result.stdout


def test_corp_root_missing_from_the_os_store_names_the_issuer_and_asks_for_it(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    result = doctor(sb, python, bundle, "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    verdict = doc["doctor"]["verdict"]
    assert not verdict["ok"]
    assert "Example Corp Interception" in verdict["cause"] and "does not trust" in verdict["cause"]
    assert "--ca-file" in verdict["fix"]


def test_a_working_machine_gets_a_clean_bill(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    result = doctor(sb, python, bundle)
    assert result.returncode == 0, result.stdout
    assert "Verdict: pip can reach https://pypi.org/simple with verified TLS" in result.stdout


def test_trusted_host_in_pip_config_is_a_problem(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    conf = Path(sb.home) / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\ntrusted-host = pypi.org\n")
    result = doctor(sb, python, bundle)
    assert result.returncode == 1, result.stdout
    assert "[PROB] config" in result.stdout and "trusted-host = pypi.org" in result.stdout
    assert "remove that trusted-host line" in result.stdout


def test_an_edited_certifi_bundle_is_found(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    cacert = next((tmp_path / "venv").rglob("pip/_vendor/certifi/cacert.pem"))
    with open(cacert, "ab") as f:
        f.write(b"\n# pasted by hand\n")
    result = doctor(sb, python, bundle)
    assert result.returncode == 1, result.stdout
    assert "edited by hand" in result.stdout and str(cacert) in result.stdout


def test_a_proxy_demanding_authentication_is_named(sandbox, index, make_proxy, tmp_path):
    locked = make_proxy(index, auth="bob:pw")
    sb = sandbox(corp_in_os_store=True, proxy=locked)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    result = doctor(sb, python, bundle)
    assert result.returncode == 1
    assert "demands a login (HTTP 407)" in result.stdout


def test_offline_the_report_comes_within_ten_seconds(sandbox, tmp_path):
    sb = sandbox(offline=True)
    python, bundle = fixed_venv(sb, tmp_path)
    started = time.monotonic()
    result = doctor(sb, python, bundle)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "cannot be resolved" in result.stdout or "refused" in result.stdout or "does not answer" in result.stdout
    assert elapsed < 10, elapsed


def _index_with(cas, make_index, packages, **kw):
    leaf = cas.public.issue_cert(*kw.pop("names", ["127.0.0.1"]), **kw)
    return make_index(packages, cert=leaf, key=None)


NOW = datetime.datetime.now(datetime.timezone.utc)
CASES = {
    "expired": (dict(not_before=NOW - datetime.timedelta(days=30), not_after=NOW - datetime.timedelta(days=1)), "has expired"),
    "not-yet-valid": (dict(not_before=NOW + datetime.timedelta(days=3), not_after=NOW + datetime.timedelta(days=30)), "not valid yet"),
    "wrong-host": (dict(names=["other.example"]), "is for another host"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_server_certificate_is_named(case, sandbox, cas, make_index, packages, tmp_path):
    kw, words = CASES[case]
    broken = _index_with(cas, make_index, packages, **dict(kw))
    sb = sandbox(corp_in_os_store=True)
    python, bundle = fixed_venv(sandbox(offline=True), tmp_path)
    result = doctor(sb, python, bundle, "--index-url", broken.url)
    assert result.returncode == 1, result.stdout
    assert words in result.stdout, result.stdout
