"""Tests of build.py, the IT admin's release tool.

Hermetic: the index is a fake one served by http.server on 127.0.0.1 (JSON and HTML variants) with small
fake wheels; CAs are made here with cryptography/trustme. The last tests install the committed
hashes.txt with real pip into a fresh venv of every Python 3.6+ on this machine.
"""

import base64
import datetime
import hashlib
import html
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import testbed
import tree_snapshot
from bundle_helpers import ROOT, expected_pins, load_module, parse_pins, pins, sha256, write
from certificates import colon_fingerprint, der, dn, make_cert, openssl_v1_cert, pem

BUILD = ROOT / "build.py"
build = load_module(BUILD, "trustfix_build")

# name, version, Requires-Python, yanked: what the fake index lists
RELEASES = [
    ("pip", "20.3.4", ">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*", False),
    ("pip", "21.3.1", ">=3.6", False),
    ("pip", "22.0", ">=3.7", False),
    ("pip", "24.0", ">=3.7", False),
    ("pip", "25.0.1", ">=3.8", False),
    ("pip", "26.0.1", ">=3.9", False),
    ("pip", "26.3", ">=3.10", False),
    ("pip", "27.0", ">=3.10", True),          # yanked: never pinned
    ("pip", "27.1b1", ">=3.10", False),       # pre-release: never pinned
    ("truststore", "0.9.2", ">=3.10", False),
    ("truststore", "0.10.5", ">= 3.10", False),
    ("certifi", "2026.7.22", ">=3.7", False),  # sorts after 2026.10.18 as a string, not as a version
    ("certifi", "2026.10.18", ">=3.7", False),
]
EXPECTED = [  # (name, version, marker) in hashes.txt order
    ("pip", "21.3.1", 'python_version >= "3.6" and python_version < "3.7"'),
    ("pip", "24.0", 'python_version >= "3.7" and python_version < "3.8"'),
    ("pip", "25.0.1", 'python_version >= "3.8" and python_version < "3.9"'),
    ("pip", "26.0.1", 'python_version >= "3.9" and python_version < "3.10"'),
    ("pip", "26.3", 'python_version >= "3.10"'),
    ("certifi", "2026.10.18", 'python_version >= "3.7"'),
    ("truststore", "0.10.5", 'python_version >= "3.10"'),
]


# ------------------------------------------------------------------------------------------------
# Helpers: environment, fake wheels, the fake index
# ------------------------------------------------------------------------------------------------

def clean_env(**extra):
    """The environment without proxies, pip settings or a SOURCE_DATE_EPOCH from outside."""
    drop = ("PIP_", "SSL_CERT_", "PYTHON")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and not k.lower().endswith("_proxy")
           and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SOURCE_DATE_EPOCH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run_build(*args, root=None, timeout=120, **env):
    cmd = [sys.executable, str(BUILD)] + (["--root", str(root)] if root else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, env=clean_env(**env), timeout=timeout)


