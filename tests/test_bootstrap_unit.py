"""Unit tests for bootstrap.py: each scenario calls the real functions, on real files, certificates and
interpreters where they exist here, and asserts what a user (or the help desk) would check.

Expectations come from outside bootstrap.py's own code: certificates are read back with `cryptography`,
markers are evaluated with `packaging`, pip's configuration rules are asked of real pip (the installed
one and the pinned wheel in wheels/), INI files are read back with configparser. What cannot run on this
machine (macOS `security`, Windows' certificate stores) is fed recorded outputs from tests/data/recorded/.

Shared with other test files: bootstrap loaded as a module and the Survey/Plan builders (unit_helpers.py),
certificates (certificates.py), hashes.txt's pins and wheels (bundle_helpers.py), and the fixtures laptop,
ui, corp and https_server (conftest.py).

Known bootstrap.py bugs are strict xfails ("bootstrap bug: ..."): fixing the bug turns them into
failures that ask for the xfail to be removed.
"""
import argparse
import base64
import datetime
import difflib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import urllib.error
import warnings
import zipfile
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from packaging.markers import Marker
from packaging.requirements import Requirement

import report_schema
import testbed
from bundle_helpers import ROOT, expected_pins, pinned, pins, sha256, wheel_of, write
from certificates import (NOW, certifi_pem, certifi_wheel, cryptography_view, der, dn, expected_name, key_pems,
                          load_pem_list, make_cert, openssl_v1_cert, pem)
from tree_snapshot import tree
from unit_helpers import (CLOSED_INDEX, DATA, RECORDED, SCRUBBED, Recorder, bootstrap, given, live_pins, plan_of,
                          read_ini, survey)

pytestmark = pytest.mark.usefixtures("laptop")     # conftest: every test runs on an empty laptop (env scrubbed)

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
PIP_WHEEL = wheel_of("pip", (3, 12))               # the pinned pip wheel of the Plans below (live_pins' Python)


# ==================================================================================================
# 1. Certificates
# ==================================================================================================

def _cert_cases():
    ca = trustme.CA(organization_name="Example Corp", organization_unit_name="Proxy")
    child = ca.create_child_ca()
    leaf = ca.issue_cert("pypi.org", "files.pythonhosted.org")
    rsa_ca = trustme.CA(key_type=trustme.KeyType.RSA)
    root, root_key = make_cert(dn("Corp Root", "Corp", "IT", "GB"))
    return {
        "trustme root CA": x509.load_pem_x509_certificate(ca.cert_pem.bytes()),
        "trustme intermediate CA": x509.load_pem_x509_certificate(child.cert_pem.bytes()),
        "trustme leaf": x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()),
        "RSA root CA": x509.load_pem_x509_certificate(rsa_ca.cert_pem.bytes()),
        "CA true, CN O OU C": root,
        "CA false, signed by a root": make_cert(dn("intranet.example"), ca=False, issuer=(root, root_key))[0],
        "no basicConstraints extension": make_cert(dn("Legacy v3 without extensions", "Old Corp"), ca=None)[0],
        "not_after 2061 (GeneralizedTime)": make_cert(dn("Long Lived Root", "Corp"),
                                                      not_after=datetime.datetime(2061, 3, 4, 5, 6, 7))[0],
        "UTCTime edges 1950 and 2049": make_cert(dn("Edge Root"), not_before=datetime.datetime(1950, 1, 1),
                                                  not_after=datetime.datetime(2049, 12, 31, 23, 59, 59))[0],
        "UTF8String names (non-ASCII)": make_cert(dn("Société Générale Proxy CA", "Müller & Söhne GmbH", c="FR"))[0],
        "BMPString CN": make_cert(dn("Zürich Proxy CA", "Corp", bmp_cn=True))[0],
        "no name at all": make_cert(x509.Name([]), ca=True)[0],
    }


CERT_CASES = _cert_cases()


@pytest.mark.parametrize("kind", sorted(CERT_CASES))
def test_parse_cert_agrees_with_cryptography(kind):
    cert = CERT_CASES[kind]
    info = bootstrap.parse_cert(der(cert))
    expected = cryptography_view(cert)
    assert {k: info[k] for k in expected} == expected
    assert info["sha256"] == sha256(der(cert))


def test_parse_cert_test_certificates_really_use_generalizedtime_and_utctime():
    """Guard for the two date cases above: the encodings they claim are the ones on the wire."""
    assert b"\x18\x0f20610304050607Z" in der(CERT_CASES["not_after 2061 (GeneralizedTime)"])
    edges = der(CERT_CASES["UTCTime edges 1950 and 2049"])
    assert b"\x17\x0d500101000000Z" in edges and b"\x17\x0d491231235959Z" in edges


