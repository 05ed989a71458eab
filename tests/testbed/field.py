"""The field's interception certificates, made real (issue 15): roots and leaves as corporate proxies have
them, and a real TLS-intercepting proxy on 127.0.0.1 that presents them.

- the certificate factory (`make_root`, `make_intermediate`, `make_leaf`, with `cryptography`): EC P-256
  keys derived from the certificate's name, so the same name gives the same key (readable, repeatable);
- `Profile` (what one corporate proxy presents) and `PROFILES`, the field's cases:
    case 1 (Python 3.13's VERIFY_X509_STRICT): "root-bc-noncritical", "root-no-keyusage", "leaf-no-aki";
    case 4 (Apple's rules for private CAs' leaves): "leaf-900-days", "leaf-no-eku", "leaf-eku-clientauth",
      "leaf-no-san";
    case 7 (an incomplete chain): "chain-incomplete" (leaf signed by an intermediate the proxy does not
      send); "chain-complete" (the same, sent) and "compliant" are the controls;
- `CorpPKI`: a profile's root (+ intermediate) written to a folder, leaves issued per host on demand;
  `.store(folder, public_pem)` is an OS trust store folder (testbed.write_store) holding that root;
- `InterceptingProxy`: HTTP CONNECT pypi.org:443 / files.pythonhosted.org:443 -> 200, TLS toward the
  client with the profile's leaf, TLS toward the test index verified against the public root, bytes
  pumped both ways; every other host or method gets 403, so nothing leaves loopback;
- `laptop`: a testbed.Sandbox whose OS store is such a folder and whose proxy variables name the proxy;
- `presented_chain` (what the proxy sends, read by `openssl s_client`) and `stdlib_verdicts` (what an
  interpreter's `ssl.create_default_context(cafile=...)` says of it, through http.client's tunnel).
"""
import datetime
import hashlib
import json
import re
import select
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import testbed

ROUTED = {"pypi.org", "files.pythonhosted.org"}       # as tests/testbed/proxy_addon.py routes them
EKUS = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
ROOT_KINDS = ("compliant", "bc-noncritical", "no-keyusage")
# the validity window starts at midnight UTC yesterday: the same dates all day long, valid now
_START = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) \
    - datetime.timedelta(days=1)


# --- the certificate factory ------------------------------------------------------------------------

@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _key_for(name):
    """An EC P-256 key derived from the name: the same name, the same key."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    secret = int.from_bytes(hashlib.sha256(name.encode()).digest(), "big") % (order - 1) + 1
    return ec.derive_private_key(secret, ec.SECP256R1())


def _builder(subject_cn, issuer, key, days, organization="Example Corp Interception (test)"):
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                         x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    serial = int.from_bytes(hashlib.sha256(("serial:" + subject_cn).encode()).digest()[:16], "big") >> 1
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(serial or 1)
            .not_valid_before(_START)
            .not_valid_after(_START + datetime.timedelta(days=days)))


def _ca_extensions(builder, key, issuer, bc_critical=True, key_usage=True, path_length=None):
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=bc_critical)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return builder


def make_root(name, kind="compliant", days=3650):
    """A self-signed corporate root. kind: "compliant" (basicConstraints critical, keyUsage keyCertSign,
    SKI), "bc-noncritical" (basicConstraints present but not critical, like a 2014 Zscaler root),
    "no-keyusage" (no keyUsage extension at all)."""
    if kind not in ROOT_KINDS:
        raise ValueError("root kind {!r} is not one of {}".format(kind, ROOT_KINDS))
    key = _key_for("root:" + name)
    builder = _ca_extensions(_builder(name, None, key, days), key, None,
                             bc_critical=kind != "bc-noncritical", key_usage=kind != "no-keyusage")
    return Issued(builder.sign(key, hashes.SHA256()), key)


def make_intermediate(root, name, days=1825):
    """A compliant intermediate CA (pathlen 0) signed by root."""
    key = _key_for("intermediate:" + name)
    builder = _ca_extensions(_builder(name, root, key, days), key, root, path_length=0)
    return Issued(builder.sign(root.key, hashes.SHA256()), key)


def make_leaf(issuer, hosts, aki=True, days=365, eku=("serverAuth",), san=True):
    """A server certificate for hosts (CN = the first), signed by issuer. aki=False: no Authority Key
    Identifier; days: validity; eku: EKU purposes ("serverAuth", "clientAuth"), None for no EKU extension;
    san=False: no subjectAltName (the host is in the CN only)."""
    hosts = [hosts] if isinstance(hosts, str) else list(hosts)
    key = _key_for("leaf:{}:{}".format(issuer.cert.subject.rfc4514_string(), ",".join(hosts)))
    builder = _builder(hosts[0], issuer, key, days, organization="Intercepted (test)")
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
        critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([EKUS[e] for e in eku]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]),
                                        critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


# --- what one corporate proxy presents -----------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """root: a make_root kind; intermediate: leaves are signed by an intermediate; send_intermediate: the
    proxy sends it after the leaf; aki, days, eku, san: make_leaf's options for the leaves."""
    name: str = "compliant"
    root: str = "compliant"
    intermediate: bool = False
    send_intermediate: bool = True
    aki: bool = True
    days: int = 365
    eku: tuple = ("serverAuth",)
    san: bool = True


