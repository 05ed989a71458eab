"""Unit tests of the hardening (issue 13) that need no sandbox: one redaction for every output, linear and
strict hashes.txt parsing, https-only index links, undo's clean-up of the state folder, JSON for --help.

Each test fails on the code before the fix (quadratic regex, silent duplicate pins, BOM refused, ftp://
links followed, rmtree of TRUSTFIX_STATE_DIR, text for --json --help).
"""
import http.server
import importlib.util
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme

from testbed import scrubbed_env

ROOT = Path(__file__).resolve().parent.parent
H = ["{:064x}".format(i) for i in range(1, 5)]


def _load():
    spec = importlib.util.spec_from_file_location("trustfix_bootstrap_hardening", str(ROOT / "bootstrap.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bootstrap = _load()


@pytest.fixture(autouse=True)
def no_proxy_vars(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.startswith(("PIP_", "TRUSTFIX_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


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


def test_every_sink_redacts_json_text_and_log(tmp_path, monkeypatch):
    """A failure whose sentence holds the proxy URL: the text, the JSON document and the log file."""
    secret = "S3cretPW-xyz"
    env = scrubbed_env(home=tmp_path / "home", extra={
        "HTTPS_PROXY": "http://alice:{}@127.0.0.1:9".format(secret),          # port 9: refused at once
        "TRUSTFIX_STATE_DIR": str(tmp_path / "state"), "TRUSTFIX_TIMEOUT": "3", "TMPDIR": str(tmp_path)})
    (tmp_path / "home").mkdir()
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
def index_page(tmp_path):
    ca = trustme.CA()
    chain = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
    page = ("<a href='ftp://evil.example/pip-26.0-py3-none-any.whl'>a</a>"
            "<a href='file:///etc/passwd#pip-26.0-py3-none-any.whl'>b</a>"
            "<a href='http://plain.example/pip-26.0-py3-none-any.whl'>c</a>"
            "<a href='/files/pip-26.0-py3-none-any.whl#sha256={}'>d</a>").format(H[0]).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield "https://127.0.0.1:{}/simple".format(server.server_address[1]), client
    server.shutdown()
    server.server_close()


def test_only_https_links_are_followed_from_an_https_index(index_page):
    url, ctx = index_page
    files = bootstrap.project_files(url, "pip", ctx, None)
    assert [f[1].split(":", 1)[0] for f in files] == ["https"], files
    assert files[0][2] == H[0]


# --- undo removes only what the product created ------------------------------------------------------

def test_undo_leaves_other_files_in_an_existing_state_dir(tmp_path, monkeypatch):
    state = tmp_path / "mine"
    state.mkdir()
    (state / "notes.txt").write_text("the user's own file")
    (state / "backups").mkdir()
    (state / "backups" / "theirs.bin").write_text("not ours")
    monkeypatch.setenv("TRUSTFIX_STATE_DIR", str(state))
    target = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    journal = bootstrap.journal_load()
    bootstrap.change_file(journal, str(target), b"[global]\ncert = x\n")
    ui = bootstrap.UI(json_mode=True)
    assert bootstrap.undo(None, ui) == 0
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
