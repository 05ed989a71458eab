"""Unit tests of the hardening (issue 13) that need no sandbox: one redaction for every output, linear and
strict hashes.txt parsing, https-only index links, undo's clean-up of the state folder, JSON for --help.

Each test fails on the code before the fix (quadratic regex, silent duplicate pins, BOM refused, ftp://
links followed, rmtree of TRUSTFIX_STATE_DIR, text for --json --help).
"""
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from bundle_helpers import ROOT
from testbed import scrubbed_env
from unit_helpers import bootstrap

pytestmark = pytest.mark.usefixtures("laptop")     # conftest: no proxy/pip/trustfix variables, HOME tmp_path/home

H = ["{:064x}".format(i) for i in range(1, 5)]


# --- one redaction ------------------------------------------------------------------------------------

def test_redact_hides_userinfo_of_any_url_and_the_proxy_password_anywhere(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:S3cret%40PW@proxy.corp:3128")
    text = ("the proxy http://alice:S3cret%40PW@proxy.corp:3128 asks for a login; pip said "
            "ProxyError('http://alice:S3cret@PW@proxy.corp:3128/') and later 'S3cret@PW' alone; "
            "index https://tok:abc123@mirror.corp/simple")
    out = bootstrap.redact(text)
    assert "S3cret" not in out and "abc123" not in out, out
    assert "http://***@proxy.corp:3128" in out and "https://***@mirror.corp/simple" in out
    assert bootstrap.redact("no secrets at https://pypi.org/simple") == "no secrets at https://pypi.org/simple"


def test_redact_is_linear_on_hostile_input():
    started = time.time()
    bootstrap.redact("http://" + "a" * 200000 + " " + "x://" * 20000)
    assert time.time() - started < 2


def test_every_sink_redacts_json_text_and_log(tmp_path, laptop):
    """A failure whose sentence holds the proxy URL: the text, the JSON document and the log file."""
    secret = "S3cretPW-xyz"
    env = scrubbed_env(home=laptop, extra={
        "HTTPS_PROXY": "http://alice:{}@127.0.0.1:9".format(secret),          # port 9: refused at once
        "TRUSTFIX_STATE_DIR": str(tmp_path / "state"), "TRUSTFIX_TIMEOUT": "3", "TMPDIR": str(tmp_path)})
    for extra in ([], ["--json"]):
        proc = subprocess.run([sys.executable, str(ROOT / "bootstrap.py"), "--index-url", "https://pypi.invalid/simple"]
                              + extra, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=120)
        assert proc.returncode == 1, proc.stdout
        assert "127.0.0.1" in proc.stdout and secret not in proc.stdout, proc.stdout
        if extra:
            doc = json.loads(proc.stdout)
            log = Path(doc["log"]).read_text()
            assert "127.0.0.1" in log and secret not in log, log


# --- hashes.txt ---------------------------------------------------------------------------------------

def write_pins(tmp_path, text, bom=False):
    path = tmp_path / "hashes.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return str(path)


def test_a_bom_is_accepted_as_pip_does(tmp_path):
    pins = bootstrap.read_pins(write_pins(tmp_path, "pip==26.0 --hash=sha256:{}\n".format(H[0]), bom=True))
    assert [(p["name"], p["version"]) for p in pins] == [("pip", "26.0")]


def test_two_pins_for_one_python_are_refused_naming_both_lines(tmp_path):
    text = ("# pins\npip==26.0 ; python_version >= \"3.9\" --hash=sha256:{}\n"
            "truststore==0.10.4 --hash=sha256:{}\n"
            "pip==25.0 ; python_version >= \"3.8\" --hash=sha256:{}\n").format(H[0], H[1], H[2])
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.read_pins(write_pins(tmp_path, text))
    assert "pins pip twice" in str(e.value) and "lines 2 and 4" in str(e.value)


def test_disjoint_markers_for_one_project_are_fine(tmp_path):
    text = ("pip==25.0 ; python_version < \"3.9\" --hash=sha256:{}\n"
            "pip==26.0 ; python_version >= \"3.9\" --hash=sha256:{}\n").format(H[0], H[1])
    assert len(bootstrap.read_pins(write_pins(tmp_path, text))) == 2


@pytest.mark.parametrize("line", [
    "pip==26.0" + " " * 40000 + "x --hash=sha256:" + H[0],
    "pip==26.0 ;" + " " * 40000 + "--hash=sha256:" + H[0] + " " * 40000 + "--hash=md5:00",
    " " * 40000 + "pip==26.0"], ids=["spaces-in-requirement", "spaces-around-hashes", "no-hash"])
def test_hostile_lines_are_refused_in_linear_time(tmp_path, line):
    path = write_pins(tmp_path, line + "\n")
    started = time.time()
    with pytest.raises(bootstrap.BadInput):
        bootstrap.read_pins(path)
    assert time.time() - started < 1.0


# --- index links: https only (http only for an http index) -------------------------------------------

@pytest.fixture
def index_page(https_server):
    ca = trustme.CA()
    page = ("<a href='ftp://evil.example/pip-26.0-py3-none-any.whl'>a</a>"
            "<a href='file:///etc/passwd#pip-26.0-py3-none-any.whl'>b</a>"
            "<a href='http://plain.example/pip-26.0-py3-none-any.whl'>c</a>"
            "<a href='/files/pip-26.0-py3-none-any.whl#sha256={}'>d</a>").format(H[0]).encode()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return https_server(ca, 200, page, "text/html"), client


def test_only_https_links_are_followed_from_an_https_index(index_page):
    url, ctx = index_page
    files = bootstrap.project_files(url, "pip", ctx, None)
    assert [f[1].split(":", 1)[0] for f in files] == ["https"], files
    assert files[0][2] == H[0]


# --- undo removes only what the product created ------------------------------------------------------

def test_undo_leaves_other_files_in_an_existing_state_dir(tmp_path, monkeypatch, ui):
    state = tmp_path / "mine"
    state.mkdir()
    (state / "notes.txt").write_text("the user's own file")
    (state / "backups").mkdir()
    (state / "backups" / "theirs.bin").write_text("not ours")
    monkeypatch.setenv("TRUSTFIX_STATE_DIR", str(state))
    target = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    journal = bootstrap.journal_load()
    bootstrap.change_file(journal, str(target), b"[global]\ncert = x\n")
    assert bootstrap.undo(ui) == 0
    assert not target.exists()
    assert (state / "notes.txt").read_text() == "the user's own file"
    assert (state / "backups" / "theirs.bin").exists()
    assert not (state / "journal.json").exists()


# --- --json on every path ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_json_help_and_version_are_json(flag, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bootstrap.py"), "--json", flag], stdout=subprocess.PIPE,
                          universal_newlines=True, env=scrubbed_env(home=tmp_path), timeout=60)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["exit_code"] == 0 and doc["changed"] is False
    assert doc["command"] == flag[2:] and doc[flag[2:]]


