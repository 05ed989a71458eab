"""bootstrap.py installs the pinned pip (and truststore) from the bundle or the index — end to end.

Every scenario runs the real bootstrap.py with a real interpreter, in the laptop sandbox of the test bed
(tests/testbed): real venvs, real pip, the real HTTPS index and the real intercepting proxy.
"""
import socket
import threading
import time
from pathlib import Path

import pytest

from packaging.version import Version

from bundle_helpers import ROOT, bootstrap, copy_bundle, expected_pins, installed_version, out, pinned, pins, tree
from testbed import by_version, make_venv, pythons

pytestmark = pytest.mark.e2e

ALL = pythons(min=(3, 6))
SUPPORTED = pythons(min=(3, 8))


# --- offline, from wheels/ -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bare-venv", "old-pip-venv"])
@pytest.mark.parametrize("interp", ALL, ids=str)
def test_offline_install_gives_the_pinned_versions_and_a_rerun_is_a_fast_no_op(interp, kind, sandbox, tmp_path):
    sb = sandbox(offline=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=(kind == "old-pip-venv"))
    bundle = copy_bundle(tmp_path / "bundle")
    first = bootstrap(sb, python, bundle, "--offline")
    assert first.returncode == 0, out(first)
    pins = expected_pins(interp.version)
    assert installed_version(sb, python, "pip") == pins["pip"]
    assert installed_version(sb, python, "truststore") == (pins["truststore"] if interp.version >= (3, 10) else "absent")
    assert "SHA-256 checked against hashes.txt" in first.stdout

    before = tree(tmp_path / "venv", sb.home)
    started = time.monotonic()
    second = bootstrap(sb, python, bundle, "--offline")
    elapsed = time.monotonic() - started
    assert second.returncode == 0, out(second)
    assert "nothing to install" in second.stdout and "Nothing needed to change" in second.stdout
    assert tree(tmp_path / "venv", sb.home) == before
    assert elapsed < 2.0, "a re-run on a done machine took {:.2f} s".format(elapsed)