def test_parse_cert_reads_every_public_root_like_cryptography():
    """Every root of the pinned certifi (and of this machine's bundle): real-world encodings."""
    bundles = [certifi_pem()]
    if os.path.isfile("/etc/ssl/certs/ca-certificates.crt"):
        bundles.append(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    checked = 0
    for data in bundles:
        for cert in load_pem_list(data):
            info = bootstrap.parse_cert(der(cert))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")          # old roots with negative serial numbers
                expected = cryptography_view(cert)
            assert {k: info[k] for k in expected} == expected, expected["subject"]
            checked += 1
    assert checked > 100


def test_load_ca_file_accepts_a_pem_root(tmp_path, corp):
    path = write(tmp_path / "corp.pem", pem(corp["root"]))
    [(data, info)] = bootstrap.load_ca_file(str(path))
    assert data == der(corp["root"])
    assert info["subject"] == "C=US, O=Example Corp, OU=Network Security, CN=Example Corp TLS Inspection Root CA"
    assert info["is_ca"] and info["self_signed"]
    assert info["sha256"] == corp["root"].fingerprint(hashes.SHA256()).hex()
    assert info["source"] == str(path)


def test_load_ca_file_accepts_two_roots_in_one_pem_in_order(tmp_path, corp):
    path = write(tmp_path / "two.pem", b"Example Corp roots\n" + pem(corp["root"]) + b"\n" + pem(corp["other"]))
    found = bootstrap.load_ca_file(str(path))
    assert [d for d, _ in found] == [der(corp["root"]), der(corp["other"])]
    assert [i["subject"] for _, i in found] == [expected_name(corp["root"].subject),
                                                 expected_name(corp["other"].subject)]


def test_load_ca_file_accepts_windows_style_crlf_pem_with_text_around(tmp_path, corp):
    text = pem(corp["root"]).replace(b"\n", b"\r\n")
    path = write(tmp_path / "corp.crt", b"Bag Attributes\r\n    friendlyName: corp\r\n" + text + b"\r\n")
    [(data, _)] = bootstrap.load_ca_file(str(path))
    assert data == der(corp["root"])


def test_load_ca_file_accepts_der_and_says_it_was_converted(tmp_path, corp):
    path = write(tmp_path / "corp.cer", der(corp["root"]))
    [(data, info)] = bootstrap.load_ca_file(str(path))
    assert data == der(corp["root"])
    assert info["source"].startswith(str(path)) and "DER" in info["source"]
    assert x509.load_pem_x509_certificate(bootstrap.der_to_pem(data).encode()) == corp["root"]


KEY_PEMS = key_pems()


def _bad_ca_files(corp):
    expired = make_cert(dn("Expired Corp Root", "Corp"), not_before=NOW - datetime.timedelta(days=800),
                        not_after=NOW - datetime.timedelta(days=2))[0]
    future = make_cert(dn("Future Corp Root", "Corp"), not_before=NOW + datetime.timedelta(days=30))[0]
    body = pem(corp["root"]).splitlines()
    damaged = b"\n".join(body[:1] + body[1:4] + body[-1:]) + b"\n"     # valid base64, truncated DER
    cases = {
        "empty file": (b"", ["empty", "BEGIN CERTIFICATE"]),
        "only blank lines": (b"\n  \r\n\n", ["empty"]),
        "garbage text": (b"please install the proxy certificate from the intranet\n", ["not a certificate"]),
        "a leaf (server) certificate": (pem(corp["leaf"]), ["not a CA", "pypi.org",
                                                            "Example Corp TLS Inspection Root CA"]),
        "an expired CA": (pem(expired), ["expired", expired.not_valid_after_utc.strftime("%Y-%m-%d")]),
        "a not-yet-valid CA": (pem(future), ["not valid until", future.not_valid_before_utc.strftime("%Y-%m-%d"),
                                             "date"]),
        "a damaged PEM block": (damaged, ["damaged"]),
        "a certificate and its key in one file": (pem(corp["root"]) + KEY_PEMS["PKCS8 private key"],
                                                  ["private key"]),
    }
    for kind, data in KEY_PEMS.items():
        cases[kind] = (data, ["private key", "BEGIN CERTIFICATE"])
    return cases


BAD_CA_KINDS = ["empty file", "only blank lines", "garbage text", "a leaf (server) certificate", "an expired CA",
                "a not-yet-valid CA", "a damaged PEM block", "a certificate and its key in one file"] + sorted(KEY_PEMS)


@pytest.mark.parametrize("kind", BAD_CA_KINDS)
def test_load_ca_file_refuses_bad_input_naming_file_and_reason(tmp_path, corp, kind):
    data, words = _bad_ca_files(corp)[kind]
    path = write(tmp_path / "given.pem", data)
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.load_ca_file(str(path))
    assert e.value.code == 2
    message = e.value.args[0]
    assert str(path) in message
    for word in words:
        assert word in message


def test_load_ca_file_takes_an_x509_v1_root_and_refuses_a_v1_leaf(tmp_path):
    """OpenSSL trusts a self-signed v1 certificate as a root (old corporate CAs are made that way); a v1
    certificate signed by another is a server's, whatever its lack of basicConstraints."""
    root = openssl_v1_cert(tmp_path, "Old Corp Root v1")
    assert x509.load_pem_x509_certificate(root[0].read_bytes()).version == x509.Version.v1
    (der_root, info), = bootstrap.load_ca_file(str(root[0]))
    assert info["version"] == 1 and info["self_signed"] and info["subject"] == "CN=Old Corp Root v1"
    leaf = openssl_v1_cert(tmp_path, "pypi.org", signer=root)
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.load_ca_file(str(leaf[0]))
    assert "not a CA certificate" in e.value.args[0] and "CN=Old Corp Root v1" in e.value.args[0]


def test_load_ca_file_missing_path_is_bad_input(tmp_path):
    path = tmp_path / "nowhere" / "corp.pem"
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.load_ca_file(str(path))
    assert e.value.code == 2 and str(path) in e.value.args[0] and "does not exist" in e.value.args[0]


def test_load_ca_file_der_private_key_is_named_a_private_key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = write(tmp_path / "corp.key", key)
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.load_ca_file(str(path))
    assert "private key" in e.value.args[0]


def test_der_to_pem_round_trip(corp):
    for cert in (corp["root"], corp["other"], CERT_CASES["RSA root CA"]):
        text = bootstrap.der_to_pem(der(cert))
        assert x509.load_pem_x509_certificate(text.encode()) == cert
        lines = text.splitlines()
        assert lines[0] == "-----BEGIN CERTIFICATE-----" and lines[-1] == "-----END CERTIFICATE-----"
        assert all(len(line) <= 64 for line in lines[1:-1]) and text.endswith("\n")
        assert bootstrap.pem_certs(text.encode()) == [der(cert)]


def test_pem_certs_skips_damaged_blocks_and_keeps_the_rest(corp):
    broken = b"-----BEGIN CERTIFICATE-----\nMIIB!!not*base64!!\n-----END CERTIFICATE-----\n"
    bad_padding = b"-----BEGIN CERTIFICATE-----\nMIIBx\n-----END CERTIFICATE-----\n"
    stray = b"-----BEGIN CERTIFICATE-----\nMIIC*AAAA\n-----END CERTIFICATE-----\n"     # decodes if not validated
    data = pem(corp["root"]) + broken + b"# comment\n" + bad_padding + stray + pem(corp["other"])
    assert bootstrap.pem_certs(data) == [der(corp["root"]), der(corp["other"])]


def test_pem_certs_reads_the_recorded_macos_output_like_cryptography():
    data = (RECORDED / "macos-security-find-certificate-a-p.txt").read_bytes()
    assert bootstrap.pem_certs(data) == [der(c) for c in load_pem_list(data)]


def test_pem_certs_block_without_end_line_does_not_swallow_the_next_certificate(corp):
    truncated = b"\n".join(pem(corp["other"]).splitlines()[:5]) + b"\n"     # cut off: no END line
    assert bootstrap.pem_certs(truncated + pem(corp["root"])) == [der(corp["root"])]


def test_fingerprint_is_colon_separated_uppercase_sha256(corp):
    digest = sha256(der(corp["root"]))
    text = bootstrap.fingerprint(digest)
    assert re.match(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$", text)
    assert text == ":".join("{:02X}".format(b) for b in corp["root"].fingerprint(hashes.SHA256()))


# ==================================================================================================
# 2. hashes.txt
# ==================================================================================================

H = [sha256(str(i).encode()) for i in range(6)]


def test_read_pins_well_formed_file(tmp_path):
    path = write(tmp_path / "hashes.txt", "\n".join([
        "# hashes.txt: generated",
        "   # an indented comment",
        "",
        'pip==21.3.1 ; python_version >= "3.6" and python_version < "3.7" --hash=sha256:' + H[0],
        'Pip==26.3 ; python_version >= "3.10" \\',
        "    --hash=sha256:" + H[1] + " \\",
        "    --hash=sha256:" + H[2],
        'truststore==0.10.5 ; python_version >= "3.10" --hash=sha256:' + H[3] + "  # the OS trust store",
        "",
        "certifi==2026.10.18 --hash=sha256:" + H[4] + " --hash=sha256:" + H[5],
        "",
    ]))
    pins = bootstrap.read_pins(str(path))
    assert [(p["name"], p["version"], p["marker"], p["hashes"]) for p in pins] == [
        ("pip", "21.3.1", 'python_version >= "3.6" and python_version < "3.7"', [H[0]]),
        ("pip", "26.3", 'python_version >= "3.10"', [H[1], H[2]]),
        ("truststore", "0.10.5", 'python_version >= "3.10"', [H[3]]),
        ("certifi", "2026.10.18", "", [H[4], H[5]]),
    ]
    for pin in pins:                       # each line is what install() hands to pip -r: valid pip syntax
        requirement = Requirement(pin["line"].split(" --hash")[0].strip())
        assert requirement.name.lower() == pin["name"] and str(requirement.specifier) == "==" + pin["version"]
        assert re.findall(r"--hash=sha256:([0-9a-f]{64})", pin["line"]) == pin["hashes"]
        assert "#" not in pin["line"] and "\\" not in pin["line"]


BAD_PIN_LINES = {
    "no hash": "pip==26.3",
    "platform marker": 'pip==26.3 ; sys_platform == "linux" --hash=sha256:' + H[0],
    "md5 hash": "pip==26.3 --hash=md5:0123456789abcdef0123456789abcdef",
    "short sha256": "pip==26.3 --hash=sha256:abc123",
    "range, not a pin": "pip>=26.3 --hash=sha256:" + H[0],
    "or in marker": 'pip==26.3 ; python_version < "3" or python_version >= "3.10" --hash=sha256:' + H[0],
    "garbage": "this is not a requirement at all",
    "bad continuation": "pip==26.3 ; python_version >= \"3.10\" \\\n    --hash=md5:00",
}


@pytest.mark.parametrize("kind", sorted(BAD_PIN_LINES))
def test_read_pins_malformed_line_is_bad_input_naming_the_line(tmp_path, kind):
    path = write(tmp_path / "hashes.txt", "# pins\ncertifi==2026.10.18 --hash=sha256:" + H[4] + "\n"
                 + BAD_PIN_LINES[kind] + "\ntruststore==0.10.5 --hash=sha256:" + H[3] + "\n")
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.read_pins(str(path))
    assert e.value.code == 2
    assert str(path) in e.value.args[0] and "line 3 " in e.value.args[0] and "malformed" in e.value.args[0]


@pytest.mark.parametrize("content,words", [(None, ["missing"]), ("", ["pins nothing"]),
                                           ("# only comments\n\n   \n", ["pins nothing"])],
                         ids=["missing file", "empty file", "comments only"])
def test_read_pins_missing_or_empty_file_is_bad_input(tmp_path, content, words):
    path = tmp_path / "hashes.txt"
    if content is not None:
        write(path, content)
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.read_pins(str(path))
    assert e.value.code == 2 and str(path) in e.value.args[0]
    for word in words:
        assert word in e.value.args[0]


def test_read_pins_non_utf8_file_is_bad_input(tmp_path):
    path = write(tmp_path / "hashes.txt", b"pip==26.3 --hash=sha256:" + H[0].encode() + b"\n\xff\xfe\x00\x9c\n")
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.read_pins(str(path))
    assert str(path) in e.value.args[0]


PYTHONS = [(3, minor) for minor in range(6, 15)]


def test_marker_matches_agrees_with_packaging_for_build_py_markers():
    ops = ["<", "<=", "==", "!=", ">=", ">"]
    bounds = ["3.6", "3.7", "3.9", "3.10", "3.11", "3.13"]
    markers = ['python_version {} "{}"'.format(op, v) for op in ops for v in bounds]
    markers += ['python_version >= "3.9" and python_version < "3.10"',
                "python_version >= '3.8' and python_version < '3.11' and python_version != '3.9'"]
    for marker in markers:
        for py in PYTHONS:
            expected = Marker(marker).evaluate({"python_version": "{}.{}".format(*py)})
            assert bootstrap.marker_matches(marker, py) == expected, (marker, py)
            assert bootstrap.marker_matches(marker, py + (7, "final", 0)) == expected, (marker, py)


def test_marker_matches_boundaries_3_9_and_3_10():
    below, from_310 = 'python_version < "3.10"', 'python_version >= "3.10"'
    assert bootstrap.marker_matches(below, (3, 9)) and not bootstrap.marker_matches(below, (3, 10))
    assert not bootstrap.marker_matches(from_310, (3, 9)) and bootstrap.marker_matches(from_310, (3, 10))
    assert bootstrap.marker_matches(from_310, (3, 11)) and bootstrap.marker_matches(from_310, (3, 14))
    assert bootstrap.marker_matches("", (3, 6))
    with pytest.raises(ValueError):
        bootstrap.marker_matches('platform_system == "Windows"', (3, 12))


def test_marker_matches_three_part_versions_like_packaging():
    for marker in ('python_version >= "3.6.0"', 'python_version == "3.10.0"', 'python_version <= "3.9.0"'):
        for py in PYTHONS:
            expected = Marker(marker).evaluate({"python_version": "{}.{}".format(*py)})
            assert bootstrap.marker_matches(marker, py) == expected, (marker, py)


@pytest.mark.parametrize("python,pip,truststore,certifi", [
    ((3, 6), "21.3.1", None, None), ((3, 7), "24.0", None, "2026.10.18"), ((3, 8), "25.0.1", None, "2026.10.18"),
    ((3, 9), "26.0.1", None, "2026.10.18"), ((3, 10), "26.3", "0.10.5", "2026.10.18"),
    ((3, 12), "26.3", "0.10.5", "2026.10.18"), ((3, 14), "26.3", "0.10.5", "2026.10.18")],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None)
def test_pins_for_picks_the_pip_of_each_python(python, pip, truststore, certifi):
    """tests/data/hashes-realistic.txt: a copy of a real build (REFERENCE.md's table)."""
    chosen = bootstrap.pins_for(bootstrap.read_pins(str(DATA / "hashes-realistic.txt")), python)
    assert chosen["pip"]["version"] == pip
    assert chosen.get("truststore", {}).get("version") == truststore
    assert chosen.get("certifi", {}).get("version") == certifi


def test_pins_for_on_the_live_hashes_txt_agrees_with_packaging():
    for py in PYTHONS:
        chosen = bootstrap.pins_for(bootstrap.read_pins(str(ROOT / "hashes.txt")), py)
        assert {name: pin["version"] for name, pin in chosen.items()} == expected_pins(py), py


def pin(name, version, *datas):
    return {"name": name, "version": version, "marker": "", "line": "", "hashes": [sha256(d) for d in datas]}


def test_find_wheel_matches_name_version_prefix_and_hash(tmp_path):
    folder = tmp_path / "wheels"
    write(folder / "pip-26.3-py3-none-any.whl", b"pip 26.3")
    write(folder / "pip-26.3.1-py3-none-any.whl", b"pip 26.3.1")
    write(folder / "pip-26.3-py3-none-any.whl.sha256", b"x")
    write(folder / "typing_extensions-4.12.2-py3-none-any.whl", b"te")
    assert bootstrap.find_wheel(str(folder), pin("pip", "26.3", b"pip 26.3")) == \
        (str(folder / "pip-26.3-py3-none-any.whl"), True)
    assert bootstrap.find_wheel(str(folder), pin("pip", "26.3.1", b"pip 26.3.1")) == \
        (str(folder / "pip-26.3.1-py3-none-any.whl"), True)
    assert bootstrap.find_wheel(str(folder), pin("Typing.Extensions", "4.12.2", b"te")) == \
        (str(folder / "typing_extensions-4.12.2-py3-none-any.whl"), True)
    assert bootstrap.find_wheel(str(folder), pin("pip", "25.0", b"whatever")) == (None, True)
    assert bootstrap.find_wheel(str(tmp_path / "no-such-folder"), pin("pip", "26.3", b"pip 26.3")) == (None, True)


def test_find_wheel_reports_a_tampered_file(tmp_path):
    folder = tmp_path / "wheels"
    write(folder / "pip-26.3-py3-none-any.whl", b"pip 26.3 with a backdoor")
    assert bootstrap.find_wheel(str(folder), pin("pip", "26.3", b"pip 26.3")) == \
        (str(folder / "pip-26.3-py3-none-any.whl"), False)
    write(folder / "pip-26.3-py2.py3-none-any.whl", b"pip 26.3")          # a good twin is preferred
    assert bootstrap.find_wheel(str(folder), pin("pip", "26.3", b"pip 26.3")) == \
        (str(folder / "pip-26.3-py2.py3-none-any.whl"), True)


def test_find_wheel_finds_every_pinned_wheel_of_the_bundle():
    for p in pins():
        path, ok = bootstrap.find_wheel(str(ROOT / "wheels"), p._asdict())
        assert path and ok, p.name + "==" + p.version
        assert sha256(Path(path).read_bytes()) in p.hashes


# ==================================================================================================
# 3. pip configuration editing
# ==================================================================================================

def non_cert_diff(before, after, key="cert", section_header="[global]"):
    """Lines that changed other than the key's own line (and an added section header / blank line)."""
    a, b = before.splitlines(True), after.splitlines(True)
    if a and not a[-1].endswith("\n"):
        a[-1] += "\n"
    out = []
    for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        tag, i1, i2, j1, j2 = op
        if tag == "equal":
            continue
        removed = [l for l in a[i1:i2] if not re.match(r"^\s*" + key + r"\s*[=:]", l)]
        added = [l for l in b[j1:j2] if not re.match(r"^" + key + r" = ", l) and l.strip() not in (section_header, "")]
        out += ["-" + l for l in removed] + ["+" + l for l in added]
    return out


PIP_CONF = """\
# pip configuration of a developer (comments must survive)
[global]
; company mirror
index-url = https://mirror.example.com/simple
timeout=60
cert = /old/corp.pem
trusted-host = mirror.example.com
    files.example.com

[install]
cert = /install/only.pem
no-compile = yes
# end
"""


def test_set_ini_key_replaces_global_cert_and_keeps_everything_else():
    out = bootstrap.set_ini_key(PIP_CONF, "global", "cert", "/home/u/.local/share/trustfix/ca-bundle.pem")
    assert non_cert_diff(PIP_CONF, out) == []
    assert len(out.splitlines()) == len(PIP_CONF.splitlines())
    parsed, before = read_ini(out), read_ini(PIP_CONF)
    assert parsed["global"]["cert"] == "/home/u/.local/share/trustfix/ca-bundle.pem"
    assert parsed["install"] == before["install"]                   # [install] cert untouched
    assert {k: v for k, v in parsed["global"].items() if k != "cert"} == \
        {k: v for k, v in before["global"].items() if k != "cert"}


@pytest.mark.parametrize("line", ["cert:/old.pem", "cert=/old.pem", "  cert   =   /old.pem", "cert : /old.pem"])
def test_set_ini_key_replaces_every_spelling_of_the_key(line):
    # first in its section: an indented line after another option would be that option's continuation
    text = "[global]\n" + line + "\nindex-url = https://x.example/simple\nproxy = http://proxy:3128\n"
    out = bootstrap.set_ini_key(text, "global", "cert", "/new.pem")
    assert out == "[global]\ncert = /new.pem\nindex-url = https://x.example/simple\nproxy = http://proxy:3128\n"


def test_set_ini_key_leaves_cert_of_other_sections_and_other_keys_alone():
    text = "[install]\ncert = /install.pem\n\n[global]\nclient-cert = /me.pem\ncert-extra = 1\n"
    out = bootstrap.set_ini_key(text, "global", "cert", "/new.pem")
    parsed = read_ini(out)
    assert parsed["install"] == {"cert": "/install.pem"}
    assert parsed["global"] == {"client-cert": "/me.pem", "cert-extra": "1", "cert": "/new.pem"}
    assert non_cert_diff(text, out) == []


def test_set_ini_key_adds_global_section_when_missing():
    text = "# mine\n[install]\nno-compile = yes\n"
    out = bootstrap.set_ini_key(text, "global", "cert", "/b.pem")
    assert out.startswith(text)
    assert read_ini(out) == {"install": {"no-compile": "yes"}, "global": {"cert": "/b.pem"}}
    assert bootstrap.set_ini_key("", "global", "cert", "/b.pem").splitlines() == ["[global]", "cert = /b.pem"]


def test_set_ini_key_adds_key_after_the_last_key_of_global():
    text = "[global]\nindex-url = https://m/simple\ntimeout = 5\n# trailing comment\n\n[install]\nuser = no\n"
    out = bootstrap.set_ini_key(text, "global", "cert", "/b.pem")
    assert out == ("[global]\nindex-url = https://m/simple\ntimeout = 5\ncert = /b.pem\n# trailing comment\n\n"
                   "[install]\nuser = no\n")


def test_set_ini_key_keeps_crlf_files_crlf():
    text = PIP_CONF.replace("\n", "\r\n")
    for value_text in (text, text.replace("cert = /old/corp.pem\r\n", "")):
        out = bootstrap.set_ini_key(value_text, "global", "cert", "C:\\Users\\u\\AppData\\Local\\trustfix\\b.pem")
        assert out.count("\n") == out.count("\r\n")
        assert read_ini(out)["global"]["cert"] == "C:\\Users\\u\\AppData\\Local\\trustfix\\b.pem"
        assert non_cert_diff(value_text, out) == []


def test_set_ini_key_crlf_file_without_final_newline_stays_crlf():
    text = "[global]\r\nindex-url = https://m/simple"
    out = bootstrap.set_ini_key(text, "global", "cert", "/b.pem")
    assert out.count("\n") == out.count("\r\n")


def test_set_ini_key_replaces_cert_written_in_another_case():
    out = bootstrap.set_ini_key("[global]\nCert = /old.pem\n", "global", "cert", "/new.pem")
    assert read_ini(out)["global"]["cert"] == "/new.pem"


SET_CASES = {
    "empty": "",
    "only comments": "# nothing yet\n; really\n",
    "no final newline": "[global]\nindex-url = https://m/simple",
    "global last with blank lines": "[install]\nuser = no\n\n\n[global]\ntimeout = 5\n\n",
    "underscore keys": "[global]\nindex_url = https://m/simple\nextra_index_url = https://n/simple\n",
    "cert in download only": "[download]\ncert = /d.pem\n[global]\n",
    "indented comments and tabs": "[global]\n\t# tab comment\n    ; semi\nproxy\t=\thttp://p:8080\n",
    "non-ASCII comment": "# Proxy für das Büro\n[global]\nindex-url = https://m/simple\n",
    "header with comment": "[global]   # main section\ntimeout = 3\n",
    "global twice named differently": "[globals]\ncert = /not-global.pem\n",
}


@pytest.mark.parametrize("kind", sorted(SET_CASES))
def test_set_ini_key_changes_only_the_cert_line(kind):
    text = SET_CASES[kind]
    out = bootstrap.set_ini_key(text, "global", "cert", "/bundle.pem")
    assert non_cert_diff(text, out) == []
    parsed, before = read_ini(out), read_ini(text)
    assert parsed["global"]["cert"] == "/bundle.pem"
    for section, values in before.items():
        expected = dict(values, cert="/bundle.pem") if section == "global" else values
        assert parsed[section] == expected
    again = bootstrap.set_ini_key(out, "global", "cert", "/bundle.pem")
    assert again == out                                          # idempotent: a re-run changes nothing


# ==================================================================================================
# 4. pip configuration discovery
# ==================================================================================================

ORACLE = r'''
import json, os, sys
wheel, platform = sys.argv[1], sys.argv[2]
if wheel != "-":
    sys.path.insert(0, wheel)
if platform != "-":
    sys.platform = platform
cases = json.load(sys.stdin)
import pip
out = {"version": pip.__version__, "results": []}
for env in cases:
    os.environ.clear()
    os.environ.update(env)
    if platform == "-":
        from pip._internal.configuration import get_configuration_files
        from pip._internal.commands import create_command
        files = {getattr(k, "value", k): v for k, v in get_configuration_files().items()}
        options, _ = create_command("install").parse_args([])
        index = None if options.index_url == "https://pypi.org/simple" else options.index_url
        out["results"].append({"files": files, "index-url": index, "proxy": options.proxy or None})
    else:
        from pip._internal.utils import appdirs
        out["results"].append({"user": appdirs.user_config_dir("pip"), "global": appdirs.site_config_dirs("pip")})
print(json.dumps(out))
'''


def ask_real_pips(envs, platform="-"):
    """[(pip version, [result per env])] from the installed pip (if any) and the bundle's pinned pip wheel."""
    answers = []
    for wheel in ("-", str(wheel_of("pip", sys.version_info[:2]))):
        proc = subprocess.run([sys.executable, "-c", ORACLE, wheel, platform], input=json.dumps(envs),
                              env={k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        if proc.returncode != 0 and wheel == "-" and "No module named" in proc.stderr:
            continue                                             # no pip installed in this interpreter
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        answers.append((doc["version"], doc["results"]))
    assert answers
    return answers


def linux_paths(tmp):
    return {"HOME": str(tmp / "home"), "XDG_CONFIG_DIRS": str(tmp / "xdg")}


# layout: files relative to the case folder ("xdg/..." global, "home/..." user) + extra env
CONFIG_LAYOUTS = {
    "new user file beats legacy user file and global": (
        {"xdg/pip/pip.conf": "[global]\nindex-url = https://global/simple\nproxy = http://global:1\n",
         "home/.pip/pip.conf": "[global]\nindex-url = https://legacy/simple\n",
         "home/.config/pip/pip.conf": "[global]\nindex-url = https://user/simple\n"},
        {}, {"index-url": "https://user/simple", "proxy": "http://global:1"}),
    "legacy user file beats global": (
        {"xdg/pip/pip.conf": "[global]\nindex-url = https://global/simple\n",
         "home/.pip/pip.conf": "[global]\nindex-url = https://legacy/simple\n"},
        {}, {"index-url": "https://legacy/simple", "proxy": None}),
    "XDG_CONFIG_HOME moves the user file": (
        {"home/.config/pip/pip.conf": "[global]\nindex-url = https://dot-config/simple\n",
         "xdghome/pip/pip.conf": "[global]\nindex-url = https://xdg-home/simple\n"},
        {"XDG_CONFIG_HOME": "{root}/xdghome"}, {"index-url": "https://xdg-home/simple", "proxy": None}),
    "[install] beats [global] in a file": (
        {"home/.config/pip/pip.conf": "[install]\nindex-url = https://install/simple\n"
                                      "[global]\nindex-url = https://global-section/simple\n"},
        {}, {"index-url": "https://install/simple", "proxy": None}),
    "PIP_CONFIG_FILE beats global and drops the user files": (
        {"xdg/pip/pip.conf": "[global]\nindex-url = https://global/simple\n",
         "home/.config/pip/pip.conf": "[global]\nindex-url = https://user/simple\nproxy = http://user:1\n",
         "env.conf": "[global]\nindex-url = https://env-file/simple\n"},
        {"PIP_CONFIG_FILE": "{root}/env.conf"}, {"index-url": "https://env-file/simple", "proxy": None}),
    "PIP_CONFIG_FILE naming a missing file keeps the user files": (
        {"home/.config/pip/pip.conf": "[global]\nindex-url = https://user/simple\n"},
        {"PIP_CONFIG_FILE": "{root}/missing.conf"}, {"index-url": "https://user/simple", "proxy": None}),
    "PIP_* variables beat every file": (
        {"home/.config/pip/pip.conf": "[install]\nindex-url = https://install/simple\nproxy = http://file:1\n",
         "env.conf": "[install]\nindex-url = https://env-file/simple\n"},
        {"PIP_CONFIG_FILE": "{root}/env.conf", "PIP_INDEX_URL": "https://variable/simple",
         "PIP_PROXY": "http://variable:2"}, {"index-url": "https://variable/simple", "proxy": "http://variable:2"}),
    "PIP_CONFIG_FILE=os.devnull reads no file": (
        {"xdg/pip/pip.conf": "[global]\nindex-url = https://global/simple\n",
         "home/.config/pip/pip.conf": "[global]\nindex-url = https://user/simple\nproxy = http://user:1\n"},
        {"PIP_CONFIG_FILE": os.devnull}, {"index-url": None, "proxy": None}),
    "[install] of the global file beats [global] of the user file": (
        {"xdg/pip/pip.conf": "[install]\nindex-url = https://global-install/simple\n",
         "home/.config/pip/pip.conf": "[global]\nindex-url = https://user-global/simple\n"},
        {}, {"index-url": "https://global-install/simple", "proxy": None}),
}
XFAIL_LAYOUTS = {}     # every layout now agrees with real pip


def layout_env(root, name):
    env = linux_paths(root)
    env.update({k: v.format(root=root) for k, v in CONFIG_LAYOUTS[name][1].items()})
    return env


@pytest.fixture(scope="module")
def config_layouts(tmp_path_factory):
    """Every layout written once; what real pip makes of each (installed pip and the pinned wheel)."""
    base = tmp_path_factory.mktemp("layouts")
    roots, envs = {}, []
    for i, name in enumerate(sorted(CONFIG_LAYOUTS)):
        root = base / str(i)
        (root / "home").mkdir(parents=True)
        for rel, text in CONFIG_LAYOUTS[name][0].items():
            write(root / rel, text)
        roots[name] = root
        envs.append(layout_env(root, name))
    answers = ask_real_pips(envs)
    by_name = {name: [(version, results[i]) for version, results in answers]
               for i, name in enumerate(sorted(CONFIG_LAYOUTS))}
    return roots, by_name


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=XFAIL_LAYOUTS[n]))
                                  if n in XFAIL_LAYOUTS else n for n in sorted(CONFIG_LAYOUTS)])