# --- undo trusts no journal it did not write ------------------------------------------------------------

@pytest.fixture
def state():
    """The laptop's state folder (TRUSTFIX_STATE_DIR), made as bootstrap makes it."""
    folder = Path(os.environ["TRUSTFIX_STATE_DIR"])
    folder.mkdir(mode=0o700)
    return folder


def hand_made(state, files=(), packages=(), os_store=()):
    (state / "journal.json").write_text(json.dumps({"version": 1, "files": list(files), "packages": list(packages),
                                                    "os_store": list(os_store), "created_dirs": []}))
    (state / "journal.json").chmod(0o600)


@pytest.mark.parametrize("entry", [
    {"path": "VICTIM", "existed": False, "backup": None, "mode": None},                      # any file
    {"path": "HOME/.pip/../../victim.txt", "existed": False, "backup": None, "mode": None},   # ..
    {"path": "HOME/.pip/pip.conf", "existed": True, "backup": "../../victim.txt", "mode": 0o644},
    {"path": "relative/pip.conf", "existed": False, "backup": None, "mode": None},
], ids=["any-path", "dot-dot", "backup-outside", "relative"])
def test_a_hand_made_journal_cannot_make_undo_touch_other_files(state, tmp_path, entry, ui):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    entry = {k: v.replace("VICTIM", str(victim)).replace("HOME", str(tmp_path / "home")) if isinstance(v, str) else v
             for k, v in entry.items()}
    hand_made(state, files=[entry])
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.undo(ui)
    assert "is damaged" in str(e.value)
    assert victim.read_text() == "keep me"


