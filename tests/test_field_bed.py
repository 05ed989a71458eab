"""The test bed of issue 15's certificate cases (tests/testbed/field.py), proven: each profile's proxy
presents what it claims (read off the wire by openssl, checked with cryptography), real interpreters
accept or reject it as the field reports (3.13's VERIFY_X509_STRICT, the incomplete chain), and the proxy
carries real pip traffic. Every client runs with a scrubbed environment; nothing leaves loopback.
"""
import contextlib
import re
import http.client
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bundle_helpers import out
from testbed import by_version, make_venv, need, pythons
from testbed.field import PROFILES, CorpPKI, InterceptingProxy, laptop, presented_chain, stdlib_verdicts

STRICT_CASES = {      # profile -> what OpenSSL says under VERIFY_X509_STRICT (Python 3.13's default)
    "root-bc-noncritical": "Basic Constraints of CA cert not marked critical",
    "root-no-keyusage": "CA cert does not include key usage extension",
    "leaf-no-aki": "Missing Authority Key Identifier",
}
PYTHONS = pythons(min=(3, 6))           # every Python 3.6+ (a missing one fails in CI: need() below)


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    folder = tmp_path_factory.mktemp("field-pki")
    return {name: CorpPKI(folder / name, profile) for name, profile in PROFILES.items()}


@pytest.fixture(scope="module")
def field_proxies(pkis, index, cas):
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(InterceptingProxy(index.port, pki, cas.public_pem))
               for name, pki in pkis.items()}


@pytest.fixture(scope="module")
def anchors(pkis, tmp_path_factory):
    """Trust-anchor files per profile: "root" (what IT deploys) and "root+intermediate"."""
    folder = tmp_path_factory.mktemp("field-anchors")
    files = {}
    for name, pki in pkis.items():
        files[name, "root"] = pki.root_pem
        if pki.intermediate_pem:
            both = folder / "{}-root+intermediate.pem".format(name)
            both.write_bytes(pki.root_pem.read_bytes() + pki.intermediate_pem.read_bytes())
            files[name, "root+intermediate"] = both
    return files


@pytest.fixture(scope="module")
def verdicts(field_proxies, anchors):
    """{(python version, profile, anchors): verdict} for every interpreter here, one process each."""
    keys = sorted(anchors)
    cases = [(field_proxies[name], anchors[name, kind]) for name, kind in keys]
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(PYTHONS, pool.map(lambda i: stdlib_verdicts(need(i), cases), PYTHONS)))
    return {(interp.version, name, kind): verdict
            for interp, found in results.items() for (name, kind), verdict in zip(keys, found)}


def refused(verdict, version, reason):
    """The verification failed for that reason (Python 3.6's ssl does not say why: the failure only)."""
    return not verdict["ok"] and "CERTIFICATE_VERIFY_FAILED" in verdict["error"] and (
        version < (3, 7) or reason in verdict["error"])


def served(verdict):
    return verdict["ok"] and verdict["status"] == 200 and "corp_hello-1.0-py3-none-any.whl" in verdict["body"]


# --- each profile is what it claims, on the wire -----------------------------------------------------