def test_config_value_gives_what_real_pip_uses(config_layouts, monkeypatch, name):
    roots, pip_says = config_layouts
    expected = CONFIG_LAYOUTS[name][2]
    for version, result in pip_says[name]:                  # the expectation is real pip's behaviour
        assert {k: result[k] for k in expected} == expected, "pip " + version
    for key, value in layout_env(roots[name], name).items():
        monkeypatch.setenv(key, value)
    sources = bootstrap.pip_config_sources()
    assert {key: bootstrap.config_value(sources, key)[0] for key in expected} == expected


def test_linux_config_paths_are_the_files_real_pip_reads(tmp_path, monkeypatch):
    envs = [linux_paths(tmp_path), dict(linux_paths(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xh")),
            dict(linux_paths(tmp_path), XDG_CONFIG_DIRS="{0}/a:{0}/b".format(tmp_path)),
            {"HOME": str(tmp_path / "home")}]
    answers = ask_real_pips(envs)
    for i, env in enumerate(envs):
        for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS"):
            monkeypatch.delenv(name, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        paths = bootstrap._Linux.config_paths()
        for version, results in answers:
            assert paths == results[i]["files"], ("pip " + version, env)


def test_linux_config_paths_empty_xdg_config_dirs_means_etc_xdg(monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_DIRS", "")
    assert bootstrap._Linux.config_paths()["global"] == ["/etc/xdg/pip/pip.conf", "/etc/pip.conf"]


@pytest.fixture
def fake_linux(monkeypatch, tmp_path):
    """_Linux with /etc/pip.conf moved into tmp_path (this machine has a real one)."""
    etc = tmp_path / "etc" / "pip.conf"

    class TestLinux(bootstrap._Linux):
        @staticmethod
        def config_paths():
            paths = bootstrap._Linux.config_paths()
            paths["global"] = [str(etc) if p == "/etc/pip.conf" else p for p in paths["global"]]
            paths["site"] = [str(tmp_path / "prefix" / "pip.conf")]
            return paths

    monkeypatch.setattr(bootstrap, "OS", TestLinux)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    return {"xdg": tmp_path / "xdg" / "pip" / "pip.conf", "etc": etc, "site": tmp_path / "prefix" / "pip.conf"}


def test_pip_config_sources_lists_every_source_in_pips_order(fake_linux, laptop, tmp_path, monkeypatch):
    files = {"xdg": fake_linux["xdg"], "etc": fake_linux["etc"], "legacy": laptop / ".pip" / "pip.conf",
             "user": laptop / ".config" / "pip" / "pip.conf", "site": fake_linux["site"],
             "env-file": tmp_path / "env.conf"}
    for name, path in files.items():
        write(path, "[global]\nindex-url = https://{}/simple\n".format(name))
    sources = bootstrap.pip_config_sources(environ={"PIP_TIMEOUT": "3", "PIP_PROXY": "http://p:1"})
    assert [(scope, path) for scope, path, _, _ in sources] == [
        ("global", str(files["xdg"])), ("global", str(files["etc"])), ("user", str(files["legacy"])),
        ("user", str(files["user"])), ("site", str(files["site"])), ("env", "PIP_* variables")]
    assert bootstrap.config_value(sources, "index-url") == ("https://site/simple", str(files["site"]))
    assert bootstrap.config_value(sources, "proxy") == ("http://p:1", "PIP_* variables")

    monkeypatch.setenv("PIP_CONFIG_FILE", str(files["env-file"]))
    sources = bootstrap.pip_config_sources()
    assert [scope for scope, _, _, _ in sources] == ["global", "global", "site", "env-file", "env"]
    assert bootstrap.config_value(sources, "index-url") == ("https://env-file/simple", str(files["env-file"]))


def test_pip_config_file_devnull_means_no_file(fake_linux, laptop):
    write(laptop / ".config" / "pip" / "pip.conf", "[global]\nindex-url = https://user/simple\n")
    write(fake_linux["xdg"], "[global]\nproxy = http://global:1\n")
    sources = bootstrap.pip_config_sources(environ={"PIP_CONFIG_FILE": os.devnull})
    assert [(scope, path) for scope, path, _, _ in sources] == [("env", "PIP_* variables")]
    assert bootstrap.config_value(sources, "index-url") == (None, None)


def test_pip_config_sources_reports_a_file_pip_cannot_read(fake_linux, laptop):
    user = write(laptop / ".config" / "pip" / "pip.conf", "index-url = https://no-section/simple\n")
    dup = write(fake_linux["xdg"], "[global]\ncert = /a\ncert = /b\n")
    sources = bootstrap.pip_config_sources(environ={})
    errors = {path: error for _, path, sections, error in sources if error}
    assert set(errors) == {str(user), str(dup)}
    for path, error in errors.items():
        assert path in error and "fix or move" in error
    assert all(sections is None for _, path, sections, _ in sources if path in errors)


def test_user_config_target_per_scope(fake_linux, laptop, tmp_path, monkeypatch):
    assert bootstrap.user_config_target("user") == str(laptop / ".config" / "pip" / "pip.conf")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xh"))
    assert bootstrap.user_config_target("user") == str(tmp_path / "xh" / "pip" / "pip.conf")
    assert bootstrap.user_config_target("site") == str(fake_linux["site"])
    assert bootstrap.user_config_target("global") == str(fake_linux["etc"])
    env_file = write(tmp_path / "corp-pip.conf", "[global]\n")
    assert bootstrap.user_config_target("user", environ={"PIP_CONFIG_FILE": str(env_file)}) == str(env_file)
    missing = str(tmp_path / "missing.conf")
    assert bootstrap.user_config_target("user", environ={"PIP_CONFIG_FILE": missing}) == \
        str(tmp_path / "xh" / "pip" / "pip.conf")


def test_macos_config_paths_follow_pip(laptop, monkeypatch):
    paths = bootstrap._MacOS.config_paths()
    assert paths["global"] == ["/Library/Application Support/pip/pip.conf"]
    assert paths["user"] == [str(laptop / ".pip" / "pip.conf"), str(laptop / ".config" / "pip" / "pip.conf")]
    assert paths["site"] == [os.path.join(sys.prefix, "pip.conf")]
    (laptop / "Library" / "Application Support").mkdir(parents=True)          # the folder, not pip's: no change
    assert bootstrap._MacOS.config_paths()["user"][-1] == str(laptop / ".config" / "pip" / "pip.conf")
    (laptop / "Library" / "Application Support" / "pip").mkdir()
    assert bootstrap._MacOS.config_paths()["user"][-1] == \
        str(laptop / "Library" / "Application Support" / "pip" / "pip.conf")


def test_macos_config_paths_agree_with_real_pips_macos_rules(tmp_path, monkeypatch):
    homes = [tmp_path / "plain", tmp_path / "with-app-support"]
    for home in homes:
        home.mkdir()
    (homes[1] / "Library" / "Application Support" / "pip").mkdir(parents=True)
    answers = ask_real_pips([{"HOME": str(h)} for h in homes], platform="darwin")
    for i, home in enumerate(homes):
        monkeypatch.setenv("HOME", str(home))
        paths = bootstrap._MacOS.config_paths()
        for version, results in answers:
            assert paths["user"][-1] == os.path.join(results[i]["user"], "pip.conf"), "pip " + version
            assert paths["global"] == [os.path.join(d, "pip.conf") for d in results[i]["global"]], "pip " + version


def test_macos_user_config_ignores_xdg_config_home(laptop, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "dotfiles"))
    assert bootstrap._MacOS.config_paths()["user"][-1] == str(laptop / ".config" / "pip" / "pip.conf")


def test_windows_config_paths(laptop, tmp_path, monkeypatch):
    monkeypatch.setenv("APPDATA", str(tmp_path / "Users" / "u" / "AppData" / "Roaming"))
    monkeypatch.setenv("ProgramData", str(tmp_path / "ProgramData"))
    paths = bootstrap._Windows.config_paths()
    assert paths == {"global": [str(tmp_path / "ProgramData" / "pip" / "pip.ini")],
                     "user": [str(laptop / "pip" / "pip.ini"),
                              str(tmp_path / "Users" / "u" / "AppData" / "Roaming" / "pip" / "pip.ini")],
                     "site": [os.path.join(sys.prefix, "pip.ini")]}
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert bootstrap._Windows.data_dir("user") == str(tmp_path / "Local" / "trustfix")
    assert bootstrap._Windows.data_dir("global") == str(tmp_path / "ProgramData" / "trustfix")


# ==================================================================================================
# 5. Platform branches that cannot run here, fed recorded outputs
# ==================================================================================================

def test_macos_os_roots_reads_security_output(monkeypatch):
    recording = (RECORDED / "macos-security-find-certificate-a-p.txt").read_bytes()
    recorder = Recorder(stdout=recording.decode("ascii"))
    monkeypatch.setattr(bootstrap, "run", recorder)
    roots = bootstrap._MacOS.os_roots()
    assert roots == [der(c) for c in load_pem_list(recording)] and len(roots) == 4
    assert [c["cmd"] for c in recorder.calls] == [[
        "security", "find-certificate", "-a", "-p",
        "/System/Library/Keychains/SystemRootCertificates.keychain", "/Library/Keychains/System.keychain"]]


def test_macos_os_roots_when_security_fails_is_empty(monkeypatch):
    monkeypatch.setattr(bootstrap, "run", Recorder(stdout="security: SecKeychainSearchCopyNext: error", returncode=44))
    assert bootstrap._MacOS.os_roots() == []


def recorded_windows_stores():
    doc = json.loads((RECORDED / "windows-enum-certificates.json").read_text())
    return {store: [(base64.b64decode(d), enc, trust if trust is True else set(trust)) for d, enc, trust in entries]
            for store, entries in doc.items()}


def test_windows_os_roots_takes_only_server_auth_trusted_x509(monkeypatch):
    stores = recorded_windows_stores()
    asked = []

    def enum_certificates(store):
        asked.append(store)
        return stores.get(store, [])

    monkeypatch.setattr(ssl, "enum_certificates", enum_certificates, raising=False)
    roots = bootstrap._Windows.os_roots()
    expected = [d for store in ("ROOT", "CA") for d, enc, trust in stores[store]
                if enc == "x509_asn" and (trust is True or SERVER_AUTH in trust)]
    assert roots == expected and len(expected) == 4
    names = [bootstrap.parse_cert(d)["subject"] for d in roots]
    assert not any("Code Signing" in n for n in names)
    assert any("Example Corp TLS Inspection Root CA" in n for n in names)
    assert sorted(asked) == ["CA", "ROOT"]


def test_windows_add_ca_and_its_undo_are_exact_certutil_commands(corp):
    record = bootstrap._Windows.add_ca(der(corp["root"]), bootstrap.parse_cert(der(corp["root"])))
    thumb = corp["root"].fingerprint(hashes.SHA1()).hex().upper()
    assert record["command"] == ["certutil", "-user", "-addstore", "Root", "{file}"]
    assert record["undo"] == ["certutil", "-user", "-delstore", "Root", thumb]
    assert x509.load_pem_x509_certificate(record["data"].encode()) == corp["root"]


def test_macos_add_ca_and_its_undo_are_exact_security_commands(corp, laptop):
    record = bootstrap._MacOS.add_ca(der(corp["root"]), bootstrap.parse_cert(der(corp["root"])))
    keychain = str(laptop / "Library" / "Keychains" / "login.keychain-db")
    thumb = corp["root"].fingerprint(hashes.SHA1()).hex().upper()
    assert record["command"] == ["security", "add-trusted-cert", "-r", "trustRoot", "-k", keychain, "{file}"]
    assert record["undo"] == ["security", "delete-certificate", "-Z", thumb, keychain]
    assert x509.load_pem_x509_certificate(record["data"].encode()) == corp["root"]


@pytest.mark.parametrize("platform", ["_Windows", "_MacOS"])
def test_add_to_os_store_runs_the_command_on_the_ca_file_and_undo_mirrors_it(corp, ui, monkeypatch, platform):
    """--add-to-os-store then undo: the add command gets a file holding the CA; undo runs the inverse."""
    system = getattr(bootstrap, platform)

    class TestOS(system):
        @staticmethod
        def os_roots():
            return [der(corp["other"])]

    seen = {}

    def look(cmd):
        for part in cmd:
            if part.endswith(".pem") and os.path.isfile(part):
                seen[part] = Path(part).read_bytes()

    recorder = Recorder(on_call=look)
    monkeypatch.setattr(bootstrap, "OS", TestOS)
    monkeypatch.setattr(bootstrap, "run", recorder)
    journal = bootstrap.journal_load()
    info = bootstrap.parse_cert(der(corp["root"]))
    plan = plan_of(extras=[(der(corp["root"]), info), (der(corp["other"]), bootstrap.parse_cert(der(corp["other"])))])
    assert bootstrap.add_to_os_store(plan, ui, journal) is True
    [add] = recorder.calls                                     # "other" is in the store already: skipped
    expected = TestOS.add_ca(der(corp["root"]), info)
    [ca_file] = [p for p in add["cmd"] if p.endswith(".pem")]
    assert add["cmd"] == [ca_file if part == "{file}" else part for part in expected["command"]]
    assert x509.load_pem_x509_certificate(seen[ca_file]) == corp["root"]
    assert not os.path.exists(ca_file)                          # the temporary file is gone
    assert bootstrap.undo(ui) == 0
    assert recorder.calls[-1]["cmd"] == expected["undo"]


def test_linux_add_ca_needs_root(corp, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap._Linux.add_ca(der(corp["root"]), bootstrap.parse_cert(der(corp["root"])))
    assert e.value.code == 1 and "root" in e.value.args[0] and "sudo" in e.value.args[0]


def test_linux_add_ca_as_root_picks_the_distro_anchor_folder(corp, tmp_path, monkeypatch):
    anchors = tmp_path / "usr-local-share-ca-certificates"
    anchors.mkdir()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(bootstrap._Linux, "anchors", ((str(tmp_path / "absent"), ["update-ca-trust", "extract"]),
                                                      (str(anchors), ["update-ca-certificates"])))
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/sbin/" + name)
    info = bootstrap.parse_cert(der(corp["root"]))
    record = bootstrap._Linux.add_ca(der(corp["root"]), info)
    assert record["kind"] == "file+command" and record["command"] == ["update-ca-certificates"]
    assert os.path.dirname(record["path"]) == str(anchors) and record["path"].endswith(".crt")
    assert x509.load_pem_x509_certificate(record["data"].encode()) == corp["root"]
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(bootstrap.Failure):
        bootstrap._Linux.add_ca(der(corp["root"]), info)


class FakeVerifyPaths:
    def __init__(self, cafile):
        self.openssl_cafile_env, self.openssl_cafile = "SSL_CERT_FILE", cafile
        self.openssl_capath_env, self.openssl_capath, self.cafile, self.capath = "SSL_CERT_DIR", "", None, None


def test_linux_os_store_file_honours_ssl_cert_file_and_falls_back(corp, tmp_path, monkeypatch):
    mine = write(tmp_path / "mine.pem", pem(corp["root"]))
    distro = write(tmp_path / "distro" / "ca-certificates.crt", pem(corp["other"]))
    openssl_default = tmp_path / "openssl" / "cert.pem"
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: FakeVerifyPaths(str(openssl_default)))
    monkeypatch.setattr(bootstrap._Linux, "bundles", (str(tmp_path / "absent.pem"), str(distro)))

    monkeypatch.setenv("SSL_CERT_FILE", str(mine))
    assert bootstrap._Linux.os_store_file() == str(mine)
    assert bootstrap._Linux.os_roots() == [der(corp["root"])]
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "gone.pem"))
    assert bootstrap._Linux.os_store_file() == str(distro)
    assert bootstrap._Linux.os_roots() == [der(corp["other"])]
    write(openssl_default, pem(corp["root"]))
    assert bootstrap._Linux.os_store_file() == str(openssl_default)
    monkeypatch.setattr(bootstrap._Linux, "bundles", ())
    openssl_default.unlink()
    assert bootstrap._Linux.os_store_file() is None and bootstrap._Linux.os_roots() == []


# ==================================================================================================
# 6. Journal and undo
# ==================================================================================================

def test_change_file_creates_a_new_file_and_undo_removes_it_and_its_folders(laptop, tmp_path, ui):
    state = Path(os.environ["TRUSTFIX_STATE_DIR"])
    path = laptop / ".config" / "pip" / "pip.conf"
    journal = bootstrap.journal_load()
    assert bootstrap.change_file(journal, str(path), b"[global]\ncert = /b.pem\n") is True
    assert path.read_bytes() == b"[global]\ncert = /b.pem\n"
    assert (state / "journal.json").is_file()
    assert bootstrap.undo(ui) == 0
    assert not path.exists() and not (laptop / ".config").exists()
    assert not state.exists()
    assert sorted(os.listdir(str(tmp_path))) == ["home"] and os.listdir(str(laptop)) == []


def test_change_file_backs_up_an_existing_file_and_keeps_its_mode(laptop, ui):
    path = write(laptop / ".pip" / "pip.conf", b"# mine\n[global]\ntimeout = 5\n")
    os.chmod(str(path), 0o600)
    original = path.read_bytes()
    journal = bootstrap.journal_load()
    assert bootstrap.change_file(journal, str(path), b"# mine\n[global]\ntimeout = 5\ncert = /b\n") is True
    [entry] = journal["files"]
    backup = Path(os.environ["TRUSTFIX_STATE_DIR"]) / entry["backup"]
    assert backup.read_bytes() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bootstrap.undo(ui) == 0
    assert path.read_bytes() == original and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_change_file_twice_keeps_the_first_backup_even_across_runs(laptop, ui):
    path = write(laptop / ".pip" / "pip.conf", b"original\n")
    journal = bootstrap.journal_load()
    bootstrap.change_file(journal, str(path), b"first run\n")
    journal = bootstrap.journal_load()                     # a second run reads the journal back
    assert bootstrap.change_file(journal, str(path), b"second run\n") is True
    assert len(journal["files"]) == 1
    assert (Path(os.environ["TRUSTFIX_STATE_DIR"]) / journal["files"][0]["backup"]).read_bytes() == b"original\n"
    bootstrap.undo(ui)
    assert path.read_bytes() == b"original\n"


def test_change_file_with_identical_data_writes_nothing(laptop):
    path = write(laptop / "pip.conf", b"same\n")
    before = os.stat(str(path))
    journal = bootstrap.journal_load()
    assert bootstrap.change_file(journal, str(path), b"same\n") is False
    assert journal["files"] == [] and not os.path.exists(os.environ["TRUSTFIX_STATE_DIR"])
    after = os.stat(str(path))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_undo_restores_every_file_byte_for_byte(laptop, tmp_path, ui, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", str(laptop / "notes.bin"))     # a file undo may touch: pip reads it
    files = {laptop / ".config" / "pip" / "pip.conf": None,
             laptop / ".pip" / "pip.conf": b"[global]\r\nindex-url = https://m/simple\r\n",
             laptop / ".local" / "share" / "trustfix" / "ca-bundle.pem": None,
             laptop / "notes.bin": bytes(range(256))}
    for path, data in files.items():
        if data is not None:
            write(path, data)
    before = tree(laptop)
    journal = bootstrap.journal_load()
    for i, path in enumerate(files):
        bootstrap.change_file(journal, str(path), "changed {}\n".format(i).encode())
    bootstrap.change_file(journal, str(laptop / "notes.bin"), b"changed again\n")
    assert bootstrap.undo(ui) == 0
    after = tree(laptop)
    assert after == before
    assert sorted(str(p.relative_to(laptop)) for p in laptop.rglob("*")) == [".pip", ".pip/pip.conf", "notes.bin"]
    assert not os.path.exists(os.environ["TRUSTFIX_STATE_DIR"])
    assert [s["summary"] for s in ui.steps][-1].startswith("every change")


def test_undo_keeps_a_file_the_user_changed_afterwards(laptop, ui):
    path = write(laptop / ".config" / "pip" / "pip.conf", b"[global]\ntimeout = 5\n")
    journal = bootstrap.journal_load()
    bootstrap.change_file(journal, str(path), b"[global]\ntimeout = 5\ncert = /b\n")
    path.write_bytes(b"[global]\ntimeout = 5\ncert = /b\nindex-url = https://edited/simple\n")
    bootstrap.undo(ui)
    assert path.read_bytes() == b"[global]\ntimeout = 5\n"
    [aside] = list(path.parent.glob("pip.conf.changed-after-trustfix-*"))
    assert aside.read_bytes().endswith(b"index-url = https://edited/simple\n")
    assert len(ui.warnings) == 1 and str(path) in ui.warnings[0] and str(aside) in ui.warnings[0]


def test_undo_with_nothing_recorded(ui):
    assert bootstrap.undo(ui) == 0
    assert ui.steps[-1]["status"] == "ok" and "nothing to undo" in ui.steps[-1]["summary"]


def test_undo_keeps_a_symlinked_pip_conf_a_symlink(laptop, tmp_path, ui):
    target = write(tmp_path / "dotfiles" / "pip.conf", b"[global]\ntimeout = 5\n")
    link = laptop / ".config" / "pip" / "pip.conf"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    journal = bootstrap.journal_load()
    bootstrap.change_file(journal, str(link), b"[global]\ntimeout = 5\ncert = /b\n")
    bootstrap.undo(ui)
    assert link.is_symlink() and os.readlink(str(link)) == str(target)
    assert target.read_bytes() == b"[global]\ntimeout = 5\n"


def test_a_pip_killed_after_it_unpacked_the_wheels_own_record_left_a_cut_off_install(laptop, tmp_path, monkeypatch, ui):
    """pip unpacks the wheel's own RECORD (its last member) with the other files, and only then writes the
    scripts, INSTALLER and its own RECORD, which lists INSTALLER. Killed in between, or while it unpacked that
    RECORD (empty, or cut short), the dist-info our journal says bootstrap's pip was installing is not an
    installed pip: the re-run installs it again and first clears it with pip's stash. A dist-info no journal
    names is judged by its RECORD alone (`python -m installer`, as distributions use it, writes no INSTALLER)."""
    site = tmp_path / "site-packages"
    pin = pinned((3, 12))["pip"]
    info = "pip-{}.dist-info".format(pin.version)
    with zipfile.ZipFile(str(PIP_WHEEL)) as z:
        wheel_record = z.read(info + "/RECORD")
    write(site / info / "RECORD", wheel_record)
    write(site / "~ip-23.0.1.dist-info" / "RECORD", "pip/__init__.py,,\n")     # pip's stash of the old pip
    journal = bootstrap.journal_load()
    journal["packages"].append({"python": sys.executable, "name": "pip", "before": "pip-23.0.1.dist-info",
                                "after": info, "flags": [], "user_site": False})
    bootstrap.journal_save(journal)                             # as backup_distribution leaves it, pip not yet run
    monkeypatch.setattr(sys, "path", [str(site)])
    monkeypatch.setattr(bootstrap, "install_site", lambda flags: str(site))
    ours = bootstrap.journaled_installs(journal)
    assert ours == {info.lower()}
    cut_off = [str(site / info), str(site / "~ip-23.0.1.dist-info")]

    for record in (wheel_record, b"", wheel_record[:1000]):
        (site / info / "RECORD").write_bytes(record)
        assert "pip" not in bootstrap.installed_distributions()
        assert bootstrap.interrupted_install(str(site), "pip", ours) == cut_off

    write(site / info / "INSTALLER", "pip\n")
    (site / info / "RECORD").write_bytes(wheel_record + "{}/INSTALLER,sha256={},4\n".format(
        info, base64.urlsafe_b64encode(hashlib.sha256(b"pip\n").digest()).rstrip(b"=").decode()).encode())
    assert bootstrap.installed_distributions()["pip"] == (pin.version, str(site / info))   # pip's own RECORD
    assert bootstrap.interrupted_install(str(site), "pip", ours) == cut_off[1:]

    (site / info / "RECORD").write_bytes(wheel_record)
    assert bootstrap.interrupted_install(str(site), "pip", set()) == cut_off[1:]            # not ours
    bootstrap.clear_interrupted(journal, [], ui, ours)
    assert os.listdir(str(site)) == []
    assert bootstrap._LOG[-2:] == ["removed {}, left by an interrupted install of pip".format(p) for p in cut_off]


# ==================================================================================================
# 7. The install command line (ensurepip's lesson) and where it installs
# ==================================================================================================

HOSTILE_ENV = {"PIP_INDEX_URL": "https://evil.example/simple", "PIP_REQUIRE_VIRTUALENV": "1",
               "PIP_CONFIG_FILE": "/broken/pip.conf", "PIP_TARGET": "/tmp/elsewhere", "PIP_NO_INSTALL": "1",
               "REQUESTS_CA_BUNDLE": "/nope.pem", "CURL_CA_BUNDLE": "/nope.pem", "KEEP_ME": "yes"}


@pytest.mark.parametrize("flags,venv,extra", [
    ([], False, []), (["--user"], False, ["--no-compile"]), ([], True, ["--no-compile"]),
    (["--break-system-packages"], False, []), (["--break-system-packages", "--user"], False, ["--no-compile"])],
    ids=["system site-packages", "user site", "venv", "externally managed, forced", "forced, user site"])
def test_install_runs_the_pinned_pip_from_its_wheel_isolated(tmp_path, monkeypatch, ui, flags, venv, extra):
    for k, v in HOSTILE_ENV.items():
        monkeypatch.setenv(k, v)
    workdir = tmp_path / "work"
    workdir.mkdir()
    pins = live_pins()
    plan = plan_of(install=[pins["pip"], pins["truststore"]], flags=flags, where="here", pins=pins)
    files = {"pip": str(workdir / PIP_WHEEL.name)}
    shutil.copyfile(str(PIP_WHEEL), files["pip"])
    requirements = {}
    recorder = Recorder(on_call=lambda cmd: requirements.update(
        text=Path(cmd[cmd.index("-r") + 1]).read_text()))
    monkeypatch.setattr(bootstrap, "run", recorder)
    bootstrap.install(plan, survey(venv=venv), ui, bootstrap.journal_load(),
                      files, str(workdir))
    [call] = recorder.calls
    req = str(workdir / "requirements.txt")
    assert call["cmd"] == [sys.executable, "-E", "-s", "-B", str(workdir / "installer" / "pip"), "install", "--no-index", "--find-links",
                           str(workdir), "--require-hashes", "--no-deps", "--disable-pip-version-check",
                           "--no-input", "--no-warn-script-location", "--progress-bar", "off", "-r", req] \
        + flags + extra
    env = call["env"]
    assert {k: v for k, v in env.items() if k.startswith("PIP_")} == {"PIP_CONFIG_FILE": os.devnull}
    assert "REQUESTS_CA_BUNDLE" not in env and "CURL_CA_BUNDLE" not in env
    assert env["KEEP_ME"] == "yes" and env.get("PATH") == os.environ.get("PATH")
    hashes_lines = [p.line for p in pinned((3, 12)).values() if p.name in ("pip", "truststore")]
    assert requirements["text"].splitlines() == hashes_lines
    assert ui.steps[-1]["status"] == "changed"


def test_the_installer_is_unpacked_without_its_dist_info(tmp_path):
    wheel = PIP_WHEEL
    folder = Path(bootstrap.unpack_installer(str(wheel), str(tmp_path)))
    assert folder == tmp_path / "installer" / "pip" and (folder / "__main__.py").is_file()
    assert [p.name for p in folder.parent.iterdir()] == ["pip"]      # no .dist-info: pip must not see itself
    with zipfile.ZipFile(str(wheel)) as z:
        names = [n for n in z.namelist() if n.startswith("pip/")]
        assert all((tmp_path / "installer" / n).read_bytes() == z.read(n) for n in names)


@pytest.mark.parametrize("name", ["pip/../../evil.py", "pip/..\\evil.py", "pip/C:evil.py"])
def test_the_installer_with_an_unsafe_member_name_is_refused(tmp_path, name):
    wheel = tmp_path / "pip.whl"
    with zipfile.ZipFile(str(wheel), "w") as z:
        z.writestr("pip/__main__.py", "")
        z.writestr(name, "")
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.unpack_installer(str(wheel), str(tmp_path / "w"))
    assert "unsafe file name" in e.value.args[0]
    assert not (tmp_path / "w").exists() and not (tmp_path.parent / "evil.py").exists()


def test_install_failure_names_the_packages_and_quotes_pip(tmp_path, monkeypatch, ui):
    pins = live_pins()
    plan = plan_of(install=[pins["pip"]], where="here", pins=pins)
    monkeypatch.setattr(bootstrap, "run", Recorder(returncode=1, stdout="Processing ./pip.whl\nERROR: THESE PACKAGES "
                                                   "DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n"))
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.install(plan, survey(), ui, bootstrap.journal_load(),
                          {"pip": str(PIP_WHEEL)}, str(tmp_path))
    assert "pip" in e.value.args[0] and "DO NOT MATCH THE HASHES" in e.value.args[0]


def test_install_skipped_or_nothing_to_do_runs_nothing(monkeypatch, ui, tmp_path):
    recorder = Recorder()
    monkeypatch.setattr(bootstrap, "run", recorder)
    for plan, status in ((plan_of(skip_install="managed by the OS"), "skipped"), (plan_of(), "ok")):
        bootstrap.install(plan, survey(pip="26.3"), ui, bootstrap.journal_load(), {}, str(tmp_path))
        assert ui.steps[-1]["status"] == status
    assert recorder.calls == []


def test_install_target_venv_installs_with_no_flags():
    flags, skip, where = bootstrap.install_target(survey(venv=True, purelib_writable=True),
                                                  argparse.Namespace(break_system_packages=False))
    assert (flags, skip) == ([], None) and sys.prefix in where


def test_install_target_unwritable_venv_is_a_failure_naming_it():
    with pytest.raises(bootstrap.Failure, match="is not writable"):
        bootstrap.install_target(survey(venv=True, purelib_writable=False),
                                 argparse.Namespace(break_system_packages=False))


@pytest.fixture
def managed_python(tmp_path, monkeypatch):
    """This interpreter as a distro's Python: not a venv, an EXTERNALLY-MANAGED marker in its stdlib."""
    stdlib = tmp_path / "usr" / "lib" / "python3.12"
    marker = write(stdlib / "EXTERNALLY-MANAGED", "[externally-managed]\nError=use apt\n")
    real = bootstrap.sysconfig.get_path
    monkeypatch.setattr(bootstrap.sysconfig, "get_path", lambda name, *a, **k: str(stdlib) if name == "stdlib"
                        else real(name, *a, **k))
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    return str(marker)


def test_externally_managed_finds_the_marker_and_ignores_it_in_a_venv(managed_python, monkeypatch, tmp_path):
    assert bootstrap.externally_managed() == managed_python
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    assert bootstrap.externally_managed() is None


def test_install_target_externally_managed_is_skipped_with_the_reason(managed_python):
    s = survey(externally_managed=bootstrap.externally_managed())
    flags, skip, where = bootstrap.install_target(s, argparse.Namespace(break_system_packages=False))
    assert flags == [] and where is None
    assert managed_python in skip and "--break-system-packages" in skip and "venv" in skip
    flags, skip, where = bootstrap.install_target(s, argparse.Namespace(break_system_packages=True))
    assert (flags, skip, where) == (["--break-system-packages"], None, s.purelib)


def test_install_target_unwritable_site_packages_uses_user_site():
    import site
    flags, skip, where = bootstrap.install_target(survey(purelib_writable=False),
                                                  argparse.Namespace(break_system_packages=False))
    assert (flags, skip, where) == (["--user"], None, site.getusersitepackages())


def test_install_target_unwritable_without_user_site_fails():
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.install_target(survey(purelib_writable=False, user_site_enabled=False),
                                 argparse.Namespace(break_system_packages=False))
    assert e.value.code == 1 and "/usr/lib/python3/site" in e.value.args[0] and "virtual environment" in e.value.args[0]


def test_writable_walks_up_to_the_first_existing_folder(tmp_path):
    assert bootstrap.writable(str(tmp_path / "a" / "b" / "c.conf"))
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(str(ro), 0o500)
    try:
        expected = os.access(str(ro), os.W_OK)                     # root may write anyway
        assert bootstrap.writable(str(ro / "x" / "pip.conf")) == expected
    finally:
        os.chmod(str(ro), 0o700)


# ==================================================================================================
# 8. The trust decision table
# ==================================================================================================

@pytest.fixture
def os_store(monkeypatch):
    """Set what the OS trust store holds: os_store(list of DER)."""
    def set_roots(ders):
        class TestOS(bootstrap._Linux):
            @staticmethod
            def os_roots():
                return list(ders)

            @staticmethod
            def os_context():                                 # what truststore would verify with
                return bootstrap.pip_verifier(cadata="".join(bootstrap.der_to_pem(d) for d in ders))
        monkeypatch.setattr(bootstrap, "OS", TestOS)
    return set_roots


UNTRUSTED = "untrusted: [SSL: CERTIFICATE_VERIFY_FAILED] unable to get local issuer certificate"
OK, BAD = "ok", UNTRUSTED


def probe_of(word):
    return bootstrap.Probe("ok", "HTTP 200") if word == OK else bootstrap.Probe("untrusted", word[len("untrusted: "):])


def extras_of(plan):
    return [d for d, _ in plan.extras]


def public_roots(n=5):
    return [der(c) for c in load_pem_list(certifi_pem())[:n]]


# decide_trust's table (its docstring), one row per case. Columns: the OS store beyond certifi's roots, the pip
# after the run, the Python, the probes (os, certifi; {} offline), the issuer the index presents ("leaf": the
# corporate leaf, a name: an issuer the OS does not know), the CAs given; then the strategy, the extras, words of
# the reason (a word starting with "!" must be absent), and the notes (how many, and words of the first).
TRUST_TABLE = [
    ("3.9, a CA given", ["root"], "26.0.1", (3, 9), {"os": OK, "certifi": BAD}, None, ["root"],
     "bundle", ["root"], ["3.9"], (0, [])),
    ("3.9, certifi alone verifies", ["root", "other"], "26.0.1", (3, 9), {"os": OK, "certifi": OK}, None, [],
     "none", [], ["certifi alone verifies 127.0.0.1"], (0, [])),
    ("3.9, online: only the OS root that issued what is presented", ["other", "root"], "26.0.1", (3, 9),
     {"os": OK, "certifi": BAD}, "leaf", [], "bundle", ["root"], ["Example Corp TLS Inspection Root CA"], (0, [])),
    ("3.9, online: the issuer is not in the OS store", ["other"], "26.0.1", (3, 9), {"os": BAD, "certifi": BAD},
     "leaf", [], "none", [], ["--ca-file"], (0, [])),
    ("3.9, offline: every OS-only root, said", ["root", "other"], "26.0.1", (3, 9), {}, None, [],
     "bundle", ["root", "other"], ["2 CA(s)"], (1, ["offline", "2", "--ca-file"])),
    ("3.12, old pip, a CA given", ["root"], "23.2.1", (3, 12), {"os": OK, "certifi": BAD}, None, ["root"],
     "bundle", ["root"], ["23.2.1"], (0, [])),
    ("3.12, new pip, intercepted: the root behind the chain for the user's other pips", ["root", "other"], "26.3",
     (3, 12), {"os": OK, "certifi": BAD}, "leaf", [], "bundle", ["root"], ["every pip of this user"], (0, [])),
    ("3.12, new pip, a given CA the OS has", ["root"], "26.3", (3, 12), {"os": OK, "certifi": BAD}, None, ["root"],
     "bundle", ["root"], ["!lacks"], (0, [])),
    ("3.12, new pip, a given CA the OS lacks", ["root"], "26.3", (3, 12), {"os": OK, "certifi": BAD}, None,
     ["root", "other"], "bundle", ["root", "other"], ["lacks C=DE, O=Somebody Else, CN=Other Private Root"], (0, [])),
    ("3.12, new pip, not intercepted", ["root"], "26.3", (3, 12), {"os": OK, "certifi": OK}, None, [],
     "none", [], ["nothing to write"], (0, [])),
    ("3.12, new pip, offline: older pips will fail", ["root"], "26.3", (3, 12), {}, None, [],
     "none", [], ["not checked (offline)"], (1, ["older bundled pip", "ca/", "online"])),
    ("3.12, new pip, the issuer is unknown: older pips will fail", ["root"], "26.3", (3, 12),
     {"os": OK, "certifi": BAD}, "CN=Nobody The OS Knows", [], "none", [], ["no CA named CN=Nobody The OS Knows"],
     (1, ["older bundled pip", "ca/", "online"])),
    ("3.13, new pip, the OS store does not verify: what to do", [], "26.3", (3, 13), {"os": BAD, "certifi": BAD},
     "leaf", [], "none", [], ["--ca-file"], (1, ["--ca-file", "Example Corp TLS Inspection Root CA"])),
]


@pytest.mark.parametrize("store,pip_after,python,probe,issuer,given_names,strategy,extras,reason,notes",
                         [row[1:] for row in TRUST_TABLE], ids=[row[0] for row in TRUST_TABLE])
def test_the_trust_decision_table(os_store, corp, store, pip_after, python, probe, issuer, given_names, strategy,
                                  extras, reason, notes):
    os_store(public_roots() + [der(corp[name]) for name in store])
    presented = None
    if issuer:
        presented = bootstrap.parse_cert(der(corp["leaf"]))
        if issuer != "leaf":
            presented["issuer"] = issuer
    plan = plan_of(pip_after=pip_after, probe={k: probe_of(v) for k, v in probe.items()}, issuer=presented,
                   given=[(der(corp[n]), bootstrap.parse_cert(der(corp[n]))) for n in given_names],
                   certifi_pem=certifi_pem())
    trust = bootstrap.decide_trust(plan, survey(index_url=CLOSED_INDEX), python)   # a chain search stays on the loopback
    assert (trust.strategy, [d for d, _ in trust.extras]) == (strategy, [der(corp[n]) for n in extras]), trust
    for word in reason:
        assert (word[1:] not in trust.reason) if word.startswith("!") else (word in trust.reason), trust.reason
    count, words = notes
    assert len(trust.notes) == count, trust.notes
    for word in words:
        assert word in trust.notes[0], trust.notes
    assert plan.strategy == "none" and plan.notes == []           # the decision is returned, the plan untouched


# The same decision through make_plan, against a real TLS server on the loopback (an intercepting proxy's
# view of pypi.org): the OS store trusts the company root; certifi does not.

@pytest.mark.parametrize("chain", [
    "leaf signed by the root",
    "leaf signed by an intermediate (Zscaler, Netskope)"])
def test_plan_online_old_pip_takes_the_os_root_behind_the_presented_chain(https_server, os_store, ui, chain):
    """System Python (externally managed: nothing installed) with pip 23.2.1, nothing given, online."""
    root = trustme.CA(organization_name="Example Corp TLS Inspection")
    signer = root if chain == "leaf signed by the root" else root.create_child_ca()
    url = https_server(signer)
    root_der = bootstrap.pem_certs(root.cert_pem.bytes())
    os_store(public_roots() + root_der + [der(make_cert(dn("Unrelated OS-only Root", "Someone"))[0])])
    s = survey(index_url=url, pip="23.2.1", externally_managed="/usr/lib/python3/EXTERNALLY-MANAGED")
    args = argparse.Namespace(offline=False, index_url=None, ca_file=[], scope="user", reinstall=False,
                              break_system_packages=False, tools=[])
    plan = bootstrap.make_plan(s, args, ui)
    assert plan.probe["os"].ok and plan.probe["certifi"].untrusted
    assert plan.skip_install and plan.install == []
    assert plan.strategy == "bundle" and extras_of(plan) == root_der


# ==================================================================================================
# 9. Survey warnings
# ==================================================================================================

def fake_dist(site_dir, name, version, rel, data):
    """A distribution with one file and a RECORD giving its digest (as pip's installer writes it)."""
    dist_info = site_dir / "{}-{}.dist-info".format(name, version)
    write(site_dir / rel, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    write(dist_info / "RECORD", "{},sha256={},{}\n{}-{}.dist-info/RECORD,,\n".format(rel, digest, len(data), name, version))
    return str(dist_info)


def test_survey_warns_about_trusted_host_in_a_file_and_in_the_environment(fake_linux, laptop):
    user = write(laptop / ".config" / "pip" / "pip.conf", "[global]\ntrusted-host = pypi.org\n    files.pythonhosted.org\n")
    environ = {"PIP_TRUSTED_HOST": "mirror.example.com"}
    s = survey(config_sources=bootstrap.pip_config_sources(environ=environ))
    warnings_ = bootstrap.survey_warnings(s, environ=environ)
    assert len(warnings_) == 2
    assert str(user) in warnings_[0] and "pypi.org files.pythonhosted.org" in warnings_[0]
    assert "PIP_TRUSTED_HOST" in warnings_[1] and "mirror.example.com" in warnings_[1]
    assert all("does not verify TLS" in w for w in warnings_)


def test_survey_warns_about_an_edited_certifi_bundle(tmp_path, monkeypatch, corp):
    site_dir = tmp_path / "site-packages"
    original = certifi_pem()
    fake_dist(site_dir, "certifi", "2026.10.18", "certifi/cacert.pem", original)
    fake_dist(site_dir, "pip", "24.0", "pip/_vendor/certifi/cacert.pem", original)
    monkeypatch.setattr(sys, "path", [str(site_dir)])
    dists = bootstrap.installed_distributions()
    assert sorted(dists) == ["certifi", "pip"] and dists["pip"][0] == "24.0"
    s = survey(certifi_files=bootstrap.certifi_files(dists))
    assert bootstrap.survey_warnings(s, environ={}) == []
    edited = site_dir / "pip" / "_vendor" / "certifi" / "cacert.pem"
    edited.write_bytes(original + pem(corp["root"]))             # what people paste in
    [warning] = bootstrap.survey_warnings(s, environ={})
    assert str(edited) in warning and "edited" in warning


@pytest.mark.parametrize("var", ["PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"])
def test_survey_warns_about_a_ca_variable_naming_a_missing_file(tmp_path, var):
    missing = str(tmp_path / "gone" / "corp.pem")
    present = str(write(tmp_path / "here.pem", "x"))
    s = survey()
    [warning] = bootstrap.survey_warnings(s, environ={var: missing})
    assert warning.startswith(var) and missing in warning
    assert bootstrap.survey_warnings(s, environ={var: present}) == []


# ==================================================================================================
# How the index's TLS is judged (network replaced by recorded answers)
# ==================================================================================================

def test_probe_index_labels_each_trust_store_and_stops_on_a_network_error(https_server):
    """A real TLS server on the loopback: any HTTP answer means TLS worked; a refusal stops the probes."""
    ca = trustme.CA()
    url = https_server(ca)
    trusting = bootstrap.pip_verifier(cadata=ca.cert_pem.bytes().decode())
    results = bootstrap.probe_index(url, None, [("os", trusting), ("certifi", bootstrap.cadata_context(certifi_pem())),
                                                ("truststore", None)])
    assert {k: p.status for k, p in results.items()} == {"os": "ok", "certifi": "untrusted", "truststore": "unavailable"}
    assert results["os"].detail.startswith("HTTP ") and "unable to get local issuer certificate" in results["certifi"].detail
    assert {k: p.as_plan() for k, p in results.items()}["certifi"].startswith("untrusted: ")
    down = bootstrap.probe_index(CLOSED_INDEX, None, [("os", trusting), ("certifi", trusting)])
    assert list(down) == ["os"] and down["os"].status == "refused"          # the network fails: no second try


@pytest.mark.parametrize("reason,proxy,status,words", [
    (OSError("Tunnel connection failed: 407 Proxy Authentication Required"), "http://proxy.corp:3128", "proxy-auth",
     ["proxy.corp:3128", "407", "HTTPS_PROXY=http://user:password@host:port"]),
    (socket.timeout("timed out"), None, "timeout", ["pypi.org did not answer within 15 seconds", "--offline"]),
    (socket.gaierror(-2, "Name or service not known"), None, "dns", ["pypi.org cannot be resolved", "DNS"]),
    (socket.gaierror(-2, "Name or service not known"), "http://proxy.corp:3128", "dns", ["proxy.corp", "resolved"]),
    (ConnectionRefusedError(111, "Connection refused"), "http://proxy.corp:3128", "refused",
     ["proxy.corp:3128", "refused"]),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), None, "no-route", ["pypi.org cannot be reached", "--offline"])],
    ids=["proxy wants a login", "timeout", "no DNS", "proxy name unknown", "proxy refuses", "no route"])
def test_a_network_failure_is_read_once_and_worded_once_naming_the_host_or_proxy_and_the_fix(
        reason, proxy, status, words, monkeypatch):
    monkeypatch.setattr(bootstrap, "proxy_auth_schemes", lambda *a: [])     # no proxy here to ask (test_field does)
    for exc in (urllib.error.URLError(reason), reason):                     # as urllib and http.client raise it
        probe = bootstrap.failure_of(exc, proxy, "pypi.org", 443, 15)
        assert probe.status == status and not probe.reached, probe
        text = "; ".join(bootstrap.network_problem(probe, "https://pypi.org/simple/", proxy, 15))
        for word in words:
            assert word in text, text


def test_an_http_error_status_is_a_typed_error_quoting_it(https_server):
    ca = trustme.CA()
    url = https_server(ca)
    with pytest.raises(bootstrap.HTTPStatusError) as e:
        bootstrap.http_get(url + "/pip/", bootstrap.pip_verifier(cadata=ca.cert_pem.bytes().decode()), None)
    assert e.value.code == 404 and "127.0.0.1 answered HTTP 404" in e.value.args[0] and url in e.value.args[0]


def test_the_probes_verify_as_pip_does_without_python_3_13s_strict_flags():
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0) | getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    assert bootstrap.pip_verifier().verify_flags & strict == 0
    assert bootstrap.pip_verifier().verify_mode == ssl.CERT_REQUIRED and bootstrap.pip_verifier().check_hostname
    assert bootstrap.strict_view().verify_flags == ssl.create_default_context().verify_flags