_BASE = Profile()
PROFILES = {p.name: p for p in [
    _BASE,
    replace(_BASE, name="root-bc-noncritical", root="bc-noncritical"),
    replace(_BASE, name="root-no-keyusage", root="no-keyusage"),
    replace(_BASE, name="leaf-no-aki", aki=False),
    replace(_BASE, name="leaf-900-days", days=900),
    replace(_BASE, name="leaf-no-eku", eku=None),
    replace(_BASE, name="leaf-eku-clientauth", eku=("clientAuth",)),
    replace(_BASE, name="leaf-no-san", san=False),
    replace(_BASE, name="chain-complete", intermediate=True),
    replace(_BASE, name="chain-incomplete", intermediate=True, send_intermediate=False),
]}


class CorpPKI:
    """A profile's corporate PKI in folder: root.pem (the root IT deploys), intermediate.pem (if any),
    and per host leaf-<host>.pem (what the proxy sends: the leaf, + the intermediate if it sends it) with
    leaf-<host>.key."""

    def __init__(self, folder, profile):
        self.folder, self.profile = Path(folder), profile
        self.folder.mkdir(parents=True, exist_ok=True)
        self.root = make_root("Example Corp Root ({})".format(profile.name), kind=profile.root)
        self.root_pem = self.folder / "root.pem"
        self.root_pem.write_bytes(self.root.pem)
        self.intermediate = self.intermediate_pem = None
        if profile.intermediate:
            self.intermediate = make_intermediate(self.root, "Example Corp Issuing CA ({})".format(profile.name))
            self.intermediate_pem = self.folder / "intermediate.pem"
            self.intermediate_pem.write_bytes(self.intermediate.pem)
        self._leaves, self._lock = {}, threading.Lock()

    def leaf(self, host):
        """(chain file, key file) the proxy serves for host."""
        with self._lock:
            if host not in self._leaves:
                p = self.profile
                leaf = make_leaf(self.intermediate or self.root, [host], aki=p.aki, days=p.days, eku=p.eku, san=p.san)
                chain, key = self.folder / "leaf-{}.pem".format(host), self.folder / "leaf-{}.key".format(host)
                sent = leaf.pem + (self.intermediate.pem if self.intermediate and p.send_intermediate else b"")
                chain.write_bytes(sent)
                key.write_bytes(leaf.key_pem)
                self._leaves[host] = (chain, key)
            return self._leaves[host]

    def store(self, folder, public_pem):
        """An OS trust store folder (Debian's layout) holding the distro's roots, the public root and this
        profile's root only (never the intermediate, as IT deploys it): for testbed.Sandbox / laptop()."""
        return testbed.write_store(folder, [Path(public_pem).read_bytes(), self.root.pem])


# --- the intercepting proxy ---------------------------------------------------------------------------

def _read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    return data