def fake_wheel(name, version, requires_python):
    """A small but valid wheel: a module, METADATA, WHEEL and RECORD."""
    dist_info = "{}-{}.dist-info".format(name, version)
    files = {
        "{}/__init__.py".format(name): "__version__ = {!r}\n".format(version),
        dist_info + "/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\nRequires-Python: {}\n"
                                 .format(name, version, requires_python),
        dist_info + "/WHEEL": "Wheel-Version: 1.0\nGenerator: trustfix-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append("{},sha256={},{}".format(path, digest, len(text.encode())))
    files[dist_info + "/RECORD"] = "\n".join(record + [dist_info + "/RECORD,,"]) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, text in files.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


class FakeIndex:
    """A simple index on loopback: /simple/<project>/ (PEP 691 JSON when asked for, else PEP 503 HTML;
    html_only=True behaves like an old mirror) and /files/<name>. Tests can make it publish a wrong
    digest (`published`) or hold one download until released (`hold`)."""

    def __init__(self, html_only=False):
        self.html_only = html_only
        self.files, self.entries, self.published = {}, {}, {}
        self.requests = []
        self.hold, self.held, self.release = None, threading.Event(), threading.Event()
        for number, (name, version, requires, yanked) in enumerate(RELEASES):
            filename = "{}-{}-py3-none-any.whl".format(name, version)
            self.files[filename] = fake_wheel(name, version, requires)
            self.published[filename] = sha256(self.files[filename])
            self.entries.setdefault(name, []).append(
                (filename, requires, yanked, "2026-01-{:02d}T00:00:00Z".format(number + 1)))
            self.entries[name].append(("{}-{}.tar.gz".format(name, version), requires, yanked, None))
        handler = type("Handler", (_Handler,), {"index": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:{}/simple/".format(self.server.server_address[1])

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def page(self, project, as_json):
        rows = self.entries.get(project, [])
        if as_json:
            files = [{"filename": f, "url": "../../files/" + f, "hashes": {"sha256": self.published.get(f, "")},
                      "requires-python": r, "yanked": y, "upload-time": t} for f, r, y, t in rows]
            return "application/vnd.pypi.simple.v1+json", json.dumps(
                {"meta": {"api-version": "1.1"}, "name": project, "files": files}).encode()
        links = ['<a href="../../files/{0}#sha256={1}" data-requires-python="{2}"{3}>{0}</a><br>'.format(
            f, self.published.get(f, ""), html.escape(r), ' data-yanked=""' if y else "") for f, r, y, _ in rows]
        body = "<!DOCTYPE html><html><body>\n{}\n</body></html>\n".format("\n".join(links))
        return "text/html; charset=utf-8", body.encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    index = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        index = self.index
        index.requests.append((self.path, self.headers.get("Accept", "")))
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.entries:
            wants_json = "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
            content_type, body = index.page(parts[1], wants_json and not index.html_only)
        elif len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
            content_type, body = "application/octet-stream", index.files[parts[1]]
            if parts[1] == index.hold:
                index.held.set()
                index.release.wait(60)
        else:
            self.send_error(404)
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture(params=["json", "html"])
def index(request):
    fake = FakeIndex(html_only=request.param == "html")
    yield fake
    fake.stop()


@pytest.fixture
def json_index():
    fake = FakeIndex()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def built_tree(tmp_path_factory):
    """A project tree made by `build.py` from the fake index, with a stand-in bootstrap.py."""
    fake = FakeIndex()
    try:
        root = tmp_path_factory.mktemp("built")
        result = run_build("--index-url", fake.url, root=root)
        assert result.returncode == 0, result.stderr
    finally:
        fake.stop()
    (root / "bootstrap.py").write_text("print('stand-in for bootstrap.py')\n")
    return root


@pytest.fixture
def tree(built_tree, tmp_path):
    """A private copy of built_tree that a test may change."""
    return Path(shutil.copytree(built_tree, tmp_path / "tree"))


@pytest.fixture
def previous_tree(tmp_path):
    """A tree holding an earlier bundle, none of whose files the fake index serves."""
    root = tmp_path / "prev"
    (root / "wheels").mkdir(parents=True)
    (root / "wheels" / "pip-20.0-py3-none-any.whl").write_bytes(b"previous wheel")
    (root / "hashes.txt").write_text("# previous bundle\npip==20.0 --hash=sha256:{}\n".format(
        sha256(b"previous wheel")))
    return root


def snapshot(root):
    """Everything under root (but dist/): to prove that nothing changed."""
    return tree_snapshot.tree(root, skip=("__pycache__", "dist"))


# ------------------------------------------------------------------------------------------------
# Versions and Requires-Python, parsed by build.py itself
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, python, expected", [
    ("", (3, 6), True),
    (">=3.6", (3, 6), True),
    (">=3.7", (3, 6), False),
    (">= 3.10", (3, 10), True),
    (">=3.6.2", (3, 6), False),            # 3.6.0 and 3.6.1 could not install it
    (">=3.6.2", (3, 7), True),
    (">3.9", (3, 9), False),
    (">3.9", (3, 10), True),
    ("<3.10", (3, 9), True),
    ("<3.10", (3, 10), False),
    ("<=3.9", (3, 9), False),              # 3.9.1 > 3.9
    ("<4", (3, 14), True),
    ("==3.8", (3, 8), False),
    ("==3.8.*", (3, 8), True),
    ("==3.*", (3, 13), True),
    ("!=3.6.*", (3, 6), False),
    ("!=3.6.*", (3, 7), True),
    (">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*", (3, 6), True),
    (">=2.7, !=3.0.*, <3.8", (3, 8), False),
    ("~=3.8", (3, 7), False),
    ("~=3.8", (3, 14), True),
    ("~=3.8.0", (3, 8), True),
    ("~=3.8.0", (3, 9), False),
    ("~=3.8.1", (3, 8), False),
    (">=3.10.0b1", (3, 10), True),
    ("===3.7.1", (3, 7), False),
])
def test_requires_python_admits_a_python_only_if_every_patch_release_does(spec, python, expected):
    assert build.admits(build.parse_requires_python(spec), python) is expected


@pytest.mark.parametrize("spec", ["3.6", ">=3.x", "~=3", ">=3.*", "=>3.6", ">=3.6 or <2"])
def test_requires_python_that_is_not_pep_440_is_an_error(spec):
    with pytest.raises(ValueError):
        build.parse_requires_python(spec)


def test_versions_sort_in_pep_440_order_not_as_strings():
    ordered = ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "2026.7.22", "2026.10.18"]
    assert sorted(reversed(ordered), key=build.version_key) == ordered
    assert build.version_key("26.3") > build.version_key("26.0.1")
    assert build.version_key("3.6") == build.version_key("3.6.0")
    assert build.is_prerelease("27.1b1") and build.is_prerelease("1.0.dev0") and not build.is_prerelease("1.0.post1")


def test_ranges_group_only_consecutive_pythons_with_the_same_pick():
    a, b = (build.IndexFile("a.whl", "u", "0" * 64, "", False), build.IndexFile("b.whl", "u", "1" * 64, "", False))
    picks = {(3, 6): a, (3, 7): a, (3, 8): b, (3, 9): a, (3, 10): a}
    assert build.ranges(picks) == [(a, (3, 6), (3, 7)), (b, (3, 8), (3, 8)), (a, (3, 9), (3, 10))]
    assert build.marker((3, 6), (3, 7)) == 'python_version >= "3.6" and python_version < "3.8"'
    assert build.marker((3, 10), (3, 14)) == 'python_version >= "3.10"'
    assert build.marker((3, 6), (3, 14)) == ""