# ==================================================================================================
# Trust configuration end to end in-process: bundle + pip.conf, re-run, undo; what check_config_target sees
# ==================================================================================================

def bundle_plan(tmp_path, laptop, extras, config_path=None, bundle_path=None):
    [version] = {p.version for p in pins() if p.name == "certifi"}
    return plan_of(strategy="bundle", pins={"certifi": {"version": version}}, extras=extras,
                   bundle_path=str(bundle_path or laptop / ".local/share/trustfix/ca-bundle.pem"),
                   config_path=str(config_path or laptop / ".config/pip/pip.conf"))


def test_configure_trust_writes_bundle_and_cert_then_reruns_idle_and_undoes(tmp_path, laptop, ui, corp):
    conf = write(laptop / ".config" / "pip" / "pip.conf", "# mine\n[global]\ntimeout = 60\n")
    accented = CERT_CASES["UTF8String names (non-ASCII)"]
    plan = bundle_plan(tmp_path, laptop, given(corp["root"], accented), config_path=conf)
    files, args = {"certifi": str(certifi_wheel())}, argparse.Namespace(add_to_os_store=False)
    assert bootstrap.configure_trust(plan, args, ui, bootstrap.journal_load(), files) is True
    bundle = Path(plan.bundle_path).read_bytes()
    in_bundle = [der(c) for c in load_pem_list(bundle)]
    assert in_bundle == [der(corp["root"]), der(accented)] + [der(c) for c in load_pem_list(certifi_pem())]
    assert bundle.endswith(certifi_pem())
    bundle.decode("ascii")                                      # REFERENCE.md: keep what pip reads ASCII
    ssl.create_default_context(cafile=plan.bundle_path)      # OpenSSL takes it whole
    assert read_ini(conf.read_text()) == {"global": {"timeout": "60", "cert": plan.bundle_path}}
    assert conf.read_text().startswith("# mine\n[global]\ntimeout = 60\n")
    # a second run on the configured machine changes nothing
    assert bootstrap.configure_trust(plan, args, ui, bootstrap.journal_load(), files) is False
    assert bootstrap.undo(ui) == 0
    assert conf.read_text() == "# mine\n[global]\ntimeout = 60\n"
    assert not os.path.exists(plan.bundle_path) and not (laptop / ".local").exists()


