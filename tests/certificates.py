"""Certificates for the tests: made with cryptography (v3) or the openssl command (v1), read back with
cryptography, and the public roots of the pinned certifi wheel.

The company's roots (conftest's `corp` fixture) and every other certificate a test needs are made here, so
that no test builds an X.509 certificate by hand.
"""
import datetime
import subprocess
import sys
import warnings
import zipfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from bundle_helpers import wheel_of

NOW = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
SHORT = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
         NameOID.COUNTRY_NAME: "C"}


def dn(cn=None, o=None, ou=None, c=None, bmp_cn=False):
    """An X.509 name of the parts given (C, O, OU, CN in that order); bmp_cn: the CN as a BMPString."""
    attrs = []
    if c:
        attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, c))
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn, _type=_ASN1Type.BMPString) if bmp_cn
                     else x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_cert(subject, ca=True, issuer=None, not_before=None, not_after=None, key=None):
    """(certificate, key). ca: True / False (basicConstraints) / None (no extension at all).
    issuer: (certificate, key) of the signer; default self-signed. Valid from yesterday for ten years
    unless not_before / not_after say otherwise."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
               .not_valid_after(not_after or NOW + datetime.timedelta(days=3650)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    return builder.sign(issuer_key, hashes.SHA256()), key


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def colon_fingerprint(cert):
    """The SHA-256 fingerprint as people read it: colon-separated uppercase hex."""
    return ":".join("{:02X}".format(b) for b in cert.fingerprint(hashes.SHA256()))


def key_pems():
    """{kind: PEM bytes} of every private-key format a CA file may wrongly hold."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    enc = serialization.Encoding.PEM
    return {
        "PKCS8 private key": ec_key.private_bytes(enc, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()),
        "RSA private key (BEGIN RSA PRIVATE KEY)": rsa_key.private_bytes(
            enc, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
        "EC private key (BEGIN EC PRIVATE KEY)": ec_key.private_bytes(
            enc, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
        "encrypted PKCS8 key": ec_key.private_bytes(enc, serialization.PrivateFormat.PKCS8,
                                                    serialization.BestAvailableEncryption(b"secret")),
        "OpenSSH private key": ec_key.private_bytes(enc, serialization.PrivateFormat.OpenSSH,
                                                    serialization.NoEncryption()),
    }


def openssl_v1_cert(tmp_path, name, signer=None):
    """An X.509 v1 certificate (no extensions at all) made by the openssl command: self-signed, or signed
    by signer (a (cert, key) path pair). cryptography can only make v3."""
    key, csr, crt = (tmp_path / (name + ext) for ext in (".key", ".csr", ".pem"))

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
        "-subj", "/CN=" + name, "-out", str(csr))
    if signer:
        run("x509", "-req", "-in", str(csr), "-CA", str(signer[0]), "-CAkey", str(signer[1]), "-set_serial", "7",
            "-days", "30", "-out", str(crt))
    else:
        run("x509", "-req", "-in", str(csr), "-signkey", str(key), "-days", "30", "-out", str(crt))
    return crt, key


# --- read back ------------------------------------------------------------------------------------

def expected_name(name):
    """A name as bootstrap.py words it ("C=US, O=..., CN=..."), from cryptography's view."""
    return ", ".join("{}={}".format(SHORT[a.oid], a.value) for a in name if a.oid in SHORT) or "(no name)"


def cryptography_view(cert):
    """What bootstrap.parse_cert must say, read by cryptography."""
    try:
        is_ca = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {"subject": expected_name(cert.subject), "issuer": expected_name(cert.issuer),
            "self_signed": cert.subject == cert.issuer,
            "not_before": cert.not_valid_before_utc.replace(tzinfo=None),
            "not_after": cert.not_valid_after_utc.replace(tzinfo=None),
            "is_ca": is_ca, "version": {x509.Version.v1: 1, x509.Version.v3: 3}[cert.version],
            "sha256": cert.fingerprint(hashes.SHA256()).hex()}


def load_pem_list(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # old roots with negative serial numbers
        return x509.load_pem_x509_certificates(data)


# --- the public roots -----------------------------------------------------------------------------

def certifi_wheel():
    """The certifi wheel hashes.txt pins (a Path in wheels/)."""
    return wheel_of("certifi", sys.version_info[:2])


def certifi_pem():
    """The public roots bootstrap.py puts after the company's: certifi's cacert.pem from the pinned wheel."""
    with zipfile.ZipFile(str(certifi_wheel())) as z:
        return z.read("certifi/cacert.pem")