# ------------------------------------------------------------------------------------------------
# `python build.py`: pins, downloads, atomic replacement
# ------------------------------------------------------------------------------------------------

def test_build_pins_newest_pip_per_python_range_and_newest_truststore_and_certifi(index, tmp_path):
    result = run_build("--index-url", index.url, root=tmp_path)
    assert result.returncode == 0, result.stderr

    expected = ['{}=={} ; {} --hash=sha256:{}'.format(name, version, marker,
                sha256(index.files["{}-{}-py3-none-any.whl".format(name, version)]))
                for name, version, marker in EXPECTED]
    assert [p.line for p in pins(tmp_path / "hashes.txt")] == expected
    names = sorted("{}-{}-py3-none-any.whl".format(n, v) for n, v, _ in EXPECTED)
    assert sorted(os.listdir(tmp_path / "wheels")) == names
    for name in names:
        assert (tmp_path / "wheels" / name).read_bytes() == index.files[name]
    header = (tmp_path / "hashes.txt").read_text()
    assert "python build.py --check" in header and "--require-hashes --no-deps" in header
    assert "never installed" in header and "-r hashes.txt" not in header         # it would install certifi
    assert index.url in header
    for name in names:                                   # one progress line per file: name, size, done
        assert re.search(re.escape(name) + r"\s+[\d.]+ kB\s+done", result.stderr), result.stderr
    served_json = any("v1+json" in accept for path, accept in index.requests if path.startswith("/simple/"))
    assert served_json, "build.py asks for the PEP 691 JSON API first"
    assert not any("27.0" in p or "27.1b1" in p or p.endswith(".tar.gz") for p, _ in index.requests)
    assert run_build("--check", root=tmp_path).returncode == 0