def windows_ansi_locale(monkeypatch):
    """Windows without UTF-8 mode: pip reads pip.ini in the locale encoding, the ANSI code page."""
    import locale
    import types
    monkeypatch.setattr(locale, "getpreferredencoding", lambda do_setlocale=True: "cp1252")
    monkeypatch.setattr(locale, "getencoding", lambda: "cp1252", raising=False)
    flags = {name: getattr(sys.flags, name) for name in dir(sys.flags) if not name.startswith("_")}
    monkeypatch.setattr(bootstrap.sys, "flags", types.SimpleNamespace(**dict(flags, utf8_mode=0)))


@pytest.mark.parametrize("case", ["existing pip.ini in cp1252", "user name with an accent"])
def test_configure_trust_writes_pip_ini_in_the_encoding_pip_reads(tmp_path, laptop, ui, corp, monkeypatch, case):
    windows_ansi_locale(monkeypatch)
    user = laptop / "Users" / ("José" if case == "user name with an accent" else "jose")
    conf = user / "AppData" / "Roaming" / "pip" / "pip.ini"
    if case == "existing pip.ini in cp1252":
        write(conf, "; Proxy für das Büro\r\n[global]\r\ntimeout = 60\r\n".encode("cp1252"))
    plan = bundle_plan(tmp_path, laptop, given(corp["root"]), config_path=conf,
                       bundle_path=user / "AppData" / "Local" / "trustfix" / "ca-bundle.pem")
    bootstrap.configure_trust(plan, argparse.Namespace(add_to_os_store=False), ui, bootstrap.journal_load(),
                              {"certifi": str(certifi_wheel())})
    as_pip_reads_it = conf.read_bytes().decode("cp1252")
    assert read_ini(as_pip_reads_it)["global"]["cert"] == plan.bundle_path
    if case == "existing pip.ini in cp1252":
        assert as_pip_reads_it.startswith("; Proxy für das Büro\r\n[global]\r\ntimeout = 60\r\n")
    assert bootstrap.read_config_file(str(conf)) == ({"global": {"cert": plan.bundle_path}}, None)


