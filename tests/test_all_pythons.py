"""Every Python on the machine: `doctor` lists each one found (pyenv, python3.X on PATH, /usr/bin ...) with
its pip, the pip its new venvs get from ensurepip, and whether each reaches the index now; `bootstrap.py
--all-pythons` puts the pinned pip into each one this user can write to that the OS does not manage, skips
the others with the reason, and one `undo` reverts all of it byte for byte.

The Pythons are private copies of the machine's pyenv prefixes under a PYENV_ROOT in the test's tree,
never the machine's own; the sandbox's PATH holds only /usr/local/bin:/usr/bin:/bin, where the system's
python3.11 is externally managed (PEP 668), so it is listed and skipped as it would be on a laptop.
"""
import json
import shutil
from pathlib import Path

import pytest

from bundle_helpers import bootstrap, copy_bundle, expected_pins, installed_version, out, tree
from testbed import by_version, make_venv

pytestmark = pytest.mark.e2e

FAIL_FAST = ["--retries", "0", "--timeout", "20"]


def pyenv_copy(interp, root, externally_managed=False):
    """A copy of a pyenv prefix as root/versions/X.Y.Z (ensurepip kept: doctor reads its bundled pip)."""
    prefix = Path(interp.path).resolve().parent.parent
    dest = Path(root) / "versions" / prefix.name
    shutil.copytree(prefix, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("test", "tests", "__pycache__", "idlelib", "tkinter"))
    if externally_managed:
        stdlib = next(dest.glob("lib/python3.*"))
        (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=managed by the OS\n")
    return dest / "bin" / "python3"


@pytest.fixture(scope="module")
def pythons(tmp_path_factory):
    """A pyenv root with a writable 3.9 and an externally-managed 3.10, both copies."""
    root = tmp_path_factory.mktemp("pyenv")
    return {"root": root,
            "writable": pyenv_copy(by_version((3, 9)), root),
            "managed": pyenv_copy(by_version((3, 10)), root, externally_managed=True)}


def pythons_checks(doc):
    return {c["python"]: c for c in doc["doctor"]["checks"] if c["name"] == "pythons" and "python" in c}


def test_doctor_lists_every_python_with_its_pip_and_its_new_venvs_pip(sandbox, proxy, pythons, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    runner = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=True)
    bundle = copy_bundle(tmp_path / "bundle")
    env = {"PYENV_ROOT": str(pythons["root"])}
    before = tree(sb.home, pythons["root"])
    result = bootstrap(sb, runner, bundle, "doctor", "--json", env_extra=env)
    doc = json.loads(result.stdout)
    found = pythons_checks(doc)
    writable = next(c for p, c in found.items() if p.startswith(str(pythons["root"] / "versions" / "3.9")))
    assert writable["pip"] == "23.0.1" and writable["ensurepip"] == "23.0.1"
    # certifi only, and the proxy's CA is not in certifi: both the base pip and its new venvs' pip fail
    assert writable["reaches"] is False and writable["new_venvs_reach"] is False, writable
    assert writable["status"] == "warning" and "--all-pythons" in writable["text"]
    system = [c for p, c in found.items() if p.startswith("/usr/bin/")]
    assert system, "the system's python3 on PATH is listed too: {}".format(sorted(found))
    assert tree(sb.home, pythons["root"]) == before                   # doctor reads only

    # after one bootstrap (any Python), new venvs of every Python find the bundle in the user's config
    assert bootstrap(sb, runner, bundle).returncode == 0
    doc = json.loads(bootstrap(sb, runner, bundle, "doctor", "--json", env_extra=env).stdout)
    writable = next(c for p, c in pythons_checks(doc).items() if p.startswith(str(pythons["root"] / "versions" / "3.9")))
    assert writable["reaches"] is True and writable["new_venvs_reach"] is True, writable
    assert bootstrap(sb, runner, bundle, "undo").returncode == 0


def test_all_pythons_installs_into_each_writable_python_skips_the_managed_one_and_undo_reverts_all(
        sandbox, proxy, pythons, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    runner = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    env = {"PYENV_ROOT": str(pythons["root"])}
    before = tree(sb.home, pythons["root"])

    result = bootstrap(sb, runner, bundle, "--all-pythons", "--tools", "requests", "--json", env_extra=env, timeout=600)
    assert result.returncode == 0, out(result)
    doc = json.loads(result.stdout)
    records = {r["python"]: r for r in doc["pythons"]}
    writable = next(r for p, r in records.items() if p.startswith(str(pythons["root"] / "versions" / "3.9")))
    managed = next(r for p, r in records.items() if p.startswith(str(pythons["root"] / "versions" / "3.10")))
    assert writable["status"] == "changed", writable
    assert managed["status"] == "skipped" and "PEP 668" in managed["reason"], managed
    system = [r for p, r in records.items() if p.startswith("/usr/bin/")]
    assert system and all(r["status"] == "skipped" for r in system), system
    assert installed_version(sb, pythons["writable"], "pip") == expected_pins((3, 9))["pip"]
    assert installed_version(sb, pythons["managed"], "pip") == "23.0.1"
    assert any(str(pythons["root"]) in p for p in doc["packages_changed"]), doc["packages_changed"]
    assert doc["changed"] is True

    # --tools requests went to each Python: the copied 3.9's programs get the bundle from its start-up hook
    hook = sb.run([str(pythons["writable"]), "-c", "import os; print(os.environ.get('REQUESTS_CA_BUNDLE'))"])
    assert hook.stdout.strip() == str(sb.home / ".local" / "share" / "trustfix" / "ca-bundle.pem"), out(hook)

    # the copied 3.9's own pip now reaches the index through the proxy, with no flags
    fresh = sb.run([str(pythons["writable"]), "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                    "-d", str(tmp_path / "dl")] + FAIL_FAST + ["corp-hello"], timeout=240)
    assert fresh.returncode == 0, out(fresh)

    again = json.loads(bootstrap(sb, runner, bundle, "--all-pythons", "--tools", "requests", "--json", env_extra=env,
                                 timeout=600).stdout)
    assert again["changed"] is False and again["exit_code"] == 0, again["pythons"]

    undone = bootstrap(sb, runner, bundle, "undo", env_extra=env)
    assert undone.returncode == 0, out(undone)
    assert tree(sb.home, pythons["root"]) == before
