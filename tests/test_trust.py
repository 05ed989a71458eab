"""After one run of bootstrap.py, a plain `python -m pip install X` works behind the intercepting proxy —
for good, without trusted-host, without edited certifi — and `undo` puts every file back byte for byte.

All scenarios are end to end in the corporate network in a box (tests/testbed).
"""
import base64
import datetime
import os
import re
from pathlib import Path

import pytest

from bundle_helpers import bootstrap, changes, copy_bundle, expected_pins, installed_version, out, tree, write
from certificates import NOW, dn, key_pems, make_cert, pem
from testbed import make_venv, pythons

pytestmark = pytest.mark.e2e

SUPPORTED = pythons(min=(3, 8))
PAIR = [i for i in SUPPORTED if i.version in ((3, 9), (3, 12))] or SUPPORTED[:1]
PKG = "corp-hello"          # a wheel the test bed builds and serves through the proxy as if from pypi.org
USER_CONF = ".config/pip/pip.conf"


def pip_install(sb, python, target):
    """What the user types afterwards: no flags at all (a fresh process, their own configuration)."""
    return sb.run([str(python), "-m", "pip", "install", "--target", str(target), PKG])


def user_conf(sb, text):
    """The user's pip.conf in the sandbox's HOME, holding text (its folders made)."""
    return write(Path(sb.home) / USER_CONF, text)


def pip_configs(home):
    return [p for p in Path(home).rglob("*") if p.is_file() and p.name in ("pip.conf", "pip.ini")]


def assert_certifi_untouched(sb, python):
    """pip's vendored certifi bundle still matches the digest in pip's RECORD."""
    code = ("import os,sys,base64,hashlib,glob,pip\n"
            "site=os.path.dirname(os.path.dirname(pip.__file__))\n"
            "rec=glob.glob(os.path.join(site,'pip-*.dist-info','RECORD'))[0]\n"
            "line=[l for l in open(rec) if l.startswith('pip/_vendor/certifi/cacert.pem,')][0]\n"
            "want=line.split(',')[1][7:]\n"
            "got=base64.urlsafe_b64encode(hashlib.sha256(open(os.path.join(site,'pip/_vendor/certifi/cacert.pem'),'rb').read()).digest()).rstrip(b'=').decode()\n"
            "print(want==got)\n")
    result = sb.run([str(python), "-c", code])
    assert result.stdout.strip() == "True", out(result)


# --- the promise ------------------------------------------------------------------------------------

@pytest.mark.parametrize("interp", SUPPORTED, ids=str)
def test_after_bootstrap_a_plain_pip_install_works_through_the_intercepting_proxy(interp, sandbox, proxy, cas, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = bootstrap(sb, python, bundle)
    assert result.returncode == 0, out(result)
    assert "a fresh pip process reached https://pypi.org/simple" in result.stdout

    installed = pip_install(sb, python, tmp_path / "target")
    assert installed.returncode == 0, out(installed)
    assert (tmp_path / "target" / "corp_hello").exists() or list((tmp_path / "target").glob("corp_hello*"))

    configs = pip_configs(sb.home)
    for conf in configs:
        assert "trusted" not in conf.read_text()
    # the proxy presents the corporate root: every Python gets the bundle, for the user's other pips too
    text = (Path(sb.home) / USER_CONF).read_text()
    bundle_path = re.search(r"^cert = (.+)$", text, re.M).group(1)
    assert not bundle_path.startswith(str(tmp_path / "venv"))     # never inside site-packages
    assert cas.corp_pem.read_bytes().strip() in Path(bundle_path).read_bytes()
    assert_certifi_untouched(sb, python)


@pytest.mark.parametrize("interp", PAIR, ids=str)
def test_os_store_without_the_corporate_ca_and_ca_file_given(interp, sandbox, proxy, cas, tmp_path):
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem)
    assert result.returncode == 0, out(result)
    assert pip_install(sb, python, tmp_path / "t").returncode == 0
    assert "cert = " in (Path(sb.home) / USER_CONF).read_text()