def test_a_bundle_path_pip_ini_cannot_spell_is_refused_before_any_change(tmp_path, laptop, monkeypatch):
    windows_ansi_locale(monkeypatch)
    user = laptop / "Users" / "山田"
    conf = user / "AppData" / "Roaming" / "pip" / "pip.ini"
    plan = plan_of(config_path=str(conf), bundle_path=str(user / "AppData" / "Local" / "trustfix" / "ca-bundle.pem"))
    with pytest.raises(bootstrap.Failure) as e:
        bootstrap.check_config_target(plan, survey())
    message = e.value.args[0]
    assert "cp1252" in message and plan.bundle_path in message and "nothing was changed" in message
    assert "--scope global" in message and "PYTHONUTF8=1" in message
    assert not conf.exists()


@pytest.mark.parametrize("mode", ["-Xutf8=0", "-Xutf8"])
def test_pip_config_encoding_is_the_one_pip_reads_with(mode, tmp_path):
    """Compared with the pinned pip's own get_locale_encoding(), in and out of UTF-8 mode, in one process."""
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import bootstrap; "
            "from pip._internal.utils.compat import get_locale_encoding; "
            "pips = 'utf-8' if sys.flags.utf8_mode else get_locale_encoding(); "
            "print(bootstrap.pip_config_encoding(), pips, sys.flags.utf8_mode)")
    proc = subprocess.run([sys.executable, mode, "-c", code, str(ROOT), str(wheel_of("pip", sys.version_info[:2]))],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True, timeout=60)
    ours, pips, utf8 = proc.stdout.split()
    assert ours == pips and utf8 == ("0" if mode == "-Xutf8=0" else "1")


