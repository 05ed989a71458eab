"""Fixtures of the corporate network in a box (see tests/testbed), and of the in-process tests of bootstrap.py
(laptop, ui, corp, https_server; their helpers are in unit_helpers.py and certificates.py)."""
import functools
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import testbed

ROOT = Path(__file__).resolve().parent.parent
IN_CI = testbed.IN_CI


@functools.lru_cache(maxsize=None)
def _sandbox_problem():
    return testbed.sandbox_problem()


def pytest_runtest_setup(item):
    """A test given a Python that is not installed (testbed.pythons), and a sandbox test when the sandbox
    cannot be made, fail (in CI) or skip (elsewhere) with the reason. (A usefixtures mark added after
    collection is never run, so this is a hook.)"""
    params = getattr(getattr(item, "callspec", None), "params", {})
    why = "; ".join(filter(None, (testbed.missing(p) for p in params.values() if isinstance(p, testbed.Interp))))
    if not why and item.get_closest_marker("e2e"):
        problem = _sandbox_problem()
        why = problem and "the laptop sandbox cannot be made: " + problem
    if why:
        if IN_CI:
            pytest.fail("CI=true but " + why, pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def bed_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bed")


@pytest.fixture(scope="session")
def cas(bed_dir):
    import trustme
    started = time.monotonic()
    public = trustme.CA(organization_name="Public Web PKI (test)")
    corp = trustme.CA(organization_name="Example Corp Interception (test)")
    public_pem, corp_pem = bed_dir / "public-root.pem", bed_dir / "corp-root.pem"
    public.cert_pem.write_to_path(str(public_pem))
    corp.cert_pem.write_to_path(str(corp_pem))
    confdir = bed_dir / "mitmproxy"
    confdir.mkdir()
    (confdir / "mitmproxy-ca.pem").write_bytes(corp.private_key_pem.bytes() + corp.cert_pem.bytes())
    leaf = public.issue_cert("pypi.org", "files.pythonhosted.org", "localhost", "127.0.0.1")
    server_cert, server_key = bed_dir / "index-cert.pem", bed_dir / "index-key.pem"
    server_cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(server_key))
    return SimpleNamespace(public=public, corp=corp, public_pem=public_pem, corp_pem=corp_pem,
                           confdir=confdir, server_cert=server_cert, server_key=server_key,
                           seconds=time.monotonic() - started)


@pytest.fixture(scope="session")
def stores(bed_dir, cas):
    """Two OS trust stores: one IT set up (holds the corporate root), one it did not."""
    public, corp = cas.public_pem.read_bytes(), cas.corp_pem.read_bytes()
    return {True: testbed.write_store(bed_dir / "store-corp", [public, corp]),
            False: testbed.write_store(bed_dir / "store-plain", [public])}


@pytest.fixture(scope="session")
def _processes():
    running = []
    yield running
    for thing in reversed(running):
        thing.stop()
    alive = [t for t in running if t.proc.poll() is None]
    assert not alive, "test-bed processes outlived the session: {}".format([t.proc.pid for t in alive])


@pytest.fixture(scope="session")
def make_index(cas, bed_dir, _processes):
    def make(packages, cert=None, key=None):
        """An index over packages; cert/key (a trustme LeafCert) replace the default pypi.org certificate."""
        workdir = bed_dir / "index-{}".format(len(_processes))
        workdir.mkdir()
        cert_file, key_file = cas.server_cert, cas.server_key
        if cert is not None:
            cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
            cert_file.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
            cert.private_key_pem.write_to_path(str(key_file))
        index = testbed.Index(packages, cert_file, key_file, workdir)
        _processes.append(index)
        return index
    return make


@pytest.fixture(scope="session")
def packages(bed_dir):
    folder = bed_dir / "packages"
    folder.mkdir()
    for wheel in (ROOT / "wheels").glob("*.whl"):
        shutil.copy2(wheel, folder / wheel.name)
    testbed.build_wheel(folder, "corp-hello", "1.0")
    return folder


