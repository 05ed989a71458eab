"""Machine-wide, as a fleet tool runs it: root runs `bootstrap.py --json --scope global` once, and every
unprivileged user of the machine, in venvs they make later, reaches the index through the proxy with no
flags; a user without the rights is refused with one sentence; root's `undo --scope global` puts the machine
back byte for byte.

The machine is the sandbox: /etc and /usr/local/share are copy-on-write layers inside the test's folder
(testbed.Sandbox(machine_wide=True)), with no /etc/pip.conf, as on a laptop; the user is uid 65534 (nobody,
through setpriv, no groups) with a home of its own; the interpreter is the OS's /usr/bin/python3.11
(PEP 668, pip 23.0.1 from Debian, no truststore), the one a fleet's new hires type `python3 -m venv` with.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

import tree_snapshot
from bundle_helpers import USER, as_user, bootstrap, copy_bundle, out

pytestmark = pytest.mark.e2e

SYSTEM_PYTHON = Path("/usr/bin/python3.11")
PKG = "corp-hello"
MACHINE_FILES = ("/etc/pip.conf", "/usr/local/share/trustfix")


def _needs_system_python():
    if not SYSTEM_PYTHON.exists():
        pytest.skip("{} is not here (the OS's Python, as a fleet's laptops have)".format(SYSTEM_PYTHON))


def machine_state(sb):
    """What the machine-wide files are, seen from inside the sandbox: each path's type, mode, owner and
    SHA-256 (folders listed recursively): "<sha256 or dir> <mode> <uid>"."""
    result = sb.run([SYSTEM_PYTHON, tree_snapshot.SCRIPT, "--modes", "--owners", "-"] + list(MACHINE_FILES))
    assert result.returncode == 0, out(result)
    return json.loads(result.stdout)


def user_pip(sb, home, python, *args):
    return as_user(sb, home, [str(python), "-m", "pip", "download", "--no-deps", "--retries", "0", "--timeout", "10",
                              "-d", str(home / "downloads"), PKG] + list(args))


def test_root_fixes_every_user_and_their_new_venvs_and_undo_restores_the_machine(sandbox, proxy, cas, user_home):
    _needs_system_python()
    sb = sandbox(corp_in_os_store=False, proxy=proxy, machine_wide=True)
    bundle = copy_bundle(user_home / "bundle")            # where the user can read it too
    for path in [bundle] + [p for p in bundle.rglob("*")]:
        os.chmod(str(path), 0o755 if path.is_dir() else 0o644)
    ca = user_home / "corp-root.pem"
    shutil.copyfile(str(cas.corp_pem), str(ca))
    os.chmod(str(ca), 0o644)
    before = machine_state(sb)
    assert before == {"/etc/pip.conf": "absent", "/usr/local/share/trustfix": "absent"}

    # a user's venv made before: its pip (Debian's 23.0.1, certifi = the OS bundle) does not trust the proxy
    made = as_user(sb, user_home, [str(SYSTEM_PYTHON), "-m", "venv", str(user_home / "old-venv")])
    assert made.returncode == 0, out(made)
    old_venv_python = user_home / "old-venv" / "bin" / "python"
    failed = user_pip(sb, user_home, old_venv_python)
    assert failed.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out(failed), out(failed)

    # the user cannot do it for the machine: one sentence, exit 2, nothing changed (not even their HOME)
    home_before = tree_snapshot.tree(user_home)
    refused = as_user(sb, user_home, [str(SYSTEM_PYTHON), str(bundle / "bootstrap.py"), "--json", "--scope", "global",
                                      "--ca-file", str(ca)])
    doc = json.loads(refused.stdout)
    assert refused.returncode == 2 and doc["exit_code"] == 2 and doc["changed"] is False, out(refused)
    assert "--scope global changes pip's trust for every user of this computer, so it needs root" in doc["error"]
    assert "sudo " in doc["error"] and "nothing was changed" in doc["error"]
    assert machine_state(sb) == before
    assert tree_snapshot.tree(user_home) == home_before

    # root, as a fleet agent runs it (umask 077, as hardened machines set it)
    first = bootstrap(sb, SYSTEM_PYTHON, bundle, "--json", "--scope", "global", "--ca-file", ca, umask=0o077)
    doc = json.loads(first.stdout)
    assert first.returncode == 0 and doc["changed"] is True, out(first)
    assert "/etc/pip.conf" in doc["files_changed"], doc["files_changed"]
    assert "/usr/local/share/trustfix/ca-bundle.pem" in doc["files_changed"], doc["files_changed"]
    state = machine_state(sb)
    # every user reads the bundle and the configuration; only root writes them; the journal is root's alone
    assert state["/usr/local/share/trustfix"] == "dir 755 0"
    assert state["/usr/local/share/trustfix/ca-bundle.pem"].split()[1:] == ["644", "0"]
    assert state["/etc/pip.conf"].split()[1:] == ["644", "0"]
    private = {p: v for p, v in state.items() if p not in ("/etc/pip.conf", "/usr/local/share/trustfix",
                                                            "/usr/local/share/trustfix/ca-bundle.pem")}
    assert private and all(v.split()[1:] in (["600", "0"], ["700", "0"]) for v in private.values()), private

    # the user: the old venv and a new one, no flags, no configuration of their own
    assert user_pip(sb, user_home, old_venv_python).returncode == 0
    made = as_user(sb, user_home, [str(SYSTEM_PYTHON), "-m", "venv", str(user_home / "new-venv")])
    assert made.returncode == 0, out(made)
    fresh = user_pip(sb, user_home, user_home / "new-venv" / "bin" / "python")
    assert fresh.returncode == 0, out(fresh)
    assert not (user_home / ".config" / "pip").exists() and not (user_home / ".pip").exists()

    again = bootstrap(sb, SYSTEM_PYTHON, bundle, "--json", "--scope", "global", "--ca-file", ca)
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False, out(again)
    assert machine_state(sb) == state

    # a user's own stale `cert` outranks the machine's: their doctor names the file
    conf = user_home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    for path in (conf.parent.parent, conf.parent, conf):
        os.chown(str(path), *USER)
    doctor = as_user(sb, user_home, [str(user_home / "new-venv" / "bin" / "python"), str(bundle / "bootstrap.py"),
                                     "doctor", "--json"])
    assert doctor.returncode == 1, out(doctor)
    assert str(conf) in doctor.stdout, out(doctor)
    conf.unlink()

    undone = bootstrap(sb, SYSTEM_PYTHON, bundle, "undo", "--json", "--scope", "global")
    doc = json.loads(undone.stdout)
    assert undone.returncode == 0 and doc["changed"] is True, out(undone)
    assert machine_state(sb) == before
    failed = user_pip(sb, user_home, old_venv_python)
    assert failed.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out(failed), out(failed)