def test_check_config_target_names_a_higher_cert_setting(fake_linux, laptop, monkeypatch, corp, tmp_path):
    target = str(laptop / ".config" / "pip" / "pip.conf")
    site = write(fake_linux["site"], "[global]\ncert = /site/corp.pem\n")
    public_only = write(tmp_path / "public.pem", certifi_pem())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(public_only))
    s = survey(config_sources=bootstrap.pip_config_sources(environ={"PIP_CERT": "/env/corp.pem"}))
    plan = plan_of(config_path=target, extras=given(corp["root"]))
    bootstrap.check_config_target(plan, s)
    assert any(str(site) in n and "/site/corp.pem" in n for n in plan.notes)
    assert any("PIP_CERT" in n and "/env/corp.pem" in n for n in plan.notes)
    assert any(n.startswith("REQUESTS_CA_BUNDLE={} lacks ".format(public_only)) and "pips before 24.2" in n
               for n in plan.notes), plan.notes
    write(public_only, certifi_pem() + pem(corp["root"]))          # it holds the CA: pips use it, no note
    plan = plan_of(config_path=target, extras=given(corp["root"]))
    bootstrap.check_config_target(plan, s)
    assert not any("REQUESTS_CA_BUNDLE" in n for n in plan.notes), plan.notes


