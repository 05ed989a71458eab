"""The field's certificates, end to end (issue 15 cases 1, 3, 4 and 7): a real TLS-intercepting proxy on
loopback (testbed.field) presents what help desks see, in front of the test index, to a laptop sandbox whose OS
store holds the profile's root. bootstrap.py must leave a pip that works or refuse before any change; doctor
must name the cause.
"""
import json

import pytest

from bundle_helpers import bootstrap, copy_bundle, out, tree
from testbed import by_version, make_venv, write_store
from testbed.field import PROFILES, CorpPKI, InterceptingProxy, laptop

pytestmark = pytest.mark.e2e


@pytest.fixture
def field(tmp_path, index, cas):
    """field(profile name) -> (sandbox through that profile's proxy, CorpPKI); proxies stop with the test."""
    proxies = []

    def make(name):
        pki = CorpPKI(tmp_path / name / "pki", PROFILES[name])
        proxy = InterceptingProxy(index.port, pki, cas.public_pem).__enter__()
        proxies.append(proxy)
        return laptop(tmp_path / name, pki.store(tmp_path / name / "store", cas.public_pem), proxy), pki
    yield make
    for proxy in proxies:
        proxy.__exit__(None, None, None)


def doctor_json(sb, python, bundle, **kw):
    result = bootstrap(sb, python, bundle, "doctor", "--json", **kw)
    return result, json.loads(result.stdout)["doctor"]


def checks(doc, name):
    return [c for c in doc["checks"] if c["name"] == name]


# --- case 1: a corporate root Python 3.13's strict checks reject; pip through truststore accepts it --------