@pytest.fixture(scope="session")
def index(make_index, packages):
    return make_index(packages)


@pytest.fixture(scope="session")
def make_proxy(cas, bed_dir, _processes):
    def make(index, auth=None):
        proxy = testbed.Proxy(index, cas.confdir, cas.public_pem, bed_dir, auth=auth)
        _processes.append(proxy)
        return proxy
    return make


@pytest.fixture(scope="session")
def proxy(make_proxy, index):
    return make_proxy(index)


@pytest.fixture
def sandbox(tmp_path, stores, bed_dir):
    empty = bed_dir / "empty-pip.conf"
    empty.touch()
    count = [0]

    def make(corp_in_os_store=True, offline=False, proxy=None, machine_wide=False):
        count[0] += 1
        return testbed.Sandbox(tmp_path / "laptop-{}".format(count[0]), stores[corp_in_os_store], empty,
                               offline=offline, proxy=proxy, machine_wide=machine_wide)
    return make


@pytest.fixture
def user_home():
    """A home for the unprivileged user (bundle_helpers.USER): outside pytest's root-only folder, owned by
    that user, removed after the test."""
    import tempfile
    from bundle_helpers import USER
    home = Path(tempfile.mkdtemp(prefix="trustfix-user-", dir="/tmp"))
    os.chmod(str(home), 0o755)
    os.chown(str(home), *USER)
    yield home
    shutil.rmtree(str(home), ignore_errors=True)


# --- in-process tests of bootstrap.py --------------------------------------------------------------

@pytest.fixture
def laptop(monkeypatch, tmp_path):
    """A user's laptop for a test that runs bootstrap.py in this process: none of this machine's pip, TLS,
    proxy or trustfix variables (unit_helpers.SCRUBBED, any *_proxy), an empty HOME (tmp_path/home, returned)
    and the journal's state folder at tmp_path/state (not made)."""
    from unit_helpers import SCRUBBED
    for name in list(os.environ):
        if name.startswith(SCRUBBED) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TRUSTFIX_STATE_DIR", str(tmp_path / "state"))
    return home


@pytest.fixture
def ui():
    """bootstrap's UI in JSON mode: it prints nothing and keeps the steps and warnings for the test to read."""
    from unit_helpers import bootstrap
    return bootstrap.UI(json_mode=True)


@pytest.fixture(scope="module")
def corp():
    """The company's TLS-inspection root, a second private root, and a leaf the proxy would present."""
    from certificates import dn, make_cert
    root = make_cert(dn("Example Corp TLS Inspection Root CA", "Example Corp", "Network Security", "US"))
    other = make_cert(dn("Other Private Root", "Somebody Else", c="DE"))
    leaf = make_cert(dn("pypi.org"), ca=False, issuer=root)
    return {"root": root[0], "root_key": root[1], "other": other[0], "leaf": leaf[0]}


@pytest.fixture
def https_server(tmp_path):
    """serve(signer, status=404, body=b"", content_type=None) -> the https URL (ending /simple) of a server on
    the loopback whose certificate signer (a trustme CA) issued for 127.0.0.1, giving every GET that answer."""
    import http.server
    import ssl
    import threading
    servers = []

    def serve(signer, status=404, body=b"", content_type=None):
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        chain = tmp_path / "server-{}.pem".format(len(servers))
        signer.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(chain))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return "https://127.0.0.1:{}/simple".format(server.server_address[1])

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def toolbed(cas, index, bed_dir, make_proxy):
    """The toolbelt bed (testbed/toolbelt.py): github.com and registry.npmjs.org on a loopback server behind
    a proxy of their own, with pypi.org routed to the index."""
    from testbed import toolbelt
    bed = toolbelt.ToolBed.start(cas, index, bed_dir, make_proxy)
    yield bed
    bed.stop()
