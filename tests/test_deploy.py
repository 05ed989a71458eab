"""The fleet recipes in deploy/: the Ansible role (run with the real ansible-playbook), the Jamf script (run
with /bin/sh), and the Intune PowerShell scripts (read only: PowerShell is not on this machine).

ansible-playbook runs from this interpreter's ansible-core, but inside the laptop sandbox (masked
/etc/pip.conf, fake HOME, scrubbed env, the intercepting proxy), with `-c local`, every ANSIBLE_* folder in
the test's tmp_path, and trustfix_python = a venv inside the test's tree: nothing touches this machine's
HOME, pip configuration or interpreters.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bundle_helpers import (ROOT, as_user, bootstrap, copy_bundle, expected_pins, installed_version,
                            out, tree)
from testbed import by_version, make_venv

DEPLOY = ROOT / "deploy"
SITE = DEPLOY / "ansible" / "site.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
JAMF = DEPLOY / "jamf" / "trustfix.sh"
RUN = "trustfix : Run bootstrap.py"
HASH_SENTENCE = "does not match hashes.txt"


# --- helpers ------------------------------------------------------------------------------------------

def ansible_env(tmp_path):
    """ANSIBLE_* settings that keep ansible's config, home and temp folders inside tmp_path."""
    base = tmp_path / "ansible"
    for name in ("home", "local-tmp", "remote-tmp"):
        (base / name).mkdir(parents=True, exist_ok=True)
    cfg = base / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    return {"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_HOME": str(base / "home"),
            "ANSIBLE_LOCAL_TEMP": str(base / "local-tmp"), "ANSIBLE_REMOTE_TMP": str(base / "remote-tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_PIPELINING": "1"}


class Play:
    """One ansible-playbook run of deploy/ansible/site.yml: its output, the task statuses, the recap."""

    def __init__(self, result):
        self.rc, self.output = result.returncode, result.stdout + result.stderr
        self.tasks = {}
        current = None
        for line in result.stdout.splitlines():
            m = re.match(r"^TASK \[(.+?)\] \*", line)
            if m:
                current = m.group(1)
                continue
            m = re.match(r"^(ok|changed|failed|fatal|skipping): \[localhost\]", line)
            if m and current and current not in self.tasks:
                self.tasks[current] = "failed" if m.group(1) == "fatal" else m.group(1)
        m = re.search(r"^localhost\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      result.stdout, re.M)
        assert m, self.output[-3000:]
        self.ok, self.changed, self.unreachable, self.failed = (int(g) for g in m.groups())

    def __repr__(self):
        return self.output[-6000:]


def playbook(sb, tmp_path, *options, **variables):
    argv = [str(ANSIBLE_PLAYBOOK), "-c", "local", "-i", "localhost,", str(SITE), "-e", json.dumps(variables)]
    started = time.monotonic()
    result = sb.run(argv + list(options), cwd=str(tmp_path), env_extra=ansible_env(tmp_path), timeout=240)
    seconds = time.monotonic() - started
    logs = sorted(tmp_path.glob("play-*.log"))
    (tmp_path / "play-{}.log".format(len(logs) + 1)).write_text("{:.1f} s\n{}{}".format(seconds, result.stdout, result.stderr))
    return Play(result)


def role_vars(python, src, dest, **more):
    return dict(dict(trustfix_python=str(python), trustfix_bundle_src=str(src), trustfix_dest=str(dest),
                     trustfix_scope="user"), **more)


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory):
    """The zip IT ships, made by the product's own `build.py zip` (no CA: the OS store holds it here)."""
    target = tmp_path_factory.mktemp("zip") / "trustfix.zip"
    done = subprocess.run([sys.executable, str(ROOT / "build.py"), "zip", "-o", str(target)], cwd=str(ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert done.returncode == 0 and target.is_file(), done.stdout
    return target


def staged_dirs():
    """The role's temporary folders on the host (tempfile: /tmp/ansible.*-trustfix): none may be left."""
    return set(glob.glob("/tmp/ansible.*-trustfix"))


# requirements-test.txt installs ansible-core, so CI (CI set) fails rather than skips when it is missing
needs_ansible = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists() and not os.environ.get("CI"),
                                   reason="ansible-core is not installed (pip install -r requirements-test.txt)")
DOCTOR = "trustfix : Run bootstrap.py doctor (changes nothing)"
UNPACK = "trustfix : Unpack the zip into the bundle folder (only files whose bytes differ)"


# --- Ansible ------------------------------------------------------------------------------------------

@pytest.mark.e2e
@needs_ansible
def test_ansible_role_installs_then_is_ok_then_checks_with_doctor_then_undoes(sandbox, proxy, bundle_zip, tmp_path):
    """The zip from `build.py zip`: first run changed (the JSON says so), re-run ok, --check runs doctor and
    changes nothing, state=absent undoes (changed) and puts HOME back, and a second absent run is ok."""
    interp = by_version((3, 12))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    venv = tmp_path / "venv"
    python = make_venv(interp, venv, with_pip=False)
    dest = sb.home / "trustfix-bundle"
    v = role_vars(python, bundle_zip, dest)
    home_before, staged = tree(sb.home), staged_dirs()

    first = playbook(sb, tmp_path, **v)
    assert first.rc == 0 and first.failed == 0, first
    assert first.tasks[RUN] == "changed" and first.tasks[UNPACK] == "changed", first
    assert "trustfix install: exit code 0 (" in first.output and "changed: true" in first.output, first
    assert installed_version(sb, python, "pip") == expected_pins(interp.version)["pip"]
    with zipfile.ZipFile(str(bundle_zip)) as z:
        assert (dest / "bootstrap.py").read_bytes() == z.read("trustfix/bootstrap.py")
        assert sorted(p.name for p in (dest / "wheels").iterdir()) == sorted(
            n.rsplit("/", 1)[1] for n in z.namelist() if n.startswith("trustfix/wheels/"))

    again = playbook(sb, tmp_path, **v)
    assert again.rc == 0 and again.failed == 0, again
    assert again.tasks[RUN] == "ok" and again.tasks[UNPACK] == "ok" and again.changed == 0, again

    snapshot = tree(sb.home, venv, dest)
    check = playbook(sb, tmp_path, "--check", **v)
    assert check.rc == 0 and check.changed == 0 and check.failed == 0, check
    assert check.tasks[DOCTOR] == "ok", check
    assert "trustfix doctor: exit code 0 (" in check.output and "verdict: pip can reach" in check.output, check
    assert tree(sb.home, venv, dest) == snapshot

    gone = playbook(sb, tmp_path, **dict(v, trustfix_state="absent"))
    assert gone.rc == 0 and gone.failed == 0, gone
    assert gone.tasks["trustfix : Run bootstrap.py undo"] == "changed", gone
    assert not dest.exists()
    assert tree(sb.home) == home_before
    assert installed_version(sb, python, "pip") == "absent"

    gone_again = playbook(sb, tmp_path, **dict(v, trustfix_state="absent"))
    assert gone_again.rc == 0 and gone_again.changed == 0, gone_again
    assert gone_again.tasks["trustfix : Run bootstrap.py undo"] == "ok", gone_again
    assert staged_dirs() == staged


@pytest.mark.e2e
@needs_ansible
def test_ansible_role_check_mode_on_a_fresh_host_then_install_from_a_folder(sandbox, proxy, tmp_path):
    """A folder bundle: --check on a fresh host reports doctor's problem as a change to come and changes
    nothing (not even trustfix_dest); then a real run copies the folder and installs (changed)."""
    interp = by_version((3, 12))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    venv = tmp_path / "venv"
    python = make_venv(interp, venv, with_pip=False)
    dest = sb.home / "trustfix-bundle"
    bundle = copy_bundle(tmp_path / "bundle")
    v = role_vars(python, bundle, dest, trustfix_extra_args="--reinstall")     # a string is split on spaces
    before, staged = tree(sb.home, venv), staged_dirs()

    check = playbook(sb, tmp_path, "--check", **v)
    assert check.rc == 0 and check.failed == 0, check
    assert check.tasks[DOCTOR] == "changed" and check.changed == 1, check
    assert "trustfix doctor: exit code 1 (" in check.output and "fix: python bootstrap.py" in check.output, check
    assert tree(sb.home, venv) == before and not dest.exists()
    assert staged_dirs() == staged

    first = playbook(sb, tmp_path, **v)
    assert first.rc == 0 and first.failed == 0, first
    assert first.tasks[RUN] == "changed" and first.tasks["trustfix : Copy the bundle folder"] == "changed", first
    assert tree(dest) == {str(dest / p): h for p, h in
                          ((os.path.relpath(k, str(bundle)), h) for k, h in tree(bundle).items())}
    assert installed_version(sb, python, "pip") == expected_pins(interp.version)["pip"]


@pytest.mark.e2e
@needs_ansible
def test_ansible_role_fails_on_a_tampered_bundle_with_the_products_sentence(sandbox, proxy, bundle_zip, tmp_path):
    """One wheel's bytes changed in the zip: the play fails with bootstrap.py's own sentence and exit code 2,
    and nothing in HOME or the venv changed."""
    interp = by_version((3, 12))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    venv = tmp_path / "venv"
    python = make_venv(interp, venv, with_pip=False)
    pip_wheel = "trustfix/wheels/pip-{}-".format(expected_pins(interp.version)["pip"])
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(str(bundle_zip)) as src, zipfile.ZipFile(str(tampered), "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\0" if info.filename.startswith(pip_wheel) else data)   # a new SHA-256
    before = tree(sb.home, venv)

    play = playbook(sb, tmp_path, **role_vars(python, tampered, tmp_path / "dest"))
    assert play.rc != 0 and play.failed == 1, play
    assert play.tasks[RUN] == "ok" and play.tasks["trustfix : Fail with bootstrap.py's own sentence"] == "failed"
    assert HASH_SENTENCE in play.output and pip_wheel.rsplit("/", 1)[1] in play.output, play
    assert "(bootstrap.py exit code 2" in play.output, play
    assert tree(sb.home, venv) == before
    assert installed_version(sb, python, "pip") == "absent"


@pytest.mark.e2e
@needs_ansible
def test_ansible_example_playbook_machine_wide_then_an_unprivileged_users_new_venv_installs(
        sandbox, proxy, cas, bundle_zip, tmp_path, user_home):
    """The example playbook as IT runs it: root, scope global, the OS's Python, the company CA: changed, then
    ok; then uid 65534 makes a venv and its pip downloads through the proxy with no flags."""
    system_python = Path("/usr/bin/python3.11")
    if not system_python.exists():
        pytest.skip("no /usr/bin/python3.11 here")
    sb = sandbox(corp_in_os_store=False, proxy=proxy, machine_wide=True)
    v = role_vars(system_python, bundle_zip, tmp_path / "dest", trustfix_scope="global",
                  trustfix_extra_args=["--ca-file", str(cas.corp_pem)])
    first = playbook(sb, tmp_path, **v)
    assert first.rc == 0 and first.failed == 0 and first.tasks[RUN] == "changed", first
    assert "file: /etc/pip.conf" in first.output, first
    again = playbook(sb, tmp_path, **v)
    assert again.rc == 0 and again.changed == 0 and again.tasks[RUN] == "ok", again

    venv = user_home / "project" / ".venv"
    made = as_user(sb, user_home, [str(system_python), "-m", "venv", str(venv)])
    assert made.returncode == 0, out(made)
    fetched = as_user(sb, user_home, [str(venv / "bin" / "pip"), "download", "--no-deps", "--retries", "0",
                                      "--timeout", "10", "-d", str(user_home / "dl"), "corp-hello"])
    assert fetched.returncode == 0, out(fetched)
    assert [p.name.split("-")[0] for p in (user_home / "dl").iterdir()] == ["corp_hello"]


# --- Jamf ---------------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_jamf_script_passes_the_exit_code_and_logs_then_a_rerun_is_unchanged(sandbox, proxy, tmp_path):
    """As Jamf runs it: root, the script's default scope (global), the OS's Python (PEP 668: nothing is
    installed into it, pip's machine-wide configuration gets the bundle), on Linux with /bin/sh, in a sandbox
    whose /etc and /usr/local/share are its own layers. Jamf's $1-$3 are the mount point, computer and user
    names; an empty $6 is the default scope."""
    system_python = Path("/usr/bin/python3.11")
    if not system_python.exists():
        pytest.skip("no /usr/bin/python3.11 here")
    sb = sandbox(corp_in_os_store=True, proxy=proxy, machine_wide=True)
    bundle = copy_bundle(tmp_path / "bundle")
    log = tmp_path / "jamf.log"
    argv = ["/bin/sh", str(JAMF), "/", "laptop-1", "", str(bundle), str(system_python), "", "", str(log)]

    def run():
        result = sb.run(argv, cwd=str(tmp_path))
        doc = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])
        return result, doc

    first, doc = run()
    assert first.returncode == 0 and doc["exit_code"] == 0 and doc["changed"] is True, out(first)
    assert "/etc/pip.conf" in doc["files_changed"] and doc["plan"]["config_path"] == "/etc/pip.conf", out(first)
    assert first.stdout.rstrip().endswith("trustfix: exit code 0, changed: true"), out(first)
    conf = sb.run(["cat", "/etc/pip.conf"])
    assert "cert = /usr/local/share/trustfix/ca-bundle.pem" in conf.stdout, out(conf)
    second, doc = run()
    assert second.returncode == 0 and doc["changed"] is False, out(second)
    assert second.stdout.rstrip().endswith("trustfix: exit code 0, changed: false"), out(second)
    text = log.read_text()
    assert text.count('"schema_version"') == 2 and "exit code 0, changed: true" in text