def test_undo_restores_a_recorded_mode_without_setuid(state, tmp_path, ui):
    target = tmp_path / "home" / ".pip" / "pip.conf"
    target.parent.mkdir(parents=True)
    target.write_text("[global]\ncert = x\n")
    (state / "backups").mkdir(mode=0o700)
    (state / "backups" / "b").write_text("[global]\n")
    hand_made(state, files=[{"path": str(target), "existed": True, "backup": "backups/b", "mode": 0o4755}])
    assert bootstrap.undo(ui) == 0
    assert target.read_text() == "[global]\n" and stat.S_IMODE(target.stat().st_mode) == 0o755


def test_undo_runs_no_program_the_journal_calls_python(state, tmp_path, ui):
    evil = tmp_path / "evil" / "bin" / "python"
    evil.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    evil.write_text("#!/bin/sh\ntouch {}\n".format(marker))
    evil.chmod(0o755)
    hand_made(state, packages=[{"python": str(evil), "name": "pip", "before": None, "after": "pip-26.0.dist-info",
                                "flags": [], "user_site": False}])
    assert bootstrap.undo(ui) == 0
    assert not marker.exists()
    assert any("not a Python interpreter" in w for w in ui.warnings), ui.warnings


def test_undo_runs_no_command_the_journal_names_for_the_os_store(state, tmp_path, ui):
    marker = tmp_path / "ran"
    hand_made(state, os_store=[{"kind": "file+command", "path": "/usr/local/share/ca-certificates/trustfix-0123456789abcdef.crt",
                                "command": ["sh", "-c", "touch " + str(marker)]}])
    with pytest.raises(bootstrap.Failure):
        bootstrap.undo(ui)
    assert not marker.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to make files of another user")