@pytest.mark.parametrize("version", [(3, 9), (3, 12), (3, 13)], ids=lambda v: "{}.{}".format(*v))
def test_a_root_without_critical_basic_constraints_gives_a_working_pip_and_doctor_names_the_defect(
        field, tmp_path, version):
    sb, pki = field("root-bc-noncritical")
    python = make_venv(by_version(version), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")

    result = bootstrap(sb, python, bundle, "--json")
    assert result.returncode == 0, out(result)
    pip = sb.run([str(python), "-m", "pip", "install", "--no-cache-dir", "--retries", "0", "--timeout", "10",
                  "corp-hello"])
    assert pip.returncode == 0, out(pip)                         # a plain pip install through the proxy

    result, doc = doctor_json(sb, python, bundle)
    assert result.returncode == 0 and doc["verdict"]["ok"], out(result)
    also = [a["cause"] for a in doc["verdict"]["also"]]
    assert also == ["the root O=Example Corp Interception (test), CN=Example Corp Root (root-bc-noncritical): its "
                    "basicConstraints is not marked critical: Python 3.13's strict certificate checks (urllib, "
                    "requests with urllib3 >= 2.4, httpx) reject it, pip through truststore accepts it"], also
    urllib = checks(doc, "clients")[0]
    if version >= (3, 13):                                        # this Python's own stdlib rejects it, said so
        assert urllib["status"] == "warning" and "Basic Constraints of CA cert not marked critical" in urllib["text"]
    else:
        assert urllib["status"] == "ok", urllib
    assert "Also:    the root O=Example Corp Interception (test), CN=Example Corp Root (root-bc-noncritical)" in bootstrap(sb, python, bundle, "doctor").stdout


def test_a_leaf_without_authority_key_identifier_is_named_on_3_13(field, tmp_path):
    sb, _ = field("leaf-no-aki")
    python = make_venv(by_version((3, 13)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    result = bootstrap(sb, python, bundle)
    assert result.returncode == 0, out(result)
    result, doc = doctor_json(sb, python, bundle)
    assert doc["verdict"]["ok"], out(result)
    assert "the proxy's certificate (O=Intercepted (test), CN=pypi.org): it has no Authority Key Identifier" in \
        doc["verdict"]["also"][0]["cause"]
    assert "Missing Authority Key Identifier" in checks(doc, "clients")[0]["text"]


# --- case 4: leaves macOS rejects, named on every OS -----------------------------------------------------

@pytest.mark.parametrize("name,words", [
    ("leaf-900-days", "it is valid for 900 days (Apple allows 825)"),
    ("leaf-no-eku", "it has no extended key usage (Apple requires serverAuth)"),
    ("leaf-no-san", "it has no subjectAltName (Apple requires the host name there)")])
def test_a_leaf_apple_rejects_is_named_as_failing_on_macos(field, tmp_path, name, words):
    sb, _ = field(name)
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    assert bootstrap(sb, python, bundle).returncode == 0
    result, doc = doctor_json(sb, python, bundle)
    assert result.returncode == 0, out(result)
    cert = [c for c in checks(doc, "certs") if c["status"] == "warning"]
    assert len(cert) == 1 and "the proxy's certificate for pypi.org: " + words + ": macOS rejects it" in cert[0]["text"]
    assert doc["verdict"]["also"][0]["fix"].startswith("IT makes the proxy issue certificates valid at most 825 days")


def test_a_compliant_proxy_raises_no_certificate_warning(field, tmp_path):
    sb, _ = field("compliant")
    python = make_venv(by_version((3, 13)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    assert bootstrap(sb, python, bundle).returncode == 0
    result, doc = doctor_json(sb, python, bundle)
    assert result.returncode == 0 and "also" not in doc["verdict"], out(result)
    assert [c["status"] for c in checks(doc, "certs")] == ["ok"]
    assert [c["status"] for c in checks(doc, "clients")][0] == "ok"
    assert len(bootstrap(sb, python, bundle, "doctor").stdout.splitlines()) <= 24       # one screen


# --- case 7: the proxy leaves its intermediate out ---------------------------------------------------------

def test_an_incomplete_chain_is_refused_before_any_change_and_doctor_names_the_intermediate(field, tmp_path):
    sb, pki = field("chain-incomplete")
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    before = tree(sb.home, tmp_path / "venv")
    intermediate = "O=Example Corp Interception (test), CN=Example Corp Issuing CA (chain-incomplete)"

    result = bootstrap(sb, python, bundle, "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["changed"] is False, out(result)
    assert "pypi.org's certificate is issued by {}, an intermediate CA the proxy does not send".format(intermediate) \
        in doc["error"], doc["error"]
    assert "--ca-file intermediate.pem --ca-file root.pem" in doc["error"]
    assert tree(sb.home, tmp_path / "venv") == before

    result, doctor = doctor_json(sb, python, bundle)
    assert result.returncode == 1
    assert doctor["verdict"]["cause"].startswith("pypi.org's certificate is issued by " + intermediate), doctor["verdict"]

    # with both CA files, as the fix says, bootstrap works and so does a plain pip install
    result = bootstrap(sb, python, bundle, "--ca-file", pki.intermediate_pem, "--ca-file", pki.root_pem)
    assert result.returncode == 0, out(result)


# --- case 3: a trust variable left behind ---------------------------------------------------------------------

def test_ssl_cert_file_alone_still_leaves_every_pip_working(field, tmp_path, cas):
    """OpenSSL (so truststore) reads SSL_CERT_FILE and still its hashed folder: the corporate root stays
    visible, bootstrap writes the bundle, and a new venv's old bundled pip (certifi only) works too."""
    sb, _ = field("compliant")
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    left = {"SSL_CERT_FILE": str(cas.public_pem)}                # public roots only, as conda leaves it
    result = bootstrap(sb, python, copy_bundle(tmp_path / "bundle"), "--json", env_extra=left)
    assert result.returncode == 0, out(result)
    assert json.loads(result.stdout)["plan"]["strategy"] == "bundle"
    old = make_venv(by_version((3, 12)), tmp_path / "new-venv", with_pip=True)       # pip 23.2.1, certifi only
    pip = sb.run([str(old), "-m", "pip", "install", "--no-cache-dir", "--retries", "0", "--timeout", "10",
                  "corp-hello"], env_extra=left)
    assert pip.returncode == 0, out(pip)


def test_ssl_cert_file_and_dir_hiding_the_corporate_root_are_named_and_nothing_changes(field, tmp_path, cas):
    sb, _ = field("compliant")
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    plain = write_store(tmp_path / "public-only", [cas.public_pem.read_bytes()])
    left = {"SSL_CERT_FILE": str(cas.public_pem), "SSL_CERT_DIR": str(plain)}
    before = tree(sb.home, tmp_path / "venv")

    result = bootstrap(sb, python, bundle, "--json", env_extra=left)
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["changed"] is False, out(result)
    assert doc["error"].startswith("SSL_CERT_FILE={} and SSL_CERT_DIR={} replace this computer's trust store for "
                                   "OpenSSL and truststore (so pip), and lack O=Example Corp Interception (test), "
                                   "CN=Example Corp Root (compliant), which the store has".format(cas.public_pem, plain)), \
        doc["error"]
    assert "unset SSL_CERT_FILE and SSL_CERT_DIR where they are set" in doc["error"]
    assert tree(sb.home, tmp_path / "venv") == before

    result, doctor = doctor_json(sb, python, bundle, env_extra=left)
    assert result.returncode == 1
    assert doctor["verdict"]["cause"].startswith("SSL_CERT_FILE={} and SSL_CERT_DIR={} replace".format(
        cas.public_pem, plain)), doctor["verdict"]


def test_requests_ca_bundle_without_the_corporate_root_is_named_for_the_pips_it_breaks(field, tmp_path, cas):
    """pip >= 24.2 adds REQUESTS_CA_BUNDLE to its anchors (this venv works); older pips, as new venvs get,
    use it instead of cert: bootstrap says so, and doctor names the variable as their fix."""
    sb, _ = field("compliant")
    python = make_venv(by_version((3, 12)), tmp_path / "venv", with_pip=False)
    bundle = copy_bundle(tmp_path / "bundle")
    left = {"REQUESTS_CA_BUNDLE": str(cas.public_pem)}
    result = bootstrap(sb, python, bundle, "--json", env_extra=left)
    assert result.returncode == 0, out(result)
    assert any(w.startswith("REQUESTS_CA_BUNDLE={} lacks O=Example Corp Interception (test), CN=Example Corp Root "
                            "(compliant), and pips before 24.2".format(cas.public_pem))
               for w in json.loads(result.stdout)["warnings"]), result.stdout
    old = make_venv(by_version((3, 12)), tmp_path / "new-venv", with_pip=True)       # pip 23.2.1
    pip = sb.run([str(old), "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "d"), "--retries", "0",
                  "--timeout", "10", "corp-hello"], env_extra=left)
    assert pip.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out(pip)          # what the warning foretold
    result, doctor = doctor_json(sb, python, bundle, env_extra=left)
    assert doctor["verdict"]["ok"], doctor["verdict"]                                 # this pip works
    assert any("FAILS" in c["text"] and "fix: unset REQUESTS_CA_BUNDLE" in c["text"] for c in checks(doctor, "pythons")), \
        [c["text"] for c in checks(doctor, "pythons")]