def test_build_is_deterministic_and_a_rerun_downloads_nothing(json_index, tmp_path):
    assert run_build("--index-url", json_index.url, root=tmp_path).returncode == 0
    first = snapshot(tmp_path)
    json_index.requests.clear()
    again = run_build("--index-url", json_index.url, root=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already up to date" in again.stdout
    assert snapshot(tmp_path) == first
    assert not any(path.startswith("/files/") for path, _ in json_index.requests)


def test_source_date_epoch_dates_the_header(json_index, tmp_path):
    assert run_build("--index-url", json_index.url, root=tmp_path, SOURCE_DATE_EPOCH="1767225600").returncode == 0
    assert "on 2026-01-01." in (tmp_path / "hashes.txt").read_text()


def test_dry_run_changes_nothing(json_index, previous_tree):
    before = snapshot(previous_tree)
    result = run_build("--dry-run", "--index-url", json_index.url, root=previous_tree)
    assert result.returncode == 0, result.stderr
    assert "pip-26.3-py3-none-any.whl" in result.stdout
    as_json = run_build("--dry-run", "--json", "--index-url", json_index.url, root=previous_tree)
    planned = json.loads(as_json.stdout)["pins"]
    assert [(p["project"], p["version"], p["marker"]) for p in planned] == EXPECTED
    assert snapshot(previous_tree) == before


def test_digest_mismatch_fails_naming_both_digests_and_changes_nothing(index, previous_tree):
    bad = "pip-26.3-py3-none-any.whl"
    index.published[bad] = "0" * 64
    before = snapshot(previous_tree)
    result = run_build("--index-url", index.url, root=previous_tree)
    assert result.returncode == 1
    assert bad in result.stderr and "0" * 64 in result.stderr and sha256(index.files[bad]) in result.stderr
    assert snapshot(previous_tree) == before
    assert sorted(os.listdir(previous_tree)) == ["hashes.txt", "wheels"]     # no staging folder left


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_build_leaves_the_previous_bundle(json_index, previous_tree, signum):
    json_index.hold = "pip-26.3-py3-none-any.whl"
    before = snapshot(previous_tree)
    cmd = [sys.executable, str(BUILD), "--root", str(previous_tree), "--index-url", json_index.url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert json_index.held.wait(30), "build.py never asked for the held file"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        json_index.release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "interrupted" in err
    assert snapshot(previous_tree) == before
    assert sorted(os.listdir(previous_tree)) == ["hashes.txt", "wheels"]


def test_swap_puts_the_old_bundle_back_when_the_second_rename_fails(tmp_path, monkeypatch):
    root, staging = tmp_path / "root", tmp_path / "root" / ".build-x"
    (root / "wheels").mkdir(parents=True)
    (root / "wheels" / "old.whl").write_bytes(b"old")
    (root / "hashes.txt").write_text("old\n")
    (staging / "wheels").mkdir(parents=True)
    (staging / "wheels" / "new.whl").write_bytes(b"new")
    (staging / "hashes.txt").write_text("new\n")

    def fail(*args):
        raise OSError("disk full")
    monkeypatch.setattr(build.os, "replace", fail)
    with pytest.raises(OSError):
        build.swap_in(str(root), str(staging))
    assert os.listdir(root / "wheels") == ["old.whl"] and (root / "hashes.txt").read_text() == "old\n"


def test_unreachable_index_fails_plainly_and_changes_nothing(previous_tree):
    import socket
    with socket.socket() as s:           # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = snapshot(previous_tree)
    result = run_build("--index-url", "http://127.0.0.1:{}/simple/".format(port), "--timeout", "5",
                       root=previous_tree)
    assert result.returncode == 1 and "cannot reach" in result.stderr
    assert snapshot(previous_tree) == before


def test_plain_http_index_is_refused_unless_on_loopback(tmp_path):
    result = run_build("--index-url", "http://mirror.example/simple/", root=tmp_path)
    assert result.returncode == 2 and "https" in result.stderr


# ------------------------------------------------------------------------------------------------
# `python build.py --check`
# ------------------------------------------------------------------------------------------------

def test_check_passes_on_a_fresh_build(tree):
    result = run_build("--check", root=tree)
    assert result.returncode == 0 and result.stdout.startswith("OK")
    assert len(result.stdout.strip().splitlines()) == 1


def test_check_names_a_changed_a_missing_and_an_extra_wheel(tree):
    wheels = tree / "wheels"
    (wheels / "pip-26.3-py3-none-any.whl").write_bytes(b"tampered")
    (wheels / "certifi-2026.10.18-py3-none-any.whl").unlink()
    (wheels / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"not pinned")
    result = run_build("--check", root=tree)
    assert result.returncode == 1
    assert re.search(r"changed: wheels/pip-26\.3-py3-none-any\.whl has SHA-256 " + sha256(b"tampered"), result.stderr)
    assert re.search(r"missing: hashes\.txt line \d+ pins certifi==2026\.10\.18", result.stderr)
    assert "extra: wheels/six-1.17.0-py2.py3-none-any.whl" in result.stderr
    assert "truststore" not in result.stderr and "pip-24.0" not in result.stderr


@pytest.mark.parametrize("bad_line", [
    "pip==26.3 ; python_version >= \"3.10\" --hash=sha256:abc",      # short digest
    "pip>=26.3 --hash=sha256:" + "0" * 64,                              # not ==
    "pip==26.3 ; sys_platform == \"linux\" --hash=sha256:" + "0" * 64,  # a marker build.py never writes
    "pip==26.3",                                                        # no hash
])
def test_check_names_the_line_of_a_malformed_hashes_txt(tree, bad_line):
    path = tree / "hashes.txt"
    lines = path.read_text().splitlines()
    lines.insert(9, bad_line)
    path.write_text("\n".join(lines) + "\n")
    result = run_build("--check", root=tree)
    assert result.returncode == 1
    assert "hashes.txt line 10 is malformed" in result.stderr


def test_check_requires_one_pip_for_every_python(tree):
    path = tree / "hashes.txt"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines() if not line.startswith("pip==25.0.1")))
    (tree / "wheels" / "pip-25.0.1-py3-none-any.whl").unlink()
    result = run_build("--check", root=tree)
    assert result.returncode == 1 and "pins no pip for Python 3.8" in result.stderr


def test_check_fails_without_hashes_txt(tree):
    (tree / "hashes.txt").unlink()
    result = run_build("--check", root=tree)
    assert result.returncode == 1 and "hashes.txt is missing" in result.stderr


# ------------------------------------------------------------------------------------------------
# `python build.py zip`
# ------------------------------------------------------------------------------------------------

def make_ca_pem(path, *, ca=True, not_before=None, not_after=None, name="Example Corp Root CA"):
    """A self-signed certificate of Example Corp with the given validity, written as PEM; returns its SHA-256
    (colons), the certificate and its key."""
    cert, key = make_cert(dn(name, "Example Corp"), ca=ca, not_before=not_before, not_after=not_after)
    write(path, pem(cert))
    return colon_fingerprint(cert), cert, key


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        return zf.infolist(), {i.filename: zf.read(i) for i in zf.infolist()}


def test_zip_is_reproducible_sorted_and_fixed(tree, tmp_path):
    first = run_build("zip", "-o", tmp_path / "a.zip", root=tree)
    second = run_build("zip", "-o", tmp_path / "b.zip", root=tree)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    a, b = (tmp_path / "a.zip").read_bytes(), (tmp_path / "b.zip").read_bytes()
    assert sha256(a) == sha256(b) and sha256(a) in first.stdout
    infos, contents = read_zip(tmp_path / "a.zip")
    names = [i.filename for i in infos]
    assert names == sorted(names)
    wheels = sorted(os.listdir(tree / "wheels"))
    assert set(names) == {"trustfix/" + n for n in ["bootstrap.py", "hashes.txt", "README.txt"]} | {
        "trustfix/wheels/" + w for w in wheels}
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.create_system == 3 and info.external_attr >> 16 == 0o100644
    assert contents["trustfix/hashes.txt"] == (tree / "hashes.txt").read_bytes()
    assert contents["trustfix/bootstrap.py"] == (tree / "bootstrap.py").read_bytes()
    readme = contents["trustfix/README.txt"].decode()
    for words in ("py bootstrap.py", "python3 bootstrap.py", "bootstrap.py undo", "IT service desk"):
        assert words in readme
    wheel_bytes = sum(len(contents["trustfix/wheels/" + w]) for w in wheels)
    assert len(a) - wheel_bytes < 1000 * len(names) + 10000         # stored: little beyond the payload