def test_an_installed_pip_newer_than_the_pin_is_left_alone(sandbox, tmp_path):
    interp = by_version((3, 9))
    sb = sandbox(offline=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    # Install a newer pip than 3.9's pin (the newer pins are for newer Pythons) with --ignore-requires-python?
    # Not possible; instead make the pinned pip "old" by pinning an older one for 3.9 in this bundle's hashes.txt.
    assert bootstrap(sb, python, bundle, "--offline").returncode == 0
    hashes = bundle / "hashes.txt"
    pin_39 = pinned(interp.version, hashes)["pip"]
    # The bundle is then rebuilt with 3.9's pin replaced by the newest older pip it pins (that of an older
    # Python), under 3.9's marker: the installed, newer pip must stay.
    olders = [p for p in pins(hashes) if p.name == "pip" and Version(p.version) < Version(pin_39.version)]
    assert olders, "hashes.txt pins no pip older than 3.9's {}".format(pin_39.version)
    older = max(olders, key=lambda p: Version(p.version))
    repinned = "pip=={} ; {} {}".format(older.version, pin_39.marker, " ".join("--hash=sha256:" + h for h in older.hashes))
    hashes.write_text(hashes.read_text().replace(pin_39.line + "\n", "").replace(older.line, repinned))
    assert pinned(interp.version, hashes)["pip"].version == older.version
    again = bootstrap(sb, python, bundle, "--offline")
    assert again.returncode == 0, out(again)
    assert installed_version(sb, python, "pip") == pin_39.version
    assert "nothing to install" in again.stdout


# --- online, no wheels: through the intercepting proxy --------------------------------------------

@pytest.mark.parametrize("interp", ALL, ids=str)
def test_online_install_without_wheels_bypasses_verification_for_the_download_only(interp, sandbox, proxy, cas, tmp_path):
    """The OS store lacks the corporate root (IT has not set the laptop up): verified TLS fails both ways,
    so the pinned files are downloaded unverified and accepted by SHA-256; the CA comes from --ca-file."""
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    result = bootstrap(sb, python, bundle, "--ca-file", cas.corp_pem)
    assert result.returncode == 0, out(result)
    text = result.stdout
    assert "WITHOUT TLS verification, for this one download only" in text
    assert "SHA-256 matches hashes.txt" in text or "SHA-256 checked" in text
    assert "TLS NOT verified for this download" in text
    pins = expected_pins(interp.version)
    assert installed_version(sb, python, "pip") == pins["pip"]
    # nothing about the bypass is persisted
    for path in Path(sb.home).rglob("*"):
        if path.is_file() and path.suffix in (".conf", ".ini"):
            assert "trusted" not in path.read_text()


@pytest.mark.parametrize("interp", [i for i in SUPPORTED if i.version in ((3, 9), (3, 12))], ids=str)
def test_online_install_verifies_tls_with_the_os_store_when_it_holds_the_corporate_root(interp, sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    result = bootstrap(sb, python, bundle)
    assert result.returncode == 0, out(result)
    assert "TLS verified with the OS trust store" in result.stdout
    assert "WITHOUT TLS verification" not in result.stdout
    assert installed_version(sb, python, "pip") == expected_pins(interp.version)["pip"]


# --- tampered files: refused before any pip code from them runs ----------------------------------

@pytest.mark.parametrize("interp", SUPPORTED, ids=str)
def test_a_tampered_wheel_in_the_bundle_is_refused_and_nothing_changes(interp, sandbox, tmp_path):
    sb = sandbox(offline=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    wheel = next((bundle / "wheels").glob("pip-{}-*.whl".format(expected_pins(interp.version)["pip"])))
    with open(wheel, "ab") as f:
        f.write(b"\0")                       # still a readable zip; a different SHA-256
    before = tree(tmp_path / "venv", sb.home)
    result = bootstrap(sb, python, bundle, "--offline")
    assert result.returncode == 2, out(result)
    assert wheel.name in result.stdout and "does not match hashes.txt" in result.stdout
    assert tree(tmp_path / "venv", sb.home) == before
    assert installed_version(sb, python, "pip") == "absent"


@pytest.mark.parametrize("interp", [i for i in SUPPORTED if i.version in ((3, 9), (3, 12))], ids=str)
def test_a_tampered_wheel_served_by_the_index_is_refused_and_nothing_changes(interp, sandbox, make_index, make_proxy, tmp_path):
    packages = tmp_path / "evil-packages"
    packages.mkdir()
    for wheel in (ROOT / "wheels").glob("*.whl"):
        data = wheel.read_bytes()
        (packages / wheel.name).write_bytes(data + b"\0" if wheel.name.startswith("pip-") else data)
    evil = make_proxy(make_index(packages))
    sb = sandbox(corp_in_os_store=True, proxy=evil)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    before = tree(tmp_path / "venv", sb.home)
    result = bootstrap(sb, python, bundle)
    assert result.returncode == 2, out(result)
    assert "does not match hashes.txt" in result.stdout and "Nothing was installed" in result.stdout
    assert tree(tmp_path / "venv", sb.home) == before


# --- --dry-run ------------------------------------------------------------------------------------

def test_dry_run_prints_the_plan_and_changes_nothing(sandbox, proxy, tmp_path):
    interp = by_version((3, 9))
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(tmp_path / "venv", sb.home, bundle)
    result = bootstrap(sb, python, bundle, "--dry-run")
    assert result.returncode == 0, out(result)
    assert "install pip==" in result.stdout and "--dry-run: nothing was changed" in result.stdout
    assert tree(tmp_path / "venv", sb.home, bundle) == before


def test_json_report_describes_the_run_for_fleet_tools(sandbox, tmp_path):
    import json
    interp = by_version((3, 12))
    sb = sandbox(offline=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = bootstrap(sb, python, bundle, "--offline", "--json")
    assert result.returncode == 0, out(result)
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 0 and doc["error"] is None
    assert [s["step"] for s in doc["steps"]] == ["survey", "plan", "install", "trust", "verify"]
    assert {p["name"] for p in doc["plan"]["install"]} == {"pip", "truststore"}


# --- bad input: a clear sentence, the right exit code, nothing changed ---------------------------

def test_missing_hashes_txt_is_bad_input(sandbox, tmp_path):
    sb = sandbox(offline=True)
    python = make_venv(by_version((3, 11)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    (bundle / "hashes.txt").unlink()
    before = tree(tmp_path / "venv", sb.home)
    result = bootstrap(sb, python, bundle, "--offline")
    assert result.returncode == 2 and "hashes.txt is missing" in result.stdout, out(result)
    assert tree(tmp_path / "venv", sb.home) == before


def test_malformed_hashes_txt_names_the_line(sandbox, tmp_path):
    sb = sandbox(offline=True)
    python = make_venv(by_version((3, 11)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    lines = (bundle / "hashes.txt").read_text().splitlines()
    first_pin = next(i for i, l in enumerate(lines) if l.startswith("pip=="))
    lines[first_pin] = "pip>=1 this is not a pin"
    (bundle / "hashes.txt").write_text("\n".join(lines) + "\n")
    before = tree(tmp_path / "venv", sb.home)
    result = bootstrap(sb, python, bundle, "--offline")
    assert result.returncode == 2, out(result)
    assert "line {} is malformed".format(first_pin + 1) in result.stdout
    assert tree(tmp_path / "venv", sb.home) == before


def test_no_pin_for_this_python_is_bad_input(sandbox, tmp_path):
    sb = sandbox(offline=True)
    python = make_venv(by_version((3, 9)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    hashes = bundle / "hashes.txt"
    text = hashes.read_text()
    for pin in pins(hashes):
        if pin.name == "pip" and pin.applies((3, 9)):
            text = text.replace(pin.line + "\n", "")
    hashes.write_text(text)
    assert "pip" not in pinned((3, 9), hashes)
    result = bootstrap(sb, python, bundle, "--offline")
    assert result.returncode == 2, out(result)
    assert "pins no pip for Python 3.9" in result.stdout


def test_an_unreachable_index_fails_fast_with_the_host_named(sandbox, tmp_path):
    sb = sandbox(offline=True)                       # a network namespace with only loopback
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    started = time.monotonic()
    result = bootstrap(sb, python, bundle, env_extra={"TRUSTFIX_TIMEOUT": "5"})
    assert result.returncode == 1, out(result)
    assert "pypi.org" in result.stdout
    assert time.monotonic() - started < 30
    assert installed_version(sb, python, "pip") == "absent"


def test_a_proxy_demanding_a_login_is_named_and_credentials_in_the_proxy_url_work(sandbox, index, make_proxy, tmp_path):
    locked = make_proxy(index, auth="alice:s3cret")
    sb = sandbox(corp_in_os_store=True, proxy=locked)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    refused = bootstrap(sb, python, bundle)
    assert refused.returncode == 1, out(refused)
    assert "407" in refused.stdout and "HTTPS_PROXY=http://user:password@host:port" in refused.stdout
    assert installed_version(sb, python, "pip") == "absent"

    url = "http://alice:s3cret@127.0.0.1:{}".format(locked.port)
    env = {k: url for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
    allowed = bootstrap(sb, python, bundle, env_extra=env)
    assert allowed.returncode == 0, out(allowed)
    assert "s3cret" not in allowed.stdout                       # the password is never printed


@pytest.fixture
def silent_server():
    """A loopback TCP server that accepts connections and never answers (a hung index)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_slow_index_times_out_instead_of_hanging(sandbox, silent_server, tmp_path):
    sb = sandbox(corp_in_os_store=True)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle", wheels=False)
    started = time.monotonic()
    result = bootstrap(sb, python, bundle, "--index-url", "https://127.0.0.1:{}/simple".format(silent_server),
                       env_extra={"TRUSTFIX_TIMEOUT": "2"}, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, out(result)
    assert "did not answer within 2 seconds" in result.stdout
    assert elapsed < 20, elapsed
    assert installed_version(sb, python, "pip") == "absent"


OVERLAY = """set -e
lib="$1"; upper="$2"; work="$3"; shift 3
mount -t overlay overlay -o "lowerdir=$lib,upperdir=$upper,workdir=$work" "$lib"
bin="$(dirname "$(dirname "$lib")")/bin"
mkdir -p "$upper.bin" "$work.bin"
mount -t overlay overlay -o "lowerdir=$bin,upperdir=$upper.bin,workdir=$work.bin" "$bin"
: > "$lib/EXTERNALLY-MANAGED"
exec "$@"
"""


def system_python(interp):
    """(python, stdlib dir) of the interpreter itself (not a venv), for PEP 668 and permission cases."""
    import subprocess
    stdlib = subprocess.check_output([str(interp.path), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                                     universal_newlines=True, env={"PATH": "/usr/bin:/bin"}).strip()
    return interp.path, stdlib


@pytest.mark.parametrize("flag", [None, "--break-system-packages"])
def test_an_externally_managed_python_is_left_alone_unless_asked(flag, sandbox, tmp_path):
    """The interpreter's own lib/ and bin/ are overlaid (writes land in `upper`, `upper.bin`), with a PEP 668
    marker in lib/: the interpreter itself is never changed."""
    interp = by_version((3, 12))
    python, stdlib = system_python(interp)
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    sb = sandbox(offline=True)
    bundle = copy_bundle(tmp_path / "bundle")
    args = ["sh", "-c", OVERLAY, "sh", stdlib, str(upper), str(work), str(python), str(bundle / "bootstrap.py"), "--offline"]
    result = sb.run(args + ([flag] if flag else []), cwd=str(bundle))
    assert result.returncode == 0, out(result)
    written = sorted(str(p.relative_to(upper)) for p in upper.rglob("*") if p.is_file())
    if flag:
        assert any(w.startswith("site-packages/pip-{}.dist-info".format(expected_pins((3, 12))["pip"])) for w in written)
    else:
        assert "managed by the operating system" in result.stdout
        assert written == ["EXTERNALLY-MANAGED"]          # nothing else was written into this Python
        assert not list((tmp_path / "upper.bin").iterdir())  # nor into its bin/
        assert "trust" in result.stdout                    # and it went on to the trust step


def test_an_unwritable_target_is_a_clear_failure(sandbox, tmp_path):
    """The venv is mounted read-only (even root cannot write there): a clear sentence, nothing changed."""
    sb = sandbox(offline=True)
    venv = tmp_path / "venv"
    python = make_venv(by_version((3, 12)), venv, with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(venv, sb.home)
    result = sb.run(["sh", "-c", 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(venv),
                     str(python), str(bundle / "bootstrap.py"), "--offline"], cwd=str(bundle))
    assert result.returncode == 1, out(result)
    assert "is not writable" in result.stdout and str(venv) in result.stdout
    assert tree(venv, sb.home) == before


@pytest.mark.parametrize("tmpdir", ["unset", "set"])
def test_the_run_works_in_memory_unless_tmpdir_says_otherwise_and_leaves_nothing_behind(tmpdir, sandbox, tmp_path):
    """On Linux the unpacked installer lives in /dev/shm (memory: ~500 files cost a fraction there of what
    they cost on a disk) unless TMPDIR names a folder; either way the folder is gone after the run."""
    import re
    sb = sandbox(offline=True)
    python = make_venv(SUPPORTED[-1], tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    own = tmp_path / "own-tmp"
    own.mkdir()
    env = {"TMPDIR": str(own)} if tmpdir == "set" else {}
    result = bootstrap(sb, python, bundle, "--offline", "-v", env_extra=env)
    assert result.returncode == 0, out(result)
    m = re.search(r" -B (\S+)/installer/pip install ", result.stdout)
    assert m, result.stdout
    workdir = Path(m.group(1))
    assert workdir.parent == (own if tmpdir == "set" else Path("/dev/shm")), workdir
    assert workdir.name.startswith("trustfix-")
    assert not workdir.exists()
    assert list(own.iterdir()) == []
    assert installed_version(sb, python, "pip") == expected_pins(SUPPORTED[-1].version)["pip"]