def _pump(a, b, stop):
    """Bytes both ways between two (TLS) sockets, in one thread (an SSL object must not be read and
    written from two threads at once), until either side closes or stop is set."""
    peer = {a: b, b: a}
    for s in peer:
        s.setblocking(False)
    while not stop.is_set():
        ready = [s for s in peer if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select(list(peer), [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return
            if not data:
                return
            other = peer[s]
            other.setblocking(True)
            try:
                other.sendall(data)
            except OSError:
                return
            finally:
                other.setblocking(False)


def _answer(conn, status, reason, body=b""):
    conn.sendall("HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n".format(
        status, reason, len(body)).encode() + body)


class InterceptingProxy:
    """A real TLS-intercepting proxy on 127.0.0.1 presenting pki's leaves, in front of the index on
    127.0.0.1:index_port (whose certificate, from the public root public_pem, it verifies). A context
    manager; `url` is its http:// address; `connects` the CONNECT lines it was sent; `refused` the
    (host, error) of client handshakes that failed (a client rejecting the leaf)."""

    def __init__(self, index_port, pki, public_pem):
        self.index_port, self.pki = index_port, pki
        self.upstream = ssl.create_default_context(cafile=str(public_pem))
        self.connects, self.refused = [], []
        self._contexts, self._lock = {}, threading.Lock()
        self._server = testbed.LoopbackServer(self._serve)
        self.port = self._server.port
        self.url = "http://127.0.0.1:{}".format(self.port)

    def __enter__(self):
        self._server.__enter__()
        return self

    def __exit__(self, *exc):
        self._server.__exit__(*exc)

    def _context(self, host):
        with self._lock:
            if host not in self._contexts:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*[str(f) for f in self.pki.leaf(host)])
                self._contexts[host] = context
            return self._contexts[host]

    def _serve(self, conn, stop):
        with conn:
            conn.settimeout(10)
            try:
                host = self._tunnel(conn)
            except OSError:
                return
            if host is None:
                return
            try:
                client = self._context(host).wrap_socket(conn, server_side=True)
            except OSError as e:               # ssl.SSLError too: the client refused the leaf
                self.refused.append((host, str(e)))
                return
            try:
                with client, socket.create_connection(("127.0.0.1", self.index_port), timeout=10) as raw, \
                        self.upstream.wrap_socket(raw, server_hostname=host) as upstream:
                    _pump(client, upstream, stop)
            except OSError:
                pass

    def _tunnel(self, conn):
        """Reads the CONNECT; the routed host after answering 200, or None after answering 403."""
        head = _read_head(conn)
        if head is None:
            return None
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        self.connects.append(line)
        m = re.match(r"^CONNECT ([^\s:]+):(\d+) HTTP/1\.[01]$", line)
        if not m or m.group(1) not in ROUTED or m.group(2) != "443":
            _answer(conn, 403, "Forbidden", b"refused by the test bed: only pypi.org is routed\n")
            return None
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return m.group(1)


def laptop(folder, store_dir, proxy=None):
    """A fresh corporate laptop (testbed.Sandbox) in folder whose OS store is store_dir (CorpPKI.store)
    and whose HTTPS_PROXY & co name proxy (an InterceptingProxy), if given."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty-pip.conf"
    empty.touch()
    return testbed.Sandbox(folder / "laptop", store_dir, empty, proxy=proxy)


# --- what clients see -----------------------------------------------------------------------------------

def presented_chain(proxy, host="pypi.org"):
    """The certificates the proxy sends for host, in order, as `openssl s_client -showcerts` reads them
    through its CONNECT (no verification: what is on the wire)."""
    result = subprocess.run(
        ["openssl", "s_client", "-proxy", "127.0.0.1:{}".format(proxy.port), "-connect", "{}:443".format(host),
         "-servername", host, "-showcerts"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=testbed.scrubbed_env(), timeout=30)
    pems = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", result.stdout, re.S)
    if not pems:
        raise AssertionError("openssl s_client saw no certificate:\n" + result.stdout.decode(errors="replace"))
    return [x509.load_pem_x509_certificate(p) for p in pems]


# A client as the stdlib makes it (urllib/http.client): ssl.create_default_context(cafile=...), CONNECT
# through the proxy, GET the project page. Runs on Python 3.6+; one JSON line per (port, cafile) case.
_CLIENT = r"""
import http.client, json, ssl, sys
for port, cafile, path in json.loads(sys.argv[1]):
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=15,
                                           context=ssl.create_default_context(cafile=cafile))
        conn.set_tunnel("pypi.org", 443)
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        print(json.dumps({"ok": True, "status": response.status, "body": body.decode("utf-8", "replace")}))
    except Exception as e:
        print(json.dumps({"ok": False, "error": "{}: {}".format(type(e).__name__, e)}))
"""


def stdlib_verdicts(interp, cases, path="/simple/corp-hello/"):
    """What interp's stdlib default context says through each proxy: cases are (proxy, cafile) pairs;
    returns one dict per case: {"ok": True, "status", "body"} or {"ok": False, "error"}. One process."""
    args = json.dumps([[proxy.port, str(cafile), path] for proxy, cafile in cases])
    result = subprocess.run([str(interp.path), "-c", _CLIENT, args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=testbed.scrubbed_env(), universal_newlines=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError("the client failed on {}:\n{}".format(interp, result.stderr))
    return [json.loads(line) for line in result.stdout.splitlines()]
