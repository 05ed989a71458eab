"""Trust that lasts: after ONE run of bootstrap.py, every pip this user starts afterwards works through the
intercepting proxy — new venvs of every Python (their old bundled pip reads only certifi and `cert`), venvs
made with virtualenv, the base interpreters' own pips — and `undo` puts every file back byte for byte.

Also: the starting states that used to end in exit 3 after a change (a bare venv online without wheels/),
the computer with no network at all (the plain command proceeds from the bundle), and the refresh of the
bundle on a re-run. End to end in the corporate network in a box (tests/testbed).
"""
import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bundle_helpers import bootstrap, copy_bundle, installed_version, out, tree
from testbed import by_version, make_venv, need, pythons

pytestmark = pytest.mark.e2e

PKG = "corp-hello"
USER_CONF = ".config/pip/pip.conf"
FAIL_FAST = ["--retries", "0", "--timeout", "20"]


def cert_value(home):
    text = (Path(home) / USER_CONF).read_text()
    return re.search(r"^cert = (.+)$", text, re.M).group(1)


def plain_pip_install(sb, python, target):
    """What the developer types next: no flags, a fresh process, their own configuration."""
    return sb.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--target", str(target)]
                  + FAIL_FAST + [PKG], timeout=240)


def bundle_certs(path):
    from cryptography import x509
    return {c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(Path(path).read_bytes())}


# --- one run fixes every pip of this user ------------------------------------------------------------

def test_one_bootstrap_fixes_new_venvs_of_every_python_and_undo_restores_home(sandbox, proxy, cas, tmp_path):
    """Bootstrap once with 3.12 (pip 26.3 uses the OS store there), then, as the developer's next steps:
    `python3.X -m venv` for every Python on the machine (bundled pip 18.1 ... 24.2), `virtualenv -p` for the
    ones virtualenv supports, and every base interpreter's own pip (a read-only `pip download`)."""
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    before = tree(sb.home)
    python = make_venv(by_version((3, 12)), tmp_path / "boot-venv", with_pip=False)
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"))
    assert result.returncode == 0, out(result)
    assert "Example Corp Interception" in Path(cert_value(sb.home)).read_text(errors="replace") or \
        any("Example Corp Interception" in s for s in bundle_certs(cert_value(sb.home)))

    interps = [need(i) for i in pythons(min=(3, 6))]
    assert len(interps) >= 2, "this test needs at least two Pythons: {}".format(interps)

    def try_venv(interp):
        venv = tmp_path / "project-{}".format(interp)
        made = sb.run([str(interp.path), "-m", "venv", str(venv)], timeout=240)
        if made.returncode != 0:
            return interp, "venv", "could not make the venv: " + out(made)[-500:]
        pip = installed_version(sb, venv / "bin" / "python", "pip")
        done = plain_pip_install(sb, venv / "bin" / "python", tmp_path / "t-venv-{}".format(interp))
        return interp, "venv (pip {})".format(pip), None if done.returncode == 0 else out(done)[-800:]

    def try_virtualenv(interp):
        venv = tmp_path / "virtualenv-{}".format(interp)
        made = sb.run([sys.executable, "-m", "virtualenv", "-q", "-p", str(interp.path), str(venv)], timeout=240)
        if made.returncode != 0:
            return interp, "virtualenv", "could not make the virtualenv: " + out(made)[-500:]
        done = plain_pip_install(sb, venv / "bin" / "python", tmp_path / "t-virtualenv-{}".format(interp))
        return interp, "virtualenv", None if done.returncode == 0 else out(done)[-800:]

    def try_base(interp):
        has_pip = sb.run([str(interp.path), "-c", "import pip"])
        if has_pip.returncode != 0:
            return interp, "base (no pip)", None
        done = sb.run([str(interp.path), "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                       "-d", str(tmp_path / "d-base-{}".format(interp))] + FAIL_FAST + [PKG], timeout=240)
        return interp, "base pip", None if done.returncode == 0 else out(done)[-800:]

    jobs = [(try_venv, i) for i in interps] + [(try_virtualenv, i) for i in interps if i.version >= (3, 9)] + \
        [(try_base, i) for i in interps]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda job: job[0](job[1]), jobs))
    failures = ["Python {} {}: {}".format(i, kind, why) for i, kind, why in outcomes if why]
    assert not failures, "\n\n".join(failures)
    tried = {str(i) for i, kind, _ in outcomes if kind.startswith("venv")}
    assert tried == {str(i) for i in interps}

    undone = bootstrap(sb, python, tmp_path / "bundle", "undo")
    assert undone.returncode == 0, out(undone)
    after = {p: d for p, d in tree(sb.home).items() if "/.cache/" not in p and not p.endswith("/.cache")}
    assert after == before, "undo left HOME different"


