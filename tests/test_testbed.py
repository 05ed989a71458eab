"""The corporate network in a box, proven: baselines that show the bug before any fix."""
import socket

import pytest

from testbed import make_venv, pythons

pytestmark = pytest.mark.e2e

PKG = "corp-hello"
FAIL_FAST = ["--retries", "0", "--timeout", "10", "--disable-pip-version-check"]


def pip(sb, python, *args, **kw):
    return sb.run([str(python), "-m", "pip"] + list(args), **kw)


def pip_version(sb, python):
    out = pip(sb, python, "--version").stdout.split()
    return tuple(int(x) for x in out[1].split(".")[:2])


def upgrade_pip_offline(sb, python, tmp_path):
    from bundle_helpers import ROOT
    result = pip(sb, python, "install", "--no-index", "--find-links", str(ROOT / "wheels"), "--upgrade", "pip", *FAIL_FAST)
    assert result.returncode == 0, result.stdout + result.stderr


OLD_PIP = [i for i in pythons(min=(3, 8)) if i.version in ((3, 8), (3, 9), (3, 10), (3, 11), (3, 12))]


@pytest.mark.parametrize("interp", OLD_PIP, ids=str)
def test_certifi_only_pip_fails_through_the_intercepting_proxy(interp, sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    if interp.version >= (3, 10):
        assert pip_version(sb, python) < (24, 2), "this venv's bundled pip is new enough to use the OS store"
    result = pip(sb, python, "download", "-d", str(tmp_path / "d"), PKG, *FAIL_FAST)
    assert result.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize("interp", OLD_PIP, ids=str)
def test_trusted_host_makes_the_same_pip_succeed(interp, sandbox, proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    result = pip(sb, python, "install", "--target", str(tmp_path / "t"), "--trusted-host", "pypi.org",
                 "--trusted-host", "files.pythonhosted.org", PKG, *FAIL_FAST)
    assert result.returncode == 0, result.stdout + result.stderr
    imported = sb.run([str(python), "-c", "import corp_hello; print(corp_hello.GREETING)"],
                      env_extra={"PYTHONPATH": str(tmp_path / "t")})
    assert "corporate network" in imported.stdout


@pytest.mark.parametrize("interp", pythons(min=(3, 10)), ids=str)
@pytest.mark.parametrize("corp_in_store", [True, False], ids=["os-store-has-corp-root", "os-store-lacks-it"])
def test_modern_pip_follows_the_os_store(interp, corp_in_store, sandbox, proxy, tmp_path):
    setup = sandbox(offline=True)
    python = make_venv(interp, tmp_path / "venv", with_pip=True)
    upgrade_pip_offline(setup, python, tmp_path)
    assert pip_version(setup, python) >= (24, 2)
    sb = sandbox(corp_in_os_store=corp_in_store, proxy=proxy)
    result = pip(sb, python, "download", "-d", str(tmp_path / "d"), PKG, *FAIL_FAST)
    if corp_in_store:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in result.stdout + result.stderr


def test_python_39_with_its_newest_pip_still_fails(sandbox, proxy, tmp_path):
    found = [i for i in pythons(min=(3, 9), max=(3, 9))]
    if not found:
        pytest.skip("no Python 3.9 here")
    setup = sandbox(offline=True)
    python = make_venv(found[0], tmp_path / "venv", with_pip=True)
    upgrade_pip_offline(setup, python, tmp_path)
    assert pip_version(setup, python) >= (26, 0)
    sb = sandbox(corp_in_os_store=True, proxy=proxy)
    result = pip(sb, python, "download", "-d", str(tmp_path / "d"), PKG, *FAIL_FAST)
    assert result.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in result.stdout + result.stderr


def test_offline_sandbox_reaches_nothing_but_its_own_loopback(sandbox, proxy, index):
    sb = sandbox(offline=True)
    code = ("import socket,sys\n"
            "def ok(p):\n"
            "  try: socket.create_connection(('127.0.0.1',p),timeout=2).close(); return True\n"
            "  except OSError: return False\n"
            "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n"
            "print(ok({}), ok({}), ok(s.getsockname()[1]))\n").format(proxy.port, index.port)
    result = sb.run(["python3", "-c", code])
    assert result.stdout.split() == ["False", "False", "True"], result.stdout + result.stderr


def test_the_proxy_refuses_hosts_it_does_not_route(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        answer = s.recv(200)
    assert b" 403 " in answer.split(b"\r\n")[0]


def test_the_bed_starts_in_seconds(cas, index, proxy, record_property):
    """The README says the bed starts in about a second; a bed that takes ten is broken (or the machine)."""
    for name, seconds in (("cas", cas.seconds), ("index", index.seconds), ("proxy", proxy.seconds)):
        record_property(name + "_seconds", round(seconds, 2))
    assert cas.seconds + index.seconds + proxy.seconds < 10, (cas.seconds, index.seconds, proxy.seconds)