@pytest.mark.e2e
def test_jamf_script_passes_a_failure_through(sandbox, tmp_path):
    """A usage error from bootstrap.py (exit 2) is the policy's exit code; no bundle folder is exit 2 too."""
    sb = sandbox(offline=True)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    log = tmp_path / "jamf.log"
    bad = sb.run(["/bin/sh", str(JAMF), "/", "laptop-1", "", str(bundle), str(python), "user", "--no-such-option",
                  str(log)], cwd=str(tmp_path))
    assert bad.returncode == 2 and "trustfix: exit code 2" in bad.stdout, out(bad)
    missing = sb.run(["/bin/sh", str(JAMF), "/", "laptop-1", "", str(tmp_path / "nowhere"), str(python), "user",
                      "", str(log)], cwd=str(tmp_path))
    assert missing.returncode == 2 and "deploy the bundle there first" in missing.stdout, out(missing)


# --- Intune (not run: no PowerShell here) ------------------------------------------------------------

def _ps(name):
    text = (DEPLOY / "intune" / name).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return text, code


def test_intune_detection_is_doctors_exit_code():
    if shutil.which("pwsh"):
        pytest.skip("pwsh is installed: write a real test")                  # pragma: no cover
    text, code = _ps("detect.ps1")
    assert text.startswith("# trustfix: Intune Remediations - DETECTION script.")
    assert re.search(r"& \$Python @PyArgs \(Join-Path \$Bundle 'bootstrap.py'\) doctor --json", code)
    assert "$code = $LASTEXITCODE" in code
    assert "if ($code -eq 0) { exit 0 } else { exit 1 }" in code
    # the key it shows is where deploy/report.schema.json puts doctor's cause
    path = re.search(r"\(\$out \| ConvertFrom-Json\)\.([\w.]+)", code).group(1).split(".")
    node = json.loads((DEPLOY / "report.schema.json").read_text())
    for key in path:
        node = node["properties"][key]
        node = json.loads((DEPLOY / "report.schema.json").read_text())["$defs"][node["$ref"].rsplit("/", 1)[1]] \
            if "$ref" in node else node
    assert path == ["doctor", "verdict", "cause"] and node["type"] == "string"
    assert "IntuneManagementExtension\\Logs" in code


def test_intune_remediation_runs_bootstrap_global_and_passes_the_exit_code():
    text, code = _ps("remediate.ps1")
    assert text.startswith("# trustfix: Intune Remediations - REMEDIATION script")
    assert re.search(r"& \$Python @PyArgs \(Join-Path \$Bundle 'bootstrap.py'\) --json --scope global", code)
    assert "$code = $LASTEXITCODE" in code and code.rstrip().endswith("exit $code")
    assert "IntuneManagementExtension\\Logs" in code and "trustfix-remediate.log" in code