# --- every starting state works, or refuses before any change ----------------------------------------

# (Python, venv kind, wheels/ shipped, how the corporate root is known). Every value of each factor is
# paired with every value of each other factor at least once (a pairwise cover of the 8 x 3 x 2 x 3
# matrix), so each Python meets both wheel states and the trust sources rotate across them.
MATRIX = [
    ((3, 6), "bundled", True, "os-store"), ((3, 6), "bare", True, "ca-file"),
    ((3, 7), "bare", True, "ca-shipped"), ((3, 7), "bundled", True, "os-store"),
    ((3, 8), "bare", False, "os-store"), ((3, 8), "bundled", True, "ca-shipped"),
    ((3, 9), "bare", False, "os-store"), ((3, 9), "bundled", False, "ca-file"),
    ((3, 10), "bare", True, "ca-file"), ((3, 10), "bundled", False, "ca-shipped"),
    ((3, 11), "bundled", False, "os-store"), ((3, 11), "base", True, "ca-shipped"),
    ((3, 12), "bare", False, "ca-shipped"), ((3, 12), "base", False, "os-store"),
    ((3, 13), "bare", False, "os-store"), ((3, 13), "bundled", True, "ca-file"),
    ((3, 9), "base", True, "ca-file"), ((3, 13), "base", False, "ca-file"),
]


def base_copy(interp, dest):
    """A private copy of a base interpreter (never the machine's own): the whole prefix, copied."""
    import shutil
    prefix = Path(interp.path).resolve().parent.parent
    shutil.copytree(prefix, dest, symlinks=True, ignore=shutil.ignore_patterns("test", "tests", "__pycache__",
                                                                               "idlelib", "tkinter", "ensurepip"))
    return dest / "bin" / "python"


@pytest.mark.parametrize("version,kind,wheels,trust", MATRIX,
                         ids=["{}.{}-{}-{}-{}".format(v[0], v[1], k, "wheels" if w else "index", t) for v, k, w, t in MATRIX])
def test_every_starting_state_ends_with_a_working_pip_for_new_venvs(version, kind, wheels, trust, sandbox, proxy, cas, tmp_path):
    interp = by_version(version)
    sb = sandbox(corp_in_os_store=trust == "os-store", proxy=proxy)
    if kind == "base":
        python = base_copy(interp, tmp_path / "base")
    else:
        python = make_venv(interp, tmp_path / "venv", with_pip=kind == "bundled")
    bundle = copy_bundle(tmp_path / "bundle", wheels=wheels, ca=[cas.corp_pem] if trust == "ca-shipped" else ())
    args = ["--ca-file", cas.corp_pem] if trust == "ca-file" else []
    result = bootstrap(sb, python, bundle, *args, timeout=300)
    assert result.returncode == 0, out(result)
    done = plain_pip_install(sb, python, tmp_path / "t")
    assert done.returncode == 0, out(done)
    # the developer's next venv (its bundled pip, certifi only) works too
    project = make_venv(interp, tmp_path / "project", with_pip=True)
    nxt = plain_pip_install(sb, project, tmp_path / "t2")
    assert nxt.returncode == 0, out(nxt)


# --- no network at all: the plain command proceeds from the bundle ------------------------------------

