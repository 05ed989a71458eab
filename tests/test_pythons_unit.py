"""Unit tests of finding and probing every Python on the machine (doctor's list, --all-pythons).

The probe runs real interpreters (read only: it lists folders and prints JSON); discovery is checked on
a fake PATH and a fake PYENV_ROOT in tmp_path.
"""
import os
import ssl
import stat

import pytest

from testbed import by_version
from unit_helpers import bootstrap


def touch(path, target=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if target:
        path.symlink_to(target)
    else:
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_candidates_come_from_path_and_pyenv_named_as_interpreters_once_each(tmp_path):
    bin_dir, pyenv = tmp_path / "bin", tmp_path / "pyenv"
    py39 = touch(bin_dir / "python3.9")
    touch(bin_dir / "python3", target=py39)                       # the same file twice: listed once
    touch(bin_dir / "python3.9-config")                           # not an interpreter
    touch(bin_dir / "pythonw-tool")
    v312 = touch(pyenv / "versions" / "3.12.1" / "bin" / "python3.12")
    touch(pyenv / "versions" / "3.12.1" / "bin" / "python3", target="python3.12")
    touch(pyenv / "versions" / "3.12.1" / "bin" / "python3.12-gdb.py")
    found = bootstrap.python_candidates({"PATH": str(bin_dir), "PYENV_ROOT": str(pyenv), "HOME": str(tmp_path)})
    mine = [p for p in found if p.startswith(str(tmp_path))]
    assert sorted(os.path.realpath(p) for p in mine) == sorted([str(py39), str(v312)])


def test_probe_reads_version_pip_and_ensurepip_of_a_real_python():
    interp = by_version((3, 9))
    info = bootstrap.probe_python(str(interp.path))
    assert "error" not in info, info
    assert info["version"][:2] == interp.version
    assert info["ensurepip"] and info["ensurepip"][0].isdigit()
    assert info["prefix"] and isinstance(info["writable"], bool)


def test_python_2_is_probed_and_named_unsupported():
    info = bootstrap.probe_python(str(by_version((2, 7)).path))
    assert info["version"][:1] == (2,), info
    assert "not supported" in bootstrap.why_not_install(info)


def test_a_candidate_that_does_not_run_is_reported_not_fatal(tmp_path):
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\necho 'pyenv: python3.9: command not found' >&2\nexit 127\n")
    fake.chmod(0o755)
    info = bootstrap.probe_python(str(fake))
    assert info["error"].startswith("does not run") and "command not found" in info["error"]


@pytest.mark.parametrize("change,reason", [
    ({}, None),
    ({"externally_managed": True}, "PEP 668"),
    ({"writable": False}, "cannot write"),
    ({"version": (3, 5, 10)}, "not supported"),
    ({"implementation": "pypy"}, "not CPython"),
])
def test_why_not_install(change, reason):
    info = dict({"version": (3, 9, 18), "implementation": "cpython", "externally_managed": False,
                 "writable": True}, **change)
    got = bootstrap.why_not_install(info)
    assert (got is None) if reason is None else (reason in got), got


def test_trust_context_follows_pips_rules(tmp_path):
    import trustme
    corp = tmp_path / "corp.pem"
    trustme.CA().cert_pem.write_to_path(str(corp))
    ctx, how = bootstrap.trust_context((3, 9), "23.0.1", str(corp), None)
    assert how.endswith("(replaces certifi)") and len(ctx.get_ca_certs()) == 1     # cert replaces certifi
    ctx, how = bootstrap.trust_context((3, 12), "26.0", str(corp), None)
    assert how == "OS store + certifi + " + str(corp)                               # cert adds to the OS store
    serial = ssl._ssl._test_decode_cert(str(corp))["serialNumber"]
    assert serial in [c["serialNumber"] for c in ctx.get_ca_certs()]
    assert bootstrap.trust_context((3, 9), "26.0", None, None)[1] == "its CA bundle was not found"
    ctx, how = bootstrap.trust_context((3, 12), "23.2.1", str(tmp_path / "missing.pem"), str(corp))
    assert ctx is None and "does not exist" in how
