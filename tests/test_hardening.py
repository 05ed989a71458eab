"""Hardening (issue 13), end to end in the laptop sandbox: a module planted in the current directory never
runs, pip.conf forms pip reads differently are edited as pip reads them, a folder where pip.conf goes is
refused before any change, the proxy password appears nowhere, SIGTERM stops a run like Ctrl-C, and a
full disk (a real tiny tmpfs) is named before any change, and a trickling index (a real slow HTTPS
server) ends at the per-download bound or the run's own deadline.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bundle_helpers import bootstrap, copy_bundle, installed_version, out, tree
from testbed import LoopbackServer, by_version, make_venv

pytestmark = pytest.mark.e2e

PLANT = "import os\nopen({marker!r}, 'w').write('planted module ran as uid %d' % os.getuid())\n"


def test_a_pip_planted_in_the_current_directory_never_runs(sandbox, proxy, tmp_path):
    """`cd` into a folder holding pip/__init__.py, then install (its verify step starts pip) and undo."""
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(by_version((3, 9)), tmp_path / "venv", with_pip=True)     # 3.9: cwd first on sys.path
    bundle = copy_bundle(tmp_path / "bundle")
    plant, marker = tmp_path / "downloads", tmp_path / "planted-ran"
    (plant / "pip").mkdir(parents=True)
    (plant / "pip" / "__init__.py").write_text(PLANT.format(marker=str(marker)))
    (plant / "pip" / "__main__.py").write_text(PLANT.format(marker=str(marker)))
    script = str(bundle / "bootstrap.py")
    installed = sb.run([str(python), script], cwd=str(plant), timeout=300)
    assert installed.returncode == 0, out(installed)
    assert "reached" in installed.stdout                                     # the verify step ran pip
    undone = sb.run([str(python), script, "undo"], cwd=str(plant), timeout=300)
    assert undone.returncode == 0, out(undone)
    assert not marker.exists(), marker.read_text()
    assert installed_version(sb, python, "pip") == "23.0.1"                 # undo really put the old pip back


def test_pip_conf_forms_are_edited_as_pip_reads_them(sandbox, proxy, tmp_path):
    """`[ global ]` is not [global] for pip; a continued `cert` is one value. After the run, a plain pip
    install works — the file is what pip reads, not what a line editor guessed."""
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    conf = sb.home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    original = "[ global ]\ntimeout = 30\n[global]\ncert = /old/part\n    /continued/part\n"
    conf.write_text(original)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"))
    assert result.returncode == 0, out(result)
    assert "pip ignores it" in result.stdout                                 # the spaced header is named
    text = conf.read_text()
    assert text.startswith("[ global ]\ntimeout = 30\n[global]\ncert = ") and "/continued/part" not in text
    listed = sb.run([str(python), "-m", "pip", "config", "list"])
    assert "global.cert=" in listed.stdout and "\\n" not in listed.stdout, listed.stdout
    assert bootstrap(sb, python, copy_bundle(tmp_path / "b2"), "undo").returncode == 0
    assert conf.read_text() == original


def test_a_folder_where_pip_conf_goes_is_refused_before_any_change(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    (sb.home / ".config" / "pip" / "pip.conf").mkdir(parents=True)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    before = tree(sb.home, tmp_path / "venv")
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"))
    assert result.returncode == 2, out(result)
    assert "is a folder, not a file" in result.stdout and "nothing was changed" in result.stdout
    assert "bug" not in result.stdout
    assert tree(sb.home, tmp_path / "venv") == before
    undone = bootstrap(sb, python, copy_bundle(tmp_path / "b2"), "undo")
    assert undone.returncode == 0, out(undone)


def test_the_proxy_password_is_in_no_output(sandbox, index, make_proxy, tmp_path):
    """A proxy that refuses these credentials (407): the sentence names the proxy, never the password —
    not in the text, not in the JSON, not in the log file."""
    locked = make_proxy(index, auth="alice:right-one")
    sb = sandbox(corp_in_os_store=True)
    url = "http://alice:S3cretPW@127.0.0.1:{}".format(locked.port)
    env = {k: url for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
    env["TMPDIR"] = str(tmp_path)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    text = bootstrap(sb, python, bundle, env_extra=env)
    doc_run = bootstrap(sb, python, bundle, "--json", env_extra=env)
    doctor = bootstrap(sb, python, bundle, "doctor", "-v", env_extra=env)
    assert text.returncode == 1 and "407" in text.stdout, out(text)
    doc = json.loads(doc_run.stdout)
    assert doc["exit_code"] == 1 and "407" in doc["error"]
    logs = [Path(doc["log"]).read_text()] + [p.read_text() for p in tmp_path.glob("trustfix-*.log")]
    for where in [out(text), doc_run.stdout, out(doctor)] + logs:
        assert "S3cretPW" not in where, where
    assert "127.0.0.1:{}".format(locked.port) in doc["error"]


def test_sigterm_stops_a_run_like_ctrl_c_reports_and_leaves_no_temporary_files(sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    # the sandbox's argv (its mounts: the OS store with the corporate root), started by hand so the test can
    # signal bootstrap.py itself (unshare execs sh, which mounts and execs python: the same process)
    cmd = sb.argv([python, bundle / "bootstrap.py", "--json"])
    env = dict(sb.env, TMPDIR=str(scratch))
    proc = subprocess.Popen(cmd, cwd=str(bundle), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    deadline = time.time() + 60
    def private_folders():
        return [p for p in scratch.iterdir() if p.is_dir()]
    while time.time() < deadline and not private_folders():                 # its private folder exists: mid-run
        time.sleep(0.02)
    assert private_folders(), "the run never started"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, (stdout, stderr)
    doc = json.loads(stdout)
    assert "SIGTERM" in doc["error"] and doc["exit_code"] == 1
    left = [p for p in scratch.iterdir() if str(p) != doc["log"]]            # the failure log is meant to stay
    assert left == [], "left behind: {}".format(left)
    assert Path(doc["log"]).is_file()


def test_a_full_disk_is_named_before_any_change(sandbox, proxy, tmp_path):
    """TMPDIR on a real 2 MB tmpfs (the run needs ~40 MB there): refused with the disk named, exit 1,
    nothing changed — instead of 'unexpected error' half-way."""
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(sb.home, tmp_path / "venv")
    # mount the tmpfs inside the sandbox's own mount namespace: it vanishes with the run
    result = sb.run(["/bin/sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$1" && exec "$2" "$3"', "sh", str(tiny),
                     str(python), str(bundle / "bootstrap.py")], cwd=str(bundle), env_extra={"TMPDIR": str(tiny)})
    assert result.returncode == 1, out(result)
    assert "MB are free on the disk holding" in result.stdout and "nothing was changed" in result.stdout, out(result)
    assert "bug" not in result.stdout
    assert tree(sb.home, tmp_path / "venv") == before


def test_two_runs_at_once_keep_both_records_and_undo_reverts_both(sandbox, proxy, tmp_path):
    """Two venvs of one user bootstrapped at the same moment: the second waits for the first (a lock around
    the whole run), the journal keeps both, and one undo removes the pip from both."""
    from concurrent.futures import ThreadPoolExecutor
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    venvs = [make_venv(by_version((3, 12)), tmp_path / name, with_pip=False) for name in ("a", "b")]
    bundles = [copy_bundle(tmp_path / "bundle-{}".format(i)) for i in range(2)]
    before = tree(sb.home, tmp_path / "a", tmp_path / "b")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: bootstrap(sb, venvs[i], bundles[i], "--json", timeout=300), range(2)))
    for result in results:
        assert result.returncode == 0, out(result)
    assert all(installed_version(sb, v, "pip") != "absent" for v in venvs)
    undone = bootstrap(sb, venvs[0], bundles[0], "undo")
    assert undone.returncode == 0, out(undone)
    assert [installed_version(sb, v, "pip") for v in venvs] == ["absent", "absent"]
    assert tree(sb.home, tmp_path / "a", tmp_path / "b") == before


@pytest.fixture
def trickle_server(cas):
    """A real HTTPS index on loopback (the public root's certificate, so TLS verifies) that answers every
    request at once with headers and then sends its body one byte every 0.2 s, for ever."""
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cas.server_cert), str(cas.server_key))

    def serve(conn, stop):
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(5)
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000\r\n\r\n")
                while not stop.wait(0.2):
                    tls.sendall(b" ")
        except OSError:
            pass

    with LoopbackServer(serve) as server:
        yield "https://127.0.0.1:{}/simple/".format(server.port)


@pytest.mark.parametrize("env, words, least, most", [
    # one byte every 0.2 s never trips the 1 s read timeout; the download's own bound (8 x 1 s) ends it
    ({"TRUSTFIX_TIMEOUT": "1"}, "127.0.0.1 sends too slowly", 8, 40),
    # generous per-read and per-download bounds: the run itself stops at its 4 s deadline
    ({"TRUSTFIX_TIMEOUT": "30", "TRUSTFIX_DEADLINE": "4"}, "the run took longer than 4 seconds (TRUSTFIX_DEADLINE)", 4, 20),
], ids=["per-download bound", "run deadline"])
def test_a_trickling_index_ends_at_a_deadline_with_a_report(env, words, least, most, sandbox, trickle_server, tmp_path):
    sb = sandbox(corp_in_os_store=True)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    started = time.monotonic()
    result = bootstrap(sb, python, bundle, "--json", "--index-url", trickle_server, env_extra=env, timeout=120)
    elapsed = time.monotonic() - started
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["exit_code"] == 1, out(result)
    assert words in doc["error"], doc["error"]
    assert least <= elapsed < most, elapsed
    assert installed_version(sb, python, "pip") == "absent"


FULL_HOME = r"""set -e
home="$1"; inodes="$2"; report="$3"; listing="$4"; shift 4
mount -t tmpfs -o "size=64m,nr_inodes=$inodes,mode=0755" trustfix-full-home "$home"
set +e
"$@" >"$report"
echo $? >"$report.rc"
find "$home" -mindepth 1 | sort >"$listing"
cat "$report"                       # stdout: the one JSON document (the sandbox checks it against the schema)
"""


def test_a_disk_that_fills_after_the_install_is_named_and_the_run_put_back(sandbox, proxy, cas, tmp_path):
    """HOME on a real tmpfs with room for 6 files and folders: the journal and then the bundle fit, the
    journal's next save does not (ENOSPC), after pip was installed. The run names the full disk, exits 1
    and puts back what it changed: pip uninstalled, the bundle and the journal gone, HOME empty again."""
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(by_version((3, 9)), tmp_path / "venv", with_pip=False)
    venv_before = tree(tmp_path / "venv")
    bundle = copy_bundle(tmp_path / "bundle")
    report, listing = tmp_path / "report.json", tmp_path / "home.txt"
    # 6 inodes: the tmpfs root, .local, share, trustfix, journal.json and one temporary file beside it
    sb.run(["/bin/sh", "-c", FULL_HOME, "sh", str(sb.home), "6", str(report), str(listing),
            str(python), str(bundle / "bootstrap.py"), "--json", "--ca-file", str(cas.corp_pem)], cwd=str(bundle))
    doc = json.loads(report.read_text())
    assert (tmp_path / "report.json.rc").read_text().strip() == "1", doc
    steps = {step["step"]: step["status"] for step in doc["steps"]}
    assert steps.get("install") == "changed", ("the disk must fill after the install", doc["steps"])
    assert doc["error"].startswith("no space left on the disk holding {}".format(sb.home)), doc["error"]
    assert "bootstrap.py put back everything this run had changed." in doc["error"], doc["error"]
    rolled = [step["summary"] for step in doc["steps"] if step["step"] == "rollback"]
    assert any(line.startswith("removed ") and line.endswith("ca-bundle.pem") for line in rolled), rolled
    assert any(line.startswith("removed pip from ") for line in rolled), rolled
    assert listing.read_text() == "", listing.read_text()
    assert installed_version(sb, python, "pip") == "absent"
    assert tree(tmp_path / "venv") == venv_before