@pytest.mark.parametrize("interp", PAIR, ids=str)
def test_the_ca_shipped_in_the_bundle_is_used(interp, sandbox, proxy, cas, tmp_path):
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", ca=[cas.corp_pem])
    result = bootstrap(sb, python, bundle)
    assert result.returncode == 0, out(result)
    assert pip_install(sb, python, tmp_path / "t").returncode == 0


# --- what pip does with `cert`: ADDS on >= 3.10 with pip >= 24.2, REPLACES certifi before ---------

@pytest.mark.parametrize("interp", PAIR, ids=str)
def test_cert_adds_to_the_os_store_on_310_and_replaces_certifi_before(interp, sandbox, index, cas, tmp_path):
    """pip talks to the index directly (no proxy); the index's root is in the OS store only. A `cert`
    holding just the corporate root leaves pip 26.3 on 3.12 working (added), and 26.0.1 on 3.9 failing
    (replaced: neither certifi nor the OS store is consulted)."""
    sb = sandbox(corp_in_os_store=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    assert bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--offline").returncode == 0
    conf = user_conf(sb, "[global]\ncert = {}\nindex-url = {}\n".format(cas.corp_pem, index.url))
    result = sb.run([str(python), "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "d"),
                     "--retries", "0", "--timeout", "10", PKG])
    if interp.version >= (3, 10):
        assert result.returncode == 0, out(result)
    else:
        assert result.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out(result)


def test_the_bundle_carries_certifi_roots_plus_the_corporate_ca(sandbox, proxy, cas, tmp_path):
    import zipfile
    interp = PAIR[0]
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    assert bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem).returncode == 0
    path = re.search(r"^cert = (.+)$", (Path(sb.home) / USER_CONF).read_text(), re.M).group(1)
    data = Path(path).read_bytes()
    certifi_wheel = next((bundle / "wheels").glob("certifi-*.whl"))
    certifi = zipfile.ZipFile(certifi_wheel).read("certifi/cacert.pem")
    assert certifi in data
    assert Path(cas.corp_pem).read_bytes().strip().splitlines()[1] in data


# --- the user's file is kept; bad input changes nothing ---------------------------------------------

USER_FILE = """# my pip settings -- keep this comment
[global]
timeout = 60
; another comment
extra-index-url = https://example.invalid/simple

[install]
no-warn-script-location = true
"""


def test_an_existing_pip_config_keeps_its_comments_order_and_keys(sandbox, proxy, cas, tmp_path):
    interp = PAIR[0]
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    conf = user_conf(sb, USER_FILE)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--ca-file", cas.corp_pem, "--offline")
    assert result.returncode == 0, out(result)
    after = conf.read_text().splitlines()
    added = [l for l in after if l not in USER_FILE.splitlines()]
    assert len(added) == 1 and added[0].startswith("cert = ")
    assert [l for l in after if l != added[0]] == USER_FILE.splitlines()


def cert_file(folder, name, ca=True, days=(-1, 365)):
    """folder/name.pem: a self-signed certificate of CN=name, valid for days (from, to) around now."""
    cert = make_cert(dn(name), ca=ca, not_before=NOW + datetime.timedelta(days=days[0]),
                     not_after=NOW + datetime.timedelta(days=days[1]))[0]
    return write(folder / (name + ".pem"), pem(cert))


BAD_CAS = {
    "empty": (lambda p: write(p / "empty.pem", ""), "is empty"),
    "garbage": (lambda p: write(p / "junk.pem", "hello, not a cert\n"), "is not a certificate"),
    "private-key": (lambda p: write(p / "key.pem", key_pems()["PKCS8 private key"]), "holds a private key"),
    "leaf": (lambda p: cert_file(p, "leaf.example", ca=False), "is not a CA certificate"),
    "expired": (lambda p: cert_file(p, "Old Root", days=(-400, -2)), "expired on"),
    "not-yet-valid": (lambda p: cert_file(p, "Future Root", days=(30, 400)), "is not valid until"),
    "missing": (lambda p: p / "nowhere.pem", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_CAS))