@pytest.mark.parametrize("how", ["journal-of-another-user", "group-writable-state", "symlinked-journal"])
def test_a_journal_another_user_could_write_is_refused(state, tmp_path, how, ui):
    victim = tmp_path / "home" / ".pip" / "pip.conf"
    victim.parent.mkdir(parents=True)
    victim.write_text("keep me")
    hand_made(state, files=[{"path": str(victim), "existed": False, "backup": None, "mode": None}])
    if how == "journal-of-another-user":
        os.chown(str(state / "journal.json"), 65534, 65534)
    elif how == "group-writable-state":
        state.chmod(0o770)
    else:
        (tmp_path / "elsewhere.json").write_bytes((state / "journal.json").read_bytes())
        (state / "journal.json").unlink()
        (state / "journal.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.undo(ui)
    assert "not safe" in str(e.value)
    assert victim.read_text() == "keep me"


def test_the_global_journal_lives_with_the_global_bundle_not_in_home(monkeypatch):
    monkeypatch.delenv("TRUSTFIX_STATE_DIR", raising=False)
    monkeypatch.setitem(bootstrap.SCOPE, "state", "global")
    assert bootstrap.state_dir() == bootstrap.OS.data_dir("global")
    assert not bootstrap.state_dir().startswith(os.path.expanduser("~"))
    monkeypatch.setitem(bootstrap.SCOPE, "state", "user")
    assert bootstrap.state_dir() == bootstrap.OS.data_dir("user")


# --- pip.conf edited by pip's own reading rules ---------------------------------------------------------

def pip_reads(text):
    return bootstrap.ini_values(text)


def test_a_spaced_header_is_not_global_for_pip_so_a_real_global_is_added():
    text = "[ global ]\ntimeout = 7\n"
    out = bootstrap.checked_ini_edit(text, "global", "cert", "/b.pem", "pip.conf")
    assert out.startswith(text)
    assert pip_reads(out) == {" global ": {"timeout": "7"}, "global": {"cert": "/b.pem"}}


def test_a_continued_cert_value_is_replaced_whole():
    text = "[global]\ncert = /first/part\n    /second/part\n\n    /third\n# note\ntimeout = 5\n"
    out = bootstrap.checked_ini_edit(text, "global", "cert", "/b.pem", "pip.conf")
    assert pip_reads(out) == {"global": {"cert": "/b.pem", "timeout": "5"}}
    assert out == "[global]\ncert = /b.pem\n# note\ntimeout = 5\n"


@pytest.mark.parametrize("line", ["CERT: /old.pem", "--cert = /old.pem", "Cert=/old.pem"])
def test_every_spelling_pip_accepts_is_the_key(line):
    out = bootstrap.checked_ini_edit("[global]\n" + line + "\n", "global", "cert", "/b.pem", "pip.conf")
    assert pip_reads(out) == {"global": {"cert": "/b.pem"}}


def test_an_edit_pip_would_read_differently_is_refused(monkeypatch):
    monkeypatch.setattr(bootstrap, "set_ini_key", lambda text, s, k, v: text + "[global]\ncert = /x\n")
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.checked_ini_edit("[global]\ncert = /a\n", "global", "cert", "/b.pem", "pip.conf")
    assert "reads it back" in str(e.value)


# --- quiet outcomes are said ------------------------------------------------------------------------------

def run_cli(args, env, cwd):
    return subprocess.run([sys.executable, str(ROOT / "bootstrap.py")] + args, env=env, cwd=str(cwd),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)


@pytest.mark.skipif(not shutil.which("setpriv") or os.geteuid() != 0, reason="needs root and setpriv")
def test_no_home_is_named_not_a_write_error():
    """A uid with no passwd entry and no HOME (a container, a service account): `~` does not expand."""
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="trustfix-nohome-"))
    try:
        folder.chmod(0o777)
        shutil.copy2(str(ROOT / "bootstrap.py"), str(folder / "bootstrap.py"))
        shutil.copy2(str(ROOT / "hashes.txt"), str(folder / "hashes.txt"))
        env = scrubbed_env()
        env.pop("HOME", None)
        proc = subprocess.run(["setpriv", "--reuid", "54321", "--regid", "54321", "--clear-groups",
                               sys.executable, str(folder / "bootstrap.py"), "--offline"], env=env, cwd=str(folder),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
        assert proc.returncode == 2 and "HOME is not set" in proc.stdout, proc.stdout
        assert sorted(p.name for p in folder.iterdir()) == ["bootstrap.py", "hashes.txt"]   # no "~" folder made
    finally:
        shutil.rmtree(str(folder))


def test_a_replaced_cert_is_said_and_its_extra_cas_are_kept(tmp_path):
    corp, other = trustme.CA(organization_name="Old Installer CA"), trustme.CA(organization_name="Example Corp")
    home = tmp_path / "home"
    old_bundle = tmp_path / "old-bundle.pem"
    old_bundle.write_bytes(corp.cert_pem.bytes())
    conf = home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\ncert = {}\n".format(old_bundle))
    ca = tmp_path / "corp.pem"
    ca.write_bytes(other.cert_pem.bytes())
    env = scrubbed_env(home=home, extra={"TRUSTFIX_STATE_DIR": str(tmp_path / "state")})
    proc = run_cli(["--offline", "--ca-file", str(ca), "--dry-run"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "it is replaced by the bundle, which keeps its 1 CA(s) beyond certifi" in proc.stdout, proc.stdout
    assert "Old Installer CA" in proc.stdout and "Example Corp" in proc.stdout


def test_pip_config_file_devnull_is_said(tmp_path):
    ca = tmp_path / "corp.pem"
    ca.write_bytes(trustme.CA().cert_pem.bytes())
    env = scrubbed_env(home=tmp_path / "home", extra={"PIP_CONFIG_FILE": os.devnull,
                                                      "TRUSTFIX_STATE_DIR": str(tmp_path / "state")})
    proc = run_cli(["--offline", "--ca-file", str(ca), "--dry-run"], env, tmp_path)
    assert proc.returncode == 0 and "tells pip to read no configuration file" in proc.stdout, proc.stdout


def test_a_slim_bundle_names_the_pythons_it_serves(tmp_path):
    """build.py zip --python ">=3.10" writes a `# serves:` line; another Python is told, before any change."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy2(str(ROOT / "bootstrap.py"), str(bundle / "bootstrap.py"))
    lines = (ROOT / "hashes.txt").read_text().splitlines(True)
    (bundle / "hashes.txt").write_text("# serves: python >=3.99 (3.99)\n" + "".join(lines))
    env = scrubbed_env(home=tmp_path / "user", extra={"TRUSTFIX_STATE_DIR": str(tmp_path / "state")})
    proc = subprocess.run([sys.executable, str(bundle / "bootstrap.py"), "--offline"], env=env, cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert proc.returncode == 2 and "this bundle serves only Python >=3.99 (3.99)" in proc.stdout, proc.stdout
    assert not (tmp_path / "state").exists() and not (tmp_path / "user").exists()   # a HOME not made


def test_log_file_gets_the_full_log_of_every_run_appended(tmp_path):
    log = tmp_path / "fleet" / "trustfix.log"
    log.parent.mkdir()
    env = scrubbed_env(home=tmp_path / "home", extra={"TRUSTFIX_LOG": str(log),
                                                      "TRUSTFIX_STATE_DIR": str(tmp_path / "state")})
    first = subprocess.run([sys.executable, str(ROOT / "bootstrap.py"), "--dry-run", "--offline", "--json"], env=env,
                           cwd=str(tmp_path), stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    doc = json.loads(first.stdout)
    assert first.returncode == 0 and doc["log"] == str(log)
    second = run_cli(["--dry-run", "--offline", "--log-file", str(log)], env, tmp_path)
    assert second.returncode == 0
    text = log.read_text()
    assert text.count("trustfix 0.1.0 install with") == 2 and "[ok] survey" in text, text


LOCKER = r"""
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("bs", sys.argv[1])
bs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bs)
bs.LOCK_WAIT = 30
path = bs.RunLock.where()
with bs.RunLock() as lock:
    # True: the file at the path now is the very one this run holds locked
    print("held", time.time(), lock.path == path and bs.RunLock._still_there(lock.fd, path), flush=True)
    time.sleep(float(sys.argv[2]))
print("released", time.time(), os.path.exists(path), flush=True)
"""


def test_the_run_lock_serialises_two_processes_and_leaves_no_file(tmp_path):
    """Two real processes on one journal: the second waits until the first ends, then holds a lock on the
    file that is at the path (the first removed its own as it ended); nothing is left in the temp folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(scrubbed_env(tmp_path), TMPDIR=str(tmp), TRUSTFIX_STATE_DIR=str(tmp_path / "state"))
    script = tmp_path / "locker.py"
    script.write_text(LOCKER)
    first = subprocess.Popen([sys.executable, str(script), str(ROOT / "bootstrap.py"), "1.5"], env=env,
                             stdout=subprocess.PIPE, universal_newlines=True)
    line = first.stdout.readline().split()
    assert line[0] == "held" and line[2] == "True", line
    second = subprocess.run([sys.executable, str(script), str(ROOT / "bootstrap.py"), "0"], env=env,
                            stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
    rest = first.communicate(timeout=60)[0].split()
    released_first = float(rest[1])
    held_second = second.stdout.split()
    assert held_second[0] == "held" and held_second[2] == "True", second.stdout
    assert float(held_second[1]) >= released_first - 0.05            # it waited for the first to end
    assert rest[2] == "False" and held_second[-1] == "False"          # each removed its lock file
    assert list(tmp.iterdir()) == []