def test_zip_date_follows_source_date_epoch(tree, tmp_path):
    assert run_build("zip", "-o", tmp_path / "default.zip", root=tree).returncode == 0
    assert run_build("zip", "-o", tmp_path / "zero.zip", root=tree, SOURCE_DATE_EPOCH="0").returncode == 0
    assert run_build("zip", "-o", tmp_path / "2026.zip", root=tree, SOURCE_DATE_EPOCH="1767225600").returncode == 0
    default, zero, later = (tmp_path / "default.zip", tmp_path / "zero.zip", tmp_path / "2026.zip")
    assert zero.read_bytes() == default.read_bytes()                 # clamped to 1980-01-01
    assert later.read_bytes() != default.read_bytes()
    assert {i.date_time for i in read_zip(later)[0]} == {(2026, 1, 1, 0, 0, 0)}
    bad = run_build("zip", "-o", tmp_path / "x.zip", root=tree, SOURCE_DATE_EPOCH="yesterday")
    assert bad.returncode == 2 and not (tmp_path / "x.zip").exists()


def test_zip_default_name_is_its_digest(tree, tmp_path):
    result = run_build("zip", root=tree)
    assert result.returncode == 0, result.stderr
    [made] = list((tree / "dist").iterdir())
    digest = sha256(made.read_bytes())
    assert made.name == "trustfix-{}.zip".format(digest[:12])
    assert str(made) in result.stdout and digest in result.stdout
    into_folder = run_build("zip", "--json", "-o", str(tmp_path / "out") + os.sep, root=tree)
    report = json.loads(into_folder.stdout)
    assert report["zip"] == str(tmp_path / "out" / made.name) and report["sha256"] == digest
    assert report["size"] == made.stat().st_size and report["cas"] == []


def test_zip_is_byte_identical_on_every_python_that_runs_build_py(tree, tmp_path):
    pythons = [str(testbed.need(i).path) for i in testbed.pythons(min=(3, 10))]
    digests = set()
    for number, exe in enumerate(pythons):
        out = tmp_path / "z{}.zip".format(number)
        result = subprocess.run([exe, str(BUILD), "--root", str(tree), "zip", "-o", str(out)],
                                capture_output=True, text=True, env=clean_env(), timeout=60)
        assert result.returncode == 0, (exe, result.stderr)
        digests.add(sha256(out.read_bytes()))
    assert len(digests) == 1


def test_zip_refuses_without_bootstrap_py(tree, tmp_path):
    (tree / "bootstrap.py").unlink()
    result = run_build("zip", "-o", tmp_path / "out" / "x.zip", root=tree)
    assert result.returncode == 1 and "bootstrap.py is missing" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_zip_refuses_when_check_fails(tree, tmp_path):
    (tree / "wheels" / "extra.whl").write_bytes(b"x")
    result = run_build("zip", "-o", tmp_path / "x.zip", root=tree)
    assert result.returncode == 1 and "extra: wheels/extra.whl" in result.stderr
    assert not (tmp_path / "x.zip").exists()


def test_zip_with_a_good_ca_ships_it_and_prints_its_fingerprint(tree, tmp_path):
    fp, cert, _ = make_ca_pem(tmp_path / "corp.pem")
    out = tmp_path / "x.zip"
    result = run_build("zip", "--ca", tmp_path / "corp.pem", "-o", out, root=tree)
    assert result.returncode == 0, result.stderr
    assert fp in result.stdout and "CN=Example Corp Root CA" in result.stdout
    _, contents = read_zip(out)
    name = "trustfix/ca/example-corp-root-ca-{}.pem".format(fp.replace(":", "").lower()[:8])
    assert name in contents and contents[name].startswith(b"-----BEGIN CERTIFICATE-----")
    assert name[len("trustfix/ca/"):] in contents["trustfix/README.txt"].decode()


def test_zip_with_a_pem_of_several_cas_ships_each(tree, tmp_path):
    fp1, _, _ = make_ca_pem(tmp_path / "one.pem", name="Corp Root A")
    fp2, _, _ = make_ca_pem(tmp_path / "two.pem", name="Corp Root B")
    both = tmp_path / "both.pem"
    both.write_bytes((tmp_path / "one.pem").read_bytes() + b"\n" + (tmp_path / "two.pem").read_bytes())
    result = run_build("zip", "--ca", both, "-o", tmp_path / "x.zip", root=tree)
    assert result.returncode == 0, result.stderr
    assert fp1 in result.stdout and fp2 in result.stdout
    ca_files = [n for n in read_zip(tmp_path / "x.zip")[1] if n.startswith("trustfix/ca/")]
    assert len(ca_files) == 2