@pytest.mark.parametrize("version", [(3, 9), (3, 12)], ids=["3.9", "3.12"])
def test_no_network_at_all_proceeds_from_the_bundle_and_says_so(version, sandbox, cas, tmp_path):
    sb = sandbox(corp_in_os_store=True, offline=True)            # loopback only: no route, no DNS
    python = make_venv(by_version(version), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", ca=[cas.corp_pem])
    result = bootstrap(sb, python, bundle, "--json", env_extra={"TRUSTFIX_TIMEOUT": "5"})
    doc = json.loads(result.stdout)
    assert result.returncode == 0, out(result)
    assert doc["mode"] == "offline (no network)"
    assert [s["status"] for s in doc["steps"] if s["step"] == "verify"] == ["skipped"]
    assert any(s["step"] == "network" and "no network" in s["summary"] for s in doc["steps"])
    assert installed_version(sb, python, "pip") != "absent"
    assert "Example Corp Interception" in " ".join(bundle_certs(cert_value(sb.home)))
    text = bootstrap(sb, python, bundle, "--reinstall", env_extra={"TRUSTFIX_TIMEOUT": "5"})
    assert text.returncode == 0 and "no network" in text.stdout, out(text)


def test_no_network_without_the_wheels_refuses_and_changes_nothing(sandbox, tmp_path):
    sb = sandbox(corp_in_os_store=True, offline=True)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    before = tree(sb.home, tmp_path / "venv")
    result = bootstrap(sb, python, bundle, env_extra={"TRUSTFIX_TIMEOUT": "5"})
    assert result.returncode == 1 and "nothing was changed" in result.stdout, out(result)
    assert tree(sb.home, tmp_path / "venv") == before


# --- refresh and drift ---------------------------------------------------------------------------------

def fake_certifi(folder, version, drop_last=1):
    """A certifi wheel of another version: the real roots minus the last ones (a changed Mozilla set)."""
    real = next((Path(__file__).resolve().parent.parent / "wheels").glob("certifi-*.whl"))
    pem = zipfile.ZipFile(real).read("certifi/cacert.pem")
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", pem, re.S)
    data = b"".join(blocks[:-drop_last])
    name = "certifi-{}-py3-none-any.whl".format(version)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("certifi/__init__.py", "__version__ = '{}'\n".format(version))
        z.writestr("certifi/cacert.pem", data)
        z.writestr("certifi-{}.dist-info/METADATA".format(version), "Name: certifi\nVersion: {}\n".format(version))
    path = Path(folder) / name
    path.write_bytes(buf.getvalue())
    return path, hashlib.sha256(buf.getvalue()).hexdigest()


def repin_certifi(bundle, version):
    for old in (bundle / "wheels").glob("certifi-*.whl"):
        old.unlink()
    path, digest = fake_certifi(bundle / "wheels", version)
    lines = [l for l in (bundle / "hashes.txt").read_text().splitlines() if not l.startswith("certifi==")]
    lines.append('certifi=={} ; python_version >= "3.7" --hash=sha256:{}'.format(version, digest))
    (bundle / "hashes.txt").write_text("\n".join(lines) + "\n")


def test_a_rerun_refreshes_the_bundle_and_says_what_changed_and_doctor_flags_drift(sandbox, proxy, cas, tmp_path):
    import trustme
    rotated = trustme.CA(organization_name="Example Corp Rotated Root (test)")
    rotated_pem = tmp_path / "rotated.pem"
    rotated.cert_pem.write_to_path(str(rotated_pem))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(by_version((3, 9)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", ca=[cas.corp_pem])
    first = bootstrap(sb, python, bundle)
    assert first.returncode == 0, out(first)
    before = (Path(cert_value(sb.home))).read_bytes()

    # IT ships a newer bundle: a CA added, a newer certifi pinned
    repin_certifi(bundle, "2099.1.1")
    doctor = bootstrap(sb, python, bundle, "doctor", "--json")
    doc = json.loads(doctor.stdout)
    stale = [c for c in doc["doctor"]["checks"] if c["name"] == "bundle"]
    assert stale and stale[0]["status"] == "problem" and "2099.1.1" in stale[0]["text"], doctor.stdout

    (bundle / "ca" / "corp-1.pem").write_bytes(rotated_pem.read_bytes())
    second = bootstrap(sb, python, bundle)
    assert second.returncode == 0, out(second)
    assert "certifi 2026.10.18 -> 2099.1.1" in second.stdout and "Example Corp Rotated Root" in second.stdout
    after = Path(cert_value(sb.home)).read_bytes()
    assert after != before
    names = " ".join(bundle_certs(cert_value(sb.home)))
    assert "Example Corp Interception" in names and "Example Corp Rotated Root" in names
    third = bootstrap(sb, python, bundle)
    assert third.returncode == 0 and "Nothing needed to change" in third.stdout, out(third)
    fresh = json.loads(bootstrap(sb, python, bundle, "doctor", "--json").stdout)
    assert [c["status"] for c in fresh["doctor"]["checks"] if c["name"] == "bundle"] == ["ok"]


def test_doctor_flags_a_bundle_that_lacks_the_ca_the_proxy_presents(sandbox, proxy, cas, tmp_path):
    import trustme
    wrong = trustme.CA(organization_name="Not The Proxy Root (test)")
    wrong_pem = tmp_path / "wrong.pem"
    wrong.cert_pem.write_to_path(str(wrong_pem))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = bootstrap(sb, python, bundle, "--ca-file", wrong_pem)
    assert result.returncode == 0, out(result)                     # this pip works through the OS store
    assert "do not verify" in result.stdout                        # ... and the run says the bundle will not
    doc = json.loads(bootstrap(sb, python, bundle, "doctor", "--json").stdout)
    [check] = [c for c in doc["doctor"]["checks"] if c["name"] == "bundle"]
    assert check["status"] == "problem" and "Example Corp Interception" in check["text"]