def test_a_bad_ca_file_is_refused_and_the_config_stays_byte_identical(case, sandbox, tmp_path):
    make, words = BAD_CAS[case]
    bad = make(tmp_path)
    sb = sandbox(offline=True)
    conf = user_conf(sb, USER_FILE)
    python = make_venv(PAIR[0], tmp_path / "venv", with_pip=True)
    before = tree(sb.home, tmp_path / "venv")
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--offline", "--ca-file", bad)
    assert result.returncode == 2, out(result)
    assert str(bad) in result.stdout and words in result.stdout
    assert tree(sb.home, tmp_path / "venv") == before


def test_a_der_ca_file_is_converted_and_used(sandbox, proxy, tmp_path, cas):
    der = tmp_path / "corp.cer"
    der.write_bytes(base64.b64decode("".join(Path(cas.corp_pem).read_text().strip().splitlines()[1:-1])))
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(PAIR[0], tmp_path / "venv", with_pip=False)
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--ca-file", der)
    assert result.returncode == 0, out(result)
    assert pip_install(sb, python, tmp_path / "t").returncode == 0


def test_a_pip_config_that_pip_cannot_parse_is_refused(sandbox, tmp_path, cas):
    sb = sandbox(offline=True)
    conf = user_conf(sb, "[global\ncert = /x\n")
    python = make_venv(PAIR[0], tmp_path / "venv", with_pip=True)
    before = tree(sb.home, tmp_path / "venv")
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--offline", "--ca-file", cas.corp_pem)
    assert result.returncode == 2, out(result)
    assert str(conf) in result.stdout and "pip cannot read" in result.stdout
    assert tree(sb.home, tmp_path / "venv") == before


def test_an_unwritable_config_directory_is_refused(sandbox, tmp_path, cas):
    """HOME is mounted read-only (even root cannot write there): refused before anything changes."""
    sb = sandbox(offline=True)
    python = make_venv(PAIR[0], tmp_path / "venv", with_pip=True)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(sb.home, tmp_path / "venv")
    result = sb.run(["sh", "-c", 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(sb.home),
                     str(python), str(bundle / "bootstrap.py"), "--offline", "--ca-file", str(cas.corp_pem)],
                    cwd=str(bundle))
    assert result.returncode == 2, out(result)
    assert "cannot write" in result.stdout.lower() and "not writable" in result.stdout
    assert tree(sb.home, tmp_path / "venv") == before


def test_an_existing_trusted_host_is_reported_and_never_written(sandbox, proxy, tmp_path, cas):
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    conf = user_conf(sb, "[global]\ntrusted-host = pypi.org files.pythonhosted.org\n")
    python = make_venv(PAIR[0], tmp_path / "venv", with_pip=False)
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--ca-file", cas.corp_pem)
    assert result.returncode == 0, out(result)
    assert "sets trusted-host = pypi.org files.pythonhosted.org" in result.stdout
    assert conf.read_text().count("trusted-host") == 1


# --- journal, interruption and undo -------------------------------------------------------------

def test_undo_restores_every_file_byte_for_byte_and_a_rerun_changes_nothing(sandbox, proxy, cas, tmp_path):
    interp = PAIR[0]
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    conf = user_conf(sb, USER_FILE)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    original = tree(sb.home, tmp_path / "venv")
    bundle = copy_bundle(tmp_path / "bundle")

    first = bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem)
    assert first.returncode == 0, out(first)
    configured = tree(sb.home, tmp_path / "venv")
    again = bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem)
    assert again.returncode == 0 and "Nothing needed to change" in again.stdout, out(again)
    assert tree(sb.home, tmp_path / "venv") == configured

    undone = bootstrap(sb, python, bundle, "undo")
    assert undone.returncode == 0, out(undone)
    after = {p: h for p, h in tree(sb.home, tmp_path / "venv").items() if "/.cache" not in p}  # the user's own pip cache
    assert after == original, changes(original, after)
    assert conf.read_text() == USER_FILE
    twice = bootstrap(sb, python, bundle, "undo")
    assert twice.returncode == 0 and "nothing to undo" in twice.stdout