def test_zip_warns_about_a_ca_that_expires_within_30_days(tree, tmp_path):
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)
    make_ca_pem(tmp_path / "soon.pem", not_after=soon)
    result = run_build("zip", "--ca", tmp_path / "soon.pem", "-o", tmp_path / "x.zip", root=tree)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "expires on" in result.stderr


def bad_ca(kind, folder):
    """Write a bad --ca file of the given kind; return its path."""
    import trustme
    now = datetime.datetime.now(datetime.timezone.utc)
    path = folder / (kind + (".cer" if kind == "der" else ".pem"))
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"this is not a certificate\n")
    elif kind == "der":
        path.write_bytes(der(make_ca_pem(folder / "tmp.pem")[1]))
    elif kind == "private-key":
        trustme.CA().private_key_pem.write_to_path(str(path))
    elif kind == "leaf":
        trustme.CA().issue_cert("intranet.example").cert_chain_pems[0].write_to_path(str(path))
    elif kind == "leaf-in-chain":
        ca = trustme.CA()
        path.write_bytes(ca.issue_cert("intranet.example").cert_chain_pems[0].bytes() + ca.cert_pem.bytes())
    elif kind == "not-ca":
        make_ca_pem(path, ca=False)
    elif kind == "expired":
        make_ca_pem(path, not_before=now - datetime.timedelta(days=800), not_after=now - datetime.timedelta(days=1))
    elif kind == "not-yet-valid":
        make_ca_pem(path, not_before=now + datetime.timedelta(days=10))
    return path


@pytest.mark.parametrize("kind, message", [
    ("empty", "is empty"),
    ("garbage", "is not a certificate"),
    ("der", "openssl x509 -inform der -in"),
    ("private-key", "holds a private key"),
    ("leaf", "not a CA"),
    ("leaf-in-chain", "(certificate 1 of 2) is a server (leaf) certificate"),
    ("not-ca", "not a CA"),
    ("expired", "expired on"),
    ("not-yet-valid", "not valid before"),
    ("missing", "does not exist"),
])
def test_zip_refuses_a_bad_ca_naming_the_file_and_writes_nothing(tree, tmp_path, kind, message):
    path = bad_ca(kind, tmp_path)
    out = tmp_path / "out" / "x.zip"
    result = run_build("zip", "--ca", path, "-o", out, root=tree)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and str(path) in result.stderr
    assert "expected" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tree / "dist").exists()


def test_zip_takes_an_x509_v1_root(tree, tmp_path):
    """A self-signed v1 certificate (no extensions: old corporate roots) is a CA to OpenSSL, so to us too."""
    crt, _ = openssl_v1_cert(tmp_path, "Old Corp Root v1")
    result = run_build("zip", "--ca", crt, "-o", tmp_path / "x.zip", root=tree)
    assert result.returncode == 0, result.stderr
    assert "Old Corp Root v1" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------------

def test_help_teaches_with_examples():
    result = run_build("--help")
    assert result.returncode == 0
    for words in ("examples:", "python build.py --check", "python build.py zip --ca", "exit codes"):
        assert words in result.stdout


@pytest.mark.parametrize("args", [["--ca", "x.pem"], ["--check", "zip"], ["frobnicate"], ["--timeout", "0"]])
def test_bad_usage_exits_2(tmp_path, args):
    assert run_build(*args, root=tmp_path).returncode == 2


# ------------------------------------------------------------------------------------------------
# The committed bundle
# ------------------------------------------------------------------------------------------------

def test_committed_wheels_and_hashes_txt_agree():
    result = run_build("--check")
    assert result.returncode == 0, result.stderr


def test_committed_bundle_zips_within_five_percent_of_its_wheels(tmp_path):
    if not (ROOT / "bootstrap.py").is_file():
        pytest.skip("bootstrap.py is not in the tree yet")
    out = tmp_path / "bundle.zip"
    result = run_build("zip", "-o", out, root=ROOT)
    assert result.returncode == 0, result.stderr
    wheels = sum(p.stat().st_size for p in (ROOT / "wheels").iterdir())
    assert out.stat().st_size <= 1.05 * wheels


