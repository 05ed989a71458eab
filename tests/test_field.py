"""The field's proxies, end to end in the laptop sandbox (issue 15): what help desks see beyond the test
bed's clean proxy. Here: a Windows-domain proxy whose 407 offers only NTLM and Negotiate, logins pip and uv
cannot do. bootstrap.py refuses before any change and doctor names the cause; both point to a local
authenticating proxy (px, cntlm).
"""
import json

import pytest

from bundle_helpers import bootstrap, copy_bundle, out, tree
from testbed import LoopbackServer, by_version, make_venv

pytestmark = pytest.mark.e2e


@pytest.fixture
def domain_proxy():
    """A real HTTP proxy on loopback that answers every request (CONNECT included) with 407 and
    `Proxy-Authenticate: Negotiate` and `Proxy-Authenticate: NTLM`, as a Windows-domain proxy does.
    Yields its URL and the request lines it was sent."""
    seen = []
    answer = (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n"
              b"Proxy-Authenticate: NTLM\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def serve(conn, stop):
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                seen.append(data.split(b"\r\n")[0].decode("latin-1"))
                conn.sendall(answer)
            except OSError:
                pass

    with LoopbackServer(serve) as server:
        yield "http://127.0.0.1:{}".format(server.port), seen


def test_a_proxy_that_offers_only_ntlm_and_negotiate_is_named_and_nothing_changes(sandbox, domain_proxy, tmp_path):
    url, seen = domain_proxy
    sb = sandbox(corp_in_os_store=True)
    proxies = {var: url for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(sb.home, tmp_path / "venv")

    result = bootstrap(sb, python, bundle, "--json", env_extra=dict(proxies, TRUSTFIX_TIMEOUT="5"))
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["changed"] is False, out(result)
    assert "asks for a Windows login (Negotiate, NTLM), which pip and uv cannot do" in doc["error"], doc["error"]
    assert "px or cntlm" in doc["error"] and "HTTPS_PROXY=http://127.0.0.1:3128" in doc["error"]
    assert doc["error"].count("nothing was changed") == 1, doc["error"]
    assert tree(sb.home, tmp_path / "venv") == before
    assert any(line.startswith("CONNECT pypi.org:443 ") for line in seen), seen     # it really asked the proxy

    doctor = bootstrap(sb, python, bundle, "doctor", "--json", env_extra=dict(proxies, TRUSTFIX_TIMEOUT="5"))
    verdict = json.loads(doctor.stdout)["doctor"]["verdict"]
    assert doctor.returncode == 1, out(doctor)
    assert verdict["cause"] == "the proxy {} asks for a Windows login (Negotiate, NTLM), which pip and uv cannot " \
                               "do (they speak Basic only)".format(url), verdict
    assert verdict["fix"].startswith("run a local authenticating proxy that logs in for you (px or cntlm")
    assert tree(sb.home, tmp_path / "venv") == before