# Runs argv and kills it with its children (SIGKILL to its process group, as a power cut would: a pip left
# running would race the checks) the moment a state of the run is seen: "exists:GLOB" or "gone:GLOB",
# polled every millisecond (never a fixed delay). Prints where the kill landed.
KILL_WHEN = r'''
import glob, os, signal, subprocess, sys, time
how, pattern = sys.argv[1].split(":", 1)
started = time.monotonic()
proc = subprocess.Popen(sys.argv[2:], start_new_session=True)
while proc.poll() is None and bool(glob.glob(pattern)) != (how == "exists"):
    time.sleep(0.001)
if proc.poll() is None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    print("@@ killed {:.3f} s after the start: {} {}".format(time.monotonic() - started, how, pattern))
else:
    print("@@ not killed: the run ended ({}) before {} {}".format(proc.returncode, how, pattern))
'''

# Each state lies inside the pip install, after the journal and before the trust step (bundle, pip.conf).
# A killed pip leaves the old pip in its stash (site-packages/~ip*) and a dist-info it did not finish: pip
# unpacks the wheel's own RECORD with the other files, then writes the scripts, INSTALLER and its own RECORD
# (which lists INSTALLER) last. The rerun must keep the journal's backup of the old pip, clear what pip left
# (clear_interrupted) and install the new pip again, scripts and all (finished_install).
KILL_POINTS = {
    "journal written, pip not started": "exists:{state}/journal.json",
    "old pip uninstalled": "gone:{site}/pip-{old}.dist-info",
    "new pip being unpacked": "exists:{site}/pip-{new}.dist-info",
    "new pip unpacked, its install not finished": "exists:{site}/pip-{new}.dist-info/RECORD",
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_midway_is_completed_by_a_rerun_and_undone_exactly(point, sandbox, proxy, cas, tmp_path):
    interp = PAIR[0]
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    conf = user_conf(sb, USER_FILE)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    old_pip, new_pip = installed_version(sb, python, "pip"), expected_pins(interp.version)["pip"]
    assert old_pip not in ("absent", new_pip), old_pip
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    state = Path(sb.home) / ".local/share/trustfix"
    original = tree(sb.home, tmp_path / "venv")
    bundle = copy_bundle(tmp_path / "bundle")
    when = KILL_POINTS[point].format(state=state, site=site, old=old_pip, new=new_pip)
    killed = sb.run([python, "-c", KILL_WHEN, when, python, bundle / "bootstrap.py", "--ca-file", cas.corp_pem],
                    cwd=str(bundle))
    at_kill, conf_at_kill = tree(sb.home, tmp_path / "venv"), conf.read_text()
    rerun = bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem)
    assert rerun.returncode == 0, out(rerun)
    complete = tree(sb.home, tmp_path / "venv")

    # the kill landed mid-change: the journal is there, some of the complete run's changes are done, not all
    run_changes = sorted(p for p in set(original) | set(complete) if original.get(p) != complete.get(p))
    done = [p for p in run_changes if at_kill.get(p) == complete.get(p)]
    pending = [p for p in run_changes if at_kill.get(p) != complete.get(p)]
    short = lambda paths: [os.path.relpath(p, str(tmp_path)) for p in paths[-3:]]
    landed = "{}\n{} of the run's {} changes done (e.g. {}), {} pending (e.g. {})".format(
        killed.stdout.strip().splitlines()[-1], len(done), len(run_changes), short(done), len(pending), short(pending))
    assert "@@ killed" in killed.stdout, landed + "\n" + out(killed)[-1500:]
    assert (state / "journal.json").is_file() and done and pending, landed
    assert conf_at_kill == USER_FILE, landed                      # the trust step, the last change, not yet

    assert installed_version(sb, python, "pip") == new_pip
    scripts = sorted(p.name for p in (tmp_path / "venv" / "bin").glob("pip*"))
    assert scripts == ["pip", "pip3", "pip{}.{}".format(*interp.version)], landed      # as a run never killed
    assert pip_install(sb, python, tmp_path / "t").returncode == 0
    undone = bootstrap(sb, python, bundle, "undo")
    after = {p: h for p, h in tree(sb.home, tmp_path / "venv").items() if "/.cache" not in p}  # the user's own pip cache
    report = "{}\nkilled at: {}\nrerun:\n{}\nundo:\n{}".format(
        changes(original, after), landed, out(rerun)[-1500:], out(undone)[-1500:])
    assert undone.returncode == 0, out(undone)
    assert after == original, report