@pytest.mark.parametrize("interp", testbed.pythons(min=(3, 6)), ids="python{}".format)
def test_committed_hashes_txt_installs_with_real_pip(interp, tmp_path):
    version, python = interp.version, str(interp.path)
    env = clean_env(PIP_CONFIG_FILE=os.devnull)
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env, timeout=120, capture_output=True)
    vpython = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    install = subprocess.run(
        [vpython, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir", "--retries", "0",
         "--timeout", "5", "--no-index", "--find-links", "wheels", "--require-hashes", "-r", "hashes.txt"],
        cwd=str(ROOT), env=env, timeout=180, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    expected = expected_pins(version).get("pip")
    assert expected, "hashes.txt pins no pip for Python {}.{}".format(*version)
    report = "import pip, importlib.util as u; print(pip.__version__, u.find_spec('truststore') is not None, u.find_spec('certifi') is not None)"
    shown = subprocess.run([vpython, "-c", report], env=env, capture_output=True, text=True, timeout=60).stdout.split()
    assert shown[0] == expected
    assert shown[1] == str(version >= (3, 10))       # truststore only where it can run
    assert shown[2] == str(version >= (3, 7))        # certifi as its Requires-Python says


# ------------------------------------------------------------------------------------------------
# `python build.py zip --python SPEC`: a slim bundle for the Pythons a fleet has
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    """The committed hashes.txt and wheels/ (real pip, certifi, truststore), with a snapshot of
    bootstrap.py: a copy, so that an edit to the working tree cannot land between two builds."""
    root = tmp_path_factory.mktemp("real")
    shutil.copy2(ROOT / "hashes.txt", root / "hashes.txt")
    shutil.copytree(ROOT / "wheels", root / "wheels")
    if (ROOT / "bootstrap.py").is_file():
        shutil.copy2(ROOT / "bootstrap.py", root / "bootstrap.py")
    else:
        (root / "bootstrap.py").write_text("print('stand-in for bootstrap.py')\n")
    return root


def unzip(path, dest):
    with zipfile.ZipFile(path) as zf:
        zf.extractall(dest)
    return Path(dest) / "trustfix"


@pytest.mark.parametrize("spec, pythons", [
    (">=3.10", ["3.10", "3.11", "3.12", "3.13", "3.14"]),
    ("==3.12.*", ["3.12"]),
    (">=3.8,<3.11", ["3.8", "3.9", "3.10"]),
    (">= 3.8, < 3.11", ["3.8", "3.9", "3.10"]),
    (">=3.10.4", ["3.10", "3.11", "3.12", "3.13", "3.14"]),   # 3.10.4 .. 3.10.x machines need 3.10's pins
    ("<=3.9", ["3.6", "3.7", "3.8", "3.9"]),                  # 3.9.0 matches
    ("~=3.11", ["3.11", "3.12", "3.13", "3.14"]),
    ("!=3.7.*,<3.9", ["3.6", "3.8"]),
    (">=3", [str(3) + "." + str(m) for m in range(6, 15)]),
])
def test_fleet_specifier_serves_each_minor_version_it_matches(spec, pythons):
    serves = build.parse_fleet(spec)
    assert [build.pystr(p) for p in serves.pythons] == pythons
    assert " " not in serves.spec


def test_slim_zip_for_python_310_ships_only_what_it_needs_and_is_reproducible(real_tree, tmp_path):
    full = run_build("zip", "-o", tmp_path / "full.zip", root=real_tree)
    assert full.returncode == 0, full.stderr
    first = run_build("zip", "--python", ">=3.10", "-o", tmp_path / "slim.zip", root=real_tree)
    assert first.returncode == 0, first.stderr
    again = run_build("zip", "--python", ">= 3.10", "-o", tmp_path / "again.zip", root=real_tree)
    assert again.returncode == 0, again.stderr
    slim_bytes = (tmp_path / "slim.zip").read_bytes()
    assert slim_bytes == (tmp_path / "again.zip").read_bytes()          # same inputs, same bytes
    assert sha256(slim_bytes) in first.stdout and "serves:  Python >=3.10 (3.10, 3.11, 3.12, 3.13, 3.14)" in first.stdout

    infos, contents = read_zip(tmp_path / "slim.zip")
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_STORED for i in infos)
    serves = [(3, minor) for minor in range(10, 15)]
    needed = [p for p in pins(real_tree / "hashes.txt")          # and certifi, whose roots bootstrap reads
              if p.name == "certifi" or any(p.applies(python) for python in serves)]
    wheels = sorted(n[len("trustfix/wheels/"):] for n in names if n.startswith("trustfix/wheels/"))
    assert wheels == sorted(p.wheel(real_tree / "wheels").name for p in needed)
    for w in wheels:
        assert contents["trustfix/wheels/" + w] == (real_tree / "wheels" / w).read_bytes()

    text = contents["trustfix/hashes.txt"].decode()
    slim_pins = parse_pins(text)
    assert [p.line for p in slim_pins] == [p.line for p in needed]
    for pin in slim_pins:         # every pin has its wheel, every wheel its pin: bootstrap's check covers all
        data = contents["trustfix/wheels/" + pin.wheel(real_tree / "wheels").name]
        assert sha256(data) in pin.hashes
    assert len(slim_pins) == len(wheels)
    assert "# serves: python >=3.10 (3.10, 3.11, 3.12, 3.13, 3.14)\n" in text
    assert "give each Python 3.6 .. 3.14 its own pip" not in text
    readme = contents["trustfix/README.txt"].decode()
    assert "This bundle serves Python >=3.10 only: 3.10, 3.11, 3.12, 3.13, 3.14." in readme

    full_size, slim_size = (tmp_path / "full.zip").stat().st_size, len(slim_bytes)
    left_out = sum((real_tree / "wheels" / n).stat().st_size for n in os.listdir(real_tree / "wheels")
                   if n not in wheels)
    assert full_size - slim_size >= left_out - 2000     # the four older pips (7.4 MB) are what it saves
    assert slim_size < 0.3 * full_size                  # measured: 2.26 MB against 9.73 MB
    print("full {:,} bytes, slim >=3.10 {:,} bytes".format(full_size, slim_size))