def _extension(cert, kind):
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def describe(chain, root):
    """What a field report would say of a presented chain and the deployed root."""
    leaf = chain[0]
    bc, ku = _extension(root, x509.BasicConstraints), _extension(root, x509.KeyUsage)
    eku, san = _extension(leaf, x509.ExtendedKeyUsage), _extension(leaf, x509.SubjectAlternativeName)
    return {
        "root basicConstraints": (bc.value.ca, bc.critical) if bc else None,
        "root keyUsage keyCertSign": ku.value.key_cert_sign if ku else None,
        "leaf AKI": _extension(leaf, x509.AuthorityKeyIdentifier) is not None,
        "leaf days": (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days,
        "leaf EKU": sorted(o.dotted_string for o in eku.value) if eku else None,
        "leaf SAN": san.value.get_values_for_type(x509.DNSName) if san else None,
        "leaf CN": leaf.subject.rfc4514_string().split(",")[0],
        "leaf signed by root": leaf.issuer == root.subject,
        "certificates sent": len(chain),
    }


CLAIMS = {      # profile -> how its description differs from the compliant one
    "compliant": {},
    "root-bc-noncritical": {"root basicConstraints": (True, False)},
    "root-no-keyusage": {"root keyUsage keyCertSign": None},
    "leaf-no-aki": {"leaf AKI": False},
    "leaf-900-days": {"leaf days": 900},
    "leaf-no-eku": {"leaf EKU": None},
    "leaf-eku-clientauth": {"leaf EKU": [ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string]},
    "leaf-no-san": {"leaf SAN": None},
    "chain-complete": {"leaf signed by root": False, "certificates sent": 2},
    "chain-incomplete": {"leaf signed by root": False},
}


def test_every_profile_is_claimed():
    assert sorted(CLAIMS) == sorted(PROFILES)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_proxy_presents_what_the_profile_claims(name, field_proxies, pkis):
    root = x509.load_pem_x509_certificate(pkis[name].root_pem.read_bytes())
    chain = presented_chain(field_proxies[name], "pypi.org")
    compliant = describe(presented_chain(field_proxies["compliant"], "pypi.org"), pkis["compliant"].root.cert)
    assert compliant["leaf days"] == 365 and compliant["leaf EKU"] == [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string]
    assert compliant["leaf SAN"] == ["pypi.org"] and compliant["leaf CN"] == "CN=pypi.org"
    assert describe(chain, root) == dict(compliant, **CLAIMS[name])
    issuer = pkis[name].intermediate or pkis[name].root
    chain[0].verify_directly_issued_by(issuer.cert)           # really signed by the profile's CA
    if pkis[name].intermediate and PROFILES[name].send_intermediate:
        assert chain[1] == pkis[name].intermediate.cert
        chain[1].verify_directly_issued_by(root)


def test_each_host_gets_its_own_leaf_and_other_hosts_are_refused(field_proxies):
    proxy = field_proxies["compliant"]
    files = presented_chain(proxy, "files.pythonhosted.org")[0]
    assert files.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["files.pythonhosted.org"]
    for target in ("example.com:443", "pypi.org:80"):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
            s.sendall("CONNECT {0} HTTP/1.1\r\nHost: {0}\r\n\r\n".format(target).encode())
            assert s.recv(100).startswith(b"HTTP/1.1 403 "), target
    assert "CONNECT example.com:443 HTTP/1.1" in proxy.connects


# --- what real interpreters say ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(STRICT_CASES))
def test_python_313_rejects_the_non_compliant_root_or_leaf_and_older_pythons_accept_it(name, verdicts, field_proxies):
    by_version((3, 13))
    rejected = verdicts[(3, 13), name, "root"]
    assert refused(rejected, (3, 13), STRICT_CASES[name]), rejected
    assert any(host == "pypi.org" for host, _ in field_proxies[name].refused)   # refused in the handshake
    older = [i.version for i in PYTHONS if i.version < (3, 13)]
    assert older, "no Python older than 3.13 here"
    for version in older:
        assert served(verdicts[version, name, "root"]), (version, verdicts[version, name, "root"])


@pytest.mark.parametrize("name", ["compliant", "chain-complete", "leaf-900-days", "leaf-no-eku"])
def test_every_python_accepts_the_compliant_profiles_and_what_only_apple_refuses(name, verdicts):
    for interp in PYTHONS:
        assert served(verdicts[interp.version, name, "root"]), (interp, verdicts[interp.version, name, "root"])


def test_every_python_refuses_a_leaf_whose_eku_lacks_server_auth(verdicts):
    for interp in PYTHONS:
        verdict = verdicts[interp.version, "leaf-eku-clientauth", "root"]
        assert refused(verdict, interp.version, "unsuitable certificate purpose"), (interp, verdict)


def test_the_stdlib_falls_back_to_the_cn_for_a_leaf_without_san_and_a_cn_free_check_refuses_it(
        verdicts, field_proxies, pkis):
    for interp in PYTHONS:        # hostname_checks_common_name is on in every stdlib default context
        verdict = verdicts[interp.version, "leaf-no-san", "root"]
        assert served(verdict), (interp, verdict)
    # as urllib3 2 checks hostnames (hostname_checks_common_name = False): the same leaf is refused
    assert get_without_cn_fallback(field_proxies["compliant"], pkis["compliant"].root_pem) == 200
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        get_without_cn_fallback(field_proxies["leaf-no-san"], pkis["leaf-no-san"].root_pem)


def get_without_cn_fallback(proxy, cafile):
    context = ssl.create_default_context(cafile=str(cafile))
    context.hostname_checks_common_name = False
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=context)
    conn.set_tunnel("pypi.org", 443)
    try:
        conn.request("GET", "/simple/")
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_incomplete_chain_fails_everywhere_until_the_intermediate_is_a_trust_anchor(verdicts, field_proxies):
    for interp in PYTHONS:
        alone = verdicts[interp.version, "chain-incomplete", "root"]
        assert refused(alone, interp.version, "unable to get local issuer certificate"), (interp, alone)
        with_intermediate = verdicts[interp.version, "chain-incomplete", "root+intermediate"]
        assert served(with_intermediate), (interp, with_intermediate)
    assert field_proxies["chain-incomplete"].refused


# --- the proxy carries pip, and the store carries the root -------------------------------------------------

@pytest.mark.e2e
def test_real_pip_installs_through_the_proxy_with_the_root_as_cert(field_proxies, pkis, cas, tmp_path):
    pki, proxy = pkis["compliant"], field_proxies["compliant"]
    sb = laptop(tmp_path, pki.store(tmp_path / "store", cas.public_pem), proxy)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=True)
    pip = [str(python), "-m", "pip", "install", "--target", str(tmp_path / "t"), "--retries", "0", "--timeout", "10",
           "--disable-pip-version-check", "corp-hello"]

    certifi_only = sb.run(pip)
    assert certifi_only.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out(certifi_only), out(certifi_only)
    installed = sb.run(pip + ["--cert", str(pki.root_pem)])
    assert installed.returncode == 0, out(installed)
    assert (tmp_path / "t" / "corp_hello" / "__init__.py").exists()
    assert "CONNECT pypi.org:443 HTTP/1.1" in proxy.connects

    # the laptop's OS store holds the profile's root: the stdlib's default context trusts the proxy
    urllib = sb.run([str(python), "-c", "import urllib.request as u; print(u.urlopen("
                     "'https://pypi.org/simple/corp-hello/', timeout=10).status)"])
    assert urllib.stdout.strip() == "200", out(urllib)