def test_check_config_target_refuses_a_target_pip_cannot_read(fake_linux, laptop):
    target = write(laptop / ".config" / "pip" / "pip.conf", "cert = /no/section.pem\n")
    plan = plan_of(config_path=str(target))
    with pytest.raises(bootstrap.BadInput) as e:
        bootstrap.check_config_target(plan, survey(config_sources=bootstrap.pip_config_sources(environ={})))
    assert str(target) in e.value.args[0] and "nothing was changed" in e.value.args[0]


@pytest.mark.parametrize("where", ["target file", "global file"])
def test_an_install_section_cert_does_not_silently_win(fake_linux, laptop, tmp_path, ui, corp, where):
    conf = laptop / ".config" / "pip" / "pip.conf"
    holder = conf if where == "target file" else fake_linux["xdg"]
    write(holder, "[install]\ncert = /old/corp.pem\n")
    plan = bundle_plan(tmp_path, laptop, given(corp["root"]), config_path=conf)
    bootstrap.check_config_target(plan, survey(config_sources=bootstrap.pip_config_sources(environ={})))
    bootstrap.configure_trust(plan, argparse.Namespace(add_to_os_store=False), ui, bootstrap.journal_load(),
                              {"certifi": str(certifi_wheel())})
    install_certs = [read_ini(Path(p).read_text()).get("install", {}).get("cert") for p in (conf, fake_linux["xdg"])
                     if Path(p).is_file()]
    overridden = any(c not in (None, plan.bundle_path) for c in install_certs)
    assert not overridden or any("/old/corp.pem" in n for n in plan.notes)


# ==================================================================================================
# 10. The command line, for real, in a scrubbed environment (never the network)
# ==================================================================================================

def scrubbed_env(home):
    """No pip/TLS variables, no config file; a proxy on the loopback discard port so that any network use
    that should not happen fails at once instead of going out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env.update(HOME=str(home), PIP_CONFIG_FILE=os.devnull, TRUSTFIX_STATE_DIR=str(Path(home) / "state"),
               NO_COLOR="1", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    return env


def cli(args, home, python=None, cwd=None, env=None):
    argv = [python or sys.executable, str(ROOT / "bootstrap.py")] + list(args)
    full_env = dict(scrubbed_env(home), **(env or {}))
    proc = subprocess.run(argv, env=full_env, cwd=str(cwd or home), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    report_schema.check_run(argv, full_env, proc.returncode, proc.stdout, proc.stderr)   # --json: the schema
    return proc.returncode, proc.stdout + proc.stderr


def test_help_teaches_the_commands_and_exit_codes(laptop):
    code, out = cli(["--help"], laptop)
    assert code == 0
    for word in ("undo", "doctor", "--dry-run", "--offline", "--ca-file", "exit codes", "0 done", "2 bad usage", "3 "):
        assert word in out, word


def test_version(laptop):
    code, out = cli(["--version"], laptop)
    assert code == 0 and out.strip() == "trustfix bootstrap " + bootstrap.__version__


@pytest.mark.parametrize("args,words", [
    (["--no-such-option"], ["unrecognized arguments"]),
    (["--offline", "--index-url", "https://pypi.org/simple"], ["not allowed with"]),
    (["--index-url", "pypi.org/simple"], ["--index-url must be an http(s) URL"]),
    (["--index-url", "ftp://mirror/simple"], ["--index-url must be an http(s) URL"]),
    (["--scope", "machine"], ["invalid choice"]),
    (["repair"], ["invalid choice"])], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_usage_exits_2_and_says_why(laptop, args, words):
    code, out = cli(args, laptop)
    assert code == 2
    for word in words:
        assert word in out


@pytest.mark.parametrize("env,words", [
    ({"TRUSTFIX_SCOPE": "machine"}, ["TRUSTFIX_SCOPE='machine'", "user, site, global"]),
    ({"TRUSTFIX_TIMEOUT": "15s"}, ["TRUSTFIX_TIMEOUT='15s'", "number of seconds"]),
    ({"TRUSTFIX_TIMEOUT": "0"}, ["TRUSTFIX_TIMEOUT='0'"]),
    ({"TRUSTFIX_OFFLINE": "maybe"}, ["TRUSTFIX_OFFLINE='maybe'"]),
    ({"TRUSTFIX_JSON": "si"}, ["TRUSTFIX_JSON='si'"]),
    ({"TRUSTFIX_OFFLINE": "1", "TRUSTFIX_INDEX_URL": "https://mirror.example/simple"}, ["exclude each other"])],
    ids=lambda v: ",".join("{}={}".format(k, x) for k, x in v.items()) if isinstance(v, dict) else None)
def test_bad_environment_settings_exit_2_and_name_the_variable(laptop, env, words):
    """Fleet tools set options as TRUSTFIX_* variables: a wrong one is bad usage, not a silent default."""
    code, out = cli(["--dry-run"], laptop, env=env)
    assert code == 2, out
    for word in words:
        assert word in out
    assert "Traceback" not in out and os.listdir(str(laptop)) == []


@pytest.mark.parametrize("value", ["1", "true", "Yes", "on"])
def test_trustfix_offline_takes_the_usual_spellings_of_yes(laptop, value):
    code, out = cli(["--dry-run", "--json"], laptop, env={"TRUSTFIX_OFFLINE": value})
    doc = json.loads(out[out.index("{"):])
    assert code == 0 and doc["plan"]["probe"] == {}, out          # offline: the index was not probed


@pytest.mark.parametrize("args,env", [(["--json", "--scope", "machine"], {}), (["--json", "repair"], {}),
                                      (["--dry-run"], {"TRUSTFIX_JSON": "1", "TRUSTFIX_TIMEOUT": "soon"})],
                         ids=["bad choice", "bad command", "bad variable"])
def test_with_json_a_usage_error_is_one_json_document_too(laptop, args, env):
    code, out = cli(args, laptop, env=env)
    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert code == 2 and doc["exit_code"] == 2 and doc["error"] and doc["trustfix"] == bootstrap.__version__


def test_a_failure_leaves_a_log_with_the_sentence_and_every_step(laptop):
    missing = str(laptop / "corp-root.pem")
    code, out = cli(["--offline", "--ca-file", missing], laptop)
    assert code == 2
    m = re.search(r"details: (\S+\.log)", out)
    assert m, out
    log = Path(m.group(1)).read_text()
    Path(m.group(1)).unlink()
    assert "does not exist" in log and missing in log          # the sentence
    assert "survey" in log and sys.executable in log            # the steps before it, and which Python
    code, out = cli(["--offline", "--json", "--ca-file", missing], laptop)
    doc = json.loads(out[out.index("{"):])
    assert doc["log"] and "does not exist" in Path(doc["log"]).read_text()
    Path(doc["log"]).unlink()


def test_python_3_6_in_the_c_locale_prints_a_non_ascii_ca_name(laptop, tmp_path):
    """Python 3.6 in the C locale writes ASCII only (3.7+ coerce the locale): no traceback over a CA's name."""
    root = make_cert(dn("Müller Root CA", "Müller GmbH"))[0]
    ca = write(tmp_path / "mueller.pem", pem(root))
    code, out = cli(["--dry-run", "--offline", "--ca-file", str(ca)], laptop, python=need_python("3.6"),
                    env={"LANG": "C", "LC_ALL": "C"})
    assert code == 0 and "Traceback" not in out, out
    assert "M?ller Root CA" in out


def test_a_missing_ca_file_exits_2_names_it_and_changes_nothing(laptop):
    missing = str(laptop / "corp-root.pem")
    code, out = cli(["--offline", "--json", "--ca-file", missing], laptop)
    doc = json.loads(out[out.index("{"):])
    assert code == 2 and doc["exit_code"] == 2 and missing in doc["error"] and "does not exist" in doc["error"]
    assert sorted(os.listdir(str(laptop))) == []


def need_python(version):
    """The interpreter of a version ("3.6") as a path; skipped when absent, but a failure under CI."""
    return str(testbed.by_version(tuple(map(int, version.split(".")))).path)


def test_bootstrap_parses_on_python_3_6(laptop):
    python = need_python("3.6")
    proc = subprocess.run([python, "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())",
                           str(ROOT / "bootstrap.py")], env=scrubbed_env(laptop), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("version", ["3.6", "3.7"])
def test_bootstrap_version_runs_on_old_pythons(laptop, version):
    code, out = cli(["--version"], laptop, python=need_python(version))
    assert code == 0 and out.strip() == "trustfix bootstrap " + bootstrap.__version__


@pytest.mark.parametrize("version", ["3.6", "3.7"])
def test_dry_run_plans_on_old_pythons_and_changes_nothing(laptop, tmp_path, corp, version):
    ca = write(tmp_path / "corp.pem", pem(corp["root"]))
    code, out = cli(["--dry-run", "--offline", "--json", "--ca-file", str(ca)], laptop, python=need_python(version))
    doc = json.loads(out[out.index("{"):])
    assert code == 0 and doc["error"] is None, out
    expected_pip = expected_pins(tuple(map(int, version.split("."))))["pip"]
    assert [p["name"] + "==" + p["version"] for p in doc["plan"]["install"]] == ["pip==" + expected_pip]
    assert doc["plan"]["strategy"] == "bundle"
    assert os.listdir(str(laptop)) == []


def test_python_2_7_stops_with_the_version_message(laptop):
    code, out = cli(["--version"], laptop, python=need_python("2.7"))
    assert code != 0
    assert "trustfix needs Python 3.6 or newer" in out


OLD_PYTHON_PROBE = r'''
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("b", sys.argv[1])
b = importlib.util.module_from_spec(spec)
spec.loader.exec_module(b)
pins = b.pins_for(b.read_pins(sys.argv[2]), sys.version_info[:2])
info = b.parse_cert(b.pem_certs(open(sys.argv[3], "rb").read())[0])
loaded = b.load_ca_file(sys.argv[3])
print(json.dumps({"pins": sorted((k, v["version"]) for k, v in pins.items()),
                  "cert": {k: str(v) for k, v in info.items()}, "loaded": len(loaded),
                  "ini": b.set_ini_key("[global]\r\ntimeout = 5\r\n", "global", "cert", "/b.pem")}))
'''


@pytest.mark.parametrize("version", ["3.6", "3.7"])
def test_pure_functions_give_the_same_answers_on_old_pythons(laptop, tmp_path, corp, version):
    python = need_python(version)
    ca = write(tmp_path / "corp.pem", pem(corp["root"]))
    proc = subprocess.run([python, "-c", OLD_PYTHON_PROBE, str(ROOT / "bootstrap.py"), str(ROOT / "hashes.txt"),
                           str(ca)], env=scrubbed_env(laptop), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    py = tuple(map(int, version.split(".")))
    here = bootstrap.pins_for(bootstrap.read_pins(str(ROOT / "hashes.txt")), py)
    assert doc["pins"] == sorted([k, v["version"]] for k, v in here.items())
    assert doc["cert"] == {k: str(v) for k, v in bootstrap.parse_cert(der(corp["root"])).items()}
    assert doc["loaded"] == 1
    assert doc["ini"] == "[global]\r\ntimeout = 5\r\ncert = /b.pem\r\n"