def test_slim_bundle_passes_check_for_the_pythons_it_serves_and_says_so(real_tree, tmp_path):
    assert run_build("zip", "--python", ">=3.10", "-o", tmp_path / "slim.zip", root=real_tree).returncode == 0
    bundle = unzip(tmp_path / "slim.zip", tmp_path / "u")
    check = run_build("--check", root=bundle)
    assert check.returncode == 0, check.stderr
    assert "3 pins, 3 wheels" in check.stdout
    assert "serves only Python >=3.10 (3.10, 3.11, 3.12, 3.13, 3.14)" in check.stdout
    as_json = json.loads(run_build("--check", "--json", root=bundle).stdout)
    assert as_json["ok"] and as_json["serves"] == {"spec": ">=3.10", "pythons": ["3.10", "3.11", "3.12", "3.13", "3.14"]}

    hashes = bundle / "hashes.txt"
    text = hashes.read_text()
    hashes.write_text(text.replace("(3.10, 3.11, 3.12, 3.13, 3.14)", "(3.10, 3.11)"))
    lying = run_build("--check", root=bundle)
    assert lying.returncode == 1 and "lists Python 3.10, 3.11, but >=3.10 matches" in lying.stderr
    hashes.write_text("".join(line + "\n" for line in text.splitlines() if not line.startswith("# serves:")))
    unmarked = run_build("--check", root=bundle)          # without its serves line it is an incomplete bundle
    assert unmarked.returncode == 1 and "pins no pip for Python 3.6" in unmarked.stderr


def test_slim_zip_keeps_the_pins_of_every_python_it_serves_and_always_certifi(tree, tmp_path):
    result = run_build("zip", "--python", ">=3.8,<3.11", "--json", "-o", tmp_path / "a.zip", root=tree)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["serves"] == {"spec": ">=3.8,<3.11", "pythons": ["3.8", "3.9", "3.10"]}
    assert [n for n in report["entries"] if n.startswith("trustfix/wheels/")] == [
        "trustfix/wheels/{}-py3-none-any.whl".format(w) for w in
        ["certifi-2026.10.18", "pip-25.0.1", "pip-26.0.1", "pip-26.3", "truststore-0.10.5"]]
    # Python 3.6 gets no certifi from its marker, but bootstrap.py reads certifi's roots there too
    only36 = run_build("zip", "--python", "==3.6.*", "-o", tmp_path / "b.zip", root=tree)
    assert only36.returncode == 0, only36.stderr
    text = read_zip(tmp_path / "b.zip")[1]["trustfix/hashes.txt"].decode()
    assert [line.split(" ")[0] for line in text.splitlines() if not line.startswith("#")] == [
        "pip==21.3.1", "certifi==2026.10.18"]
    assert run_build("--check", root=unzip(tmp_path / "b.zip", tmp_path / "u")).returncode == 0


def test_zip_from_a_slim_bundle_keeps_its_pythons_and_refuses_others(tree, tmp_path):
    assert run_build("zip", "--python", ">=3.10", "-o", tmp_path / "slim.zip", root=tree).returncode == 0
    bundle = unzip(tmp_path / "slim.zip", tmp_path / "u")
    again = run_build("zip", "-o", tmp_path / "again.zip", root=bundle)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "slim.zip").read_bytes()   # the same bundle
    assert "serves:  Python >=3.10" in again.stdout
    narrower = run_build("zip", "--python", "==3.12.*", "-o", tmp_path / "n.zip", root=bundle)
    assert narrower.returncode == 0, narrower.stderr
    assert read_zip(tmp_path / "n.zip")[1]["trustfix/hashes.txt"].decode().count("# serves:") == 1
    wider = run_build("zip", "--python", ">=3.9", "-o", tmp_path / "w.zip", root=bundle)
    assert wider.returncode == 2 and "matches Python 3.9, which" in wider.stderr and "does not serve" in wider.stderr
    assert not (tmp_path / "w.zip").exists()


@pytest.mark.parametrize("spec, message", [
    ("3.10", "is not a PEP 440 specifier"),
    (">=3.x", "is not a PEP 440 specifier"),
    ("=>3.10", "is not a PEP 440 specifier"),
    (">=3.10 or <3.8", "is not a PEP 440 specifier"),
    ("", "needs a PEP 440 specifier"),
    (">=4", "matches no Python a bundle can serve (3.6 .. 3.14)"),
    ("<3.6", "matches no Python a bundle can serve (3.6 .. 3.14)"),
])
def test_zip_refuses_a_bad_or_empty_python_specifier_and_writes_nothing(tree, tmp_path, spec, message):
    before = snapshot(tree)
    result = run_build("zip", "--python", spec, "-o", tmp_path / "out" / "x.zip", root=tree)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "--python" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tree / "dist").exists()
    assert snapshot(tree) == before


def test_python_belongs_to_the_zip_command(tree):
    result = run_build("--check", "--python", ">=3.10", root=tree)
    assert result.returncode == 2 and "belong to the zip command" in result.stderr