# --- the recorded proxy-configuration outputs (tests/data/pac) keep their tools' layouts ------------------

PAC = Path(__file__).resolve().parent / "data" / "pac"
REG_KEY = r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Internet Settings"


def reg_values(raw):
    """reg.exe's layout, strictly: CRLF, a blank line, the key, its values, a blank line, its subkeys."""
    assert b"\n" not in raw.replace(b"\r\n", b""), "reg.exe ends every line with CRLF"
    lines = raw.decode("ascii").rstrip("\r\n").split("\r\n")
    assert raw.endswith(b"\r\n") and lines[0] == "" and lines[1] == REG_KEY, lines[:2]
    blank = lines.index("", 2)
    values = [re.match(r"^    (\S(?:.*?\S)?)    (REG_[A-Z_]+)    (.*)$", line) for line in lines[2:blank]]
    assert all(values), lines[2:blank]
    assert all(line.startswith(REG_KEY + "\\") for line in lines[blank + 1:]), lines[blank + 1:]
    return {m.group(1): (m.group(2), m.group(3)) for m in values}


def scutil_top_level(text):
    """scutil's layout, strictly: two spaces per level, sorted keys; the top-level keys and values."""
    lines, depth, top = text.splitlines(), 0, {}
    assert lines[0] == "<dictionary> {" and lines[-1] == "}"
    keys = {0: []}
    for line in lines[1:-1]:
        m = re.match(r"^((?:  )+)(\S+) : (.*)$", line) or re.match(r"^((?:  )+)(})$", line)
        assert m, line
        if m.group(2) == "}":
            depth -= 1
            assert len(m.group(1)) == 2 * (depth + 1), line
            continue
        assert len(m.group(1)) == 2 * (depth + 1), line
        keys.setdefault(depth, []).append(m.group(2))
        if depth == 0:
            top[m.group(2)] = m.group(3)
        if m.group(3).endswith("{"):
            depth += 1
            keys[depth] = []
        elif depth and keys[depth - 1][-1] != "ExceptionsList":
            assert keys[depth] == sorted(keys[depth]), keys[depth]
    assert depth == 0 and keys[0] == sorted(keys[0]), keys[0]
    return top


def test_the_recorded_windows_settings_keep_reg_exes_layout():
    pac, manual, none = (reg_values((PAC / "windows-reg-query-internet-settings-{}.txt".format(kind)).read_bytes())
                         for kind in ("pac", "manual", "none"))
    assert pac["AutoConfigURL"] == ("REG_SZ", "http://pac.corp.example.com/proxy.pac")
    assert pac["ProxyEnable"] == none["ProxyEnable"] == ("REG_DWORD", "0x0")
    assert manual["ProxyEnable"] == ("REG_DWORD", "0x1")
    assert manual["ProxyServer"] == ("REG_SZ", "proxy.corp.example.com:8080")
    assert not {"AutoConfigURL", "ProxyServer"} & set(none) and "AutoConfigURL" not in manual


def test_the_recorded_macos_settings_keep_scutils_layout():
    pac, manual, none = (scutil_top_level((PAC / "macos-scutil-proxy-{}.txt".format(kind)).read_text())
                         for kind in ("pac", "manual", "none"))
    assert pac["ProxyAutoConfigEnable"] == "1"
    assert pac["ProxyAutoConfigURLString"] == "http://pac.corp.example.com/proxy.pac"
    assert (manual["HTTPSEnable"], manual["HTTPSProxy"], manual["HTTPSPort"]) == ("1", "proxy.corp.example.com", "8080")
    assert manual["ProxyAutoConfigEnable"] == "0" and "ProxyAutoConfigURLString" not in manual
    assert none["HTTPSEnable"] == "0" and not {"HTTPSProxy", "ProxyAutoConfigURLString"} & set(none)


def test_the_recorded_gnome_and_wsl_outputs():
    for path in PAC.glob("gnome-gsettings-*.txt"):
        assert re.match(r"^(?:'[^'\n]*'|\d+)\n$", path.read_text()), path.name     # a GVariant, one line
    assert (PAC / "gnome-gsettings-mode-auto.txt").read_text() == "'auto'\n"
    for name, wsl in [("wsl1", True), ("wsl2", True), ("linux", False)]:
        text = (PAC / "{}-proc-version.txt".format(name)).read_text()
        assert text.startswith("Linux version ") and text.endswith("\n") and text.count("\n") == 1
        assert ("microsoft" in text.lower()) == wsl, name
