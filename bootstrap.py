#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""trustfix bootstrap: make pip trust this computer's TLS setup, once and for good.

Behind a corporate TLS-intercepting proxy, pip fails with CERTIFICATE_VERIFY_FAILED because it trusts
only certifi's bundle, not the company root CA that the operating system trusts. This script, run with
the Python to be fixed, does one straight pass:

    survey -> plan -> install -> trust -> verify -> report

It installs the pinned pip (and truststore on Python >= 3.10) from the hash-checked wheels next to it
(or downloads exactly those files, accepting each only if its SHA-256 matches hashes.txt), configures
pip's permanent trust (`cert =` a bundle of certifi's roots plus the corporate CAs in the user's pip
configuration, which every pip of the user reads, whenever a corporate CA is known), checks that a fresh pip reaches the index, and records every
change so that `bootstrap.py undo` puts every file back byte for byte. With --tools it does the same for the
developer's other tools (uv, this Python's requests/httpx/urllib, conda, git, npm), each through its own setting.

Standard library only; one file; starts on Python 3.6 (so it can say what it supports).

Where things are, in the order of the sections below:
  Small utilities   Record (the base of Survey, Plan, Trust), versions, redact(), atomic_write, run()
  Output            UI: one line per step, or one JSON document (--json)
  Certificates      a minimal DER reader (parse_cert); load_ca_file checks a CA the user gives
  hashes.txt        read_pins, pins_for, find_wheel: the trust anchor of every file installed
  Platforms         one class per OS (_Linux, _MacOS, _Windows; OS is this one): pip's configuration paths
                    (config_paths), the bundle's folder (data_dir), the OS trust store (os_roots, os_context,
                    add_ca and its inverse remove_ca)
  pip configuration every file and variable pip reads (pip_config_sources, config_value); the INI editor
  Survey            take_survey -> Survey: this Python and this machine, read only
  Network           tls_probe -> Probe, http_get; failure_of reads a failure, network_problem words it
  Journal           change_file (backup first, then an atomic write) and its mirror restore_file;
                    backup_distribution before a package changes
  Undo, rollback    undo (every journaled change's inverse, newest first), roll_back (a failed run's own)
  Plan              make_plan -> Plan, one function per step; decide_trust -> Trust is the decision to write
                    a bundle (its table is in its docstring)
  Install, Trust    install (the pinned pip from its verified wheel), configure_trust (make_bundle, `cert`)
  Beyond pip        --tools: one class per tool (_Uv, _Requests, _Conda, _Git, _Npm; TOOLS), each with find, plan
                    (the file, its new bytes) and now (where its trust comes from); plan_tools, configure_tools,
                    verify_tools (each tool's TLS, one handshake)
  Verify            verify (a fresh pip process reaches the index)
  Every Python      find_pythons, pythons_report (doctor), install_all_pythons (--all-pythons)
  Command line      parse_args, run_install (the install run, step by step), main (exit codes, JSON);
                    undo_startup_hook takes back in this process what a start-up hook (trustfix.pth) did
  Doctor            doctor: one function per check family (check_pip ... check_tls), then the verdict
"""

import sys

# Python 2 and Python < 3.6 stop on the next line with a SyntaxError that shows it: that is the message.
_REQUIRES = f"trustfix needs Python 3.6 or newer: run it with py -3 bootstrap.py (Windows) or python3 bootstrap.py"

import argparse
import base64
import configparser
import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
# html.parser, http.client, subprocess, urllib.request and zipfile are imported where they are used:
# a re-run on a configured machine never needs them, and they are a sixth of its time.

__version__ = "0.1.0"

HERE = os.path.dirname(os.path.abspath(__file__))
PROC_VERSION = "/proc/version"
DEFAULT_INDEX = "https://pypi.org/simple"
FILES_HOST = "files.pythonhosted.org"
def env_seconds(name, default):
    """A number of seconds, more than 0 and at most an hour, from the environment; None when it is not
    one (parse_args says so): inf, nan or 1e400 would pass float() and then overflow a socket timeout."""
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return None
    return value if 0 < value <= 3600 else None


def env_flag(name):
    """True / False from 1, true, yes, on / 0, false, no, off or unset; None for anything else."""
    return flag(os.environ.get(name))


def flag(text):
    """A yes/no setting's words (1, true, yes, on / 0, false, no, off; nothing is no): True, False, else None."""
    return {"": False, "0": False, "false": False, "no": False, "off": False,
            "1": True, "true": True, "yes": True, "on": True}.get(str(text or "").strip().lower())


TIMEOUT = env_seconds("TRUSTFIX_TIMEOUT", 15) or 15.0       # seconds, any single network operation
REQUEST_DEADLINE = 8 * TIMEOUT                                # seconds, one whole download (a trickle ends)
DEADLINE = env_seconds("TRUSTFIX_DEADLINE", 900) or 900.0     # seconds, one whole run
PIP_OS_STORE = (24, 2)         # first pip that verifies with the OS store (through truststore)
TRUSTSTORE_PYTHON = (3, 10)    # truststore (and so pip's OS-store support) needs Python >= 3.10
MIN_PYTHON = (3, 6)            # the oldest Python this script (and a pip for it) serves
INSTALL = ("pip", "truststore")   # what is installed; certifi's wheel is read, not installed

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNVERIFIED = 0, 1, 2, 3
SCHEMA_VERSION = 1             # of the --json report (deploy/report.schema.json); bump on an incompatible change
SCOPES = ("user", "site", "global")


class Failure(Exception):
    """A failure the user can act on: one plain sentence naming the file, host or setting."""

    code = EXIT_FAILED


class BadInput(Failure):
    code = EXIT_BAD_INPUT


class Stopped(BaseException):
    """The run was stopped from outside: SIGTERM (a fleet agent's stop), or its own deadline (SIGALRM).
    A BaseException like KeyboardInterrupt, so every `with` and `finally` cleans up on the way out."""


def on_signal(signum, frame):
    raise Stopped("stopped by SIGTERM" if signum == getattr(signal, "SIGTERM", None) else
                  "stopped: the run took longer than {:.0f} seconds (TRUSTFIX_DEADLINE)".format(DEADLINE))


def arm_deadline():
    """(Re)start the whole-run deadline: SIGALRM on POSIX (it also breaks a blocking read); elsewhere none
    beyond the per-operation and per-download bounds."""
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, on_signal)
        signal.alarm(int(DEADLINE) or 1)


class TLSVerifyError(Exception):
    """The server's certificate did not verify (as opposed to a network failure)."""


class NetworkError(Failure):
    """The index could not be reached; status says how, in a Probe's words (dns, no-route, timeout, ...)."""

    def __init__(self, text, status="error"):
        Failure.__init__(self, text)
        self.status = status


# --------------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vtuple(text):
    """'26.0.1' -> (26, 0, 1); non-numeric parts end the tuple (pre-releases compare low enough)."""
    out = []
    for part in str(text).split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(out)


def vstr(t):
    return ".".join(str(x) for x in t)


class Record:
    """A plain record with a fixed set of fields (__slots__): every field is given when it is made, and a
    misspelt name is an AttributeError, never a silent None. (dataclasses need Python 3.7.)"""

    __slots__ = ()

    def __init__(self, **fields):
        missing, unknown = set(self.__slots__) - set(fields), set(fields) - set(self.__slots__)
        if missing or unknown:
            raise TypeError("{}: missing {}, unknown {}".format(type(self).__name__, sorted(missing), sorted(unknown)))
        for name, value in fields.items():
            setattr(self, name, value)

    def __repr__(self):
        return "{}({})".format(type(self).__name__, ", ".join(
            "{}={!r}".format(name, getattr(self, name)) for name in self.__slots__))


def host_of(url):
    """The host name of a URL (None when it has none)."""
    return urllib.parse.urlsplit(url).hostname


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*(?:@[^/\s@]*)*@")
_SECRET_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "PIP_PROXY")


def redact(text):
    """text with every URL's user:password replaced by ***, and the passwords of the proxy variables
    removed wherever they appear (a pip child may print one decoded). Every output goes through here:
    the text on screen, the JSON document and the log file."""
    text = _USERINFO.sub(lambda m: m.group(0) if m.group(0).endswith(("//user:password@", "//USER:PASSWORD@"))
                         else m.group(1) + "***@", str(text))         # the placeholder in our own advice stays
    for var in _SECRET_VARS:
        password = urllib.parse.urlsplit(os.environ.get(var) or "").password
        for form in {password, password and urllib.parse.unquote(password)} - {None}:
            if len(form) >= 4:
                text = text.replace(form, "***")
    return text


def os_store_gap(python, pip_version):
    """Why that pip on that Python verifies with certifi only, in a few words; None when it verifies with
    the OS trust store (through truststore) plus certifi."""
    if python < TRUSTSTORE_PYTHON:
        return "Python {} (pip cannot use the OS store before 3.10)".format(vstr(python))
    if not pip_version or vtuple(pip_version) < PIP_OS_STORE:
        return "pip {} (certifi only: the OS store needs pip >= 24.2)".format(pip_version or "not installed")
    return None


def pip_uses_os_store(python, pip_version):
    return os_store_gap(python, pip_version) is None


def atomic_write(path, data, mode=0o644):
    """Write bytes to path through a temporary file in the same directory and os.replace."""
    folder = os.path.dirname(path) or "."
    make_dirs(folder)
    fd, tmp = tempfile.mkstemp(prefix=".trustfix-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def missing_folders(folder):
    """The folders on the way to folder that do not exist yet, deepest first (what a change creates, and
    undo removes again when they are empty)."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def existing_folder(path):
    """path, or the deepest folder on the way to it that exists."""
    missing = missing_folders(path)
    return os.path.dirname(missing[-1]) if missing else path


def make_dirs(folder):
    """Create folder and its missing parents. Machine-wide (--scope global) each new folder is locked down
    whatever root's umask (077 on hardened machines would hide the bundle from every other user): readable
    by all, writable by administrators only (OS.lock_down)."""
    for new in reversed(missing_folders(folder)):
        try:
            os.mkdir(new)
        except FileExistsError:
            if not os.path.isdir(new):
                raise
            continue
        if SCOPE["state"] == "global":
            OS.lock_down(new)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def python_cmd(python, *args, **kw):
    """A Python child isolated from the user's environment: -E (no PYTHONPATH, PYTHONSTARTUP, ...) and -s
    (no user site) unless user_site=True (a pip installed with --user lives there). run() also starts it
    in an empty private folder, so a pip/ (or any module) planted in the current directory is never
    imported: Python < 3.11 puts the current directory first on sys.path for -m, and -P does not exist."""
    return [python, "-E"] + ([] if kw.get("user_site") else ["-s"]) + list(args)


def run(cmd, env=None, timeout=600, cwd=None):
    """Every subprocess goes through here, so tests (and -v) can see the exact command line."""
    import subprocess
    log("$ " + " ".join(cmd))
    private = None
    if cwd is None:
        private = cwd = tempfile.mkdtemp(prefix="trustfix-cwd-")       # empty, mode 0700, ours
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              timeout=timeout, cwd=cwd, universal_newlines=True)
    except subprocess.TimeoutExpired:
        raise Failure("{} did not finish within {} seconds.".format(os.path.basename(cmd[0]), timeout))
    except OSError as e:
        raise Failure("could not run {}: {}.".format(cmd[0], e.strerror or e))
    finally:
        if private:
            shutil.rmtree(private, ignore_errors=True)
    log(proc.stdout.rstrip())
    return proc


_LOG = []


def changed(path=None, package=None):
    """Record one changed file (its path) or package ("pip 26.3 in /venv") for the report."""
    ui = UI.current
    if ui is not None:
        kind, what = ("files", path) if path else ("packages", package)
        if what not in ui.changed[kind]:
            ui.changed[kind].append(what)


def log(text):
    """Detail lines: shown with -v, kept for the failure log."""
    if text:
        _LOG.append(text)
        if UI.current is not None and UI.current.verbose:
            UI.current.dim(text)


# --------------------------------------------------------------------------------------------------
# Output: one line per step; colour only on a terminal and never with NO_COLOR; or one JSON document
# --------------------------------------------------------------------------------------------------

class UI:
    current = None

    def __init__(self, json_mode=False, verbose=False, stream=None):
        self.json = json_mode
        self.verbose = verbose
        self.out = stream or sys.stdout
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.colour = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.steps = []
        self.warnings = []
        self.changed = {"files": [], "packages": []}    # what this run changed (the report lists it)
        UI.current = self

    def _c(self, code, text):
        return "\033[{}m{}\033[0m".format(code, text) if self.colour else text

    def say(self, text=""):
        if not self.json:
            encoding = getattr(self.out, "encoding", None) or "utf-8"     # Python 3.6 in the C locale: ascii
            print(redact(text).encode(encoding, "replace").decode(encoding), file=self.out)
            self.out.flush()

    def step(self, name, status, summary, **data):
        """Record a finished step. status: ok | changed | skipped | warning | problem | failed."""
        self.steps.append(dict(step=name, status=status, summary=summary, **data))
        _LOG.append("[{}] {}: {}".format(status, name, summary))
        mark = {"ok": self._c("32", "ok"), "changed": self._c("32", "done"),
                "skipped": self._c("2", "skip"), "warning": self._c("33", "warn"),
                "problem": self._c("31", "PROB"), "failed": self._c("31", "FAIL")}[status]
        self.say("[{:>4}] {:<8} {}".format(mark, name, summary))

    def detail(self, text):
        _LOG.append(str(text))
        self.dim(text)

    def dim(self, text):
        for line in str(text).splitlines():
            self.say("         " + self._c("2", line))

    def warn(self, text):
        self.warnings.append(text)
        _LOG.append("[warning] " + text)
        self.say(self._c("33", "  warning: ") + text)


# --------------------------------------------------------------------------------------------------
# Certificates: a minimal DER reader (standard library has no certificate parser for files)
# --------------------------------------------------------------------------------------------------

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")
_PEM_KEY = re.compile(rb"-----BEGIN (?:RSA |EC |DSA |ENCRYPTED |OPENSSH )?PRIVATE KEY-----")
_OID_NAMES = {b"\x55\x04\x03": "CN", b"\x55\x04\x0a": "O", b"\x55\x04\x0b": "OU", b"\x55\x04\x06": "C"}
_OID_BASIC_CONSTRAINTS, _OID_KEY_USAGE, _OID_SAN = b"\x55\x1d\x13", b"\x55\x1d\x0f", b"\x55\x1d\x11"
_OID_EKU, _OID_AKI = b"\x55\x1d\x25", b"\x55\x1d\x23"
_OID_SERVER_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x01"         # 1.3.6.1.5.5.7.3.1, id-kp-serverAuth


def _der(data, pos):
    """Read one DER element at pos: (tag, content_start, content_end)."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 0 < n <= 4:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _der_items(data, start, end):
    pos = start
    while pos < end:
        tag, cs, ce = _der(data, pos)
        yield tag, cs, ce
        pos = ce


def _der_time(data, tag, cs, ce):
    text = data[cs:ce].decode("ascii").rstrip("Z")
    if tag == 0x17:                                   # UTCTime: YYMMDDHHMMSS
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    if len(text) < 14 or not text[:14].isdigit():
        raise ValueError("bad certificate time {!r}".format(text))
    return datetime.datetime(*(int(text[i:i + n]) for i, n in ((0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2))))


def _der_name(data, cs, ce):
    parts = []
    for _, rs, re_ in _der_items(data, cs, ce):               # SET
        for _, as_, ae in _der_items(data, rs, re_):          # SEQUENCE {oid, value}
            items = list(_der_items(data, as_, ae))
            if len(items) != 2:
                continue
            (_, os_, oe), (vtag, vs, ve) = items
            key = _OID_NAMES.get(data[os_:oe])
            if key:
                raw = data[vs:ve]
                value = raw.decode("utf-16-be" if vtag == 0x1E else "utf-8", "replace")
                parts.append("{}={}".format(key, value))
    return ", ".join(parts)


def parse_cert(der):
    """What bootstrap.py needs to know of a certificate, from its DER bytes."""
    _, cs, ce = _der(der, 0)
    tbs = list(_der_items(der, *_der(der, cs)[1:]))
    version = 1                                                # X.509 v1 has no version field
    if tbs and tbs[0][0] == 0xA0:                              # explicit version: INTEGER 1 (v2) or 2 (v3)
        _, vs, ve = _der(der, tbs[0][1])
        version = int.from_bytes(der[vs:ve], "big") + 1
        tbs = tbs[1:]
    # serial, signature algorithm, issuer, validity, subject, public key, [extensions]
    issuer, validity, subject = tbs[2], tbs[3], tbs[4]
    (t1, b1, e1), (t2, b2, e2) = list(_der_items(der, validity[1], validity[2]))
    is_ca = False
    basic = cert_extensions(der).get(_OID_BASIC_CONSTRAINTS)
    if basic:                                                  # SEQUENCE { BOOLEAN cA, ... }
        inner = list(_der_items(basic[1], *_der(basic[1], 0)[1:]))
        is_ca = bool(inner) and inner[0][0] == 0x01 and basic[1][inner[0][1]] != 0
    return {
        "subject": _der_name(der, subject[1], subject[2]) or "(no name)",
        "issuer": _der_name(der, issuer[1], issuer[2]) or "(no name)",
        "self_signed": der[issuer[1]:issuer[2]] == der[subject[1]:subject[2]],
        "not_before": _der_time(der, t1, b1, e1),
        "not_after": _der_time(der, t2, b2, e2),
        "is_ca": is_ca,
        "version": version,
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def cert_extensions(der):
    """{OID (DER content bytes): (critical, value)} of a certificate's extensions; value is the content of
    the extension's OCTET STRING (itself DER)."""
    _, cs, ce = _der(der, 0)
    out = {}
    for tag, xs, xe in _der_items(der, *_der(der, cs)[1:]):
        if tag != 0xA3:                                        # [3] EXPLICIT Extensions, the last of TBS
            continue
        for _, es, ee in _der_items(der, *_der(der, xs)[1:]):
            fields = list(_der_items(der, es, ee))             # OID, [BOOLEAN critical], OCTET STRING
            critical = len(fields) == 3 and fields[1][0] == 0x01 and der[fields[1][1]] != 0
            out[der[fields[0][1]:fields[0][2]]] = (critical, der[fields[-1][1]:fields[-1][2]])
    return out


def strict_defects(der):
    """What OpenSSL's X.509 strict mode refuses in a certificate (Python 3.13's ssl.create_default_context()
    turns it on, and urllib3 >= 2.4 on 3.13, httpx): a CA whose basicConstraints is not critical or that has
    no keyUsage, a certificate a CA issued without an Authority Key Identifier. [] when none."""
    info, ext = parse_cert(der), cert_extensions(der)
    out = []
    if info["is_ca"]:
        if not ext[_OID_BASIC_CONSTRAINTS][0]:
            out.append("its basicConstraints is not marked critical")
        if _OID_KEY_USAGE not in ext:
            out.append("it has no keyUsage extension")
    if not info["self_signed"] and _OID_AKI not in ext:
        out.append("it has no Authority Key Identifier")
    return out


APPLE_MAX_DAYS = 825


def apple_defects(der):
    """What macOS (the Security framework, which truststore uses there) refuses in a server certificate even
    from a trusted private CA (Apple HT210176): more than 825 days of validity, no serverAuth extended key
    usage, no subjectAltName. [] when none."""
    info, ext = parse_cert(der), cert_extensions(der)
    out = []
    days = (info["not_after"] - info["not_before"]).days
    if days > APPLE_MAX_DAYS:
        out.append("it is valid for {} days (Apple allows {})".format(days, APPLE_MAX_DAYS))
    if _OID_EKU not in ext:
        out.append("it has no extended key usage (Apple requires serverAuth)")
    elif _OID_SERVER_AUTH not in ext[_OID_EKU][1]:
        out.append("its extended key usage lacks serverAuth")
    if _OID_SAN not in ext:
        out.append("it has no subjectAltName (Apple requires the host name there)")
    return out


def fingerprint(hexdigest):
    return ":".join(hexdigest[i:i + 2] for i in range(0, len(hexdigest), 2)).upper()


def pem_certs(data):
    """All certificates of a PEM text as DER bytes (unparseable blocks are skipped)."""
    out = []
    for m in _PEM_CERT.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(m.group(1).split()), validate=True))
        except ValueError:
            continue
    return out


def der_to_pem(der):
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def load_ca_file(path, now=None):
    """Read a corporate CA file the user gave: a list of (der, info). Raises BadInput, naming the file."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    if not os.path.isfile(path):
        raise BadInput("CA file {} does not exist; give the path of the company's root CA certificate "
                       "(a .pem or .crt file).".format(path))
    data = read_bytes(path)
    if not data.strip():
        raise BadInput("CA file {} is empty; expected a PEM certificate "
                       "(a text file starting with -----BEGIN CERTIFICATE-----).".format(path))
    if _PEM_KEY.search(data):
        raise BadInput("{} holds a private key, not a certificate: never hand out that key. "
                       "Give the CA's certificate (-----BEGIN CERTIFICATE-----) instead.".format(path))
    ders, converted = pem_certs(data), False
    if not ders and data[:1] == b"\x30":
        try:                                              # a DER key starts SEQUENCE { INTEGER version, ...}
            first = _der(data, _der(data, 0)[1])[0]
        except (ValueError, IndexError):
            first = None
        if first == 0x02:
            raise BadInput("{} holds a private key (DER), not a certificate: never hand out that key. Give the "
                           "CA's certificate instead.".format(path))
        ders, converted = [data], True                    # DER (binary), as Windows often exports
    if not ders:
        raise BadInput("{} is not a certificate: no PEM block (-----BEGIN CERTIFICATE-----) and not a "
                       "DER certificate; ask IT for the root CA in PEM or .cer form.".format(path))
    found = []
    for der in ders:
        try:
            info = parse_cert(der)
            ssl.create_default_context(cadata=der_to_pem(der))   # OpenSSL must accept it as well
        except (ValueError, IndexError, UnicodeDecodeError, ssl.SSLError):
            raise BadInput("{} is not a readable certificate (the data is damaged); ask IT for the "
                           "root CA file again.".format(path))
        if not info["is_ca"] and not (info["version"] == 1 and info["self_signed"]):   # OpenSSL trusts a v1 root
            raise BadInput("{} is not a CA certificate but a server's own certificate ({}); give the "
                           "root CA that issued it ({}) instead.".format(path, info["subject"], info["issuer"]))
        if info["not_after"] < now:
            raise BadInput("{} expired on {:%Y-%m-%d} ({}); ask IT for the current root CA.".format(
                path, info["not_after"], info["subject"]))
        if info["not_before"] > now:
            raise BadInput("{} is not valid until {:%Y-%m-%d} ({}); check this computer's date and "
                           "time.".format(path, info["not_before"], info["subject"]))
        info["source"] = path + (" (DER, converted to PEM)" if converted else "")
        found.append((der, info))
    return found


# --------------------------------------------------------------------------------------------------
# hashes.txt: the trust anchor. One pin a line: name==version [; markers] --hash=sha256:HEX ...
# --------------------------------------------------------------------------------------------------

_REQ = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s;]*)$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


def parse_pin(text):
    """`name==version ; marker --hash=sha256:... [--hash=...]` -> (name, version, marker, [digest]).
    Split on the option names, not one backtracking regex: linear in the line's length."""
    head, *options = text.split("--hash=")
    hashes = []
    for option in options:
        m = _HASH.match(option.strip())
        if not m:
            raise ValueError("--hash={} is not sha256:<64 hex digits>".format(option.strip()[:80]))
        hashes.append(m.group(1))
    requirement, _, marker = head.partition(";")
    m = _REQ.match(requirement.strip())
    if not m or not hashes or "--" in head:
        raise ValueError("not `name==version ; marker --hash=sha256:...`")
    return m.group(1), m.group(2), marker.strip(), hashes
_MARKER = re.compile(r'^python_version\s*(>=|<=|==|!=|<|>)\s*["\'](\d+(?:\.\d+)*)["\']$')


def marker_matches(marker, python):
    """Evaluate `python_version OP "X.Y"` clauses joined by `and` (what build.py writes)."""
    if not marker:
        return True
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
           "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}
    for clause in marker.split(" and "):
        m = _MARKER.match(clause.strip())
        if not m:
            raise ValueError("unsupported marker: " + clause.strip())
        want = vtuple(m.group(2))
        have = tuple(python[:2])
        width = max(len(want), len(have))
        if not ops[m.group(1)](have + (0,) * (width - len(have)), want + (0,) * (width - len(want))):
            return False
    return True


def read_pins(path):
    """Parse hashes.txt: [{name, version, marker, hashes, line}]. Raises BadInput naming the line."""
    if not os.path.isfile(path):
        raise BadInput("{} is missing: it pins the exact files to install. Use the complete bundle "
                       "(bootstrap.py, hashes.txt and wheels/ together).".format(path))
    pins = []
    try:
        with open(path, encoding="utf-8-sig") as f:                # a BOM, as Notepad writes it, is fine (pip too)
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise BadInput("{} is damaged (not a text file); use the complete bundle from IT, or regenerate it "
                       "with `python build.py`.".format(path))
    logical, start = "", 0
    for number, line in enumerate(lines, 1):
        text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not logical:
            start = number
        if text.endswith("\\"):
            logical += text[:-1] + " "
            continue
        logical += text
        if logical.strip():
            try:
                name, version, marker, hashes = parse_pin(logical.strip())
                marker_matches(marker, (3, 10))
            except ValueError as e:
                raise BadInput("{} line {} is malformed ({}); regenerate it with `python build.py`."
                               .format(path, start, e))
            pins.append({"name": name.lower(), "version": version, "marker": marker, "line": logical.strip(),
                         "hashes": hashes, "number": start})
        logical = ""
    if not pins:
        raise BadInput("{} pins nothing; regenerate it with `python build.py`.".format(path))
    for minor in range(6, 20):                    # one pin per project and Python, or pip's choice is a guess
        seen = {}
        for pin in pins:
            if marker_matches(pin["marker"], (3, minor)):
                if pin["name"] in seen:
                    raise BadInput("{} pins {} twice for Python 3.{} (lines {} and {}); keep one and regenerate "
                                   "it with `python build.py`.".format(path, pin["name"], minor,
                                                                       seen[pin["name"]]["number"], pin["number"]))
                seen[pin["name"]] = pin
    return pins


def bundle_serves(path):
    """(specifier, ["3.10", ...]) from the `# serves: python SPEC (3.10, 3.11)` line build.py writes into
    a slim bundle's hashes.txt; None for a full bundle."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                m = re.match(r"^# serves: python (\S+) \((3\.\d+(?:, 3\.\d+)*)\)\s*$", line)
                if m:
                    return m.group(1), m.group(2).split(", ")
    except (OSError, UnicodeDecodeError):
        pass
    return None


def pins_for(pins, python):
    """The pin of each project that applies to this Python: {name: pin}."""
    chosen = {}
    for pin in pins:
        if marker_matches(pin["marker"], python):
            chosen.setdefault(pin["name"], pin)
    return chosen


def wheel_prefix(pin):
    return "{}-{}-".format(re.sub(r"[-_.]+", "_", pin["name"]), pin["version"])


def find_wheel(folder, pin):
    """The file in folder for this pin: (path, ok). ok is False when a candidate's hash differs."""
    if not os.path.isdir(folder):
        return None, True
    candidates = sorted(n for n in os.listdir(folder)
                        if n.lower().startswith(wheel_prefix(pin).lower()) and n.endswith(".whl"))
    for name in candidates:
        path = os.path.join(folder, name)
        if sha256_file(path) in pin["hashes"]:
            return path, True
    return (os.path.join(folder, candidates[0]), False) if candidates else (None, True)


# --------------------------------------------------------------------------------------------------
# Platforms: the same small set of operations per OS, chosen once (OS, below). Nothing outside these
# classes asks which OS it runs on.
#   os_roots() -> [DER]                   os_context() -> SSLContext of the OS store (what truststore uses)
#   config_paths() -> {scope: [paths]}    data_dir(scope) -> folder of the bundle (and the journal)
#   add_ca(der, info) -> record           remove_ca(record): its inverse (undo and the rollback call it)
#   valid_ca_record(record) -> bool       is_anchor_path(path) -> bool (a journal names only what add_ca makes)
#   is_admin() -> bool                    lock_down(folder): writable by administrators only
#   owners_matter: POSIX owners and modes (check_private, RunLock)    try_lock(fd) -> bool
#   hiding_variables() -> [(name, value)] that replace the OS store for truststore (SSL_CERT_FILE on Linux)
#   user_scheme() -> sysconfig scheme of --user installs   scratch_dir() -> folder for temporary files or None
#   read_proxy_settings(run, environ) -> (source, {pac, proxy, auto_detect} or None)   proc_version() -> text (WSL)
#   tool_config_home(scope) -> where tools keep their settings (uv's uv.toml)    conda_machine_dirs: conda's own
#   git_system_config(git) -> git's machine-wide file    git_os_store: (key, value) that makes git use the OS store
#   admin_words: who may run --add-to-os-store here ('' when any user may: the login keychain, certutil -user)
#   git_reads_os_store: git verifies with the OS store as it is (Linux: the distro bundle its TLS library reads)
# --------------------------------------------------------------------------------------------------

def _xdg(var, default):
    value = os.environ.get(var, "")
    return value if os.path.isabs(value) else os.path.expanduser(default)


class _Posix:
    """What Linux and macOS do alike."""
    owners_matter = True
    conda_machine_dirs = ("/etc/conda", "/var/lib/conda")
    git_os_store = None                     # no setting makes git use the OS store
    git_reads_os_store = False
    admin_words = ""

    @staticmethod
    def tool_config_home(scope):
        """uv (and the XDG family) on Linux and macOS alike: /etc machine-wide, else XDG_CONFIG_HOME."""
        return "/etc" if scope == "global" else _xdg("XDG_CONFIG_HOME", "~/.config")

    @staticmethod
    def git_system_config(git):
        return "/etc/gitconfig"

    @staticmethod
    def proc_version():
        return ""                                                 # no WSL but on Linux

    @staticmethod
    def hiding_variables():
        return []                 # truststore asks the Security framework (macOS), CryptoAPI (Windows)

    @staticmethod
    def is_admin():
        return os.geteuid() == 0

    @staticmethod
    def lock_down(folder):
        os.chmod(folder, 0o755)

    @staticmethod
    def try_lock(fd):
        import fcntl
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    @staticmethod
    def user_scheme():
        return "posix_user"

    @staticmethod
    def pip_paths(global_paths, user_new):
        """pip's files on POSIX: global, then the legacy user file and the new one, then the site file."""
        return {"global": global_paths, "user": [os.path.expanduser("~/.pip/pip.conf"), user_new],
                "site": [os.path.join(sys.prefix, "pip.conf")]}


class _Linux(_Posix):
    name = "Linux"
    git_reads_os_store = True               # GnuTLS or OpenSSL, from the distro bundle (/etc/ssl/certs)
    admin_words = " (as root)"
    bundles = ("/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
               "/etc/pki/tls/cert.pem", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/ca-bundle.pem")
    # (anchor folder, refresh command) per family: Debian/Ubuntu/Alpine, RHEL/Fedora, SUSE
    anchors = (("/usr/local/share/ca-certificates", ["update-ca-certificates"]),
               ("/etc/pki/ca-trust/source/anchors", ["update-ca-trust", "extract"]),
               ("/etc/pki/trust/anchors", ["update-ca-certificates"]))

    @staticmethod
    def os_store_file():
        """The bundle OpenSSL (and truststore) reads: SSL_CERT_FILE, OpenSSL's default, the distro's."""
        paths = ssl.get_default_verify_paths()
        for candidate in (os.environ.get(paths.openssl_cafile_env), paths.openssl_cafile) + _Linux.bundles:
            if candidate and os.path.isfile(candidate):
                return candidate
        return None

    @staticmethod
    def os_roots():
        """Every root OpenSSL (and truststore) trusts here: its file and its hashed folder, as they look them up."""
        paths = ssl.get_default_verify_paths()
        return _Linux.store_roots(_Linux.os_store_file(), os.environ.get(paths.openssl_capath_env) or paths.openssl_capath)

    @staticmethod
    def store_roots(cafile, capath):
        """The certificates of a CA file and of the hashed files (<hash>.<n>, `openssl rehash`) of a folder."""
        ders, seen = [], set()
        files = [cafile] if cafile else []
        try:
            files += [os.path.join(capath, n) for n in sorted(os.listdir(capath)) if re.match(r"^[0-9a-f]{8}\.\d+$", n)]
        except (OSError, TypeError):
            pass
        for path in files:
            try:
                found = pem_certs(read_bytes(path))
            except OSError:
                continue
            for der in found:
                if der not in seen:
                    seen.add(der)
                    ders.append(der)
        return ders

    @staticmethod
    def hiding_variables():
        """The variables that replace the OS store for OpenSSL (and so truststore, and pip): [(name, value)]."""
        paths = ssl.get_default_verify_paths()
        return [(var, os.environ[var]) for var in (paths.openssl_cafile_env, paths.openssl_capath_env)
                if os.environ.get(var)]

    @staticmethod
    def machine_roots():
        """The roots of the machine's own store, as OpenSSL finds them when no variable names others."""
        paths = ssl.get_default_verify_paths()
        cafile = next((c for c in (paths.openssl_cafile,) + _Linux.bundles if c and os.path.isfile(c)), None)
        return _Linux.store_roots(cafile, paths.openssl_capath)

    @staticmethod
    def os_context():
        return pip_verifier()                             # OpenSSL's file and folder, as truststore's

    @staticmethod
    def config_paths():
        dirs = [d for d in (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d]
        return _Posix.pip_paths([os.path.join(d, "pip", "pip.conf") for d in dirs] + ["/etc/pip.conf"],
                                os.path.join(_xdg("XDG_CONFIG_HOME", "~/.config"), "pip", "pip.conf"))

    @staticmethod
    def data_dir(scope):
        if scope == "global":
            return "/usr/local/share/trustfix"
        return os.path.join(_xdg("XDG_DATA_HOME", "~/.local/share"), "trustfix")

    @staticmethod
    def add_ca(der, info):
        if os.geteuid() != 0:
            raise Failure("adding a CA to the Linux trust store needs root: run `sudo {} bootstrap.py "
                          "--add-to-os-store` or leave the option out.".format(sys.executable))
        for folder, command in _Linux.anchors:
            if os.path.isdir(folder) and shutil.which(command[0]):
                path = os.path.join(folder, "trustfix-{}.crt".format(info["sha256"][:16]))
                return {"kind": "file+command", "path": path, "data": der_to_pem(der), "command": command}
        raise Failure("no supported trust store tool (update-ca-certificates or update-ca-trust) was found; "
                      "add the CA with your distribution's tool instead.")

    @staticmethod
    def remove_ca(record):
        """The anchor file is a journaled file (undo removes it first); the store is refreshed without it."""
        run(record["command"])

    @staticmethod
    def is_anchor_path(path):
        return any(os.path.dirname(path) == folder for folder, _ in _Linux.anchors) and \
            bool(re.match(r"^trustfix-[0-9a-f]{16}\.crt$", os.path.basename(path)))

    @staticmethod
    def valid_ca_record(record):
        return isinstance(record, dict) and record.get("kind") == "file+command" and \
            _Linux.is_anchor_path(str(record.get("path"))) and record.get("command") in [c for _, c in _Linux.anchors]

    @staticmethod
    def read_proxy_settings(run, environ):
        """GNOME's settings, in a desktop session only (XDG_CURRENT_DESKTOP or a session bus): outside one (ssh,
        a service, CI) there are none to read, and dconf would create ~/.cache/dconf (doctor changes nothing)."""
        if not (environ.get("XDG_CURRENT_DESKTOP") or environ.get("DBUS_SESSION_BUS_ADDRESS")):
            return SOURCE_GNOME, None
        return SOURCE_GNOME, read_gsettings(run)

    @staticmethod
    def proc_version():
        """The kernel's own description (/proc/version; WSL's names Microsoft), or ''."""
        try:
            return read_bytes(PROC_VERSION).decode("utf-8", "replace")
        except OSError:
            return ""

    @staticmethod
    def scratch_dir():
        """/dev/shm (memory) unless TMPDIR (or TEMP, TMP) names a folder: the installer's ~500 unpacked
        files cost a fraction there of what creating them costs on a disk (0.05 s against 0.2-0.8 s here)."""
        if any(os.environ.get(var) for var in ("TMPDIR", "TEMP", "TMP")):
            return None
        try:
            st = os.statvfs("/dev/shm")
        except OSError:
            return None
        roomy = st.f_bavail * st.f_frsize >= 128 << 20            # we need ~25 MB; leave a small one alone
        return "/dev/shm" if roomy and os.access("/dev/shm", os.W_OK | os.X_OK) else None


class _CommandStore:
    """An OS store that takes a CA by a command on a PEM file ({file}: _add) and gives it back by its SHA-1
    thumbprint (_undo): macOS's keychain, Windows' certificate store."""

    @classmethod
    def add_ca(cls, der, info):
        sha1 = hashlib.sha1(der).hexdigest().upper()
        return {"kind": "command", "sha1": sha1, "data": der_to_pem(der), "command": cls._add(), "undo": cls._undo(sha1)}

    @staticmethod
    def remove_ca(record):
        run(record["undo"])

    @staticmethod
    def is_anchor_path(path):
        return False

    @classmethod
    def valid_ca_record(cls, record):
        sha1 = str(isinstance(record, dict) and record.get("sha1"))
        return bool(re.match(r"^[0-9A-F]{40}$", sha1)) and record.get("kind") == "command" and \
            record.get("undo") == cls._undo(sha1)


class _MacOS(_Posix, _CommandStore):
    name = "macOS"
    keychains = ("/System/Library/Keychains/SystemRootCertificates.keychain", "/Library/Keychains/System.keychain")

    @staticmethod
    def os_roots():
        out = run(["security", "find-certificate", "-a", "-p"] + list(_MacOS.keychains))
        return pem_certs(out.stdout.encode("ascii", "replace")) if out.returncode == 0 else []

    @staticmethod
    def os_context():
        """The keychains' roots: OpenSSL on macOS reads none of them (truststore asks the Security framework)."""
        roots = _MacOS.os_roots()
        return pip_verifier(cadata="".join(der_to_pem(d) for d in roots)) if roots else None

    @staticmethod
    def config_paths():
        new = os.path.expanduser("~/Library/Application Support/pip")
        return _Posix.pip_paths(["/Library/Application Support/pip/pip.conf"],
                                os.path.join(new, "pip.conf") if os.path.isdir(new)
                                else os.path.expanduser("~/.config/pip/pip.conf"))

    @staticmethod
    def data_dir(scope):
        if scope == "global":
            return "/Library/Application Support/trustfix"
        return os.path.expanduser("~/Library/Application Support/trustfix")

    keychain = "~/Library/Keychains/login.keychain-db"

    @staticmethod
    def _add():
        return ["security", "add-trusted-cert", "-r", "trustRoot", "-k", os.path.expanduser(_MacOS.keychain), "{file}"]

    @staticmethod
    def _undo(sha1):
        return ["security", "delete-certificate", "-Z", sha1, os.path.expanduser(_MacOS.keychain)]

    @staticmethod
    def user_scheme():
        return "osx_framework_user" if sysconfig.get_config_var("PYTHONFRAMEWORK") else "posix_user"

    @staticmethod
    def read_proxy_settings(run, environ):
        return SOURCE_MACOS, read_scutil_proxy(run)

    @staticmethod
    def scratch_dir():
        return None                                               # $TMPDIR, on the system disk (APFS)


class _Windows(_CommandStore):
    name = "Windows"
    owners_matter = False          # ACLs: %LOCALAPPDATA% is per user; ProgramData's folder is locked down
    conda_machine_dirs = ("C:\\ProgramData\\conda",)
    git_os_store = ("http.sslBackend", "schannel")      # Git for Windows: the Windows certificate store
    git_reads_os_store = False
    admin_words = ""

    @staticmethod
    def tool_config_home(scope):
        if scope == "global":
            return os.environ.get("PROGRAMDATA", "C:\\ProgramData")
        return os.environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")

    @staticmethod
    def git_system_config(git):
        """Git for Windows: <its folder>\\etc\\gitconfig (git.exe is in cmd\\ or bin\\)."""
        return os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(git))), "etc", "gitconfig")
    hiding_variables, proc_version = staticmethod(_Posix.hiding_variables), staticmethod(_Posix.proc_version)

    @staticmethod
    def os_roots():
        ders = []
        for store in ("ROOT", "CA"):
            for der, encoding, trust in ssl.enum_certificates(store):
                if encoding == "x509_asn" and (trust is True or "1.3.6.1.5.5.7.3.1" in trust):
                    ders.append(der)
        return ders

    @staticmethod
    def os_context():
        return pip_verifier()                             # loads the ROOT and CA stores

    @staticmethod
    def config_paths():
        appdata = os.environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")
        programdata = os.environ.get("ProgramData", "C:\\ProgramData")
        return {"global": [os.path.join(programdata, "pip", "pip.ini")],
                "user": [os.path.join(os.path.expanduser("~"), "pip", "pip.ini"),
                         os.path.join(appdata, "pip", "pip.ini")],
                "site": [os.path.join(sys.prefix, "pip.ini")]}

    @staticmethod
    def data_dir(scope):
        if scope == "global":
            return os.path.join(os.environ.get("ProgramData", "C:\\ProgramData"), "trustfix")
        return os.path.join(os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local"), "trustfix")

    @staticmethod
    def _add():
        return ["certutil", "-user", "-addstore", "Root", "{file}"]

    @staticmethod
    def _undo(sha1):
        return ["certutil", "-user", "-delstore", "Root", sha1]

    @staticmethod
    def is_admin():
        try:
            import ctypes
            return bool(ctypes.windll.shell32.IsUserAnAdmin())
        except (ImportError, AttributeError, OSError):
            return False

    # ProgramData lets every user create folders there (and own them): a folder this run makes, and the
    # machine's trustfix folder always, gets Administrators and SYSTEM as owner and sole writers, and
    # Users read-only, with no inherited entries left.
    LOCK_DOWN = (["/setowner", "*S-1-5-32-544", "/T", "/C", "/Q"],
                 ["/inheritance:r", "/grant:r", "*S-1-5-32-544:(OI)(CI)F", "*S-1-5-18:(OI)(CI)F",
                  "*S-1-5-32-545:(OI)(CI)RX", "/T", "/C", "/Q"])

    @staticmethod
    def lock_down(folder):
        for options in _Windows.LOCK_DOWN:
            proc = run(["icacls", folder] + options)
            if proc.returncode != 0:
                raise Failure("cannot restrict {} to administrators (icacls: {}); run bootstrap.py again as an "
                              "administrator.".format(folder, proc.stdout.strip()[-200:]))

    @staticmethod
    def try_lock(fd):
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    @staticmethod
    def user_scheme():
        return "nt_user"

    @staticmethod
    def read_proxy_settings(run, environ):
        return SOURCE_WINDOWS, read_reg_internet_settings(run)

    @staticmethod
    def scratch_dir():
        return None                                               # %TEMP%


OS = {"win32": _Windows, "darwin": _MacOS}.get(sys.platform, _Linux)


def missing_from_os_store(cas):
    """The CAs among cas ([(DER, info)]) that this OS store does not hold (it is read only when cas is not empty)."""
    present = {hashlib.sha256(d).hexdigest() for d in OS.os_roots()} if cas else set()
    return [(der, info) for der, info in cas if info["sha256"] not in present]


# --------------------------------------------------------------------------------------------------
# pip configuration: every source pip itself would read, lowest precedence first
# --------------------------------------------------------------------------------------------------

CONFIG_KEYS = ("index-url", "extra-index-url", "cert", "client-cert", "trusted-host", "proxy", "find-links")


def pip_config_encoding():
    """The encoding pip reads its configuration files in (pip/_internal/configuration.py): UTF-8 in
    Python's UTF-8 mode, else the locale's, which on Windows is the ANSI code page (cp1252, ...)."""
    if getattr(sys.flags, "utf8_mode", 0):
        return "utf-8"
    import locale
    getencoding = getattr(locale, "getencoding", None)          # 3.11+
    return getencoding() if getencoding else locale.getpreferredencoding(False)


def read_config_file(path):
    """({section: {key: value}} for the keys that matter, error_sentence_or_None) as pip would read it."""
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding=pip_config_encoding()) as f:
            parser.read_file(f)
    except (configparser.Error, UnicodeDecodeError) as e:
        return None, "pip cannot read its configuration file {} ({}); fix or move that file".format(
            path, str(e).splitlines()[0])
    except OSError as e:
        return None, "cannot read {}: {}".format(path, e.strerror)
    return ({s: {k.replace("_", "-"): v for k, v in parser.items(s) if k.replace("_", "-") in CONFIG_KEYS}
             for s in parser.sections()}, None)


def pip_config_sources(environ=None):
    """[(scope, path, sections_or_None, error_or_None)] in pip's order, lowest first; PIP_* as 'env'."""
    environ = os.environ if environ is None else environ
    env_file = environ.get("PIP_CONFIG_FILE")
    paths = OS.config_paths()
    sources = []
    if env_file != os.devnull:                                # os.devnull: pip reads no file at all
        skip_user = bool(env_file) and os.path.exists(env_file)
        for scope in ("global", "user", "site"):
            if scope == "user" and skip_user:
                continue
            for path in paths[scope]:
                if os.path.isfile(path):
                    sources.append((scope, path) + read_config_file(path))
                else:
                    sources.append((scope, path, None, None))
        if env_file and os.path.isfile(env_file):
            sources.append(("env-file", env_file) + read_config_file(env_file))
    variables = {k[4:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("PIP_")}
    sources.append(("env", "PIP_* variables", {"global": {k: v for k, v in variables.items()
                                                          if k in CONFIG_KEYS}}, None))
    return sources


def config_value(sources, key, command="install"):
    """The value pip would use for key with `pip <command>`: as pip does, [global] of every file (in file
    order), then [command] of every file, then PIP_* variables; empty values do not count."""
    value, where = None, None
    files = [src for src in sources if src[0] != "env"]
    env = [src for src in sources if src[0] == "env"]
    for section, group in (("global", files), (command, files), ("global", env)):
        for scope, path, sections, _ in group:
            found = (sections or {}).get(section, {}).get(key)
            if found:
                value, where = found, path
    return value, where


def user_config_target(scope, environ=None):
    """The file to write `cert` to for a scope, as pip reads it."""
    environ = os.environ if environ is None else environ
    paths = OS.config_paths()
    if scope == "user":
        env_file = environ.get("PIP_CONFIG_FILE")
        if env_file and env_file != os.devnull and os.path.isfile(env_file):
            return env_file                                   # pip skips the user files then
        return paths["user"][-1]
    return paths[scope][-1] if scope == "site" else paths["global"][-1]


def ini_layout(lines):
    """[(kind, section, key)] per line, as configparser (pip's reader) sees it: header, option,
    continuation (more indented than its option: part of the value, blank lines inside included),
    blank (also comments), other. A section is the text between the first [ and the last ], unstripped:
    pip ignores `[ global ]` (it is the section " global ")."""
    out, section, option_indent, in_option = [], None, 0, False
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            out.append(("blank", section, None))
            continue
        indent = len(line) - len(line.lstrip())
        if in_option and indent > option_indent:
            out.append(("continuation", section, None))
            continue
        option_indent, in_option = indent, False
        header = re.match(r"^\[(.+)\]", stripped)
        if header:
            section = header.group(1)
            out.append(("header", section, None))
            continue
        option = re.match(r"^(.*?)\s*[=:]", stripped)
        if option and section is not None:
            in_option = True
            out.append(("option", section, pip_key(option.group(1))))
        else:
            out.append(("other", section, None))
    return out


def pip_key(name):
    """An option name as pip compares it: lower case, _ as -, no leading --."""
    name = name.strip().lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def set_ini_key(text, section, key, value):
    """Set key in [section] of an INI text, changing only that option's lines (the line and its
    continuation lines) or adding one line; keeps everything else byte for byte."""
    lines = text.splitlines(True)
    newline = "\r\n" if "\r\n" in text else "\n"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    layout = ini_layout(lines)
    line = "{} = {}{}".format(key, value, newline)
    for i, (kind, sec, name) in enumerate(layout):
        if kind == "option" and sec == section and name == key:
            end = j = i + 1
            while j < len(layout) and layout[j][0] in ("continuation", "blank"):
                end = j + 1 if layout[j][0] == "continuation" else end
                j += 1
            lines[i:end] = [line]
            return "".join(lines)
    headers = [i for i, (kind, sec, _) in enumerate(layout) if kind == "header" and sec == section]
    if not headers:
        if lines and lines[-1].strip():
            lines.append(newline)
        return "".join(lines + ["[{}]{}".format(section, newline), line])
    insert_at = headers[0] + 1
    for j in range(headers[0] + 1, len(layout)):
        if layout[j][0] == "header":
            break
        if layout[j][0] != "blank":
            insert_at = j + 1
    lines.insert(insert_at, line)
    return "".join(lines)


def ini_values(text):
    """{section: {key: value}} of an INI text exactly as pip's configparser reads it (keys as pip
    compares them); raises configparser.Error."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return {s: {pip_key(k): v for k, v in parser.items(s)} for s in parser.sections()}


def checked_ini_edit(text, section, key, value, path):
    """set_ini_key, then read back as pip will: the key has the value and nothing else moved."""
    new = set_ini_key(text, section, key, value)
    expected = ini_values(text)
    expected.setdefault(section, {})[key] = value
    try:
        ok = ini_values(new) == expected
    except configparser.Error:
        ok = False
    if not ok:
        raise Failure("bootstrap.py could not set {} in {} so that pip reads it back as intended; nothing "
                      "was changed there. Add `{} = {}` under [{}] yourself.".format(key, path, key, value, section))
    return new


# --------------------------------------------------------------------------------------------------
# Survey: what this interpreter and this machine have. Reads only; no pip process.
# --------------------------------------------------------------------------------------------------

def installed_distributions():
    """{name: (version, dist-info path)} for pip, truststore, certifi and requests on this interpreter's path. An
    install that was cut off (finished_install) is not an installed one."""
    found, ours = {}, journaled_installs()
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == HERE or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            m = re.match(r"^(pip|truststore|certifi|requests)-([^-]+)\.dist-info$", name, re.I)
            if m and m.group(1).lower() not in found and finished_install(os.path.join(entry, name), ours):
                found[m.group(1).lower()] = (m.group(2), os.path.join(entry, name))
    return found


def finished_install(dist_info, ours=()):
    """Whether the install of a dist-info got to its end. Its installer writes the RECORD last; but pip first
    unpacks the wheel's own RECORD with the other files, then writes the scripts, INSTALLER and its own RECORD,
    which lists that INSTALLER. So a dist-info in ours (journaled_installs: bootstrap.py's pip installed it)
    whose RECORD lists no INSTALLER, or that has none, was cut off; any other counts once it has a RECORD
    (`python -m installer`, which distributions use, writes no INSTALLER)."""
    record = os.path.join(dist_info, "RECORD")
    info = os.path.basename(dist_info).lower()
    if info not in ours:
        return os.path.isfile(record)
    try:
        with open(record, encoding="utf-8") as f:
            return any(line.split(",", 1)[0].lower() == info + "/installer" for line in f)
    except (OSError, ValueError):
        return False


def interrupted_install(site_dir, name, ours=()):
    """What a pip install of name that was killed leaves in site_dir: pip's stash of the old files (pip moves
    them to ~ip, ~ip-23.2.1.dist-info, ... and back or away when it ends) and a dist-info it did not finish
    (finished_install, with ours)."""
    try:
        names = os.listdir(site_dir)
    except OSError:
        return []
    tails = [re.escape(name[i:]) for i in range(1, len(name))]
    stash = re.compile(r"^~[-~.=%0-9]*(?:{})(?:-[^-]+\.dist-info)?$".format("|".join(tails)), re.I)
    partial = re.compile(r"^{}-[^-]+\.dist-info$".format(re.escape(name)), re.I)
    return [os.path.join(site_dir, n) for n in sorted(names) if stash.match(n) or
            (partial.match(n) and not finished_install(os.path.join(site_dir, n), ours))]


def record_digest(dist_info, relpath):
    """The sha256 hex digest that a distribution's RECORD gives for one of its files."""
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").rsplit(",", 2)
                if len(parts) == 3 and parts[0] == relpath and parts[1].startswith("sha256="):
                    raw = base64.urlsafe_b64decode(parts[1][7:] + "=" * (-len(parts[1][7:]) % 4))
                    return raw.hex()
    except OSError:
        pass
    return None


def certifi_files(dists):
    """[(path, expected_sha256_or_None)] of certifi bundles pip may use (vendored and installed)."""
    out = []
    for name, rel in (("pip", "pip/_vendor/certifi/cacert.pem"), ("certifi", "certifi/cacert.pem")):
        if name in dists:
            dist_info = dists[name][1]
            path = os.path.join(os.path.dirname(dist_info), *rel.split("/"))
            if os.path.isfile(path):
                out.append((path, record_digest(dist_info, rel)))
    return out


def externally_managed():
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        return None
    marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    return marker if os.path.isfile(marker) else None


def writable(path):
    """Whether this user may write path (a file or folder), or create it in the deepest folder that exists."""
    path = path if os.path.exists(path) else existing_folder(path)
    return bool(path) and os.access(path, os.W_OK)


def proxy_for(url):
    """The proxy URL urllib (and pip, through requests) would use for url, honouring NO_PROXY."""
    import urllib.request
    host = host_of(url) or ""
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(host):
        return None
    return proxies.get(urllib.parse.urlsplit(url).scheme)


class Survey(Record):
    """What this interpreter and this machine have (take_survey); read only, never changed after."""

    __slots__ = ("version", "executable", "prefix", "venv", "openssl", "os", "pip", "truststore", "dists",
                 "externally_managed", "purelib", "purelib_writable", "user_site_enabled", "index_url", "proxy",
                 "config_sources", "certifi_files")

    def as_json(self):
        return {"python": {"version": self.version, "executable": self.executable, "prefix": self.prefix,
                           "venv": self.venv},
                "openssl": self.openssl, "os": self.os, "pip": self.pip, "truststore": self.truststore,
                "externally_managed": self.externally_managed, "purelib": self.purelib,
                "purelib_writable": self.purelib_writable, "user_site_enabled": self.user_site_enabled,
                "index_url": self.index_url, "proxy": self.proxy, "certifi_files": self.certifi_files}


def take_survey(args):
    dists = installed_distributions()
    sources = pip_config_sources()
    index_url = args.index_url or config_value(sources, "index-url")[0] or DEFAULT_INDEX
    index_url = index_url.split()[0].rstrip("/")
    purelib = sysconfig.get_path("purelib")
    return Survey(
        version=vstr(sys.version_info[:3]), executable=sys.executable, prefix=sys.prefix,
        venv=sys.prefix != getattr(sys, "base_prefix", sys.prefix), openssl=ssl.OPENSSL_VERSION, os=OS.name,
        pip=dists.get("pip", (None,))[0], truststore=dists.get("truststore", (None,))[0], dists=dists,
        externally_managed=externally_managed(), purelib=purelib, purelib_writable=writable(purelib),
        user_site_enabled=bool(getattr(__import__("site"), "ENABLE_USER_SITE", False)), index_url=index_url,
        # offline, nothing is connected to, so the proxy (and urllib.request, to find it) is not needed
        proxy=None if getattr(args, "offline", False) else proxy_for(index_url) or config_value(sources, "proxy")[0],
        config_sources=sources, certifi_files=certifi_files(dists))


def survey_warnings(s, environ=None):
    """Things that are wrong with the machine's setup, each with its fix."""
    environ = os.environ if environ is None else environ
    out = []
    for scope, path, sections, error in s.config_sources:
        if error:
            out.append(error + ": pip stops on it.")
        for section, values in (sections or {}).items():
            if "trusted-host" in values:
                where = "PIP_TRUSTED_HOST" if scope == "env" else "{} [{}]".format(path, section)
                out.append("{} sets trusted-host = {}: pip then does not verify TLS for those hosts at all. "
                           "Remove it; after bootstrap.py it is not needed.".format(
                               where, " ".join(values["trusted-host"].split())))
    for scope, path, sections, error in s.config_sources:
        for section in sections or {}:
            if section != section.strip() and section.strip() in ("global", "install", "download"):
                out.append("{} has a section [{}]: pip ignores it, because of the spaces; write [{}].".format(
                    path, section, section.strip()))
    for path, expected in s.certifi_files:
        if expected and sha256_file(path) != expected:
            out.append("{} was edited by hand (its SHA-256 no longer matches certifi's RECORD); the next "
                       "upgrade silently undoes such edits. Reinstall that package to restore it.".format(path))
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = environ.get(var)
        if value and not os.path.exists(value):
            out.append("{} points to {}, which does not exist: pip stops with an OSError. Unset it or fix "
                       "the path.".format(var, value))
    return out


# --------------------------------------------------------------------------------------------------
# Network: one probe (tls_probe -> Probe), one downloader (http_get), one reading of a failure
# (failure_of) and one wording of it (network_problem); through the user's proxy, with bounded timeouts
# --------------------------------------------------------------------------------------------------

TRUST_FAILED = ("untrusted", "expired", "not-yet-valid", "wrong-host")   # it answered; its certificate failed
NETWORK_DOWN = ("proxy-auth", "dns", "no-route", "refused", "timeout", "error")   # no answer to judge
OFFLINE = ("dns", "no-route")      # no DNS, no route: this computer has no network (a refusal, a 407 or a
                                   # timeout is a network that is there but fails, which the user must hear)


class Probe:
    """One TLS handshake and HTTP request to a URL with one set of trust anchors (tls_probe). status: ok;
    untrusted | expired | not-yet-valid | wrong-host (TRUST_FAILED); proxy-auth | dns | no-route | refused |
    timeout | error (NETWORK_DOWN); unavailable (no such anchors here). date: the server's Date header (ok
    only); schemes: the logins a proxy's 407 offers (proxy-auth only)."""

    __slots__ = ("status", "detail", "date", "schemes")

    def __init__(self, status, detail, date=None, schemes=None):
        self.status, self.detail, self.date, self.schemes = status, detail, date, schemes

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def untrusted(self):
        return self.status in TRUST_FAILED

    @property
    def reached(self):
        return self.status not in NETWORK_DOWN

    def as_json(self):
        """doctor's tls_result."""
        out = {"status": self.status, "detail": self.detail}
        if self.ok:
            out["date"] = self.date
        if self.status == "proxy-auth":
            out["schemes"] = self.schemes or []
        return out

    def as_plan(self):
        """The plan's word for it: ok | unavailable | untrusted: <why>."""
        return self.status if self.status in ("ok", "unavailable") else "untrusted: " + self.detail

    def __repr__(self):
        return "Probe({!r}, {!r})".format(self.status, self.detail)


def pip_verifier(cafile=None, cadata=None):
    """An SSLContext that verifies as pip does: ssl.create_default_context() (the OS store when no anchors
    are given) without the two flags Python 3.13 added to it, VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN,
    which pip's verifiers do not set (truststore's inner SSLContext, urllib3 1.26's). Every probe of bootstrap.py
    uses it, so it judges the index as the pip it leaves behind will (a 2014 Zscaler root passes pip and fails
    the stdlib on 3.13); nothing the product leaves behind is changed by it. strict_view() is the stdlib's view."""
    ctx = ssl.create_default_context(cafile=cafile, cadata=cadata)
    ctx.verify_flags &= ~(getattr(ssl, "VERIFY_X509_STRICT", 0) | getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0))
    return ctx


def strict_view():
    """The verification of urllib and http.client, and of requests (urllib3 >= 2.4) and httpx, on this Python:
    ssl.create_default_context() as it is (X.509 strict mode from Python 3.13)."""
    return ssl.create_default_context()


def cadata_context(pem_bytes):
    return pip_verifier(cadata=pem_bytes.decode("ascii", "replace"))


def unverified_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def proxy_parts(proxy):
    """(host, port, Proxy-Authorization header or None) of an http:// proxy URL, as pip (urllib3) and urllib
    use it: port 80 when the URL names none, Basic with the URL's user and password."""
    parts = urllib.parse.urlsplit(proxy)
    login = None
    if parts.username:
        token = "{}:{}".format(urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        login = "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return parts.hostname, parts.port or 80, login


def https_connection(host, port, proxy, context, timeout):
    """An HTTPSConnection to host:port, tunnelled through an http:// proxy (with its login) when given."""
    import http.client
    if not proxy:
        return http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
    proxy_host, proxy_port, login = proxy_parts(proxy)
    conn = http.client.HTTPSConnection(proxy_host, proxy_port, context=context, timeout=timeout)
    conn.set_tunnel(host, port, {"Proxy-Authorization": login} if login else {})
    return conn


def proxy_auth_schemes(proxy, host, port=443):
    """The login schemes a proxy's 407 offers (its Proxy-Authenticate headers), asked with one CONNECT of
    our own, since http.client and urllib drop the headers of a tunnel that failed. [] when they cannot be
    told."""
    proxy_host, proxy_port, login = proxy_parts(proxy or "")
    if not proxy_host:
        return []
    lines = ["CONNECT {0}:{1} HTTP/1.1".format(host, port), "Host: {0}:{1}".format(host, port)]
    if login:                                           # what pip would send
        lines.append("Proxy-Authorization: " + login)
    data = b""
    try:
        with socket.create_connection((proxy_host, proxy_port), timeout=TIMEOUT) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return []
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    if not head or " 407" not in head[0]:
        return []
    schemes = []
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() != "proxy-authenticate":
            continue
        for item in value.split(","):                   # "Negotiate, NTLM" or "Basic realm=\"x\", ..."
            token = item.strip().split(" ")[0]
            if token and "=" not in token and token.lower() not in [x.lower() for x in schemes]:
                schemes.append(token)
    return schemes


def failure_of(exc, proxy, host, port, timeout):
    """A failed connection as a Probe (its status and detail): the one reading of TLS and network errors,
    for the probe and the downloader alike."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc     # urllib wraps the cause
    if isinstance(exc, urllib.error.URLError) and not isinstance(reason, BaseException):
        reason = OSError(str(reason))                          # (a text instead, on some paths)
    if isinstance(reason, ssl.SSLError):
        code = getattr(reason, "verify_code", None)
        message = getattr(reason, "verify_message", None) or str(reason)
        if "CERTIFICATE_VERIFY_FAILED" not in str(reason) and code is None:
            return Probe("error", str(reason))                  # a handshake that failed otherwise
        status = {10: "expired", 9: "not-yet-valid", 62: "wrong-host", 64: "wrong-host"}.get(code, "untrusted")
        return Probe("wrong-host" if "mismatch" in message.lower() else status, message)
    if isinstance(reason, getattr(ssl, "CertificateError", ())):          # Python 3.6: hostname mismatch
        return Probe("wrong-host", str(reason))
    text = str(reason)
    if isinstance(reason, socket.timeout) or "timed out" in text:
        return Probe("timeout", "no answer within {:.0f} s".format(timeout))
    if isinstance(reason, socket.gaierror):
        return Probe("dns", "name not resolved: {}".format(reason.strerror or reason))
    if isinstance(reason, ConnectionRefusedError):
        return Probe("refused", "connection refused by {}".format(redact(proxy) if proxy else host))
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return Probe("no-route", "no route to {}: {}".format(host, reason.strerror or reason))
    if "407" in text:
        return Probe("proxy-auth", "the proxy answered 407 Proxy Authentication Required",
                     schemes=proxy_auth_schemes(proxy, host, port))
    return Probe("error", text or reason.__class__.__name__)


def windows_login_advice(proxy, schemes):
    """(cause, fix) for a proxy whose 407 offers only logins pip and uv cannot do (NTLM, Negotiate,
    Kerberos); None when it offers Basic or cannot be told (the plain 407 advice then)."""
    if not schemes or any(x.lower() == "basic" for x in schemes):
        return None
    return ("the proxy {} asks for a Windows login ({}), which pip and uv cannot do (they speak Basic "
            "only)".format(redact(proxy), ", ".join(schemes)),
            "run a local authenticating proxy that logs in for you (px or cntlm, both listen on 127.0.0.1:3128 "
            "by default), then set HTTPS_PROXY=http://127.0.0.1:3128 and HTTP_PROXY the same; or ask IT for a "
            "proxy that takes Basic")


def network_problem(probe, url, proxy, timeout=None):
    """(cause, fix) for a probe that did not reach url: the words of install's error and doctor's verdict."""
    host = host_of(url)
    via = " through the proxy {}".format(redact(proxy)) if proxy else ""
    status = probe.status
    if status == "proxy-auth":
        return windows_login_advice(proxy, probe.schemes) or (
            "the proxy {} demands a login (HTTP 407)".format(redact(proxy)),
            "put the user and password in the proxy URL (HTTPS_PROXY=http://user:password@host:port), or ask IT "
            "which proxy to use")
    if status == "timeout":
        return ("{} did not answer within {:.0f} seconds{}".format(host, timeout or TIMEOUT, via),
                "check the network, the VPN or HTTPS_PROXY; without a network, --offline uses only the bundle's wheels")
    if status == "dns":
        return ("the name {} cannot be resolved (DNS){}".format(
            host_of(proxy) if proxy else host, via),
            "connect to the network (or the VPN); behind a proxy, set HTTPS_PROXY")
    if status == "no-route":
        return ("{} cannot be reached: this computer has no route to it{}".format(host, via),
                "connect to the network (or the VPN); without a network, --offline uses only the bundle's wheels")
    if status == "refused":
        return ("{} refused the connection".format(redact(proxy) if proxy else host),
                "check that HTTPS_PROXY and the index URL name the right address, and that it is up")
    return ("could not reach {}{}: {}".format(host, via, probe.detail), "check the network and HTTPS_PROXY")


def tls_probe(url, proxy, context, timeout=None):
    """Connect to url's host (through proxy) and HEAD url: a Probe. Never raises. Any HTTP answer means TLS
    worked: the status of the page is another matter."""
    import http.client
    timeout = timeout or TIMEOUT
    if context is None:
        return Probe("unavailable", "no such trust store here")
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or 443
    try:
        conn = https_connection(host, port, proxy, context, timeout)
        try:
            conn.request("HEAD", parts.path or "/", headers={"User-Agent": "trustfix/" + __version__})
            response = conn.getresponse()
        finally:
            conn.close()
        return Probe("ok", "HTTP {}".format(response.status), date=response.getheader("Date"))
    except (OSError, ValueError, http.client.HTTPException) as e:   # ValueError: 3.6's CertificateError
        return failure_of(e, proxy, host, port, timeout)


def named_in(name, ders):
    """Whether a certificate with that subject is among ders."""
    for der in ders:
        try:
            if parse_cert(der)["subject"] == name:
                return True
        except (ValueError, IndexError):
            continue
    return False


def hidden_by_variable(issuer):
    """[(name, value)] of the variables (SSL_CERT_FILE, SSL_CERT_DIR) that hide the issuer from OpenSSL and
    truststore, which the machine's own store has; None when none does."""
    variables = OS.hiding_variables()
    if not variables or not issuer or named_in(issuer, OS.os_roots()):
        return None
    return variables if named_in(issuer, OS.machine_roots()) else None


def hidden_by_variable_advice(found, issuer):
    names = " and ".join(name for name, _ in found)
    return ("{} replace{} this computer's trust store for OpenSSL and truststore (so pip), and lack{} {}, which the "
            "store has".format(" and ".join("{}={}".format(n, v) for n, v in found), "" if len(found) > 1 else "s",
                               "" if len(found) > 1 else "s", issuer),
            "unset {0} where {1} set (a shell profile, conda's activation scripts: grep -rn SSL_CERT_ ~/.bashrc "
            "~/.profile ~/.zshrc ~/.conda), open a new terminal and run bootstrap.py again".format(
                names, "they are" if len(found) > 1 else "it is"))


def organisation(name):
    """The O= of a name as parse_cert writes it ('CN=x, O=y'); None without one."""
    m = re.search(r"(?:^|, )O=([^,]+)", name or "")
    return m.group(1) if m else None


def incomplete_chain_advice(host, incomplete):
    issuer, root = incomplete
    return ("{}'s certificate is issued by {}, an intermediate CA the proxy does not send with it; OpenSSL does "
            "not fetch missing intermediates, so nothing traces it to {}, which this computer trusts".format(
                host, issuer, root),
            "IT configures the proxy to send its intermediate CA with its certificate; until then get both CA "
            "files from IT and run: python bootstrap.py --ca-file intermediate.pem --ca-file root.pem")


def certificate_findings(chain):
    """What the certificates a server presents (leaf first) break, beyond plain trust: {"strict": [(which, defect)],
    "apple": [defect], "incomplete": (missing intermediate, the trusted root it probably hangs from) or None}.
    The root behind the chain is looked up in the OS store (it is not sent)."""
    found = {"strict": [], "apple": [], "incomplete": None}
    try:
        roots, infos = OS.os_roots(), [parse_cert(der) for der in chain]
    except (ValueError, IndexError):
        infos = []
    if not infos:
        return found
    top = infos[-1]
    behind = [d for d in roots if not top["self_signed"] and named_in(top["issuer"], [d])]
    if not top["self_signed"] and not behind:
        # an issuer neither sent nor trusted: an intermediate the proxy leaves out when a root of the same
        # organisation is trusted here (interception CAs keep their O= from root to issuing CA)
        org = organisation(top["issuer"])
        same = [i["subject"] for i in map(parse_cert, roots) if org and organisation(i["subject"]) == org]
        if same:
            found["incomplete"] = (top["issuer"], same[0])
    for i, (der, info) in enumerate(list(zip(chain, infos)) + [(d, parse_cert(d)) for d in behind[:1]]):
        which = "the proxy's certificate ({})".format(info["subject"]) if i == 0 else \
            "the root {}".format(info["subject"]) if info["self_signed"] else "the intermediate {}".format(info["subject"])
        found["strict"] += [(which, defect) for defect in strict_defects(der)]
    found["apple"] = apple_defects(chain[0])
    return found


def probe_index(url, proxy, contexts, timeout=None):
    """tls_probe url with each (label, context) in turn: {label: Probe}; stops at the first that does not
    reach it (the network itself fails: the next anchors would fail the same way)."""
    results = {}
    for label, ctx in contexts:
        results[label] = tls_probe(url, proxy, ctx, timeout)
        if not results[label].reached:
            break
    return results


class HTTPStatusError(Failure):
    """The server answered, with an HTTP error status (code)."""

    def __init__(self, text, code):
        Failure.__init__(self, text)
        self.code = code


def http_get(url, context, proxy, accept="*/*", limit=64 << 20):
    """GET url: (bytes, Content-Type, final URL). Raises TLSVerifyError for a certificate problem,
    HTTPStatusError for an HTTP error status, NetworkError for anything else."""
    import http.client
    import urllib.request
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "trustfix/" + __version__})
    handlers = [urllib.request.HTTPSHandler(context=context),
                urllib.request.ProxyHandler({"https": proxy, "http": proxy} if proxy else {})]
    parts = urllib.parse.urlsplit(url)
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=TIMEOUT) as response:
            chunks, size, ends = [], 0, time.time() + REQUEST_DEADLINE
            # read1: what has arrived (read(n) would wait for all n bytes, so a trickle never met the check)
            read = getattr(response, "read1", response.read)
            while size <= limit:
                chunk = read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if time.time() > ends:
                    raise NetworkError("{} sends too slowly: {} kB in {:.0f} seconds, not finished (a download may "
                                       "take {:.0f} s: 8 x TRUSTFIX_TIMEOUT); check the network or the proxy.".format(
                                           parts.hostname, size // 1024, REQUEST_DEADLINE, REQUEST_DEADLINE))
            if size > limit:
                raise Failure("{} sent more than {} bytes; refusing it.".format(url, limit))
            return b"".join(chunks), response.headers.get("Content-Type", ""), response.geturl()
    except urllib.error.HTTPError as e:
        raise HTTPStatusError("{} answered HTTP {} {} for {}.".format(parts.hostname, e.code, e.reason, url), e.code)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        probe = failure_of(e, proxy, parts.hostname, parts.port or 443, TIMEOUT)
        if probe.untrusted:
            raise TLSVerifyError(probe.detail)
        raise NetworkError("{}; {}.".format(*network_problem(probe, url, proxy)), probe.status)


def presented_chain(url, proxy):
    """The certificates the server (or an intercepting proxy) presents, as sent, leaf first: [DER]; []
    when they cannot be read. Only the leaf before Python 3.10 (no API for the rest)."""
    parts = urllib.parse.urlsplit(url)
    try:
        conn = https_connection(parts.hostname, parts.port or 443, proxy, unverified_context(), TIMEOUT)
        try:
            conn.connect()
            sock = conn.sock
            getter = getattr(sock, "get_unverified_chain", None) or \
                getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)        # 3.10 to 3.12
            chain = [c if isinstance(c, bytes) else c.public_bytes(2) for c in (getter() if getter else None) or []]
            return chain or [sock.getpeercert(True)]                                      # 2: ENCODING_DER
        finally:
            conn.close()
    except Exception:                                         # diagnostics only: never fail on it
        return []


def presented_issuer(url, proxy):
    """Who signed the certificate the server (or an intercepting proxy) presents: a parse_cert dict."""
    chain = presented_chain(url, proxy)
    try:
        return parse_cert(chain[0]) if chain else None
    except (ValueError, IndexError):
        return None


def html_links(text):
    """The href of every <a> in an HTML page (PEP 503)."""
    import html.parser
    links = []

    class Links(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href") if tag == "a" else None
            if href:
                links.append(href)
    parser = Links()
    parser.feed(text)
    parser.close()
    return links


def project_files(index_url, name, context, proxy):
    """[(filename, url, sha256_or_None)] from a PEP 691 (JSON) or PEP 503 (HTML) simple index."""
    page = index_url.rstrip("/") + "/" + name + "/"
    data, ctype, final = http_get(page, context, proxy,
                                  accept="application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    out = []
    if "json" in ctype:
        for f in json.loads(data.decode("utf-8")).get("files", []):
            out.append((f["filename"], urllib.parse.urljoin(final, f["url"]), f.get("hashes", {}).get("sha256")))
    else:
        for href in html_links(data.decode("utf-8", "replace")):
            url, _, fragment = urllib.parse.urljoin(final, href).partition("#")
            digest = fragment[7:] if fragment.startswith("sha256=") else None
            out.append((urllib.parse.unquote(url.rsplit("/", 1)[-1]), url, digest))
    allowed = ("https",) if urllib.parse.urlsplit(index_url).scheme == "https" else ("https", "http")
    kept = [f for f in out if urllib.parse.urlsplit(f[1]).scheme in allowed and host_of(f[1])]
    for name, url, _ in out:
        if (name, url, _) not in kept:
            log("ignored the link {} for {}: only {} links are followed from {}".format(
                url, name, " or ".join(allowed), index_url))
    return kept


def download_pins(pins, index_url, context, proxy, dest):
    """Fetch each pinned wheel into dest; each is kept only if its SHA-256 is one that hashes.txt pins."""
    paths = {}
    for pin in pins:
        files = [f for f in project_files(index_url, pin["name"], context, proxy)
                 if f[0].lower().startswith(wheel_prefix(pin).lower()) and f[0].endswith(".whl")]
        files.sort(key=lambda f: f[2] not in pin["hashes"])   # the published pinned digest first
        if not files:
            raise Failure("{} has no wheel of {}=={}; check the index URL ({}).".format(
                host_of(index_url), pin["name"], pin["version"], index_url))
        filename, url, _ = files[0]
        started = time.time()
        data = http_get(url, context, proxy)[0]
        digest = hashlib.sha256(data).hexdigest()
        if digest not in pin["hashes"]:
            raise BadInput("{} served by {} does not match hashes.txt (SHA-256 {}, pinned {}); it was "
                           "altered on the index or on the way. Nothing was installed.".format(
                               filename, host_of(url), digest, pin["hashes"][0]))
        path = os.path.join(dest, filename)
        with open(path, "wb") as f:
            f.write(data)
        paths[pin["name"]] = path
        log("downloaded {} ({} kB, {:.1f} s), SHA-256 matches hashes.txt".format(
            filename, len(data) // 1024, time.time() - started))
    return paths


# --------------------------------------------------------------------------------------------------
# Journal: every change is recorded with a backup BEFORE it happens, so undo restores byte for byte
# and an interrupted run can be run again (or undone).
# --------------------------------------------------------------------------------------------------

SCOPE = {"state": "user"}       # whose journal: main() sets "global" for --scope global
JOURNAL_VERSION = 1             # of journal.json; a journal of another version is refused, never guessed at


def state_dir():
    """Where the journal and backups live: next to the bundle, in a folder only that scope's owner can
    write (root / Administrators for --scope global, so a user cannot hand root a journal). The journal of
    --scope site lives with the user's, since it names the Python it changed. TRUSTFIX_STATE_DIR moves it
    (tests, fleet images); the same ownership rules apply there."""
    return os.environ.get("TRUSTFIX_STATE_DIR") or OS.data_dir("global" if SCOPE["state"] == "global" else "user")


LOCK_WAIT = env_seconds("TRUSTFIX_LOCK_WAIT", 120) or 120.0   # seconds a second run waits for the first


class RunLock:
    """One run (install or undo) at a time per journal: the journal is read at the start and written all
    along, so two at once would lose one's records. A second run waits up to LOCK_WAIT seconds, then stops
    with one sentence. The lock file is opened without following links, must be this user's, and is removed
    when the run ends (a waiter that then holds the lock of a removed file sees that and starts over, so two
    runs never hold two files). It sits in the temporary folder, named after the journal; for --scope global
    beside the machine's state folder (/usr/local/share/, /Library/Application Support/), where no other
    user can plant one first. A child of --all-pythons runs under its parent's lock (TRUSTFIX_LOCKED_BY
    names the parent's pid)."""

    def __init__(self):
        self.fd = self.path = None

    @staticmethod
    def where():
        state = os.path.abspath(state_dir())
        parent = os.path.dirname(state)
        if SCOPE["state"] == "global" and OS.owners_matter and not os.environ.get("TRUSTFIX_STATE_DIR") and \
                os.path.isdir(parent):
            return os.path.join(parent, ".trustfix.lock")
        key = hashlib.sha256(state.encode()).hexdigest()[:16]
        return os.path.join(tempfile.gettempdir(), "trustfix-{}.lock".format(key))

    def __enter__(self):
        if os.environ.get("TRUSTFIX_LOCKED_BY") == str(os.getppid()):
            return self
        path = self.where()
        ends = time.time() + LOCK_WAIT
        while True:
            fd = self._open(path)
            while not OS.try_lock(fd):
                if time.time() > ends:
                    os.close(fd)
                    raise Failure("another bootstrap.py run (install or undo) for this journal has been busy for "
                                  "{:.0f} seconds; let it finish, then run this again; nothing was changed.".format(
                                      LOCK_WAIT))
                time.sleep(0.2)
            if self._still_there(fd, path):
                break
            os.close(fd)                                       # its holder removed it as we waited: again
        self.fd, self.path = fd, path
        os.environ["TRUSTFIX_LOCKED_BY"] = str(os.getpid())       # for the children of --all-pythons
        return self

    @staticmethod
    def _open(path):
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as e:
            raise Failure("cannot open the lock file {} ({}); remove it if it is a link, then run again.".format(
                path, e.strerror))
        if OS.owners_matter and os.fstat(fd).st_uid != os.geteuid():
            os.close(fd)
            raise Failure("the lock file {} belongs to another user; remove it, then run again.".format(path))
        return fd

    @staticmethod
    def _still_there(fd, path):
        try:
            now, held = os.lstat(path), os.fstat(fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def __exit__(self, *exc):
        if self.fd is not None:
            if OS.owners_matter:
                try:
                    os.unlink(self.path)                          # still holding it: see _still_there
                except OSError:
                    pass
            os.close(self.fd)                                    # closing releases the lock
            self.fd = None
            os.environ.pop("TRUSTFIX_LOCKED_BY", None)


def check_private(path, what):
    """Refuse a journal or backup path that another user could have made or can change: on POSIX every
    existing folder on the way must belong to root or this user and be writable by no one else (a
    sticky /tmp is fine), and the path itself, if it exists, must not be a link and must be ours.
    Windows: not checked here (ACLs; %LOCALAPPDATA% is per user, %ProgramData%'s folder is made by an
    administrator)."""
    if not OS.owners_matter:
        return
    uid = os.geteuid()
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    while True:
        try:
            st = os.stat(folder)
        except OSError:
            st = None
        if st is not None:
            if st.st_uid not in (0, uid) or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX):
                raise Failure("the {} {} is not safe: {} can be changed by another user; bootstrap.py will "
                              "not use it (move it, or fix the folder's owner and permissions).".format(
                                  what, path, folder))
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if os.path.lexists(path):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
            raise Failure("the {} {} is not safe: it is {}; bootstrap.py will not use it.".format(
                what, path, "a symbolic link" if stat.S_ISLNK(st.st_mode) else
                "owned by another user (uid {})".format(st.st_uid) if st.st_uid != uid else
                "writable by other users"))


def backups_dir():
    """state_dir()/backups, made private (0700) before the first backup goes in."""
    path = os.path.join(state_dir(), "backups")
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)                                     # makedirs' mode is masked by the umask
    check_private(path, "backup folder")
    return path


def journal_path():
    return os.path.join(state_dir(), "journal.json")


def journal_load():
    path = journal_path()
    if not os.path.isfile(path):
        return {"version": JOURNAL_VERSION, "files": [], "packages": [], "os_store": [], "verified": None,
                "created_dirs": missing_folders(state_dir())}      # folders this run creates; undo removes them
    check_private(state_dir(), "state folder")
    check_private(path, "journal")
    try:
        with open(path, encoding="utf-8") as f:
            journal = json.load(f)
        problem = journal_problem(journal)
    except ValueError:
        problem = "it is not JSON"
    if problem:
        raise Failure("the journal {} is damaged ({}); it lists what bootstrap.py changed. Keep it and contact "
                      "IT, or delete it to start over (undo will then not know earlier changes).".format(path, problem))
    return journal


_BACKUP_NAME = re.compile(r"^backups[/\\][^/\\]+$")
_DIST_INFO = re.compile(r"^(pip|truststore)-[0-9][0-9A-Za-z.+!_-]*\.dist-info$", re.I)


def journal_problem(journal):
    """What makes a journal one this product did not write, or None: undo acts only on what it names,
    so each entry must be a change this product makes, for a path it writes."""
    if not isinstance(journal, dict) or not all(isinstance(journal.get(k), list) for k in ("files", "packages", "os_store")):
        return "not a journal"
    if journal.get("version", JOURNAL_VERSION) != JOURNAL_VERSION:
        return "version {!r}: written by another trustfix release; undo it with that one".format(journal["version"])
    state = os.path.realpath(state_dir())
    for folder in journal.get("created_dirs") or []:
        if not isinstance(folder, str) or not (state + os.sep).startswith(os.path.realpath(folder) + os.sep):
            return "created folder {!r} is not on the way to {}".format(folder, state)
    for e in journal["files"]:
        path = e.get("path") if isinstance(e, dict) else None
        if not isinstance(path, str) or not os.path.isabs(path) or os.path.normpath(path) != path:
            return "file entry {!r}".format(path)
        if not writable_target(path):
            return "{} is not a file bootstrap.py writes".format(path)
        if e.get("backup") is not None and not (isinstance(e["backup"], str) and _BACKUP_NAME.match(e["backup"])):
            return "backup {!r} of {}".format(e.get("backup"), path)
        if e.get("existed") and (e.get("backup") is None or not isinstance(e.get("mode"), int)):
            return "{} has no backup".format(path)
        for folder in e.get("created_dirs") or []:
            if not isinstance(folder, str) or not (path + os.sep).startswith(folder + os.sep):
                return "created folder {!r} is not on the way to {}".format(folder, path)
    for p in journal["packages"]:
        if not isinstance(p, dict) or not isinstance(p.get("python"), str) or not os.path.isabs(p["python"]) or \
                p.get("name") not in INSTALL or not _DIST_INFO.match(str(p.get("after"))) or \
                (p.get("before") is not None and not _DIST_INFO.match(str(p["before"]))) or \
                not set(p.get("flags") or []) <= {"--break-system-packages"} or \
                (p.get("backup") is not None and not _BACKUP_NAME.match(str(p["backup"]))):
            return "package entry {!r}".format(p)
    for record in journal["os_store"]:
        if not OS.valid_ca_record(record):
            return "OS store entry {!r}".format(record)
    return None


def writable_target(path):
    """Whether path is one this product writes: a pip configuration file pip reads (user, global,
    PIP_CONFIG_FILE, a Python's site file), a CA bundle in a trustfix data folder, an OS store anchor, or a
    file of --tools (is_tool_target)."""
    name, folder = os.path.basename(path), os.path.dirname(path)
    paths = OS.config_paths()
    known = paths["user"] + paths["global"] + [os.environ.get("PIP_CONFIG_FILE") or ""]
    known += [os.path.join(OS.data_dir(scope), "ca-bundle.pem") for scope in ("user", "global")]
    if path in known or path in [os.path.realpath(k) for k in known if k]:
        return True
    if name in ("pip.conf", "pip.ini"):                              # --scope site: <prefix>/pip.conf
        return is_python_prefix(folder)
    if name == "ca-bundle.pem" and folder.endswith(os.path.join("share", "trustfix")):
        return is_python_prefix(os.path.dirname(os.path.dirname(folder)))
    return OS.is_anchor_path(path) or is_tool_target(path)


def is_python_prefix(folder):
    import glob
    return os.path.isfile(os.path.join(folder, "pyvenv.cfg")) or bool(
        glob.glob(os.path.join(folder, "lib", "python3*", "os.py")) or os.path.isfile(os.path.join(folder, "Lib", "os.py")))


def journal_save(journal):
    check_private(state_dir(), "state folder")
    if SCOPE["state"] == "global" and not OS.owners_matter and not SCOPE.get("locked_down"):
        make_dirs(state_dir())
        OS.lock_down(state_dir())          # also when a user made the folder first (ProgramData allows it)
        SCOPE["locked_down"] = True
    atomic_write(journal_path(), json.dumps(journal, indent=1, sort_keys=True).encode("utf-8"), 0o600)


def change_file(journal, path, data, mode=0o644):
    """Write data to path atomically, backing the old file up first. False when it already holds data.
    A symlinked file (dotfiles) is written through to its target, so the link stays a link."""
    path = os.path.realpath(path)
    current = read_bytes(path) if os.path.isfile(path) else None
    if current == data:
        return False
    if RUN["files"] is not None and path not in [f[0] for f in RUN["files"]]:
        RUN["files"].append((path, current, os.stat(path).st_mode & 0o777 if current is not None else None))
    entry = next((e for e in journal["files"] if e["path"] == path), None)
    if entry is None:                                          # first change of this file: keep the original
        entry = {"path": path, "existed": current is not None, "backup": None, "mode": None,
                 "created_dirs": missing_folders(os.path.dirname(path))}
        if current is not None:
            name = "{}-{}".format(hashlib.sha256(path.encode()).hexdigest()[:12], os.path.basename(path))
            entry["backup"] = os.path.join("backups", name)
            entry["mode"] = os.stat(path).st_mode & 0o777
            atomic_write(os.path.join(backups_dir(), name), current, 0o600)
        journal["files"].append(entry)
        journal_save(journal)
    atomic_write(path, data, entry["mode"] or mode)
    changed(path)
    entry["after"] = hashlib.sha256(data).hexdigest()
    journal_save(journal)
    return True


def restore_file(entry, ui, step="undo"):
    """The mirror of change_file: put the file of a journal entry back as it was before the first change
    (its backup, byte for byte, and its mode), or remove it if it did not exist, and the folders made for
    it. A version changed since bootstrap.py wrote it is kept beside it; a link or a folder on the way now
    is refused (undo never writes through one)."""
    path = entry["path"]
    if os.path.realpath(path) != path or (os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode)):
        raise Failure("{} is no longer the regular file bootstrap.py wrote (a link or a folder is on the way "
                      "now); undo will not write through it. Look at it, then run `bootstrap.py undo` "
                      "again.".format(path))
    if os.path.isfile(path) and entry.get("after") and sha256_file(path) != entry["after"]:
        aside = "{}.changed-after-trustfix-{}".format(path, time.strftime("%Y%m%d%H%M%S"))
        shutil.copy2(path, aside)
        ui.warn("{} was changed after bootstrap.py wrote it; that version is kept as {}.".format(path, aside))
    if entry["existed"]:
        backup = os.path.join(state_dir(), entry["backup"])
        check_private(backup, "backup")
        atomic_write(path, read_bytes(backup), entry["mode"] & 0o777)      # never setuid, setgid, sticky
        ui.step(step, "changed", "restored " + path)
        changed(path)
    elif os.path.exists(path):
        os.unlink(path)
        ui.step(step, "changed", "removed " + path)
        changed(path)
    remove_empty_dirs(entry.get("created_dirs", []))


def remove_os_ca(record, ui, step="undo"):
    """The mirror of add_to_os_store for one CA: OS.remove_ca, said."""
    OS.remove_ca(record)
    ui.step(step, "changed", "removed the CA from the OS trust store ({})".format(
        " ".join(record.get("undo") or record["command"])))


def script_paths(name, flags):
    """The existing console scripts of a distribution where this install puts scripts: pip, pip3, pip3.X
    (also pip.exe, pip-script.py). pyenv's bin/pip is a symlink that no RECORD lists."""
    if name != "pip":
        return []
    folder = sysconfig.get_path("scripts", OS.user_scheme()) if "--user" in flags else sysconfig.get_path("scripts")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if re.match(r"^pip(\d+(\.\d+)?)?(\.exe|-script\.py)?$", n, re.I)]


def install_site(flags):
    """The site-packages folder a pip install with these flags writes to."""
    if "--user" in flags:
        import site
        return site.getusersitepackages()
    return sysconfig.get_path("purelib")


def journaled_installs(journal=None):
    """The dist-info names (lower case) that the journal (by default the one on disk) says bootstrap.py's pip
    installs into this Python; none from a journal that cannot be read (the run stops at journal_load, saying why)."""
    if journal is None:
        try:
            journal = journal_load()
        except (Failure, OSError):
            return set()
    return {p["after"].lower() for p in journal["packages"] if p["python"] == sys.executable}


def clear_interrupted(journal, flags, ui, ours):
    """Before installing again: remove what a killed run of ours left of pip's own install (its stash of the
    old files, a dist-info it did not finish), which pip would otherwise take for an installed package or leave
    behind for good. Only for a package this journal has an entry for here, and a dist-info in ours (the
    journaled_installs of earlier runs: this run's pip has not run yet): the backup of the old files is in the
    journal's backups, so undo still puts them back."""
    for name in sorted({p["name"] for p in journal["packages"] if p["python"] == sys.executable}):
        for path in interrupted_install(install_site(flags), name, ours):
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            ui.detail("removed {}, left by an interrupted install of {}".format(path, name))


def backup_distribution(journal, pin, dist_info, flags):
    """Journal installing pin into this Python over dist_info (None: not installed), after backing up
    what undo needs to put that state back: every file the old RECORD lists, and the scripts the new
    install replaces. One entry per Python and project: an entry whose state is gone (the venv was
    made anew) is replaced, one from an earlier run of this same change is kept."""
    before = os.path.basename(dist_info) if dist_info else None
    after = "{}-{}.dist-info".format(pin["name"], pin["version"])
    cut_off = interrupted_install(install_site(flags), pin["name"], journaled_installs(journal))
    for old in [p for p in journal["packages"] if p["python"] == sys.executable and p["name"] == pin["name"]]:
        if (before or "").lower() in ((old["before"] or "").lower(), old.get("after", "").lower()) or \
                (before is None and cut_off):                   # the old one is in pip's stash now
            return                                              # a re-run of an interrupted run: keep
        journal["packages"].remove(old)
        if old.get("backup"):
            shutil.rmtree(os.path.join(state_dir(), old["backup"]), ignore_errors=True)
    entry = {"python": sys.executable, "name": pin["name"], "before": before, "after": after,
             "flags": [f for f in flags if f == "--break-system-packages"], "user_site": "--user" in flags}
    paths = script_paths(pin["name"], flags)
    if dist_info:
        site_dir = os.path.dirname(dist_info)
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as f:
            rels = [line.rsplit(",", 2)[0] for line in f if line.strip()]
        paths = [os.path.normpath(os.path.join(site_dir, rel)) for rel in rels] + paths
    if paths:
        dest = os.path.join(backups_dir(), "{}-{}".format(
            before[:-len(".dist-info")] if before else pin["name"],
            hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]))
        tmp = dest + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(tmp)
        manifest, seen = [], set()
        for i, src in enumerate(paths):
            if src in seen:
                continue
            seen.add(src)
            if os.path.islink(src):
                manifest.append([src, None, os.readlink(src)])
            elif os.path.isfile(src):
                shutil.copy2(src, os.path.join(tmp, str(i)))
                manifest.append([src, str(i), None])
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f)
        os.replace(tmp, dest)
        entry["backup"] = os.path.relpath(dest, state_dir())
    journal["packages"].append(entry)
    journal_save(journal)


# --------------------------------------------------------------------------------------------------
# Undo and rollback: each journaled change's inverse (restore_file, remove_os_ca, undo_package)
# --------------------------------------------------------------------------------------------------

def remove_empty_dirs(folders):
    """Remove each folder a change created (deepest first, as journaled) if nothing else is in it now."""
    for folder in folders:
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


RUN = {"files": None}     # during an install: (path, bytes or None, mode) before this run first wrote it


def begin_changes(journal):
    """The state before this run's first change, for roll_back: the journal as it is (and whether its file
    exists), and from now on every file's bytes before this run first writes it."""
    import copy
    RUN["files"] = []
    return {"journal": copy.deepcopy(journal), "existed": os.path.isfile(journal_path()), "installed": False}


def roll_back(journal, mark, ui):
    """A run that fails after it began changing things puts back what it changed, newest first, so exit 1
    leaves nothing half-changed: the files it wrote, the CAs it added, the packages it installed, and the
    journal as it was. Earlier runs' changes stay (undo is for those). The words to add to the error."""
    problems = []

    def attempt(what, action, *a):
        try:
            action(*a)
        except Exception as e:                           # go on with the rest; name what is left
            problems.append("{} ({})".format(what, e.args[0] if isinstance(e, Failure) else e))

    before = mark["journal"]
    for path, data, mode in reversed(RUN["files"] or []):
        if data is None:
            attempt(path, lambda p: os.path.lexists(p) and os.unlink(p), path)
        else:
            attempt(path, atomic_write, path, data, mode)
        ui.step("rollback", "changed", ("removed " if data is None else "restored ") + path)
    RUN["files"] = None
    known = [e["path"] for e in before["files"]]
    for entry in journal["files"]:
        if entry["path"] not in known:
            attempt("the folders made for " + entry["path"], remove_empty_dirs, entry.get("created_dirs", []))
    for record in journal["os_store"][len(before["os_store"]):]:
        attempt("the CA added to the OS trust store", remove_os_ca, record, ui, "rollback")
    if mark["installed"]:
        ours = [(p["python"], p["name"], p.get("after")) for p in before["packages"]]
        for pkg in reversed(journal["packages"]):
            if (pkg["python"], pkg["name"], pkg.get("after")) not in ours:
                attempt(pkg["name"], undo_package, pkg, ui, "rollback")
    new_backups = [e["backup"] for e in journal["files"] + journal["packages"] if e.get("backup") and
                   e["backup"] not in [b.get("backup") for b in before["files"] + before["packages"]]]
    journal.clear()
    journal.update(before)
    if mark["existed"]:
        attempt("the journal", journal_save, journal)
        for rel in new_backups:
            path = os.path.normpath(os.path.join(state_dir(), rel))
            attempt(path, lambda b: shutil.rmtree(b) if os.path.isdir(b) else os.path.lexists(b) and os.unlink(b), path)
    else:
        attempt("the journal", remove_state, new_backups)
        attempt("the state folder", remove_empty_dirs, journal.get("created_dirs", []))
    if problems:
        return "bootstrap.py could not put back everything this run changed: {}; run `bootstrap.py undo`".format(
            "; ".join(problems))
    return "bootstrap.py put back everything this run had changed"


def undo(ui):
    """Put back every change in the journal, newest first. Each undone change leaves the journal at
    once, so an undo that stops half-way (a pip that cannot uninstall) can simply be run again."""
    journal = journal_load()
    if not (journal["files"] or journal["packages"] or journal["os_store"]):
        ui.step("undo", "ok", "nothing to undo: bootstrap.py has changed nothing for this user")
        return EXIT_OK
    backups = [e["backup"] for e in journal["files"] + journal["packages"] if e.get("backup")]
    for record in reversed(journal["os_store"]):          # a CA a command added (by thumbprint) goes first
        if record.get("kind") == "command":
            remove_os_ca(record, ui)
    while journal["files"]:
        restore_file(journal["files"][-1], ui)
        journal["files"].pop()
        journal_save(journal)
    for record in reversed(journal["os_store"]):          # an anchor file is gone now: refresh the store
        if record.get("kind") == "file+command":
            remove_os_ca(record, ui)
    journal["os_store"] = []
    while journal["packages"]:
        undo_package(journal["packages"][-1], ui)
        journal["packages"].pop()
        journal_save(journal)
    remove_state(backups)
    remove_empty_dirs(journal.get("created_dirs", []))
    ui.step("undo", "ok", "every change bootstrap.py made is undone")
    return EXIT_OK


def remove_state(backups):
    """After an undo: remove the journal and the backups it names, and backups/ if that is then empty;
    nothing else in the state folder (TRUSTFIX_STATE_DIR may name a folder that holds other files)."""
    root = state_dir()
    for rel in backups:
        path = os.path.normpath(os.path.join(root, rel))
        if os.path.dirname(path) != os.path.join(root, "backups"):
            continue                                            # not a name this product gives a backup
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    for path in (journal_path(), os.path.join(root, "backups")):
        try:
            os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
        except OSError:
            pass                                                # not empty, or already gone: leave it


def interpreter_problem(python, prefix, pkg):
    """Why undo will not run the journal's python, or None. It runs only a Python that is one (a regular
    file in a Python prefix), that no other user can change, and that still has the version of the
    package this product installed (its dist-info), so a journal cannot make undo run another program."""
    import glob
    real = os.path.realpath(python)
    if not os.path.isfile(real) or not is_python_prefix(prefix):
        return "{} is not a Python interpreter".format(python)
    if OS.owners_matter:
        for path in (real, os.path.dirname(real)):
            st = os.stat(path)
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                return "{} can be changed by another user, so undo does not run it".format(path)
    homes = [prefix, os.path.expanduser("~/.local"), os.path.expanduser("~/Library/Python"),
             os.path.join(os.environ.get("APPDATA") or "", "Python")]
    patterns = [os.path.join(h, "lib", "python3*", "site-packages", pkg["after"]) for h in homes] + \
        [os.path.join(h, "*", "lib", "python", "site-packages", pkg["after"]) for h in homes] + \
        [os.path.join(h, "Lib", "site-packages", pkg["after"]) for h in homes] + \
        [os.path.join(h, "Python3*", "site-packages", pkg["after"]) for h in homes]
    if not any(os.path.isdir(hit) for pattern in patterns for hit in glob.glob(pattern)):
        return "{} no longer has {} (it was changed since)".format(prefix, pkg["after"][:-len(".dist-info")])
    return None


def undo_package(pkg, ui, step="undo"):
    python, name = pkg["python"], pkg["name"]
    folder = os.path.dirname(python)
    where = os.path.dirname(folder) if os.path.basename(folder).lower() in ("bin", "scripts") else folder
    if not os.path.exists(python):
        ui.warn("{} no longer exists; {} cannot be put back there.".format(python, name))
        return
    problem = interpreter_problem(python, where, pkg)
    if problem:
        ui.warn("{}; {} there is left as it is.".format(problem, name))
        return
    proc = run(python_cmd(python, "-m", "pip", "uninstall", "-y", "--disable-pip-version-check",
                          user_site=pkg.get("user_site", True)) + pkg.get("flags", [])
               + [name], env=pip_env())
    if proc.returncode != 0 and not (name == "pip" and "No module named pip" in proc.stdout):
        lines = [l.strip() for l in proc.stdout.splitlines() if l.strip()]
        raise Failure("pip could not uninstall {} from {} ({}); nothing else was changed. Fix that, then run "
                      "`bootstrap.py undo` again.".format(name, where, lines[-1] if lines else "no output"))
    if pkg.get("backup"):
        backup = os.path.join(state_dir(), pkg["backup"])
        with open(os.path.join(backup, "manifest.json"), encoding="utf-8") as f:
            items = json.load(f)
        roots = [os.path.realpath(r) + os.sep for r in (where, os.path.expanduser("~/.local"),
                                                        os.path.expanduser("~/Library/Python"),
                                                        os.path.join(os.environ.get("APPDATA") or where, "Python"))]
        for item in items:
            target, stored, link = (item + [None])[:3]             # [path, stored] from 0.1.0 journals
            if not (os.path.realpath(os.path.dirname(target)) + os.sep).startswith(tuple(roots)) or \
                    (stored is not None and not str(stored).isdigit()):
                ui.warn("the backup of {} names {}, outside that Python; skipped".format(name, target))
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.lexists(target):
                os.unlink(target)
            if link is not None:
                os.symlink(link, target)
            else:
                shutil.copy2(os.path.join(backup, stored), target)
    changed(package="{} in {}".format(name, where))
    if pkg.get("before"):
        ui.step(step, "changed", "restored {} in {}".format(pkg["before"][:-len(".dist-info")], where))
    else:
        ui.step(step, "changed", "removed {} from {}".format(name, where))


# --------------------------------------------------------------------------------------------------
# Plan: decide everything, validate every input, change nothing
# --------------------------------------------------------------------------------------------------

def pip_env():
    """The environment of the installing pip: no PIP_* and no config file, as ensurepip does, so a
    broken pip.conf cannot stop the repair; CA-bundle variables that would override --cert removed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def install_target(s, args):
    """(pip flags, reason to skip installing or None, where) for this interpreter."""
    if s.venv:
        if not s.purelib_writable:
            raise Failure("cannot install into the virtual environment {}: {} is not writable; run as the user "
                          "who owns it, or make a new virtual environment.".format(sys.prefix, s.purelib))
        return [], None, "the virtual environment " + sys.prefix
    if s.externally_managed and not args.break_system_packages:
        return [], ("this Python is managed by the operating system ({}); bootstrap.py leaves its packages "
                    "alone. Use a virtual environment (python3 -m venv), or pass --break-system-packages "
                    "if you really mean it".format(s.externally_managed)), None
    flags = ["--break-system-packages"] if s.externally_managed else []
    if s.purelib_writable:
        return flags, None, s.purelib
    if s.user_site_enabled:
        import site
        return flags + ["--user"], None, site.getusersitepackages()
    raise Failure("cannot install into {}: it is not writable and user installs are disabled; run as a user "
                  "who may write there, or use a virtual environment.".format(s.purelib))


def shipped_ca_files():
    folder = os.path.join(HERE, "ca")
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith((".pem", ".crt", ".cer"))]


def read_zip_member(wheel, member):
    import zipfile
    with zipfile.ZipFile(wheel) as z:
        return z.read(member)


def keep_replaced_cert(plan):
    """`cert` in the file we edit may name another bundle (an old installer's, IT's): it is replaced by
    ours, so say so, and keep its CAs that certifi lacks in ours — pip trusted them until now."""
    path = plan.config_path
    sections = read_config_file(path)[0] if os.path.isfile(path) else None
    old = ((sections or {}).get("global") or {}).get("cert")
    if not old or os.path.realpath(old) == os.path.realpath(plan.bundle_path):
        return
    try:
        ders = pem_certs(read_bytes(old))
    except OSError:
        plan.notes.append("{} sets cert = {}, which cannot be read; it is replaced by the bundle".format(path, old))
        return
    certifi = {hashlib.sha256(d).hexdigest() for d in pem_certs(plan.certifi_pem or b"")}
    kept = [d for d in ders if hashlib.sha256(d).hexdigest() not in certifi]
    before = len(plan.extras)
    plan.extras = merge_extras(plan.extras, kept)
    plan.notes.append("{} sets cert = {}; it is replaced by the bundle, which keeps its {} CA(s) beyond "
                      "certifi ({} new to the bundle)".format(path, old, len(kept), len(plan.extras) - before))


def previous_extras(bundle_path):
    """The corporate CAs a previous run put into our bundle (kept, so a re-run never drops one)."""
    if not os.path.isfile(bundle_path):
        return []
    head = read_bytes(bundle_path).split(b"\n# certifi ", 1)[0]
    return pem_certs(head)


def bundle_contents(path):
    """(certifi version, {sha256: subject} of the corporate CAs) of a bundle this product wrote, or None."""
    try:
        data = read_bytes(path)
    except OSError:
        return None
    if not data.startswith(b"# trustfix CA bundle"):
        return None
    m = re.search(rb"\n# certifi (\S+)\n", data)
    extras = {}
    for der in pem_certs(data.split(b"\n# certifi ", 1)[0]):
        try:
            info = parse_cert(der)
        except (ValueError, IndexError):
            continue
        extras[info["sha256"]] = info["subject"]
    return (m.group(1).decode("ascii", "replace") if m else "?"), extras


def bundle_changes(old, certifi_version, extras):
    """What a refresh changes in words: ['certifi A -> B', 'added CA X', ...] ([] for a new bundle)."""
    if old is None:
        return []
    out = []
    if old[0] != certifi_version:
        out.append("certifi {} -> {}".format(old[0], certifi_version))
    for _, info in extras:
        if info["sha256"] not in old[1]:
            out.append("added " + info["subject"])
    return out


def make_bundle(certifi_pem, certifi_version, extras):
    """Our CA bundle: the corporate CAs, then certifi's roots. Deterministic, ASCII."""
    lines = ["# trustfix CA bundle for pip: {} corporate CA(s) + certifi {} (Mozilla's roots).".format(
        len(extras), certifi_version),
        "# Made by bootstrap.py. Do not edit: run `python bootstrap.py` again to refresh it,",
        "# `python bootstrap.py undo` to remove it.", ""]
    for der, info in extras:
        lines.append("# extra: {}  SHA-256 {}".format(info["subject"].encode("ascii", "replace").decode(),
                                                       fingerprint(info["sha256"])))
        lines.append(der_to_pem(der))
    text = "\n".join(lines) + "\n# certifi {}\n".format(certifi_version)
    return text.encode("ascii") + certifi_pem


class Plan(Record):
    """Everything decided before the first change (make_plan). The JSON report has every field but pins,
    given and certifi_pem (as_json); certifi_wheel and issuer only when they were needed; tools (--tools) is
    the report's own "tools" list."""

    __slots__ = ("pins", "mode", "install", "skip_install", "flags", "where", "pip_after", "given", "certifi_pem",
                 "probe", "issuer", "issuer_asked", "certifi_wheel", "source", "strategy", "extras", "trust_reason",
                 "bundle_path", "config_path", "notes", "tools")

    def __init__(self, pins, mode, **fields):
        defaults = dict(install=[], skip_install=None, flags=[], where=None, pip_after=None, given=[],
                        certifi_pem=None, probe={}, issuer=None, issuer_asked=False, certifi_wheel=None,
                        source=None, strategy="none", extras=[], trust_reason="", bundle_path=None,
                        config_path=None, notes=[], tools=[])
        defaults.update(fields)
        Record.__init__(self, pins=pins, mode=mode, **defaults)

    def untrusted(self):
        """Whether some probe's anchors did not verify the index."""
        return any(p.untrusted for p in self.probe.values())

    def as_json(self):
        out = {name: getattr(self, name) for name in self.__slots__
               if name not in ("pins", "given", "certifi_pem", "issuer_asked", "issuer", "certifi_wheel", "tools")}
        out["probe"] = {label: p.as_plan() for label, p in self.probe.items()}
        if self.certifi_wheel:
            out["certifi_wheel"] = self.certifi_wheel
        if self.issuer_asked:
            out["issuer"] = self.issuer
        return out


class Trust(Record):
    """The trust decision (decide_trust): strategy 'none' | 'bundle', the corporate CAs for the bundle, the
    reason in words, and the notes to show."""

    __slots__ = ("strategy", "extras", "reason", "notes")


def make_plan(s, args, ui, workdir=None):
    """Decide everything and validate every input; change nothing. workdir: where a file the decision
    needs (certifi's wheel, when neither wheels/ nor this Python has one) may be downloaded to.
    Each step reads what the ones before it decided; the order is the order of the decisions."""
    py = sys.version_info[:2]
    plan = Plan(bundle_pins(py), "offline" if args.offline else "online")
    plan_install(plan, s, args)                    # 1. what to install, and where
    plan.given = given_cas(args)                   # 2. the corporate CAs given or shipped in ca/
    local = local_wheels(plan.pins)                # 3. how the index verifies today, through the user's proxy
    plan.certifi_pem = certifi_roots(plan, s, args, local)
    if not args.offline:
        probe_trust(plan, s, ui, workdir)
    plan_source(plan, s, args, ui, local)          # 4. where the packages come from (the network must work)
    trust = decide_trust(plan, s, py)              # 5. the trust decision (see the table in decide_trust)
    plan.strategy, plan.extras, plan.trust_reason = trust.strategy, trust.extras, trust.reason
    plan.notes.extend(trust.notes)
    if plan.probe:
        refuse_untrustable(plan, s, py)
    if plan.strategy == "bundle":
        plan_bundle(plan, s, args, local)          # 6. the files to write, each checked writable
    plan.tools = plan_tools(plan, s, args)         # 7. --tools: each other tool's setting (see Beyond pip)
    return plan


def bundle_pins(py):
    """The pins of hashes.txt that apply to this Python: {name: pin}. Refuses a bundle that does not serve it."""
    pins = read_pins(os.path.join(HERE, "hashes.txt"))
    mine = pins_for(pins, py)
    if "certifi" not in mine:                                  # its roots are read as data, never installed,
        certifi = [p for p in pins if p["name"] == "certifi"]  # so any Python may use the pinned wheel
        if certifi:
            mine["certifi"] = certifi[-1]
    serves = bundle_serves(os.path.join(HERE, "hashes.txt"))
    if serves and vstr(py) not in serves[1]:
        raise BadInput("this bundle serves only Python {} ({}), a slim bundle built for them; this is Python {}. "
                       "Run it with one of those (Windows: py -{} bootstrap.py), or ask IT for the full bundle; "
                       "nothing was changed.".format(serves[0], ", ".join(serves[1]), vstr(py), serves[1][-1]))
    if "pip" not in mine:
        raise BadInput("hashes.txt pins no pip for Python {}; this bundle supports the Pythons its markers "
                       "name ({}). Run it with a supported Python.".format(
                           vstr(py), "; ".join(sorted({p["marker"] for p in pins if p["name"] == "pip"}))))
    return mine


def plan_install(plan, s, args):
    """Step 1: the pins to install into this Python (older or missing, or --reinstall) and where."""
    plan.flags, plan.skip_install, plan.where = install_target(s, args)
    if not plan.skip_install:
        for name in INSTALL:
            pin, have = plan.pins.get(name), getattr(s, name)
            if pin and (have is None or vtuple(have) < vtuple(pin["version"]) or args.reinstall):
                plan.install.append(pin)
    plan.pip_after = plan.pins["pip"]["version"] if any(p["name"] == "pip" for p in plan.install) else s.pip


def given_cas(args):
    """Step 2: the corporate CAs given with --ca-file and shipped in ca/, each validated now, once."""
    seen, given = set(), []
    for path in list(args.ca_file) + shipped_ca_files():
        for der, info in load_ca_file(path):
            if info["sha256"] not in seen:
                seen.add(info["sha256"])
                given.append((der, info))
    return given


def local_wheels(pins):
    """{name: (path or None, ok)} of the bundle's wheels; a wheel whose SHA-256 differs stops the run."""
    local = {name: find_wheel(os.path.join(HERE, "wheels"), pin) for name, pin in pins.items()}
    for name, (path, ok) in local.items():
        if not ok:
            raise BadInput("{} does not match hashes.txt (its SHA-256 differs from the pin for {}=={}); the "
                           "bundle was altered. Get a fresh copy from IT; nothing was changed.".format(
                               path, name, pins[name]["version"]))
    return local


def certifi_roots(plan, s, args, local):
    """certifi's roots (PEM bytes) from the bundle's wheel or this Python's certifi: needed only to probe
    (online) or, with no CA given, to tell the OS store's extra roots apart from Mozilla's. None: none here."""
    if args.offline and plan.given:
        return None
    if local.get("certifi", (None,))[0]:
        return read_zip_member(local["certifi"][0], "certifi/cacert.pem")
    if s.certifi_files:
        return read_bytes(s.certifi_files[0][0])
    return None


def probe_trust(plan, s, ui, workdir):
    """Step 3, online: TLS to the index with the OS store, then with certifi alone; who signed what it
    presents when either fails."""
    plan.probe = probe_index(s.index_url, s.proxy, [("os", OS.os_context())])
    if not plan.probe["os"].reached:
        return
    if plan.certifi_pem is None and workdir and "certifi" in plan.pins:
        # a bare venv and no wheels/: the pinned certifi wheel (SHA-256 checked) tells the OS store's extra
        # roots apart from Mozilla's, and the bundle is made of it
        plan.certifi_wheel = download_verified([plan.pins["certifi"]], s, ui, workdir)["certifi"]
        plan.certifi_pem = read_zip_member(plan.certifi_wheel, "certifi/cacert.pem")
    plan.probe.update(probe_index(s.index_url, s.proxy, [
        ("certifi", cadata_context(plan.certifi_pem) if plan.certifi_pem else None)]))
    if plan.untrusted():
        plan.issuer, plan.issuer_asked = presented_issuer(s.index_url, s.proxy), True


def plan_source(plan, s, args, ui, local):
    """Step 4: wheels/ or the index. No network at all (no DNS, no route) with a complete bundle: offline,
    said so. A network that fails otherwise stops the run here, before any change: pip would fail later."""
    needed = [p["name"] for p in plan.install]
    usable = all(local[n][0] for n in set(needed) | {"pip"}) and not args.index_url
    nonet = next((p for p in plan.probe.values() if p.status in OFFLINE), None)
    if nonet and usable and local.get("certifi", (None,))[0]:
        # an air-gapped or off-VPN computer, and the bundle has what this Python needs
        ui.step("network", "warning", "no network ({}); installing from the bundle's wheels as --offline "
                "would".format(network_problem(nonet, s.index_url, s.proxy)[0]))
        args.offline, plan.probe, plan.mode = True, {}, "offline (no network)"
    plan.source = "wheels" if usable else "index"
    if plan.source == "index" and needed and args.offline:
        raise BadInput("wheels/ next to bootstrap.py has no wheel for {} on Python {}, and --offline forbids "
                       "downloading; use the complete bundle from IT or drop --offline.".format(
                           ", ".join(needed), vstr(sys.version_info[:2])))
    down = next((p for p in plan.probe.values() if not p.reached), None)
    if down:
        raise Failure("{}; {}; nothing was changed.".format(*network_problem(down, s.index_url, s.proxy)) + (
            " To install from the bundle without the network, run it with --offline." if usable else ""))


def plan_bundle(plan, s, args, local):
    """Step 6, for the bundle strategy: the bundle's and the config file's paths, the CAs kept from an earlier
    bundle or a replaced `cert`, and every check that writing them will work (before anything is written)."""
    if args.offline and not local["certifi"][0]:
        raise BadInput("wheels/ next to bootstrap.py has no certifi wheel ({}=={}), whose roots the CA bundle "
                       "needs, and --offline forbids downloading it; use the complete bundle from IT or drop "
                       "--offline.".format("certifi", plan.pins["certifi"]["version"]))
    plan.bundle_path = os.path.join(OS.data_dir(args.scope) if args.scope != "site"
                                    else os.path.join(sys.prefix, "share", "trustfix"), "ca-bundle.pem")
    plan.config_path = user_config_target(args.scope)
    plan.extras = merge_extras(plan.extras, previous_extras(plan.bundle_path))
    keep_replaced_cert(plan)
    if os.environ.get("PIP_CONFIG_FILE") == os.devnull:
        plan.notes.append("PIP_CONFIG_FILE={} tells pip to read no configuration file at all, so the cert "
                          "written to {} is not used while it is set; unset PIP_CONFIG_FILE (or point it at "
                          "that file)".format(os.devnull, plan.config_path))
    check_config_target(plan, s)
    for path in (plan.config_path, plan.bundle_path, journal_path()):
        real = os.path.realpath(path)
        if os.path.lexists(path) and not os.path.isfile(real):
            raise BadInput("{} is {}, not a file; bootstrap.py needs to write a file there. Move it away, "
                           "then run bootstrap.py again; nothing was changed.".format(
                               path, "a folder" if os.path.isdir(real) else
                               "a broken link" if not os.path.exists(real) else "not a regular file"))
        if not writable(path):
            raise BadInput("cannot write {}: its folder is not writable for this user; fix the "
                           "permissions, or choose another --scope.".format(path))


def refuse_untrustable(plan, s, py):
    """Online, stop before any change when the trust planned cannot verify the index: pip would still
    fail afterwards. One more handshake, with the anchors pip will have: the OS store (pip >= 24.2 on
    Python >= 3.10) or certifi, plus the bundle's CAs."""
    probe, host = plan.probe, host_of(s.index_url)
    uses_os = pip_uses_os_store(py, plan.pip_after)
    if plan.strategy == "none":
        anchors = ("os", "certifi") if uses_os else ("certifi",)       # pip >= 24.2 loads certifi too
        if any(a in probe and probe[a].ok for a in anchors) or not plan.untrusted():
            return
    else:
        pem = (plan.certifi_pem or b"").decode("ascii", "replace") + "".join(der_to_pem(d) for d, _ in plan.extras)
        ctx = OS.os_context() if uses_os else None
        if ctx is not None:
            ctx.load_verify_locations(cadata=pem)
        else:
            ctx = pip_verifier(cadata=pem)
        verdict = probe_index(s.index_url, s.proxy, [("planned", ctx)])["planned"]
        if uses_os and not verdict.untrusted:
            alone = probe_index(s.index_url, s.proxy, [("bundle", pip_verifier(cadata=pem))])
            if alone["bundle"].untrusted:
                plan.notes.append("the CA(s) for the bundle ({}) do not verify {} ({}): this pip works through "
                                  "the OS store, but pips that read only the bundle (new venvs' older pips) will "
                                  "fail; pass the CA that issued it with --ca-file".format(
                                      ", ".join(i["subject"] for _, i in plan.extras), host, issuer_text(plan)))
        if not verdict.untrusted:
            return
    issuer = (plan.issuer or {}).get("issuer") or "an issuer that could not be read"
    hidden = hidden_by_variable(issuer)
    if hidden:
        raise Failure("{}; nothing was changed. Fix: {}.".format(*hidden_by_variable_advice(hidden, issuer)))
    incomplete = certificate_findings(presented_chain(s.index_url, s.proxy))["incomplete"]
    if incomplete and not any(i["subject"] == incomplete[0] for _, i in plan.given):
        raise (BadInput if plan.given else Failure)("{}; nothing was changed. Fix: {}.".format(
            *incomplete_chain_advice(host, incomplete)))
    if plan.given:
        raise BadInput("the CA(s) given ({}) do not verify {}, whose certificate is issued by {}; nothing was "
                       "changed. Ask IT for the root CA that issued it and pass that with --ca-file.".format(
                           ", ".join(i["subject"] for _, i in plan.given), host, issuer))
    raise Failure("{} presents a certificate issued by {}, which neither this computer's trust store nor certifi "
                  "trusts, and no company CA was given; nothing was changed. Get that root CA from IT and run: "
                  "python bootstrap.py --ca-file CA.pem".format(host, issuer))


def merge_extras(new, previous_ders):
    have = {info["sha256"] for _, info in new}
    out = list(new)
    for der in previous_ders:
        try:
            info = parse_cert(der)
        except (ValueError, IndexError):
            continue
        if info["sha256"] not in have:
            have.add(info["sha256"])
            out.append((der, info))
    return out


def decide_trust(plan, s, py):
    """The trust decision, from the plan so far (the pip after the install, the given CAs, the probes):
    a Trust. The table, pip after the run -> what is written:

      pip uses the OS store (>= 24.2 on >= 3.10), CAs given       -> bundle of certifi + the given CAs
                                 the OS store does not verify     -> nothing; a note: pass --ca-file
                                 certifi does not (interception)  -> bundle of certifi + the OS root behind it
                                 certifi verifies too, or offline -> nothing (offline: a note for older pips)
      pip checks certifi only (< 24.2, or Python < 3.10), given   -> bundle of certifi + the given CAs
                                 certifi verifies                 -> nothing
                                 otherwise                        -> bundle of certifi + the OS root behind it

    The user's pip configuration is read by every pip of this user: new venvs' bundled pips (certifi only,
    up to 23.x on 3.10-3.12), other Pythons' pips, pipx's. So whenever a corporate CA is known the bundle and
    `cert` are written, also when this interpreter's pip verifies through the OS store: there `cert` adds to
    it."""
    pip_after, probe, given = plan.pip_after, plan.probe, plan.given
    host = host_of(s.index_url)
    bundle = lambda extras, reason: Trust(strategy="bundle", extras=extras, reason=reason, notes=[])
    nothing = lambda reason, *notes: Trust(strategy="none", extras=[], reason=reason, notes=list(notes))
    others = "written for every pip of this user (new venvs' older pips, other Pythons)"
    if pip_uses_os_store(py, pip_after):                 # else: os_store_gap says why not
        this = "pip {} on Python {} uses the OS trust store".format(pip_after, vstr(py))
        if given:
            missing = [i["subject"] for _, i in missing_from_os_store(given)]
            return bundle(given, "{}{}; a bundle of certifi + the given CA(s) is {}".format(
                this, ", which lacks " + ", ".join(missing) if missing else "", others))
        if "os" in probe and probe["os"].untrusted:
            reason = "the OS trust store does not trust {} ({}); pass the issuing CA with --ca-file".format(
                host, issuer_text(plan))
            return nothing(reason, reason)
        if "certifi" in probe and probe["certifi"].untrusted:      # intercepted: the OS has a root certifi lacks
            extras, how, notes = os_extras(plan, s)
            if extras:
                return Trust(strategy="bundle", extras=extras, notes=notes, reason="{} and it verifies {}; a bundle "
                             "of certifi + {} is {}".format(this, host, how, others))
            return nothing("{} and it verifies {}; {}".format(this, host, how),
                           *(notes + [older_pips_note(host, "no CA could be identified")]))
        if probe:
            return nothing("{}; certifi alone verifies {} too (no interception): nothing to write".format(this, host)
                           if "certifi" in probe and probe["certifi"].ok else "{}; nothing to write".format(this))
        return nothing("{}; {} was not checked (offline): nothing to write".format(this, host),
                       older_pips_note(host, "offline, no CA was given or shipped in ca/"))
    why = os_store_gap(py, pip_after)
    if given:
        return bundle(given, "{}: a bundle of certifi + the given CAs".format(why))
    if "certifi" in probe and probe["certifi"].ok:
        return nothing("{}, but certifi alone verifies {}; nothing to write".format(why, host))
    extras, how, notes = os_extras(plan, s)
    if extras:
        return Trust(strategy="bundle", extras=extras, notes=notes,
                     reason="{}: a bundle of certifi + {}".format(why, how))
    return nothing("{}; {}".format(why, how), *notes)


def older_pips_note(host, why):
    return ("{}: this pip works through the OS store, but venvs made later get an older bundled pip (certifi "
            "only) that will fail TLS to {}; ship the company CA in ca/ (build.py zip --ca CA.pem) or run "
            "bootstrap.py once online".format(why, host))


def os_extras(plan, s):
    """The corporate CAs to take from the OS store when none was given: ([(der, info)], how, notes).

    Online, only the OS root that issued the certificate the index (or the proxy) presents: adding every
    root the OS has beyond certifi would also re-admit roots Mozilla has distrusted since the distro's
    bundle was made. Offline there is no presented certificate, so every such root is taken, and said."""
    certifi = {hashlib.sha256(d).hexdigest() for d in pem_certs(plan.certifi_pem or b"")}
    candidates = []
    for der in OS.os_roots():
        if hashlib.sha256(der).hexdigest() in certifi:
            continue
        try:
            info = parse_cert(der)
        except (ValueError, IndexError):
            continue
        if info["is_ca"] or info["self_signed"]:
            candidates.append((der, info))
    issuer = plan.issuer
    if plan.probe:
        if not issuer:
            return [], "the index's certificate could not be read, so no CA was taken from the OS store", []
        match = [(d, i) for d, i in candidates if i["subject"] == issuer["issuer"]]
        if not match and s.index_url:
            match = root_behind_chain(candidates, s.index_url, s.proxy)
        if match:
            return match, "{}, the CA the OS trusts that issued the index's certificate".format(issuer["issuer"]), []
        return [], "the OS store has no CA named {} (the index's issuer); pass it with --ca-file".format(
            issuer["issuer"]), []
    if candidates:
        return candidates, "the {} CA(s) the OS trusts beyond certifi".format(len(candidates)), [
            "offline, the CA in use cannot be seen, so all {} CAs the OS trusts beyond certifi were taken; pass "
            "--ca-file to take only the company's".format(len(candidates))]
    return [], "the OS store has no CA beyond certifi's and none was given", []


def issuer_text(plan):
    return "its certificate is issued by " + plan.issuer["issuer"] if plan.issuer else "issuer unknown"


def root_behind_chain(candidates, url, proxy):
    """The OS root that verifies url when the server presents an intermediate (Zscaler, Netskope...):
    all candidates at once first, then halves, so about log2(n) handshakes. [] if none verifies."""
    def verifies(group):
        pem = "".join(der_to_pem(d) for d, _ in group)
        return tls_probe(url, proxy, pip_verifier(cadata=pem)).ok
    if not candidates or not verifies(candidates):
        return []
    group = candidates
    while len(group) > 1:
        half = group[:len(group) // 2]
        group = half if verifies(half) else group[len(group) // 2:]
    return group


def check_config_target(plan, s):
    """The file we will edit must be readable by pip; other sources must not silently override it."""
    path = plan.config_path
    if os.path.isfile(path):
        _, error = read_config_file(path)
        if error:
            raise BadInput(error + ", then run bootstrap.py again; nothing was changed.")
    encoding = pip_config_encoding()
    try:
        (plan.bundle_path or "").encode(encoding)
    except UnicodeEncodeError:
        raise Failure("pip reads {} in this computer's {} encoding, which cannot spell the CA bundle's path {}; "
                      "pip could not use it. Run bootstrap.py with --scope global as an administrator (the bundle "
                      "then lives under ProgramData), or turn on Python's UTF-8 mode for good (PYTHONUTF8=1) and "
                      "run it again; nothing was changed.".format(path, encoding, plan.bundle_path))
    target_rank = None
    for rank, (scope, src, sections, _) in enumerate(s.config_sources):
        if src == path:
            target_rank = rank
    for rank, (scope, src, sections, _) in enumerate(s.config_sources):
        for section in ("global", "install", "download"):
            value = (sections or {}).get(section, {}).get("cert")
            # pip ranks [install]/[download] of ANY file above every [global]; a later [global] also wins
            later = section != "global" or (src != path and (target_rank is None or rank > target_rank))
            if value and value != plan.bundle_path and later:
                plan.notes.append("{} sets cert = {}{} and overrides {}; remove it there".format(
                    "PIP_CERT" if scope == "env" else src, value,
                    "" if section == "global" else " in [{}]".format(section), path))
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(var)
        lacks = value and variable_lacks(value, plan.extras)
        if lacks:              # pip >= 24.2 adds it to its anchors; older pips (new venvs') use it instead of cert
            plan.notes.append("{}={} lacks {}, and pips before 24.2 or on Python <= 3.9 (new venvs' bundled pips) "
                              "use it instead of the cert written here, so they will fail; unset it where it is "
                              "set".format(var, value, ", ".join(lacks)))


def variable_lacks(path, extras):
    """The subjects of the CAs among extras that the bundle at path (a CA variable's) does not hold."""
    try:
        have = {hashlib.sha256(d).hexdigest() for d in pem_certs(read_bytes(path))}
    except OSError:
        return []                                    # survey_warnings names a missing file
    return [info["subject"] for _, info in extras if info["sha256"] not in have]


def describe_plan(plan, s):
    lines = []
    if plan.skip_install:
        lines.append("install: nothing, because " + plan.skip_install)
    elif plan.install:
        lines.append("install {} into {} from {}".format(
            ", ".join("{}=={}".format(p["name"], p["version"]) for p in plan.install), plan.where,
            "wheels/ (SHA-256 checked against hashes.txt)" if plan.source == "wheels"
            else s.index_url + " (each file's SHA-256 checked against hashes.txt)"))
    else:
        lines.append("install: nothing (pip {}{} already)".format(
            s.pip, ", truststore " + s.truststore if s.truststore else ""))
    lines.append("trust: " + plan.trust_reason)
    if plan.strategy == "bundle":
        lines.append("write {} and set cert in {}".format(plan.bundle_path, plan.config_path))
        for _, info in plan.extras[:5]:
            lines.append("  CA {}  SHA-256 {}".format(info["subject"], fingerprint(info["sha256"])))
        if len(plan.extras) > 5:
            lines.append("  ... and {} more (the bundle file lists them all)".format(len(plan.extras) - 5))
    for tc in plan.tools:
        lines.append("tools: {}: {}".format(tc.tool, tool_words(tc).format(tc.summary)))
    return lines


# --------------------------------------------------------------------------------------------------
# Install: the pinned pip, run from its own verified wheel, installs from verified files only
# --------------------------------------------------------------------------------------------------

def acquire(plan, s, ui, workdir):
    """Put every file this run uses into workdir, each checked against hashes.txt: {name: path}."""
    mine = plan.pins
    names = {p["name"] for p in plan.install}
    if names:
        names.add("pip")                                     # the installer itself
    if plan.strategy == "bundle":
        names.add("certifi")
    wanted = [mine[n] for n in sorted(names) if n in mine]
    local = {p["name"]: find_wheel(os.path.join(HERE, "wheels"), p)[0] for p in wanted}
    files, missing = {}, []
    if plan.certifi_wheel:                            # downloaded (and checked) while planning
        files["certifi"] = plan.certifi_wheel
        wanted = [p for p in wanted if p["name"] != "certifi"]
    for pin in wanted:
        if local[pin["name"]] and plan.source == "wheels" or (pin["name"] == "certifi" and local["certifi"]):
            copy = os.path.join(workdir, os.path.basename(local[pin["name"]]))
            shutil.copyfile(local[pin["name"]], copy)
            if sha256_file(copy) not in pin["hashes"]:                 # the bytes pip will read
                raise BadInput("{} changed while it was being copied; nothing was installed.".format(
                    local[pin["name"]]))
            files[pin["name"]] = copy
        else:
            missing.append(pin)
    if missing:
        files.update(download_verified(missing, s, ui, workdir))
    return files


def download_verified(pins, s, ui, workdir):
    """Download with verified TLS (OS store, then certifi); only if both fail on the certificate,
    without verification: then each file is still accepted only if its SHA-256 is pinned."""
    url, proxy = s.index_url, s.proxy
    certifi_pem = read_bytes(s.certifi_files[0][0]) if s.certifi_files else None
    attempts = [("the OS trust store", OS.os_context()),
                ("certifi", cadata_context(certifi_pem) if certifi_pem else None)]
    for label, ctx in attempts:
        if ctx is None:
            continue
        try:
            files = download_pins(pins, url, ctx, proxy, workdir)
            ui.step("download", "ok", "{} from {} (TLS verified with {}; SHA-256 checked)".format(
                ", ".join(os.path.basename(f) for f in files.values()), host_of(url), label))
            return files
        except TLSVerifyError as e:
            log("TLS with {} failed: {}".format(label, e.args[0]))
    host = host_of(url)
    issuer = presented_issuer(url, proxy)
    ui.warn("TLS to {} could not be verified{}. Downloading the pinned files WITHOUT TLS verification, for this "
            "one download only: each file is accepted only if its SHA-256 matches hashes.txt, and nothing "
            "about this is saved.".format(host, " (its certificate is issued by {})".format(issuer["issuer"])
                                          if issuer else ""))
    files = download_pins(pins, url, unverified_context(), proxy, workdir)
    ui.step("download", "warning", "{} from {} (TLS NOT verified for this download; SHA-256 checked)".format(
        ", ".join(os.path.basename(f) for f in files.values()), host))
    return files


def unpack_installer(wheel, workdir):
    """The installing pip's package folder, unpacked from its verified wheel into our private workdir.

    pip runs from there with -B, as it would from the wheel, but starts about 0.4 s sooner: zipimport
    is slower than the file system. Only pip/ is unpacked; with its .dist-info beside it, pip would
    take itself for an installed pip and install nothing."""
    import zipfile
    dest = os.path.join(workdir, "installer")
    with zipfile.ZipFile(wheel) as z:
        members = [n for n in z.namelist() if n.startswith("pip/")]
        for name in members:
            if "\\" in name or ":" in name or ".." in name.split("/"):
                raise Failure("{} holds an unsafe file name ({!r}); it was not used.".format(wheel, name))
        z.extractall(dest, members)
    return os.path.join(dest, "pip")


def install(plan, s, ui, journal, files, workdir, mark=None):
    mark = {} if mark is None else mark                       # begin_changes(): what roll_back needs
    if plan.skip_install:
        ui.step("install", "skipped", plan.skip_install)
        return
    ours = journaled_installs(journal)                       # earlier runs': only their pip can have been cut off
    if not plan.install:
        clear_interrupted(journal, plan.flags, ui, ours)     # pip finished, but its stash was left
        ui.step("install", "ok", "nothing to install: pip {}{} already".format(
            s.pip, ", truststore " + s.truststore if s.truststore else ""))
        return
    requirements = os.path.join(workdir, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as f:
        f.write("\n".join(p["line"] for p in plan.install) + "\n")
    for pin in plan.install:                                 # journal (and back up) before changing
        backup_distribution(journal, pin, s.dists.get(pin["name"], (None, None))[1], plan.flags)
    clear_interrupted(journal, plan.flags, ui, ours)             # after: backup_distribution looks at it
    started = time.time()
    cmd = python_cmd(sys.executable, "-B", unpack_installer(files["pip"], workdir)) + [
        "install", "--no-index", "--find-links", workdir, "--require-hashes", "--no-deps",
        "--disable-pip-version-check", "--no-input", "--no-warn-script-location", "--progress-bar", "off",
        "-r", requirements] + plan.flags + (
        ["--force-reinstall"] if any(getattr(s, p["name"]) == p["version"] for p in plan.install) else [])
    if s.venv or "--user" in plan.flags:
        # The user owns this target, so Python caches bytecode at first import as always; compiling all of
        # pip up front (about 40% of the install time) would mostly compile modules pip never imports.
        cmd.append("--no-compile")
    mark["installed"] = True                      # from here a failure rolls the packages back (pip's own
    proc = run(cmd, env=pip_env())                # failure already did)
    if proc.returncode != 0:
        mark["installed"] = False
        tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
        raise Failure("pip could not install {}:\n{}".format(
            ", ".join(p["name"] for p in plan.install), tail))
    for p in plan.install:
        changed(package="{} {} in {}".format(p["name"], p["version"], plan.where))
    ui.step("install", "changed", "{} into {} ({:.1f} s)".format(
        ", ".join("{} {}".format(p["name"], p["version"]) for p in plan.install), plan.where,
        time.time() - started))


# --------------------------------------------------------------------------------------------------
# Trust: nothing, or `cert = <certifi + corporate CAs>` in pip's config; optionally the OS store
# --------------------------------------------------------------------------------------------------

def configure_trust(plan, args, ui, journal, files):
    if plan.strategy == "none":
        ui.step("trust", "warning" if plan.notes else "ok", plan.trust_reason)
        return False
    certifi_version = plan.pins["certifi"]["version"]
    certifi_pem = read_zip_member(files["certifi"], "certifi/cacert.pem")
    bundle = make_bundle(certifi_pem, certifi_version, plan.extras)
    refreshed = bundle_changes(bundle_contents(plan.bundle_path), certifi_version, plan.extras)
    changed = change_file(journal, plan.bundle_path, bundle)
    path = plan.config_path
    encoding = pip_config_encoding()                            # what pip reads it in (not always UTF-8)
    text = read_bytes(path).decode(encoding) if os.path.isfile(path) else \
        "# pip configuration. `cert` was set by trustfix bootstrap.py (undo: python bootstrap.py undo).\n"
    new = checked_ini_edit(text, "global", "cert", plan.bundle_path, path)
    changed = change_file(journal, path, new.encode(encoding)) or changed
    ui.step("trust", "changed" if changed else "ok", "{} {} ({} extra CA(s) + certifi {}{}); cert set in {}".format(
        ("refreshed" if refreshed else "wrote") if changed else "unchanged:", plan.bundle_path, len(plan.extras),
        certifi_version, "; " + "; ".join(refreshed) if refreshed and changed else "", path))
    if args.add_to_os_store:
        changed = add_to_os_store(plan, ui, journal) or changed
    return changed


def add_to_os_store(plan, ui, journal):
    changed = False
    for der, info in missing_from_os_store(plan.extras):
        record = OS.add_ca(der, info)
        if record["kind"] == "file+command":
            journal["os_store"].append({k: v for k, v in record.items() if k != "data"})
            change_file(journal, record["path"], record["data"].encode("ascii"))
            proc = run(record["command"])
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as f:
                f.write(record["data"])
            journal["os_store"].append({k: v for k, v in record.items() if k != "data"})
            journal_save(journal)
            proc = run([f.name if part == "{file}" else part for part in record["command"]])
            os.unlink(f.name)
        if proc.returncode != 0:
            raise Failure("adding {} to the OS trust store failed: {}".format(info["subject"], proc.stdout.strip()[-300:]))
        ui.step("os-store", "changed", "added {} ({})".format(info["subject"], OS.name))
        changed = True
    return changed


# --------------------------------------------------------------------------------------------------
# Beyond pip (--tools): the developer's other tools, each trusting the network through its own documented
# setting, written like pip's files (journaled, atomic; undo is restore_file). One class per tool with the
# same operations, chosen by name (TOOLS), as the platform classes are:
#   find() -> (program, version text), or raise Skip when it is not here
#   plan(plan, s, scope, found) -> ToolChange: the file, its new bytes and the setting, or raise Skip/LeftAlone
#   now(scope, found) -> (where its trust comes from today, anchors, URL it talks to)   (doctor, verify)
# anchors: "os" (the OS store), a CA file's path, or "own" (roots of its own, which certifi's stand for).
# --------------------------------------------------------------------------------------------------

class Skip(Exception):
    """This tool is not here, or its setting does not apply here: one plain sentence why."""


class LeftAlone(Exception):
    """This tool's configuration file cannot be read, so it is left as it is: one plain sentence naming it."""


class ToolChange(Record):
    """What --tools does to one tool (plan_tools), then how it went (configure_tools). status: change | ok |
    skipped | left-alone, then changed | ok | skipped | warning. anchors and url: what the tool trusts and
    talks to afterwards (verify probes them)."""

    __slots__ = ("tool", "version", "status", "summary", "path", "data", "setting", "anchors", "url", "notes")

    def as_json(self):
        return {"tool": self.tool, "version": self.version, "status": self.status, "summary": self.summary,
                "path": self.path, "setting": self.setting, "notes": self.notes}


TOOL_COMMENT = "trustfix bootstrap.py --tools set this (undo: python bootstrap.py undo)"


def program(name):
    """The full path of a command on PATH, or raise Skip. Only absolute PATH entries count (never the current
    folder), and as root only a program no other user can change, since it runs with root's rights."""
    search = os.pathsep.join(p for p in (os.environ.get("PATH") or "").split(os.pathsep) if os.path.isabs(p))
    found = shutil.which(name, path=search)
    if not found:
        raise Skip("{} is not installed here (not on PATH)".format(name))
    if OS.owners_matter and os.geteuid() == 0:
        real = os.path.realpath(found)
        for path in (real, os.path.dirname(real)):
            st = os.stat(path)
            if st.st_uid != 0 or st.st_mode & 0o022:
                raise Skip("{} can be changed by another user, so bootstrap.py (running as root) does not run "
                           "it".format(path))
    return found


def version_of(cmd, pattern, env=None):
    """The version a tool prints for cmd (e.g. [git, --version]), by pattern's first group; Skip if it fails."""
    proc = run(cmd, env=env or dict(os.environ), timeout=60)
    m = re.search(pattern, proc.stdout)
    if proc.returncode != 0 or not m:
        raise Skip("`{}` failed ({})".format(" ".join([os.path.basename(cmd[0])] + cmd[1:]),
                                              (proc.stdout.strip().splitlines() or ["no output"])[-1][:200]))
    return m.group(1)


def text_of(path):
    """A tool's configuration file as text ('' when there is none); LeftAlone when it is not readable text."""
    if not os.path.lexists(path):
        return ""
    if not os.path.isfile(path):
        raise LeftAlone("{} is not a regular file".format(path))
    try:
        return read_bytes(path).decode("utf-8")
    except OSError as e:
        raise LeftAlone("cannot read {} ({})".format(path, e.strerror))
    except UnicodeDecodeError:
        raise LeftAlone("{} is not UTF-8 text".format(path))


def lines_of(text):
    """(the lines of a configuration file, each with its newline, the last one too; the newline it uses)."""
    nl = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += nl
    return lines, nl


def verification_off(path, setting, tool, fix):
    """The note for a setting found that switches a tool's TLS verification off (never one this product writes)."""
    return "{} sets {}, which switches TLS verification off for {}; {}".format(path, setting, tool, fix)


def file_change(tool, version, path, old, new, setting, anchors, url, already):
    """The ToolChange of writing new over old (text) at path; 'ok' when they are equal."""
    same = old == new
    return ToolChange(tool=tool, version=version, status="ok" if same else "change", path=path,
                      data=None if same else new.encode("utf-8"), setting=setting, anchors=anchors, url=url,
                      notes=[], summary="{} in {}".format(setting, path) if same or not already else
                      "{} in {} (was: {})".format(setting, path, already))


# --- uv: system-certs = true (native-tls = true before uv 0.11) in uv.toml --------------------------------

class _Uv:
    name = "uv"
    keys = ("system-certs", "native-tls")          # the name today, and the older one uv < 0.11 reads

    @staticmethod
    def find():
        exe = program("uv")
        return exe, version_of([exe, "--version"], r"^uv (\S+)")

    @staticmethod
    def config_file(scope):
        """uv's user file (XDG_CONFIG_HOME, also on macOS; %APPDATA% on Windows), or the system one."""
        return os.path.join(OS.tool_config_home(scope), "uv", "uv.toml")

    @staticmethod
    def accepts(exe, text):
        """None when this uv reads text as a uv.toml, else uv's first complaint (uv checks every key)."""
        with tempfile.TemporaryDirectory(prefix="trustfix-uv-") as tmp:
            path = os.path.join(tmp, "uv.toml")
            atomic_write(path, text.encode("utf-8"))
            proc = run([exe, "--config-file", path, "cache", "dir"], env=dict(os.environ), timeout=60, cwd=tmp)
        if proc.returncode == 0:
            return None
        lines = [l.strip() for l in proc.stdout.splitlines() if l.strip() and "|" not in l]
        return " ".join(lines[:2])[:300] or "exit code {}".format(proc.returncode)

    @staticmethod
    def top_level_set(text, key):
        """text with `key = true` among the top-level keys (before the first [table]): the line of either
        name replaced, or a new line (and our comment) put first, after a leading comment block."""
        lines, nl = lines_of(text)
        end = next((i for i, l in enumerate(lines) if re.match(r"^\s*\[", l)), len(lines))
        named = re.compile(r"^\s*(?:system-certs|native-tls)\s*=")
        hits = [i for i in range(end) if named.match(lines[i])]
        if hits:
            lines[hits[0]] = "{} = true{}".format(key, nl)
            return "".join(l for i, l in enumerate(lines) if i not in hits[1:])
        at = 0
        while at < end and lines[at].lstrip().startswith("#"):
            at += 1
        return "".join(lines[:at] + ["# {}{}{} = true{}".format(TOOL_COMMENT, nl, key, nl)] + lines[at:])

    @staticmethod
    def current(text):
        """The value of a top-level system-certs / native-tls line: (key, value text) or (None, None)."""
        for line in text.splitlines():
            if re.match(r"^\s*\[", line):
                break
            m = re.match(r"^\s*(system-certs|native-tls)\s*=\s*([^#\s]*)", line)
            if m:
                return m.group(1), m.group(2)
        return None, None

    @staticmethod
    def plan(plan, s, scope, found):
        """system-certs = true when this uv reads that name, else native-tls = true; each new text is checked
        by the uv installed here before it is planned."""
        exe, version = found
        path = _Uv.config_file(scope)
        old = text_of(path)
        problem = old and _Uv.accepts(exe, old)
        if problem:
            raise LeftAlone("uv {} cannot read {} ({}); fix that file, then run bootstrap.py again".format(
                version, path, problem))
        now = _Uv.current(old)
        was = "{} = {}".format(*now) if now[0] else None
        for key in _Uv.keys:
            new = old if now == (key, "true") else _Uv.top_level_set(old, key)
            if new == old or not _Uv.accepts(exe, new):
                change = file_change("uv", version, path, old, new, key + " = true", "os", s.index_url, was)
                if key != _Uv.keys[0]:
                    change.notes = ["uv {} does not know the name system-certs yet; it reads native-tls".format(version)]
                return change
        raise LeftAlone("uv {} accepts neither system-certs nor native-tls in {}; update uv, then run "
                        "bootstrap.py again".format(version, path))

    @staticmethod
    def now(scope, found):
        for var in ("UV_SYSTEM_CERTS", "UV_NATIVE_TLS"):
            if env_flag(var):
                return "the OS store ({}={})".format(var, os.environ[var]), "os", None
        if os.environ.get("SSL_CERT_FILE"):
            return "SSL_CERT_FILE={} (replaces its roots)".format(os.environ["SSL_CERT_FILE"]), \
                os.environ["SSL_CERT_FILE"], None
        try:
            key, value = _Uv.current(text_of(_Uv.config_file(scope)))
        except LeftAlone:
            key = value = None
        if key and value == "true":
            return "the OS store ({} = true in {})".format(key, _Uv.config_file(scope)), "os", None
        return "its own copy of Mozilla's roots", "own", None


# --- requests, httpx, urllib in this Python: a start-up hook (.pth) in its site-packages -------------------

PTH_NAME = "trustfix.pth"


def pth_text(bundle):
    """The start-up hook: on Python >= 3.10 truststore injected into ssl (the OS store, for requests, httpx,
    urllib, urllib3 and pip), else REQUESTS_CA_BUNDLE and SSL_CERT_FILE pointed at the bundle when unset. It
    never stops start-up (any error is ignored), does nothing when the bundle is gone, and
    TRUSTFIX_STARTUP_HOOK=0 (false, no, off) turns it off for one program. The variables it sets are named in
    TRUSTFIX_STARTUP_HOOK_SET (so bootstrap.py can tell them from the user's own: undo_startup_hook).

    It replaces ssl.SSLContext only, before anything else is imported: urllib3, requests (its preloaded
    context) and httpx, imported later, take truststore's class from ssl themselves. truststore.inject_into_ssl()
    would also import urllib3 and requests to patch them, which costs every start of Python about 0.1 s
    (measured: 105 ms against 22 ms here). pip's own copy of truststore is imported first: imported after the
    replacement, it would take the replaced class for the original, and pip would end in a RecursionError on
    its first HTTPS request."""
    if bundle is None:
        code = ("if os.environ.get('TRUSTFIX_STARTUP_HOOK', '').lower() not in ('0', 'false', 'no', 'off'):\n"
                "    try:\n"
                "        import ssl, truststore\n"
                "        try:\n"
                "            import pip._vendor.truststore\n"
                "        except ImportError:\n"
                "            pass\n"
                "        ssl.SSLContext = truststore.SSLContext\n"
                "    except Exception:\n"
                "        pass\n")
        what = "verifies TLS with the OS trust store (truststore injected into ssl at start-up)"
    else:
        code = ("b = {}\n"
                "try:\n"
                "    if os.environ.get('TRUSTFIX_STARTUP_HOOK', '').lower() not in ('0', 'false', 'no', 'off') and "
                "os.path.isfile(b):\n"
                "        for v in ('REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE'):\n"
                "            if not (os.environ.get(v) or v == 'SSL_CERT_FILE' and os.environ.get('SSL_CERT_DIR')):\n"
                "                os.environ[v] = b\n"
                "                os.environ['TRUSTFIX_STARTUP_HOOK_SET'] = "
                "(os.environ.get('TRUSTFIX_STARTUP_HOOK_SET', '') + ' ' + v).strip()\n"
                "except Exception:\n"
                "    pass\n").format(ascii(bundle))
        what = "verifies TLS with {} (REQUESTS_CA_BUNDLE, SSL_CERT_FILE set at start-up when unset)".format(bundle)
    return ("# {}\n# Every program this Python runs {}. One program without it: TRUSTFIX_STARTUP_HOOK=0\n"
            "import os; exec({})\n").format(TOOL_COMMENT, what.encode("ascii", "backslashreplace").decode(), ascii(code))


class _Requests:
    name = "requests"

    @staticmethod
    def find():
        return sys.executable, installed_distributions().get("requests", (None,))[0]

    @staticmethod
    def plan(plan, s, scope, found):
        py = sys.version_info[:2]
        if plan.skip_install:
            raise Skip("this Python's packages are left alone ({})".format(plan.skip_install.split(";")[0]))
        path = os.path.join(install_site(plan.flags), PTH_NAME)
        old = text_of(path)
        if py >= TRUSTSTORE_PYTHON:
            if not (s.truststore or any(p["name"] == "truststore" for p in plan.install)):
                raise Skip("truststore is not pinned in hashes.txt for Python {}".format(vstr(py)))
            new, setting, anchors = pth_text(None), "truststore injected at start-up", "os"
        elif plan.strategy == "bundle":
            new, setting, anchors = pth_text(plan.bundle_path), "REQUESTS_CA_BUNDLE, SSL_CERT_FILE = the bundle", \
                plan.bundle_path
        else:
            raise Skip("no company CA is known here, so there is no bundle to point Python {}'s requests at "
                       "(give --ca-file)".format(vstr(py)))
        change = file_change("requests", found[1], path, old, new, setting, anchors, s.index_url, None)
        change.notes = ["every program this Python ({}) runs now {}; other Pythons and venvs made later are not "
                        "changed: run bootstrap.py --tools requests with each".format(
                            sys.prefix, "verifies TLS with the OS store (truststore), not certifi" if anchors == "os"
                            else "verifies TLS with " + plan.bundle_path)] if change.status == "change" else []
        return change

    @staticmethod
    def now(scope, found):
        if INJECTED["by"]:
            return "the OS store (truststore, injected at start-up by {})".format(INJECTED["by"]), "os", None
        if INJECTED["vars"].get("REQUESTS_CA_BUNDLE"):
            return "REQUESTS_CA_BUNDLE={}, set at start-up by {}".format(INJECTED["vars"]["REQUESTS_CA_BUNDLE"], PTH_NAME), \
                INJECTED["vars"]["REQUESTS_CA_BUNDLE"], None
        for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            if os.environ.get(var):
                return "{}={} (replaces certifi)".format(var, os.environ[var]), os.environ[var], None
        return "certifi", "own", None


# --- conda: ssl_verify in .condarc ------------------------------------------------------------------------

class _Conda:
    name = "conda"
    default_url = "https://conda.anaconda.org/"

    @staticmethod
    def find():
        exe = os.environ.get("CONDA_EXE") if os.path.isabs(os.environ.get("CONDA_EXE") or "") else None
        exe = exe if exe and os.path.isfile(exe) else program("conda")
        proc = run([exe, "info", "--json"], env=dict(os.environ), timeout=120)
        try:
            info = json.loads(proc.stdout[proc.stdout.find("{"):])
        except ValueError:
            raise Skip("`conda info --json` failed ({})".format((proc.stdout.strip().splitlines() or ["no output"])[-1]))
        return exe, info

    @staticmethod
    def config_file(scope, info):
        """conda's user file (~/.condarc) or the one of its base installation (sys_rc_path) machine-wide."""
        if scope == "global":
            return info.get("sys_rc_path") or os.path.join(info.get("root_prefix") or "", ".condarc")
        return info.get("user_rc_path") or os.path.expanduser(os.path.join("~", ".condarc"))

    @staticmethod
    def search_path(root_prefix, environ=None):
        """The files conda reads, lowest precedence first, as its documentation lists them ("Searching for
        .condarc"): machine-wide, its base installation's, the user's, the active environment's, $CONDARC.
        (A condarc.d folder's *.yml files stand where the folder is.)"""
        environ = os.environ if environ is None else environ
        home = os.path.expanduser("~")
        folders = list(OS.conda_machine_dirs) + [root_prefix or environ.get("CONDA_ROOT") or ""]
        if environ.get("XDG_CONFIG_HOME"):
            folders.append(os.path.join(environ["XDG_CONFIG_HOME"], "conda"))
        folders += [os.path.join(home, ".config", "conda"), os.path.join(home, ".conda")]
        out = []
        for folder in filter(None, folders):
            out += [os.path.join(folder, ".condarc"), os.path.join(folder, "condarc"), os.path.join(folder, "condarc.d")]
        out.append(os.path.join(home, ".condarc"))
        if environ.get("CONDA_PREFIX"):
            prefix = environ["CONDA_PREFIX"]
            out += [os.path.join(prefix, ".condarc"), os.path.join(prefix, "condarc"), os.path.join(prefix, "condarc.d")]
        if environ.get("CONDARC"):
            out.append(environ["CONDARC"])
        return out

    @staticmethod
    def overriding(path, value, root_prefix, environ=None):
        """The settings conda reads after path that give ssl_verify another value: ["<file or variable>: value"]."""
        environ = os.environ if environ is None else environ
        files = _Conda.search_path(root_prefix, environ)
        later = files[files.index(path) + 1:] if path in files else []
        found = []
        for candidate in later:
            names = [candidate] if not os.path.isdir(candidate) else \
                [os.path.join(candidate, n) for n in sorted(os.listdir(candidate)) if n.endswith((".yml", ".yaml"))]
            for name in names:
                try:
                    other = _Conda.current(text_of(name))
                except LeftAlone:
                    continue
                if other is not None and other != value:
                    found.append("{} sets ssl_verify: {}".format(name, other))
        if environ.get("CONDA_SSL_VERIFY") and environ["CONDA_SSL_VERIFY"] != value:
            found.append("CONDA_SSL_VERIFY={}".format(environ["CONDA_SSL_VERIFY"]))
        return found

    @staticmethod
    def value(info, bundle):
        """truststore (the OS store) for conda >= 23.9 running on Python >= 3.10, else the bundle's path."""
        if vtuple(info.get("conda_version", "0")) >= (23, 9) and vtuple(info.get("python_version", "0")) >= (3, 10):
            return "truststore"
        return bundle

    @staticmethod
    def yaml_set(text, key, value):
        """text (a .condarc: block-style YAML) with the top-level `key: value`; LeftAlone for YAML this line
        editor cannot safely change (flow style, a multi-line value, tabs)."""
        lines, nl = lines_of(text)
        body = [l for l in lines if l.strip() and not l.lstrip().startswith("#")]
        if any(l.lstrip().startswith(("{", "[", "%", "&", "!", "?")) and not l.startswith((" ", "-")) for l in body) or \
                any("\t" in l[:len(l) - len(l.lstrip())] for l in body):
            raise LeftAlone("it is not plain block-style YAML")
        line = "{}: {}{}".format(key, value if re.match(r"^[A-Za-z0-9_]+$", value) else
                                 "'" + value.replace("'", "''") + "'", nl)
        for i, l in enumerate(lines):
            if re.match(r"^{}\s*:".format(re.escape(key)), l):
                rest = l.split(":", 1)[1].split(" #")[0].strip()
                follows = lines[i + 1] if i + 1 < len(lines) else ""
                if not rest or (follows.startswith((" ", "-")) and follows.strip()):
                    raise LeftAlone("its {} has a value over several lines".format(key))
                return "".join(lines[:i] + [line] + lines[i + 1:])
        return "".join(lines + ["# {}{}".format(TOOL_COMMENT, nl), line])

    @staticmethod
    def current(text, key="ssl_verify"):
        m = re.search(r"(?m)^{}\s*:\s*(.*?)\s*(?:#.*)?$".format(key), text)
        return m.group(1).strip("'\"") if m else None

    @staticmethod
    def plan(plan, s, scope, found):
        exe, info = found
        version = info.get("conda_version", "?")
        value = _Conda.value(info, plan.bundle_path if plan.strategy == "bundle" else None)
        if value is None:
            raise Skip("conda {} on Python {} needs a CA bundle (truststore needs conda >= 23.9 on Python >= 3.10), "
                       "and no company CA is known here (give --ca-file)".format(version, info.get("python_version")))
        path = _Conda.config_file(scope, info)
        old = text_of(path)
        try:
            new = _Conda.yaml_set(old, "ssl_verify", value)
        except LeftAlone as e:
            raise LeftAlone("{}: {}; set ssl_verify: {} there yourself".format(path, e.args[0], value))
        was = _Conda.current(old)
        change = file_change("conda", version, path, old, new, "ssl_verify: " + value,
                             "os" if value == "truststore" else value, _Conda.default_url,
                             "ssl_verify: " + was if was is not None else None)
        if was is not None and flag(was) is False:
            change.notes.append(verification_off(path, "ssl_verify: " + was, "conda", "--tools conda replaces it"))
        for other in _Conda.overriding(path, value, info.get("root_prefix"), os.environ):
            change.notes.append("{}, which conda reads after {} and so uses instead; remove it there".format(other, path))
        return change

    @staticmethod
    def now(scope, found):
        exe, info = found
        value = os.environ.get("CONDA_SSL_VERIFY") or info.get("ssl_verify")
        if value is None:
            try:
                value = _Conda.current(text_of(_Conda.config_file(scope, info)))
            except LeftAlone:
                value = None
        if value not in (None, "") and flag(value) is False:
            return "ssl_verify: {} (verification is OFF)".format(value), "off", _Conda.default_url
        if value == "truststore":
            return "the OS store (ssl_verify: truststore)", "os", _Conda.default_url
        if value and value not in (True, "true", "True"):
            return "ssl_verify: {}".format(value), value, _Conda.default_url
        return "certifi (conda's default)", "own", _Conda.default_url


# --- git: http.sslCAInfo (POSIX) or http.sslBackend = schannel (Windows) in the global gitconfig ------------

class _Git:
    name = "git"
    url = "https://github.com/"

    @staticmethod
    def alone():
        """An environment in which git reads no configuration but the file it is given: git stops on a
        damaged ~/.gitconfig even for --version."""
        return dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)

    @staticmethod
    def find():
        exe = program("git")
        return exe, version_of([exe, "--version"], r"git version (\S+)", env=_Git.alone())

    @staticmethod
    def config_file(scope, exe):
        """The file `git config --global` (or --system) writes: GIT_CONFIG_GLOBAL, else ~/.gitconfig unless only
        $XDG_CONFIG_HOME/git/config exists; machine-wide GIT_CONFIG_SYSTEM, `git var`'s answer, /etc/gitconfig."""
        if scope == "global":
            if os.environ.get("GIT_CONFIG_SYSTEM"):
                return os.environ["GIT_CONFIG_SYSTEM"]
            proc = run([exe, "var", "GIT_CONFIG_SYSTEM"], env=dict(os.environ), timeout=60)
            if proc.returncode == 0 and os.path.isabs(proc.stdout.strip()):
                return proc.stdout.strip()
            return OS.git_system_config(exe)
        if os.environ.get("GIT_CONFIG_GLOBAL"):
            return os.environ["GIT_CONFIG_GLOBAL"]
        home = os.path.join(os.path.expanduser("~"), ".gitconfig")
        xdg = os.path.join(_xdg("XDG_CONFIG_HOME", "~/.config"), "git", "config")
        return xdg if not os.path.exists(home) and os.path.exists(xdg) else home

    @staticmethod
    def git_file(exe, path, *args):
        """`git config --file path args…` (git's own reader and writer); (exit code, output)."""
        proc = run([exe, "config", "--file", path] + list(args), env=_Git.alone(), timeout=60)
        return proc.returncode, proc.stdout.strip()

    @staticmethod
    def plan(plan, s, scope, found):
        exe, version = found
        if OS.git_os_store:
            (key, value), anchors = OS.git_os_store, "os"
        elif OS.git_reads_os_store and plan.extras and not missing_from_os_store(plan.extras):
            # http.sslCAInfo would replace the OS store (and the internal CAs only it holds) with the bundle
            return ToolChange(tool="git", version=version, status="ok", path=None, data=None, setting=None,
                              anchors="os", url=_Git.url, notes=[], summary="it verifies with the OS store, which "
                              "holds the company CA(s): nothing to set")
        elif plan.strategy == "bundle":
            key, value, anchors = "http.sslCAInfo", plan.bundle_path, plan.bundle_path
        else:
            raise Skip("no company CA is known here, so there is no bundle for http.sslCAInfo (git keeps the OS "
                       "store it uses on Linux and macOS; give --ca-file)")
        path = _Git.config_file(scope, exe)
        old = text_of(path)
        with tempfile.TemporaryDirectory(prefix="trustfix-git-") as tmp:
            copy = os.path.join(tmp, "config")
            atomic_write(copy, old.encode("utf-8"))
            code, was = _Git.git_file(exe, copy, "--get", key)
            if code not in (0, 1):                                   # 1: not set; anything else: unreadable
                raise LeftAlone("git {} cannot read {} ({}); fix that file, then run bootstrap.py again".format(
                    version, path, was.splitlines()[-1] if was else "exit code {}".format(code)))
            verify = _Git.git_file(exe, copy, "--bool", "--get", "http.sslVerify")[1]
            if was != value:
                code, out = _Git.git_file(exe, copy, key, value)
                if code != 0:
                    raise LeftAlone("git {} could not set {} in a copy of {} ({})".format(version, key, path, out))
            new = read_bytes(copy).decode("utf-8")
        change = file_change("git", version, path, old, new, "{} = {}".format(key, value), anchors, _Git.url,
                             "{} = {}".format(key, was) if was and was != value else None)
        if verify == "false":
            change.notes = [verification_off(path, "http.sslVerify = false", "git", "remove that line")]
        return change

    @staticmethod
    def now(scope, found):
        exe, version = found
        env = dict(os.environ)
        get = lambda key: run([exe, "config", "--get", key], env=env, timeout=60).stdout.strip()
        verify = get("http.sslVerify")
        if os.environ.get("GIT_SSL_NO_VERIFY") or (verify and flag(verify) is False):
            return "verification is OFF (http.sslVerify false or GIT_SSL_NO_VERIFY)", "off", _Git.url
        cainfo = os.environ.get("GIT_SSL_CAINFO") or get("http.sslCAInfo")
        if cainfo:
            return "http.sslCAInfo = {}".format(cainfo), os.path.expanduser(cainfo), _Git.url
        if get("http.sslBackend") == "schannel":
            return "the Windows store (http.sslBackend = schannel)", "os", _Git.url
        return ("its own CA bundle (OpenSSL backend)", "own", _Git.url) if OS.git_os_store else \
            ("the OS store", "os", _Git.url)


# --- npm: cafile in .npmrc ---------------------------------------------------------------------------------

class _Npm:
    name = "npm"

    @staticmethod
    def find():
        exe = program("npm")
        return exe, version_of([exe, "--version"], r"^(\d\S*)")

    @staticmethod
    def config(exe, *args):
        """`npm config args…`, its cache (where npm writes a log of every command) a folder of our own."""
        with tempfile.TemporaryDirectory(prefix="trustfix-npm-") as cache:
            return run([exe, "config"] + list(args), env=dict(os.environ, npm_config_cache=cache,
                                                                npm_config_update_notifier="false"), timeout=60)

    @staticmethod
    def config_file(scope, exe):
        """npm's user file (NPM_CONFIG_USERCONFIG, else ~/.npmrc), or machine-wide its globalconfig."""
        if scope == "global":
            proc = _Npm.config(exe, "get", "globalconfig")
            path = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else ""
            if not os.path.isabs(path):
                raise Skip("`npm config get globalconfig` did not name a file")
            return path
        for var in ("NPM_CONFIG_USERCONFIG", "npm_config_userconfig"):
            if os.path.isabs(os.environ.get(var) or ""):
                return os.environ[var]
        return os.path.join(os.path.expanduser("~"), ".npmrc")

    @staticmethod
    def ini_set(text, key, value):
        """text (an .npmrc) with key=value before any [section]: its line replaced, or one added."""
        lines, nl = lines_of(text)
        end = next((i for i, l in enumerate(lines) if l.strip().startswith("[")), len(lines))
        spelt = json.dumps(value) if re.search(r"[;#\"']|^\s|\s$", value) else value
        line = "{}={}{}".format(key, spelt, nl)
        hits = [i for i in range(end) if re.match(r"^\s*{}\s*=".format(re.escape(key)), lines[i])]
        if hits:
            lines[hits[0]] = line
            return "".join(l for i, l in enumerate(lines) if i not in hits[1:])
        return "".join(lines[:end] + ["; {}{}".format(TOOL_COMMENT, nl), line] + lines[end:])

    @staticmethod
    def current(text, key):
        for line in text.splitlines():
            if line.strip().startswith("["):
                break
            m = re.match(r"^\s*{}\s*=\s*(.*?)\s*$".format(re.escape(key)), line)
            if m:
                return m.group(1)
        return None

    @staticmethod
    def plan(plan, s, scope, found):
        exe, version = found
        if plan.strategy != "bundle":
            raise Skip("no company CA is known here, so there is no bundle for npm's cafile (give --ca-file)")
        path = _Npm.config_file(scope, exe)
        old = text_of(path)
        new = _Npm.ini_set(old, "cafile", plan.bundle_path)
        was = _Npm.current(old, "cafile")
        registry = _Npm.config(exe, "get", "registry").stdout.strip().splitlines()
        url = registry[-1] if registry and registry[-1].startswith("https://") else "https://registry.npmjs.org/"
        change = file_change("npm", version, path, old, new, "cafile=" + plan.bundle_path, plan.bundle_path, url,
                             "cafile=" + was if was else None)
        if (_Npm.current(old, "strict-ssl") or "").lower() == "false":
            change.notes = [verification_off(path, "strict-ssl=false", "npm", "remove that line")]
        return change

    @staticmethod
    def now(scope, found):
        exe, version = found
        proc = _Npm.config(exe, "list", "--json")
        try:
            conf = json.loads(proc.stdout[proc.stdout.find("{"):])
        except ValueError:
            conf = {}
        url = conf.get("registry") or "https://registry.npmjs.org/"
        if str(conf.get("strict-ssl")).lower() == "false":
            return "verification is OFF (strict-ssl=false)", "off", url
        if conf.get("cafile"):
            return "cafile={}".format(conf["cafile"]), conf["cafile"], url
        extra = os.environ.get("NODE_EXTRA_CA_CERTS")
        return "Node's own copy of Mozilla's roots" + (" + NODE_EXTRA_CA_CERTS={}".format(extra) if extra else ""), \
            "own", url


TOOLS = {t.name: t for t in (_Uv, _Requests, _Conda, _Git, _Npm)}
USER_WIDE = ("conda", "git", "npm")        # their settings are the user's and may name the bundle


def tool_targets():
    """Every file --tools may write, for the journal's check (writable_target): each tool's user and
    machine-wide file as this environment names them, and the names the others have wherever they are
    (a gitconfig or npmrc under an etc/ folder, a start-up hook in a site-packages folder)."""
    paths = [_Uv.config_file(scope) for scope in ("user", "global")] + [
        os.path.join(os.path.expanduser("~"), name) for name in (".condarc", ".gitconfig", ".npmrc")]
    paths += [os.path.join(_xdg("XDG_CONFIG_HOME", "~/.config"), "git", "config"),
              os.path.join(_xdg("XDG_CONFIG_HOME", "~/.config"), "conda", ".condarc")]
    paths += [os.environ[v] for v in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "NPM_CONFIG_USERCONFIG",
                                      "npm_config_userconfig", "CONDARC") if os.path.isabs(os.environ.get(v) or "")]
    return paths


TOOL_FILE_NAMES = ("uv.toml", ".gitconfig", "gitconfig", ".npmrc", "npmrc", ".condarc", "condarc")


def is_tool_target(path):
    """Whether path is a file --tools writes: one tool_targets() names (or where it leads), a file with the
    name a tool gives its settings (a dotfile kept in a dotfiles folder and linked keeps its name there), git's
    XDG file, or the start-up hook in a site-packages folder."""
    name, folder = os.path.basename(path), os.path.dirname(path)
    targets = tool_targets()
    if path in targets or path in [os.path.realpath(t) for t in targets]:
        return True
    if name == PTH_NAME:
        return os.path.basename(folder) in ("site-packages", "dist-packages")
    return name in TOOL_FILE_NAMES or (name == "config" and os.path.basename(folder) == "git")


def plan_tools(plan, s, args):
    """Step 7, with --tools: each tool's change, decided and checked now (read only). A tool that is not here
    or to which the setting does not apply is skipped, one whose file cannot be read is left alone; both are
    said, and neither stops the run. A tool that will trust the OS store hears which CAs that store lacks."""
    scope = "global" if args.scope == "global" else "user"
    changes = []
    for name in args.tools:
        tool = TOOLS[name]
        try:
            if args.scope == "site" and name in USER_WIDE and plan.strategy == "bundle":
                raise Skip("with --scope site the bundle lives in this Python ({}), and {}'s setting is the "
                           "user's: run bootstrap.py --tools {} without --scope site".format(plan.bundle_path, name, name))
            changes.append(tool.plan(plan, s, scope, tool.find()))
        except (Skip, LeftAlone) as e:
            changes.append(ToolChange(tool=name, version=None, status="skipped" if isinstance(e, Skip) else
                                      "left-alone", summary=e.args[0], path=None, data=None, setting=None,
                                      anchors=None, url=None, notes=[]))
    on_os = [tc.tool for tc in changes if tc.anchors == "os"]
    if on_os and plan.extras and not args.add_to_os_store:
        lacks = [info["subject"] for _, info in missing_from_os_store(plan.extras)]
        if lacks:
            plan.notes.append("{} will trust the OS store, which lacks {}: add it with --add-to-os-store{} or ask "
                              "IT to deploy it; until then {} fail{} through the proxy".format(
                                  " and ".join(on_os), ", ".join(lacks), OS.admin_words, " and ".join(on_os),
                                  "" if len(on_os) > 1 else "s"))
    return changes


def tool_words(tc):
    """How a ToolChange's summary is said, by its status (the plan's words, then the run's)."""
    return {"change": "set {}", "changed": "set {}", "ok": "{} already" if tc.path else "{}",
            "skipped": "skipped, {}", "left-alone": "left alone, {}", "warning": "left alone, {}"}[tc.status]


def configure_tools(plan, ui, journal):
    """Write each tool's planned change (journaled, like pip's files); True if any file changed."""
    changed = False
    for tc in plan.tools:
        if tc.status == "change":
            change_file(journal, tc.path, tc.data)
            tc.status, changed = "changed", True
        elif tc.status == "left-alone":
            tc.status = "warning"
        ui.step("tools", tc.status, "{}{}: {}".format(tc.tool, " " + tc.version if tc.version else "",
                                                      tool_words(tc).format(tc.summary)))
        for note in tc.notes:
            ui.warn(note)
    return changed


def anchors_context(anchors, s):
    """The SSLContext of a tool's anchors: the OS store, a CA file, or (own) certifi's roots for the Mozilla
    roots the tool carries itself; None when there is none (verification off, a missing file, no certifi)."""
    if anchors == "os":
        return OS.os_context()
    path = s.certifi_files[-1][0] if anchors == "own" and s.certifi_files else anchors
    if anchors == "off" or not path or path == "own":
        return None
    try:
        return pip_verifier(cafile=path)
    except (OSError, ssl.SSLError):
        return None


def tool_probe(tool, how, anchors, url, s, timeout):
    """(status, line, problem or None) of one tool's TLS to url through the proxy the environment names."""
    ctx = anchors_context(anchors, s)
    if anchors == "off":
        return "warning", "{}: TLS verification is OFF".format(how), (
            "{} has TLS verification switched off".format(tool), "remove that setting, then run python "
            "bootstrap.py --tools {}".format(tool))
    if ctx is None:
        return "skipped", "{}: not checked".format(how), None
    probe = tls_probe(url, proxy_for(url), ctx, timeout)
    if probe.ok:
        return "ok", "{}: reaches {}".format(how, host_of(url)), None
    if not probe.reached:
        return "skipped", "{}: {} not reached ({}), not checked".format(how, host_of(url), probe.status), None
    return "warning", "{}: FAILS: {}".format(how, probe.detail), (
        "{} cannot verify {} ({})".format(tool, host_of(url), probe.detail),
        "python bootstrap.py --tools {}".format(tool))


def verify_tools(plan, s, args, ui):
    """Online: each tool set up now reaches what it talks to, with the anchors it has now (one handshake each,
    through the proxy). A warning when one fails: the exit code is about pip."""
    for tc in plan.tools:
        if tc.status not in ("changed", "ok") or args.offline or not tc.url:
            continue
        status, line, problem = tool_probe(tc.tool, tc.tool, tc.anchors, tc.url, s, TIMEOUT)
        ui.step("verify", status, line)
        if problem:
            ui.warn("{}: run `python bootstrap.py doctor` to see why".format(problem[0]))


# --------------------------------------------------------------------------------------------------
# Verify: a fresh pip process, the user's own environment and configuration, reaches the index
# --------------------------------------------------------------------------------------------------

def state_key(plan):
    parts = [sys.executable, str(installed_distributions().get("pip", ("",))[0])]
    for path in (plan.bundle_path, plan.config_path):
        parts.append(sha256_file(path) if path and os.path.isfile(path) else "-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def verify(plan, s, args, ui, journal, changed):
    if args.offline:
        ui.step("verify", "skipped", "no network: pip was not checked against the index (run bootstrap.py again "
                "online to check it)" if plan.mode == "offline (no network)" else
                "--offline: the index was not contacted")
        return EXIT_OK
    pip_now = installed_distributions().get("pip")
    if not pip_now:
        ui.step("verify", "skipped", "no pip is installed in this Python, so there is nothing to verify")
        return EXIT_OK
    key = state_key(plan)
    if not changed and (journal.get("verified") or {}).get("key") == key:
        ui.step("verify", "ok", "pip reached {} on {}; nothing changed since".format(
            s.index_url, journal["verified"]["at"]))
        return EXIT_OK
    pin = plan.pins["pip"]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="trustfix-verify-") as tmp:
        import site
        in_user_site = pip_now[1].startswith(str(getattr(site, "getusersitepackages", lambda: "\0")()))
        cmd = python_cmd(sys.executable, "-m", "pip", "download", user_site=in_user_site) + [
               "--no-deps", "--no-cache-dir", "--dest", tmp,
               "--disable-pip-version-check", "--timeout", str(int(TIMEOUT)), "--retries", "1",
               "pip=={}".format(pin["version"])]
        proc = run(cmd, env=dict(os.environ), timeout=180)
    if proc.returncode != 0:
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        cause = next((l.strip() for l in lines if "CERTIFICATE_VERIFY_FAILED" in l or "ProxyError" in l), None)
        ui.step("verify", "failed", "a fresh `pip download pip=={}` could not reach {}: {}".format(
            pin["version"], s.index_url, (cause or (lines[-1] if lines else "no output"))[:300]))
        ui.detail("tried: " + " ".join(cmd))
        ui.detail("run `python bootstrap.py doctor` to find the cause")
        return EXIT_UNVERIFIED
    ui.step("verify", "ok", "a fresh pip process reached {} and downloaded pip {} ({:.1f} s)".format(
        s.index_url, pin["version"], time.time() - started))
    if journal["files"] or journal["packages"] or journal.get("verified"):
        journal["verified"] = {"key": key, "at": time.strftime("%Y-%m-%d %H:%M")}
        journal_save(journal)
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Every Python on this machine: found where installers put them, probed in a child (read only)
# --------------------------------------------------------------------------------------------------

SCRIPT = os.path.abspath(__file__)
# Runs in each Python found, 2.7 included (so it can be named as unsupported): prints one JSON line.
# Reads file names only; imports nothing of pip's. With -E -s and an empty working folder (run()).
PYTHON_PROBE = r"""
import json, os, sys
try:
    import sysconfig
    purelib, stdlib = sysconfig.get_path("purelib"), sysconfig.get_path("stdlib")
except Exception:
    purelib = stdlib = None
try:
    import site
    user = site.getusersitepackages()
except Exception:
    user = None
def dist(name):
    for d in [p for p in sys.path if p] + [user]:
        try:
            names = sorted(os.listdir(d))
        except Exception:
            continue
        for n in names:
            low = n.lower()
            if low.startswith(name + "-") and low.endswith(".dist-info"):
                return n[len(name) + 1:-len(".dist-info")], d
    return None, None
pip, pip_dir = dist("pip")
ts = dist("truststore")[0]
ep = wheel = None
try:
    import ensurepip, glob
    ep = ensurepip.version()
    found = [w for d in (os.path.join(os.path.dirname(ensurepip.__file__), "_bundled"),
                         getattr(ensurepip, "_WHEEL_PKG_DIR", None)) if d       # Debian, Fedora: a system folder
             for w in sorted(glob.glob(os.path.join(d, "pip-*.whl")))]
    wheel = found[0] if found else None
except Exception:
    pass
venv = sys.prefix != getattr(sys, "base_prefix", getattr(sys, "real_prefix", sys.prefix))
path = purelib
while path and not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
print(json.dumps({"version": list(sys.version_info[:3]), "implementation": sys.platform and
                  getattr(getattr(sys, "implementation", None), "name", "cpython"),
                  "executable": sys.executable, "prefix": sys.prefix, "venv": venv,
                  "pip": pip, "pip_dir": pip_dir, "truststore": ts, "ensurepip": ep, "ensurepip_wheel": wheel,
                  "externally_managed": bool(not venv and stdlib and
                                             os.path.isfile(os.path.join(stdlib, "EXTERNALLY-MANAGED"))),
                  "writable": bool(path and os.access(path, os.W_OK))}))
"""
_PYTHON_NAME = re.compile(r"^python(3(\.\d+)?)?(\.exe)?$", re.I)


def python_candidates(environ=None):
    """Paths of the Python interpreters installed where installers put them: the py launcher's list on
    Windows; python3.X on PATH; pyenv; Homebrew; the python.org framework; /usr/bin and /usr/local/bin."""
    import glob
    environ = os.environ if environ is None else environ
    path = environ.get("PATH", os.defpath)
    found = []
    if os.name == "nt":
        launcher = shutil.which("py", path=path)
        if launcher:
            proc = run([launcher, "-0p"], timeout=30)
            found += re.findall(r"([A-Za-z]:\\[^\r\n*]*?python\.exe)", proc.stdout, re.I)
        local = environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        for root in (os.path.join(local, "Programs", "Python"), environ.get("ProgramFiles", "C:\\Program Files")):
            found += sorted(glob.glob(os.path.join(root, "Python3*", "python.exe")))
    for name in ["python3.{}".format(minor) for minor in range(6, 20)] + ["python3", "python"]:
        hit = shutil.which(name, path=path)
        if hit:
            found.append(hit)
    pyenv = environ.get("PYENV_ROOT") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".pyenv")
    patterns = [os.path.join(pyenv, "versions", "*", "bin", "python3*")]
    if os.name != "nt":
        patterns += ["/opt/homebrew/bin/python3*", "/opt/homebrew/opt/python@3*/bin/python3*",
                     "/usr/local/opt/python@3*/bin/python3*",
                     "/Library/Frameworks/Python.framework/Versions/*/bin/python3*",
                     "/usr/local/bin/python3*", "/usr/bin/python3*"]
    for pattern in patterns:
        found += sorted(glob.glob(pattern))
    out, seen = [], set()
    for candidate in found:
        real = os.path.normcase(os.path.realpath(candidate))
        if _PYTHON_NAME.match(os.path.basename(candidate)) and real not in seen and os.path.isfile(candidate):
            seen.add(real)
            out.append(candidate)
    return out


def probe_python(path):
    """What a Python is and has ({version, executable, prefix, pip, ensurepip, ...}), or {error}."""
    try:
        proc = run(python_cmd(path, "-c", PYTHON_PROBE), env=dict(os.environ), timeout=max(TIMEOUT, 20))
    except Failure as e:
        return {"path": path, "error": e.args[0]}
    line = next((l for l in reversed(proc.stdout.splitlines()) if l.startswith("{")), None)
    try:
        info = json.loads(line) if proc.returncode == 0 and line else None
    except ValueError:
        info = None
    if not isinstance(info, dict) or "version" not in info:
        last = [l.strip() for l in proc.stdout.splitlines() if l.strip()]
        return {"path": path, "error": "does not run ({})".format(last[-1][:120] if last else
                                                                    "exit code {}".format(proc.returncode))}
    info["path"] = path
    info["version"] = tuple(info["version"])
    return info


def find_pythons():
    """Every distinct Python installation found (one per prefix), this one included, sorted by version;
    plus the candidates that would not run."""
    pythons, broken, prefixes = [], [], set()
    for path in python_candidates():
        info = probe_python(path)
        if "error" in info:
            broken.append(info)
            continue
        key = os.path.normcase(os.path.realpath(info["prefix"]))
        if key not in prefixes:
            prefixes.add(key)
            pythons.append(info)
    return sorted(pythons, key=lambda i: (i["version"], i["path"])), broken


def is_this_python(info):
    return os.path.normcase(os.path.realpath(info["prefix"])) == os.path.normcase(os.path.realpath(sys.prefix))


def why_not_install(info):
    """Why --all-pythons leaves a Python alone, or None."""
    if info["version"][:2] < MIN_PYTHON:
        return "Python {} is not supported (pip for it needs {}+)".format(vstr(info["version"][:2]), vstr(MIN_PYTHON))
    if info.get("implementation") not in (None, "cpython"):
        return "{} is not CPython".format(info["implementation"])
    if info["externally_managed"]:
        return ("the OS manages it (PEP 668); use a venv of it, or run bootstrap.py with that Python and "
                "--break-system-packages")
    if not info["writable"]:
        return "this user cannot write to it; run bootstrap.py with it as its owner (or administrator)"
    return None


def trust_context(py, pip_version, cert, certifi):
    """(SSLContext or None, description) of the anchors a pip of that version on that Python verifies
    with: the OS store plus certifi plus cert for pip >= 24.2 on 3.10+; else cert, which replaces certifi."""
    if cert and not os.path.exists(cert):
        return None, "cert {} does not exist (pip crashes)".format(cert)
    if pip_uses_os_store(py, pip_version):
        ctx = OS.os_context() or pip_verifier()        # the same view as install's (refuse_untrustable)
        for extra in (certifi, cert):
            if extra:
                ctx.load_verify_locations(extra)
        return ctx, "OS store + certifi" + (" + " + cert if cert else "")
    anchors = cert or certifi
    if not anchors:
        return None, "its CA bundle was not found"
    return pip_verifier(cafile=anchors), "cert {} (replaces certifi)".format(cert) if cert else "certifi only"


def cert_for_prefix(s, prefix):
    """The `cert` a pip in the Python at prefix uses: the shared files and variables, its own site file."""
    env = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if env:
        return env
    site_name = os.path.basename(OS.config_paths()["site"][-1])
    sources = [src for src in s.config_sources if src[0] != "site"]
    path = os.path.join(prefix, site_name)
    if os.path.isfile(path) and os.environ.get("PIP_CONFIG_FILE") != os.devnull:
        rank = next((i for i, src in enumerate(sources) if src[0] not in ("global", "user")), len(sources))
        sources.insert(rank, ("site", path) + read_config_file(path))
    return config_value(sources, "cert")[0]


def wheel_certifi(wheel, workdir):
    """certifi's bundle inside a pip wheel (the one ensurepip gives new venvs), extracted; or None."""
    import zipfile
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read("pip/_vendor/certifi/cacert.pem")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    path = os.path.join(workdir, hashlib.sha256(data).hexdigest()[:16] + ".pem")
    with open(path, "wb") as f:
        f.write(data)
    return path


def pythons_report(s, network_ok):
    """Every Python found: (status, text, data) per Python, each saying whether its pip, and the pip its
    new venvs get from ensurepip, reach the index now."""
    pythons, broken = find_pythons()
    out, checked = [], {}
    index, host = s.index_url, host_of(s.index_url)

    def reaches(py, pip_version, cert, certifi):
        ctx, how = trust_context(py, pip_version, cert, certifi)
        key = (pip_uses_os_store(py, pip_version), cert, certifi and sha256_file(certifi))
        if not network_ok or ctx is None:
            return None, how
        if key not in checked:
            checked[key] = tls_probe(index, s.proxy, ctx, DOCTOR_TIMEOUT).ok
        return checked[key], how

    def word(ok, how):
        if ok is None:
            return "not checked ({})".format("no network" if network_ok else how)
        return "reaches {} ({})".format(host, how) if ok else "FAILS ({})".format(how)
    with tempfile.TemporaryDirectory(prefix="trustfix-pythons-") as workdir:
        for info in pythons:
            py, name = info["version"][:2], "Python {} {}".format(vstr(info["version"]), info["path"])
            data = {"python": info["executable"], "version": vstr(info["version"]), "pip": info["pip"],
                    "ensurepip": info["ensurepip"], "this": is_this_python(info), "reaches": None,
                    "new_venvs_reach": None}
            if py < MIN_PYTHON:
                out.append(("skipped", "{}: not supported by pip any more".format(name), data))
                continue
            cert = cert_for_prefix(s, info["prefix"])
            parts = []
            if info["pip"]:
                certifi = os.path.join(info["pip_dir"], "pip", "_vendor", "certifi", "cacert.pem")
                data["reaches"], how = reaches(py, info["pip"], cert, certifi if os.path.isfile(certifi) else None)
                parts.append("pip {} {}".format(info["pip"], word(data["reaches"], how)))
            else:
                parts.append("no pip")
            if info["ensurepip"] and not info["venv"]:
                certifi = wheel_certifi(info["ensurepip_wheel"], workdir) if info["ensurepip_wheel"] else None
                venv_cert = cert_for_prefix(s, os.path.join(workdir, "no-such-venv"))
                data["new_venvs_reach"], how = reaches(py, info["ensurepip"], venv_cert, certifi)
                parts.append("new venvs' pip {} {}".format(info["ensurepip"], word(data["new_venvs_reach"], how)))
            elif not info["venv"]:
                parts.append("no ensurepip (venvs need e.g. the python3-venv package)")
            fix = python_fix(info, data)
            out.append(("warning" if fix else "ok", "{}: {}{}".format(name, "; ".join(parts), fix), data))
    if broken:
        out.append(("skipped", "found but does not run: " + ", ".join(b["path"] for b in broken),
                    {"broken": [b["path"] for b in broken]}))
    return out


def python_fix(info, data):
    """'; fix: ...' for a Python whose pip, or its new venvs' pip, fails; '' when none fails. A CA variable
    left behind comes first: it replaces `cert` for a pip that does not use the OS store."""
    failing = info["pip"] if data["reaches"] is False else info["ensurepip"] if data["new_venvs_reach"] is False \
        else None
    if failing is None:
        return ""
    variable = next((v for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if os.environ.get(v)), None)
    if variable and not pip_uses_os_store(info["version"][:2], failing):
        return "; fix: unset {} (it replaces cert for this pip, and lacks the CA)".format(variable)
    if data["reaches"] is False:
        return "; fix: {} bootstrap.py, or bootstrap.py --all-pythons".format(info["path"])
    return "; fix: python bootstrap.py (once, any Python: every pip of this user reads its bundle)"


def install_all_pythons(args, ui, code):
    """--all-pythons: run this script in every other Python found that can take pip, one at a time (they
    share the journal, so one undo reverts all). Returns the run's exit code and one record per Python."""
    records = []
    if code != EXIT_OK:
        ui.step("pythons", "skipped", "the other Pythons were left alone: this one did not succeed")
        return code, records
    pythons, _ = find_pythons()
    base = ["install", "--json", "--scope", args.scope]
    base += ["--offline"] if args.offline else ["--index-url", args.index_url] if args.index_url else []
    for ca in args.ca_file:
        base += ["--ca-file", os.path.abspath(ca)]
    base += [flag for flag, on in (("--reinstall", args.reinstall), ("--dry-run", args.dry_run)) if on]
    base += ["--tools", "requests"] if "requests" in args.tools else []     # the others are the user's, done once
    env = dict(os.environ)                       # TRUSTFIX_STATE_DIR, _TIMEOUT: the same journal, the same bounds
    for info in pythons:
        name = "Python {} {}".format(vstr(info["version"]), info["path"])
        record = {"python": info["executable"], "version": vstr(info["version"]), "status": None,
                  "reason": None, "exit_code": None}
        records.append(record)
        if is_this_python(info):
            record["status"], record["reason"] = "done", "the Python that ran bootstrap.py"
            continue
        reason = why_not_install(info)
        if reason:
            record["status"], record["reason"] = "skipped", reason
            ui.step("python", "skipped", "{}: {}".format(name, reason))
            continue
        arm_deadline()                                            # each Python gets a whole run's time
        proc = run(python_cmd(info["executable"], SCRIPT, *base), env=env, timeout=DEADLINE + 60)
        text = proc.stdout
        start = text.find("\n{") + 1 if not text.startswith("{") else 0
        try:
            doc = json.JSONDecoder().raw_decode(text[start:])[0]
        except ValueError:
            doc = {"error": (text.strip().splitlines() or ["no output"])[-1], "exit_code": proc.returncode}
        record["exit_code"] = proc.returncode
        for path in doc.get("files_changed", []):
            changed(path=path)
        for package in doc.get("packages_changed", []):
            changed(package=package)
        if proc.returncode != 0:
            record["status"], record["reason"] = "failed", doc.get("error") or "exit code {}".format(proc.returncode)
            ui.step("python", "failed", "{}: {}".format(name, record["reason"]))
            code = code or proc.returncode
            continue
        record["status"] = "changed" if doc.get("changed") else "ok"
        record["reason"] = "; ".join(doc.get("packages_changed") or []) or "nothing needed to change"
        ui.step("python", "changed" if doc.get("changed") else "ok", "{}: {}".format(name, record["reason"]))
    return code, records


# --------------------------------------------------------------------------------------------------
# Command line, and the install run step by step (run_install)
# --------------------------------------------------------------------------------------------------

EPILOG = """\
what it does:
  1. survey   this Python, its pip, the pip configuration and how the package index's TLS verifies
  2. plan     what to install from where and how to make pip trust the network (--dry-run stops here)
  3. install  the pinned pip (and truststore on Python >= 3.10) from wheels/, every file's SHA-256
              checked against hashes.txt; without wheels/, exactly those files from the index
  4. trust    `cert = <certifi + company CAs>` in your pip configuration whenever a company CA is
              known (every pip of this user reads it, new venvs' old pips too); nothing when none
              is needed. Never `trusted-host`, never an edited certifi.
  5. verify   a fresh pip process reaches the index with no extra options
  with --tools, after 4: each tool named gets its own setting (uv: system-certs; requests: a start-up
              hook in this Python; conda: ssl_verify; git: http.sslCAInfo; npm: cafile), then a check

examples:
  python bootstrap.py                        fix this Python (Windows: py bootstrap.py)
  python bootstrap.py --dry-run              show what would change, change nothing
  python bootstrap.py --ca-file corp.pem     trust this company root CA as well
  python bootstrap.py --all-pythons          also put the pinned pip into every other Python here
  python bootstrap.py --tools all            also uv, requests (this Python's programs), conda, git, npm
  python bootstrap.py doctor                 explain why pip fails TLS here, list every Python
  python bootstrap.py undo                   put every changed file back as it was

exit codes: 0 done or nothing to do; 1 failed (nothing left half-changed); 2 bad usage or bad input;
            3 installed and configured, but the final check against the index failed.
            doctor: 0 pip reaches the index with verified TLS; 1 it names a problem and its fix.
Every option can also come from the environment: TRUSTFIX_OFFLINE=1, TRUSTFIX_INDEX_URL=...,
TRUSTFIX_CA_FILE=a.pem{sep}b.pem, TRUSTFIX_SCOPE=user, TRUSTFIX_ALL_PYTHONS=1, TRUSTFIX_TOOLS=uv,git,
TRUSTFIX_JSON=1
(yes/no: 1, true, yes / 0, false, no); TRUSTFIX_TIMEOUT=15 bounds every network operation (seconds),
8 times that one download, TRUSTFIX_DEADLINE=900 the whole run; SIGTERM stops it like Ctrl-C.
A failed run prints the path of a log file with every step and command.
""".format(sep=os.pathsep)


def print_bare_doc(command, code, error=None, **extra):
    """The JSON document of a run that ends before it starts: a usage error, --help, --version."""
    doc = {"schema_version": SCHEMA_VERSION, "trustfix": __version__, "command": command, "exit_code": code,
           "error": error, "changed": False, "files_changed": [], "packages_changed": [], "steps": [],
           "warnings": []}
    doc.update(extra)
    print(redact(json.dumps(doc, indent=2, sort_keys=True)))


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error, --help and --version are one JSON document too when JSON was asked for."""
    json_mode = False

    def error(self, message):
        if self.json_mode:
            print_bare_doc(None, EXIT_BAD_INPUT, message)
            sys.exit(EXIT_BAD_INPUT)
        argparse.ArgumentParser.error(self, redact(message))

    def print_help(self, file=None):
        if self.json_mode:
            return print_bare_doc("help", EXIT_OK, help=self.format_help())
        argparse.ArgumentParser.print_help(self, file)


class VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        argparse.Action.__init__(self, option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        if parser.json_mode:
            print_bare_doc("version", EXIT_OK, version=__version__)
        else:
            print("trustfix bootstrap " + __version__)
        parser.exit()


def parse_args(argv):
    """The command line (and the TRUSTFIX_* variables behind every option), checked: a Namespace."""
    argv = sys.argv[1:] if argv is None else argv
    parser = make_parser()
    parser.json_mode = "--json" in argv or bool(env_flag("TRUSTFIX_JSON"))
    return checked_args(parser, parser.parse_args(argv))


def make_parser():
    env = os.environ.get
    parser = Parser(
        prog="bootstrap.py", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Make pip work behind a TLS-intercepting corporate proxy, safely and for good.")
    parser.add_argument("command", nargs="?", default="install", choices=("install", "doctor", "undo"),
                        help="install (default): fix this Python; doctor: diagnose; undo: revert every change")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--offline", action="store_true", default=env_flag("TRUSTFIX_OFFLINE"),
                       help="use only the bundle's wheels; never contact the index (verification is skipped)")
    where.add_argument("--index-url", metavar="URL", default=env("TRUSTFIX_INDEX_URL"),
                       help="package index to download from and verify against (default: your pip "
                            "configuration's index-url, else https://pypi.org/simple)")
    parser.add_argument("--ca-file", metavar="PEM", action="append",
                        default=[p for p in (env("TRUSTFIX_CA_FILE") or "").split(os.pathsep) if p],
                        help="a company root CA to trust (PEM or DER; repeatable). Default: ca/*.pem next "
                             "to this script, else the CAs your OS trusts beyond certifi")
    parser.add_argument("--scope", choices=SCOPES, default=env("TRUSTFIX_SCOPE") or "user",
                        help="which pip configuration file gets `cert` (default: user, this user's pips; site: "
                             "this Python's; global: every user's, as root/Administrator, for fleet tools)")
    parser.add_argument("--add-to-os-store", action="store_true",
                        help="also add the given CAs to the operating system's trust store")
    parser.add_argument("--break-system-packages", action="store_true",
                        help="install even into a Python the OS manages (PEP 668); usually a bad idea")
    parser.add_argument("--reinstall", action="store_true",
                        help="install the pinned pip/truststore even when an equal or newer one is present")
    parser.add_argument("--all-pythons", action="store_true", default=env_flag("TRUSTFIX_ALL_PYTHONS"),
                        help="then also install the pinned pip (and truststore) into every other Python found "
                             "here that this user can write to (pyenv, python.org, Homebrew, py -0p); "
                             "`doctor` lists them all")
    parser.add_argument("--tools", metavar="LIST", default=env("TRUSTFIX_TOOLS") or "",
                        help="then also make these tools trust the network, each with its own setting, for this "
                             "user (machine-wide with --scope global): uv, requests, conda, git, npm, or all "
                             "(comma-separated). requests means every program of this Python (a start-up hook); "
                             "see 'Beyond pip' in the README")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop; change nothing")
    parser.add_argument("--json", action="store_true", default=env_flag("TRUSTFIX_JSON"),
                        help="print one JSON document instead of text (for fleet tools)")
    parser.add_argument("--log-file", metavar="PATH", default=env("TRUSTFIX_LOG"),
                        help="append this run's full log (every step, command and output) to PATH, on every "
                             "run; without it a log is written only when a run fails")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the commands run and their output")
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    return parser


def checked_args(parser, args):
    """What argparse cannot check: the TRUSTFIX_* values behind the defaults, and the options together."""
    env = os.environ.get
    for name in ("TRUSTFIX_OFFLINE", "TRUSTFIX_JSON", "TRUSTFIX_ALL_PYTHONS"):            # the defaults above skip argparse's checks
        if env_flag(name) is None:
            parser.error("{}={!r}: use 1 (or true, yes) or 0 (or false, no)".format(name, env(name)))
    if args.scope not in SCOPES:
        parser.error("TRUSTFIX_SCOPE={!r}: use one of {}".format(args.scope, ", ".join(SCOPES)))
    for name, example in (("TRUSTFIX_TIMEOUT", 15), ("TRUSTFIX_DEADLINE", 900), ("TRUSTFIX_LOCK_WAIT", 120)):
        if env_seconds(name, example) is None:
            parser.error("{}={!r}: give a number of seconds from 1 to 3600, e.g. {}".format(name, env(name), example))
    if args.offline and args.index_url:
        parser.error("--offline (TRUSTFIX_OFFLINE) and --index-url (TRUSTFIX_INDEX_URL) exclude each other")
    if args.index_url and not re.match(r"^https?://[^/\s]+", args.index_url):
        parser.error("--index-url must be an http(s) URL, e.g. https://pypi.org/simple")
    args.tools, unknown = tools_list(args.tools)
    if unknown:
        parser.error("--tools (TRUSTFIX_TOOLS): unknown tool {}; choose from {}, or all".format(
            ", ".join(repr(u) for u in unknown), ", ".join(TOOLS)))
    return args


def tools_list(text):
    """'uv,git' / 'all' -> (the tools in TOOLS' order, the unknown names)."""
    names = [n.strip().lower() for n in re.split(r"[,\s]+", text or "") if n.strip()]
    if "all" in names:
        names = [n for n in names if n != "all"] + list(TOOLS)
    return [t for t in TOOLS if t in names], [n for n in names if n not in TOOLS]


def survey_line(s):
    parts = ["Python {}".format(s.version),
             s.openssl.replace(" ", " ", 1).split(" ")[0] + " " + s.openssl.split(" ")[1],
             "pip " + (s.pip or "missing"), "truststore " + (s.truststore or "missing"),
             "venv" if s.venv else "system Python"]
    if s.proxy:
        parts.append("proxy " + redact(s.proxy))
    return ", ".join(parts)


def json_safe(obj):
    if hasattr(obj, "as_json"):
        return json_safe(obj.as_json())
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items() if k not in ("dists", "config_sources", "pins")}
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], bytes):
        return json_safe(obj[1])                                  # a certificate: (DER, what we know of it)
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, bytes):
        return None
    if isinstance(obj, datetime.datetime):
        return obj.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


def run_install(args, ui):
    ui.say("trustfix {}: fixing TLS trust for {}".format(__version__, sys.executable))
    if not os.path.isabs(os.path.expanduser("~")):
        raise BadInput("HOME is not set and this user has no home folder in the password database, so there is "
                       "no user pip configuration to write; set HOME (or use --scope global as an administrator); "
                       "nothing was changed.")
    s = take_survey(args)
    ui.step("survey", "ok", survey_line(s))
    for text in survey_warnings(s):
        ui.warn(text)
    with tempfile.TemporaryDirectory(prefix="trustfix-", dir=OS.scratch_dir()) as workdir:
        plan = make_plan(s, args, ui, workdir)
        lines = describe_plan(plan, s)
        ui.step("plan", "ok", lines[0])
        for line in lines[1:]:
            ui.detail(line)
        for name, result in sorted(plan.probe.items()):
            log("TLS to {} with {}: {}".format(s.index_url, name, result.as_plan()))
        for note in plan.notes:
            ui.warn(note)
        result = {"survey": s, "plan": plan, "mode": plan.mode, "tools": plan.tools}
        if args.dry_run:
            ui.say("--dry-run: nothing was changed.")
            return EXIT_OK, result
        check_space(plan, s, workdir)
        journal = journal_load()
        files = acquire(plan, s, ui, workdir)                  # verified files in a temp folder: no change yet
        mark = begin_changes(journal)
        try:
            if (plan.install or plan.strategy == "bundle") and not os.path.isfile(journal_path()):
                journal_save(journal)      # before the first change, so a killed run's folders are known
            install(plan, s, ui, journal, files, workdir, mark)
            changed = configure_trust(plan, args, ui, journal, files) or bool(plan.install)
            changed = configure_tools(plan, ui, journal) or changed
        except Exception as e:             # Failure, a full disk, a bug: put back this run's changes first
            note = roll_back(journal, mark, ui)
            if isinstance(e, Failure):
                e.args = ("{}; {}.".format(e.args[0].rstrip().rstrip("."), note),) + e.args[1:]
                raise
            if isinstance(e, OSError) and e.errno in NO_SPACE:
                raise Failure("{}; {}.".format(no_space(e), note))
            raise
        finally:
            RUN["files"] = None
    code = verify(plan, s, args, ui, journal, changed)
    verify_tools(plan, s, args, ui)
    if code == EXIT_OK:
        ui.say("Done. pip works here without --trusted-host; `python bootstrap.py undo` reverts the changes."
               if changed else "Done. Nothing needed to change.")
    return code, result


def check_space(plan, s, workdir):
    """Before any change: room for the verified wheels and the unpacked installer (the temporary folder),
    the new pip (site-packages) and the backups (the state folder). A disk that fills up half-way would
    leave a half-done run; refusing first leaves none."""
    needs = [(workdir, 40)]
    if plan.install:
        needs.append((s.purelib if not (plan.where or "").startswith(os.path.expanduser("~")) else
                      os.path.expanduser("~"), 30))
    if plan.install or plan.strategy == "bundle":
        needs.append((state_dir(), 10))
    for path, mb in needs:
        try:
            free = shutil.disk_usage(existing_folder(path)).free >> 20
        except OSError:
            continue
        if free < mb:
            raise Failure("only {} MB are free on the disk holding {}; bootstrap.py needs about {} MB there. "
                          "Free some space (or set TMPDIR to a roomier folder), then run it again; nothing was "
                          "changed.".format(free, path, mb))


def write_log(args):
    """The log: every line of this run, with the commands and their output, appended to --log-file
    (TRUSTFIX_LOG) on every run, else to a new file when the run failed. Its path, or None."""
    import tempfile
    header = "trustfix {} {} with {} (Python {}) on {}, {}".format(
        __version__, args.command, sys.executable, vstr(sys.version_info[:3]), OS.name, time.strftime("%Y-%m-%d %H:%M:%S"))
    if args.log_file:
        try:
            with open(args.log_file, "a", encoding="utf-8") as f:
                f.write(redact("\n".join([header] + _LOG)) + "\n\n")
            return os.path.abspath(args.log_file)
        except OSError as e:
            UI.current.warn("cannot write the log file {}: {}".format(args.log_file, e.strerror)) if UI.current else None
    try:
        fd, path = tempfile.mkstemp(prefix="trustfix-{}-".format(time.strftime("%Y%m%d-%H%M%S")), suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(redact("\n".join([header] + _LOG)) + "\n")
        return path
    except OSError:
        return None


NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def no_space(e):
    where = e.filename or "a file it writes"
    if os.path.basename(str(where)).startswith(".trustfix-"):        # atomic_write's temporary file
        where = os.path.dirname(where)
    return "no space left on the disk holding {} ({}); free some space".format(where, e.strerror)


def require_admin(args):
    """--scope global writes files every user of the machine reads (pip's global configuration, the machine's
    bundle) and a journal only administrators may write: refused to anyone else, before anything is read."""
    if OS.is_admin():
        return
    if os.name == "nt":
        how = "an administrator: open PowerShell with \"Run as administrator\" and run it there"
    else:
        how = "root: run `sudo {} {}{} --scope global`".format(
            sys.executable, os.path.basename(SCRIPT), "" if args.command == "install" else " " + args.command)
    raise BadInput("--scope global changes pip's trust for every user of this computer, so it needs {} "
                   "(or leave --scope out to fix it for yourself); nothing was changed.".format(how))


INJECTED = {"by": None, "vars": {}}   # what a start-up hook did before main() ran: truststore, variables


def undo_startup_hook():
    """Take back, in this process only, what a start-up hook did to it (trustfix.pth of --tools requests,
    pip-system-certs): bootstrap.py's probes build their own contexts (certifi alone, the OS store, a bundle),
    which an injected ssl.SSLContext would all turn into the OS store, and it reads the user's own CA
    variables, which the hook's must not pass for. INJECTED keeps what was found, for doctor."""
    hook = next((os.path.join(d, PTH_NAME) for d in sys.path if d and os.path.isfile(os.path.join(d, PTH_NAME))), None)
    module = getattr(ssl.SSLContext, "__module__", "")
    original = next((c for c in ssl.SSLContext.__mro__ if c.__module__ == "ssl"), None)
    if "truststore" in module and original is not None:
        INJECTED["by"] = hook or "a start-up hook ({})".format(module)
        ssl.SSLContext = original                         # what truststore.extract_from_ssl() does to ssl
    for var in (os.environ.pop("TRUSTFIX_STARTUP_HOOK_SET", None) or "").split():
        if var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE") and os.environ.get(var):
            INJECTED["vars"][var] = os.environ.pop(var)


def main(argv=None):
    undo_startup_hook()
    args = parse_args(argv)
    SCOPE["state"] = args.scope
    ui = UI(json_mode=args.json, verbose=args.verbose)
    result, started = {}, time.time()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        arm_deadline()
        if args.scope == "global" and args.command != "doctor" and not getattr(args, "dry_run", False):
            require_admin(args)
        if args.command == "undo":
            with RunLock():
                code = undo(ui)
        elif args.command == "doctor":
            code, result = doctor(args, ui)
        else:
            with RunLock():
                code, result = run_install(args, ui)
                if args.all_pythons:
                    code, result["pythons"] = install_all_pythons(args, ui, code)
        error = None
    except Failure as e:
        code, error = e.code, e.args[0]
        ui.step("error", "failed", error)
    except (KeyboardInterrupt, Stopped) as e:
        code, error = EXIT_FAILED, "{}; run bootstrap.py again to finish, or `bootstrap.py undo`".format(
            e.args[0] if isinstance(e, Stopped) else "interrupted")
        ui.step("error", "failed", error)
    except OSError as e:
        if e.errno not in NO_SPACE:
            raise
        code, error = EXIT_FAILED, "{}, then run bootstrap.py again to finish, or `bootstrap.py undo`".format(no_space(e))
        ui.step("error", "failed", error)
    except Exception as e:                                      # a bug: one sentence here, the traceback in the log
        import traceback
        _LOG.append(traceback.format_exc())
        code, error = EXIT_FAILED, "unexpected error ({}: {}); this is a bug in bootstrap.py: please send the log " \
            "file below to IT".format(type(e).__name__, e)
        ui.step("error", "failed", error)
    if hasattr(signal, "SIGALRM"):
        signal.alarm(0)
    logfile = write_log(args) if error or args.log_file else None
    if logfile and error:
        ui.say("  details: " + logfile)
    if args.json:
        doc = {"schema_version": SCHEMA_VERSION, "trustfix": __version__, "command": args.command,
               "exit_code": code, "error": error, "log": logfile, "seconds": round(time.time() - started, 3),
               "changed": bool(ui.changed["files"] or ui.changed["packages"]),
               "files_changed": ui.changed["files"], "packages_changed": ui.changed["packages"],
               "steps": ui.steps, "warnings": ui.warnings}
        doc.update(json_safe(result))
        print(redact(json.dumps(doc, indent=2, sort_keys=True, default=str)))
    return code


# --------------------------------------------------------------------------------------------------
# Proxy settings the OS has and pip does not read (PAC, WPAD, a manual proxy), and WSL: parsers of the
# tools' outputs (no I/O) and their readers, which run the tool through an injected run(cmd)
# --------------------------------------------------------------------------------------------------

REG_INTERNET_SETTINGS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
SOURCE_WINDOWS = "Windows Internet Settings"
SOURCE_MACOS = "macOS network settings (scutil --proxy)"
SOURCE_GNOME = "GNOME proxy settings"
WPAD_URL = "http://wpad/wpad.dat"                   # where WPAD by DNS looks first (wpad.<domain>)

_REG_VALUE = re.compile(r"^ {4}(\S.*?) {4}(REG_[A-Z0-9_]+)(?: {4}(.*))?$")


def _host_port(value):
    """The host:port of a proxy value, without a scheme or a trailing slash; None when empty."""
    value = (value or "").strip()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.rstrip("/")
    return value or None


def _windows_proxy_server(value):
    """The proxy WinINet uses for https from a ProxyServer value: "https=" of a per-scheme list, else the
    plain value; None when a per-scheme list names no https proxy (https then goes direct)."""
    value = (value or "").strip()
    if "=" not in value:
        return _host_port(value.split(";")[0])
    for part in value.split(";"):
        scheme, _, server = part.partition("=")
        if scheme.strip().lower() == "https":
            return _host_port(server)
    return None


def parse_reg_internet_settings(text):
    """{"pac", "proxy", "auto_detect"} from `reg query "HKCU\\...\\Internet Settings"` output."""
    values = {}
    for line in (text or "").splitlines():
        line = line.rstrip("\r")
        found = _REG_VALUE.match(line)
        if found and found.group(1).lower() not in values:
            values[found.group(1).lower()] = (found.group(2), (found.group(3) or "").strip())

    def dword(name):
        kind, data = values.get(name, (None, None))
        if kind != "REG_DWORD":
            return None
        try:
            return int(data, 16)
        except ValueError:
            return None

    pac = values.get("autoconfigurl", (None, ""))[1] or None
    proxy = None
    if dword("proxyenable") == 1:
        proxy = _windows_proxy_server(values.get("proxyserver", (None, ""))[1])
    detect = dword("autodetect")
    return {"pac": pac, "proxy": proxy, "auto_detect": None if detect is None else bool(detect)}


def _scutil_top_level(text):
    """{key: value} of the top-level scalar keys of `scutil --proxy` output (nested dictionaries skipped)."""
    keys, depth = {}, 0
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            depth -= 1
            continue
        opens = line.endswith("{")
        if depth == 1 and " : " in line and not opens:
            key, _, value = line.partition(" : ")
            keys.setdefault(key.strip(), value.strip())
        if opens:
            depth += 1
    return keys


def parse_scutil_proxy(text):
    """{"pac", "proxy", "auto_detect"} from `scutil --proxy` output (top-level keys only)."""
    keys = _scutil_top_level(text)
    pac = None
    if keys.get("ProxyAutoConfigEnable") == "1":
        pac = keys.get("ProxyAutoConfigURLString") or None
    proxy = None
    if keys.get("HTTPSEnable") == "1" and keys.get("HTTPSProxy"):
        port = keys.get("HTTPSPort", "")
        proxy = keys["HTTPSProxy"] + (":" + port if port and port != "0" else "")
    detect = keys.get("ProxyAutoDiscoveryEnable")
    return {"pac": pac, "proxy": proxy, "auto_detect": None if detect is None else detect == "1"}


def _gvariant(text):
    """The Python value of one gsettings scalar: a quoted string unquoted, an integer as int, else None."""
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    found = re.match(r"^(?:u?int(?:16|32|64)\s+)?(-?\d+)$", text)
    return int(found.group(1)) if found else None


def parse_gsettings(mode_text, pac_text, host_text, port_text):
    """{"pac", "proxy", "auto_detect"} from gsettings' mode, autoconfig-url, https host and https port."""
    mode = _gvariant(mode_text)
    if not isinstance(mode, str):
        return {"pac": None, "proxy": None, "auto_detect": None}
    pac = proxy = None
    detect = False
    if mode == "auto":
        pac = _gvariant(pac_text) or None
        if not isinstance(pac, str):
            pac = None
        detect = pac is None                             # 'auto' with no URL: WPAD
    elif mode == "manual":
        host, port = _gvariant(host_text), _gvariant(port_text)
        if isinstance(host, str) and host:
            proxy = host + (":" + str(port) if isinstance(port, int) and port > 0 else "")
    return {"pac": pac, "proxy": proxy, "auto_detect": detect}


def _tool_output(run, cmd):
    """stdout of cmd through the injected run, or None when the tool is missing or fails."""
    try:
        code, out = run(cmd)
    except Exception:                                    # a missing tool; a reader must never stop doctor
        return None
    return out if code == 0 and out is not None else None


def read_reg_internet_settings(run):
    """The Windows Internet Settings parsed ({"pac", "proxy", "auto_detect"}), or None when reg fails."""
    out = _tool_output(run, ["reg", "query", REG_INTERNET_SETTINGS])
    return None if out is None else parse_reg_internet_settings(out)


def read_scutil_proxy(run):
    """The macOS proxy settings parsed ({"pac", "proxy", "auto_detect"}), or None when scutil fails."""
    out = _tool_output(run, ["scutil", "--proxy"])
    return None if out is None else parse_scutil_proxy(out)


def read_gsettings(run):
    """The GNOME proxy settings parsed ({"pac", "proxy", "auto_detect"}), or None when gsettings fails."""
    mode = _tool_output(run, ["gsettings", "get", "org.gnome.system.proxy", "mode"])
    if mode is None:
        return None
    pac = host = port = None
    if _gvariant(mode) == "auto":
        pac = _tool_output(run, ["gsettings", "get", "org.gnome.system.proxy", "autoconfig-url"])
    elif _gvariant(mode) == "manual":
        host = _tool_output(run, ["gsettings", "get", "org.gnome.system.proxy.https", "host"])
        port = _tool_output(run, ["gsettings", "get", "org.gnome.system.proxy.https", "port"])
    return parse_gsettings(mode, pac, host, port)


def system_proxy_settings(platform, run, environ):
    """{"source", "pac", "proxy", "auto_detect"} of the OS proxy settings of platform (a sys.platform value),
    read by that OS class's reader through run(cmd) -> (returncode, stdout); None when there are none. On
    Linux GNOME's settings, in a desktop session (environ tells)."""
    source, settings = {"win32": _Windows, "darwin": _MacOS}.get(platform, _Linux).read_proxy_settings(run, environ)
    if settings is None:
        return None
    result = {"source": source}
    result.update(settings)
    return result


def _https_proxy_set(environ):
    """True when the environment names a proxy for https (HTTPS_PROXY or https_proxy, not empty)."""
    return bool((environ.get("HTTPS_PROXY") or "").strip() or (environ.get("https_proxy") or "").strip())


def pac_advice(settings, environ):
    """(cause, fix) when the OS finds its proxy by PAC / WPAD or names one, but HTTPS_PROXY is unset; else None."""
    if not settings or _https_proxy_set(environ):
        return None
    windows = settings.get("source") == SOURCE_WINDOWS
    pac, proxy = settings.get("pac"), settings.get("proxy")
    if pac or settings.get("auto_detect"):
        if pac:
            how, where = "through a PAC file ({})".format(pac), pac
        else:
            how, where = "by WPAD auto-detection", "the WPAD file (often {})".format(WPAD_URL)
        cause = "this computer finds its proxy {}, which pip does not read (pip #6911)".format(how)
        fix = ("open {} in a browser (or with curl) and find the PROXY host:port that FindProxyForURL returns "
               "for pypi.org; then set HTTPS_PROXY=http://host:port and HTTP_PROXY the same".format(where))
        if windows:
            fix += " (netsh winhttp show proxy may name it too)"
        return cause, fix
    if proxy:
        cause = ("the OS settings name the proxy {}, but HTTPS_PROXY is not set, so pip connects "
                 "directly".format(proxy))
        fix = ("set HTTPS_PROXY=http://{0} (Windows: setx HTTPS_PROXY http://{0}, then open a new "
               "terminal)".format(proxy))
        return cause, fix
    return None


def wsl_advice(proc_version_text, ca_name=None):
    """(cause, fix) when /proc/version names Microsoft (WSL1 or WSL2), else None; ca_name: the CA's name."""
    if "microsoft" not in (proc_version_text or "").lower():
        return None
    name = (ca_name or "").replace("'", "") or "<company>"
    cause = ("this is Linux under Windows (WSL), whose trust store lacks the company root CA that "
             "Windows trusts")
    fix = ("in PowerShell: Get-ChildItem Cert:\\LocalMachine\\Root | Where-Object Subject -like '*{}*' | "
           "Select-Object -First 1 | Export-Certificate -FilePath C:\\Users\\Public\\corp-root.cer "
           "(or export it in certmgr.msc); then in WSL: "
           "python3 bootstrap.py --ca-file /mnt/c/Users/Public/corp-root.cer".format(name))
    return cause, fix


# --------------------------------------------------------------------------------------------------
# Doctor: name the cause of a TLS failure in one report. Reads only; changes nothing.
# --------------------------------------------------------------------------------------------------

DOCTOR_TIMEOUT = min(TIMEOUT, 4.0)
INTERCEPTORS = (("zscaler", "Zscaler"), ("netskope", "Netskope"), ("palo alto", "Palo Alto Networks"),
                ("fortinet", "Fortinet"), ("fortigate", "Fortinet"), ("blue coat", "Blue Coat"),
                ("bluecoat", "Blue Coat"), ("symantec", "Symantec/Blue Coat"), ("umbrella", "Cisco Umbrella"),
                ("cisco", "Cisco"), ("forcepoint", "Forcepoint"), ("websense", "Forcepoint"),
                ("sophos", "Sophos"), ("mcafee", "McAfee/Skyhigh"), ("skyhigh", "Skyhigh"),
                ("check point", "Check Point"), ("checkpoint", "Check Point"), ("kaspersky", "Kaspersky"),
                ("eset", "ESET"), ("avast", "Avast"), ("avg ", "AVG"), ("bitdefender", "Bitdefender"),
                ("mitmproxy", "mitmproxy"), ("interception", "an interception proxy"),
                ("proxy", "a proxy"), ("corporate", "a corporate proxy"))


def interceptor(name):
    low = (name or "").lower()
    return next((vendor for key, vendor in INTERCEPTORS if key in low), None)


def pip_context(s, pip_version):
    """The trust anchors this pip would use: (SSLContext or None, description)."""
    cert = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or \
        config_value(s.config_sources, "cert")[0]
    certifi = s.certifi_files[0][0] if s.certifi_files else None
    if not (pip_version or cert or certifi):
        return None, "no pip installed"
    return trust_context(sys.version_info[:2], pip_version, cert, certifi)


def clock_skew(date_header):
    if not date_header:
        return None
    try:
        import email.utils
        server = email.utils.parsedate_to_datetime(date_header)
        return (datetime.datetime.now(datetime.timezone.utc) - server).total_seconds()
    except (TypeError, ValueError):
        return None


class Report:
    """doctor's checks, in the order made, and the problems they found: (cause, fix), the first one the
    verdict unless the connection names a cause of its own."""

    def __init__(self, ui):
        self.ui, self.checks, self.problems, self.also = ui, [], [], []

    def check(self, name, status, text, problem=None, **data):
        self.checks.append(dict(name=name, status=status, text=text, **data))
        self.ui.step(name, status, text)
        if problem:
            self.problems.append(problem)


def doctor(args, ui):
    """Every check family in turn, then the verdict: the connection's cause first (it is what fails), then
    a trusted-host that switches verification off, then the first problem any other check found."""
    s = take_survey(args)
    report = Report(ui)
    ui.say("trustfix doctor {}: {} ({})".format(__version__, sys.executable, OS.name))
    check_pip(report, s)
    trusted = check_config(report, s)
    check_environment(report)
    check_certifi(report, s)
    system = check_system(report)
    verdict, network_ok = check_tls(report, s)
    check_tools(report, s, network_ok, "global" if args.scope == "global" else "user")
    if system and not network_ok:                   # the OS knows the proxy, pip does not: that is the cause
        verdict = system
    bundle = bundle_check(s, network_ok=network_ok)
    if bundle:
        report.check("bundle", bundle[0], bundle[1], problem=bundle[2])
    for status, text, data in pythons_report(s, network_ok):
        report.check("pythons", status, text, **data)
    if trusted and not verdict:
        where, line = trusted[0]
        verdict = ("pip verifies TLS, but {} sets {}: verification is off for those hosts".format(where, line),
                   "remove that trusted-host line")
    verdict = verdict or (report.problems[0] if report.problems else None)
    result = {"ok": verdict is None, "cause": verdict[0] if verdict else "pip can reach {} with verified TLS".format(
        s.index_url), "fix": verdict[1] if verdict else None}
    if report.also:
        result["also"] = [{"cause": cause, "fix": fix} for cause, fix in report.also]
    ui.say("")
    ui.say("Verdict: " + result["cause"] + ".")
    if verdict:
        ui.say("Fix:     " + verdict[1])
    for cause, fix in report.also:                  # what fails elsewhere, though pip works here
        ui.say("Also:    " + cause + ".")
        ui.say("  fix:   " + fix)
    return (EXIT_OK if verdict is None else EXIT_FAILED), {"doctor": {"checks": report.checks, "verdict": result}}


def check_pip(report, s):
    py = sys.version_info[:2]
    report.check("python", "ok", "Python {}, {}".format(s.version, s.openssl))
    if not s.pip:
        report.check("pip", "problem", "no pip in this Python; fix: python bootstrap.py",
                     problem=("no pip is installed in this Python", "python bootstrap.py"))
        return
    gap = os_store_gap(py, s.pip)
    report.check("pip", "warning" if gap else "ok", "pip {}{}: {}".format(
        s.pip, ", truststore " + s.truststore if s.truststore else "",
        "checks certifi only: " + gap if gap else "uses the OS trust store (truststore) plus certifi"))


def check_config(report, s):
    """One check per pip configuration source that sets something; the trusted-host lines: [(where, line)]."""
    trusted, any_set = [], False
    for scope, path, sections, error in s.config_sources:
        if error:
            report.check("config", "problem", error, problem=(error, "fix or move " + path))
            any_set = True
            continue
        values = ["{}{} = {}".format("" if sec == "global" else "[" + sec + "] ", k, " ".join(v.split()))
                  for sec, kv in sorted((sections or {}).items()) for k, v in sorted(kv.items())]
        if not values:
            continue
        where = "PIP_* variables" if scope == "env" else path
        bad = [v for v in values if "trusted-host" in v]
        trusted += [(where, v) for v in bad]
        report.check("config", "problem" if bad else "ok", "{}: {}".format(where, "; ".join(values)))
        any_set = True
    if not any_set:
        report.check("config", "ok", "no pip configuration sets index, cert, proxy or trusted-host")
    return trusted


TLS_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "NO_PROXY", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def check_environment(report):
    """The environment variables that change TLS or the proxy; one that names a missing file is a problem."""
    bits = []
    for var in TLS_VARIABLES:
        value = os.environ.get(var)
        if not value:
            continue
        shown = redact(value)
        if var.endswith(("CERT", "BUNDLE", "FILE", "DIR")):
            if not os.path.exists(value):
                report.check("env", "problem", "{}={} does not exist; unset it or fix the path".format(var, value),
                             problem=("{} points to a missing file".format(var), "unset {}".format(var)))
                continue
            if os.path.isfile(value):
                shown += " ({} certificates)".format(len(pem_certs(read_bytes(value))))
        bits.append("{}={}".format(var, shown))
    report.check("env", "ok", "; ".join(bits) if bits else "no proxy or CA variables set")


def check_certifi(report, s):
    """Each certifi bundle pip may read: unchanged since it was installed (its RECORD), and its age."""
    for path, expected in s.certifi_files:
        m = re.search(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", os.path.dirname(path) + " " + str(s.dists.get("certifi", ("",))[0]))
        age = ""
        if m:
            try:
                age = ", {} days old".format((datetime.date.today() - datetime.date(*map(int, m.groups()))).days)
            except ValueError:
                pass
        if expected and sha256_file(path) != expected:
            report.check("certifi", "problem", "{} was edited by hand (differs from its RECORD); reinstall it".format(path),
                         problem=("certifi's bundle {} was edited by hand".format(path),
                                  "reinstall that package, then python bootstrap.py"))
        else:
            report.check("certifi", "ok", "{} matches its RECORD{}".format(path, age))


def tool_output(cmd):
    """(returncode, stdout) of an OS tool for the proxy readers; a missing tool raises (run's Failure)."""
    proc = run(cmd, timeout=15)
    return proc.returncode, proc.stdout


def check_system(report):
    """The OS proxy settings pip does not read (a PAC file, WPAD, a proxy with HTTPS_PROXY unset): a line
    when there are any; their (cause, fix) when pip would connect past the proxy. And WSL, said."""
    settings = system_proxy_settings(sys.platform, tool_output, os.environ)
    advice = pac_advice(settings, os.environ)
    if advice:
        report.check("proxy", "warning", "{}: {}; fix: {}".format(settings["source"], *advice))
    elif settings and (settings["pac"] or settings["proxy"] or settings["auto_detect"]):
        report.check("proxy", "ok", "{}: {}; HTTPS_PROXY is set, which pip uses".format(settings["source"], ", ".join(
            "{} {}".format(k, v) for k, v in sorted(settings.items()) if k != "source" and v)))
    if wsl_advice(OS.proc_version()):
        report.check("wsl", "ok", "Linux under Windows (WSL): its trust store is the Linux one, not Windows'")
    return advice


def check_tls(report, s):
    """The connection to the index (and files.pythonhosted.org for pypi.org) three ways: certifi alone, the
    OS store, and this pip's own anchors. (verdict or None, whether the network works)."""
    py = sys.version_info[:2]
    certifi_ctx = pip_verifier(cafile=s.certifi_files[0][0]) if s.certifi_files else None
    ctx, pip_view = pip_context(s, s.pip)
    targets = [s.index_url] + (["https://{}/".format(FILES_HOST)] if host_of(s.index_url) == "pypi.org" else [])
    verdict, network_ok = None, True
    for url in targets:
        host = host_of(url)
        results = {"certifi": tls_probe(url, s.proxy, certifi_ctx, DOCTOR_TIMEOUT),
                   "os": tls_probe(url, s.proxy, OS.os_context(), DOCTOR_TIMEOUT)}
        network = not results["os"].reached
        network_ok = network_ok and not network
        results["pip"] = results["os"] if network else tls_probe(url, s.proxy, ctx, DOCTOR_TIMEOUT)
        summary = "{}{}: certifi {}, OS store {}, pip ({}) {}".format(
            host, " via " + redact(s.proxy) if s.proxy else "",
            results["certifi"].status, results["os"].status, pip_view, results["pip"].status)
        report.check("tls", "ok" if results["pip"].ok else "problem", summary,
                     results={k: p.as_json() for k, p in results.items()})
        findings = None
        if not network and url == s.index_url:
            findings = certificate_findings(presented_chain(url, s.proxy))
            check_certificate(report, host, findings)
            check_clients(report, s, url, results)
        if results["pip"].ok or verdict:
            continue
        if network:
            verdict = network_problem(results["pip"], url, s.proxy, DOCTOR_TIMEOUT)
            report.ui.detail(results["pip"].detail)
        else:
            verdict = tls_cause(report, url, s, results, py, findings)
    return verdict, network_ok


def check_certificate(report, host, findings):
    """The presented certificates against the rules other verifiers apply: Python 3.13's strict X.509 checks
    and Apple's (macOS), each a warning with its cause when broken; nothing when they pass."""
    if findings["strict"]:
        what = "; ".join("{}: {}".format(which, defect) for which, defect in findings["strict"])
        cause = "{}: Python 3.13's strict certificate checks (urllib, requests with urllib3 >= 2.4, httpx) reject " \
                "it, pip through truststore accepts it".format(what)
        report.check("certs", "warning", cause)
        report.also.append((cause, "IT reissues it with basicConstraints critical and keyUsage on CAs and an Authority "
                            "Key Identifier on what they issue; until then pip works here, and so does code on Python "
                            "3.12 or older, or with truststore (truststore.inject_into_ssl())"))
    if findings["apple"]:
        cause = "the proxy's certificate for {}: {}: macOS rejects it, even from a trusted company CA (Apple's rules, " \
                "HT210176), so pip through truststore fails there".format(host, "; ".join(findings["apple"]))
        report.check("certs", "warning", cause)
        report.also.append((cause, "IT makes the proxy issue certificates valid at most {} days, with the serverAuth "
                            "extended key usage and the host name in subjectAltName".format(APPLE_MAX_DAYS)))
    if not (findings["strict"] or findings["apple"]):
        report.check("certs", "ok", "what {} presents passes Python 3.13's strict checks and Apple's rules".format(host))


def check_clients(report, s, url, results):
    """One line per Python client of this interpreter, each verifying its own way: urllib (the OS store, strict
    on 3.13) and requests/httpx (certifi's roots, strict on 3.13), or both the OS store through truststore when
    a start-up hook injected it (--tools requests). The other tools: check_tools."""
    py = vstr(sys.version_info[:2])
    strict = ", X.509 strict" if getattr(ssl, "VERIFY_X509_STRICT", 0) & ssl.create_default_context().verify_flags else ""
    how, anchors, _ = _Requests.now("user", None)
    if anchors == "own":
        certifi = s.certifi_files[-1][0] if s.certifi_files else None
        requests_view = ("certifi" + strict, ssl.create_default_context(cafile=certifi) if certifi else None)
    else:
        requests_view = (how, anchors_context(anchors, s))
    urllib_view = ("OS store (truststore)", pip_verifier()) if INJECTED["by"] else ("OS store" + strict, strict_view())
    if INJECTED["vars"].get("SSL_CERT_FILE"):                   # the hook's SSL_CERT_FILE, below Python 3.10
        urllib_view = ("OS store + SSL_CERT_FILE={}, set at start-up".format(INJECTED["vars"]["SSL_CERT_FILE"]),
                       anchors_context(INJECTED["vars"]["SSL_CERT_FILE"], s))
    views = [("urllib on Python {}".format(py),) + urllib_view, ("requests, httpx on Python {}".format(py),) + requests_view]
    for name, how, ctx in views:
        if ctx is None:
            report.check("clients", "skipped", "{} ({}): not checked, this Python has no certifi".format(name, how))
            continue
        probe = tls_probe(url, s.proxy, ctx, DOCTOR_TIMEOUT)
        report.check("clients", "ok" if probe.ok else "warning", "{} ({}): {}".format(
            name, how, "reaches " + host_of(url) if probe.ok else "FAILS: " + probe.detail))


def check_tools(report, s, network_ok, scope):
    """One line per other tool found here (uv, conda, git, npm): its version, where its trust comes from, and,
    online, whether it verifies what it talks to through the proxy now; one that cannot is an 'Also'."""
    for tool in (_Uv, _Conda, _Git, _Npm):
        try:
            found = tool.find()
            how, anchors, url = tool.now(scope, found)
        except (Skip, Failure):
            continue
        version = found[1] if isinstance(found[1], str) else found[1].get("conda_version", "?")
        what = "{} {} ({})".format(tool.name, version, how)
        if not network_ok:
            report.check("tools", "skipped", what + ": not checked, no network")
            continue
        status, line, problem = tool_probe(tool.name, what, anchors, url or s.index_url, s, DOCTOR_TIMEOUT)
        report.check("tools", status, line)
        if problem:
            report.also.append(problem)


def tls_cause(report, url, s, results, py, findings=None):
    """(cause, fix) of a certificate that pip does not verify, from what the server presents: a variable that
    hides the OS store, an intermediate the proxy leaves out, else what tls_verdict makes of it."""
    presented = presented_issuer(url, s.proxy)
    issuer = presented["issuer"] if presented else "an unknown issuer"
    hidden = hidden_by_variable(presented and issuer)
    if hidden:
        return hidden_by_variable_advice(hidden, issuer)
    if findings and findings["incomplete"] and (results["pip"].untrusted or results["os"].untrusted):
        return incomplete_chain_advice(host_of(url), findings["incomplete"])
    wsl = wsl_advice(OS.proc_version(), re.sub(r"^.*CN=", "", issuer)) if results["os"].untrusted else None
    if wsl and not named_in(issuer, OS.os_roots()):
        return wsl
    os_has, skew = False, None
    if presented:
        os_has = any(parse_cert(d)["subject"] == issuer for d in OS.os_roots() if d)
        vendor = interceptor(issuer)
        report.ui.detail("presented: {} issued by {}{}; the OS store {} that issuer".format(
            presented["subject"], issuer, " (TLS interception by {})".format(vendor) if vendor else "",
            "trusts" if os_has else "does NOT trust"))
        skew = clock_skew(tls_probe(url, s.proxy, unverified_context(), DOCTOR_TIMEOUT).date)
        if skew is not None and abs(skew) > 300:
            report.ui.detail("this computer's clock is {:.0f} minutes {} the server's".format(
                abs(skew) / 60, "ahead of" if skew > 0 else "behind"))
    return tls_verdict(results["pip"], host_of(url), issuer, os_has, results, py, s.pip, skew)


def bundle_check(s, network_ok=True):
    """(status, text, problem or None) for the bundle this product wrote and `cert` names; None if none.
    Drift: a bundle older than the certifi pin shipped next to this script, or one that no longer holds
    the CA the index (the proxy) presents now: then only pips that use the OS store still work."""
    path = config_value(s.config_sources, "cert")[0]
    contents = bundle_contents(path) if path else None
    if not contents:
        return None
    version, extras = contents
    what = "{}: certifi {} + {} CA(s)".format(path, version, len(extras))
    try:
        pinned = [p["version"] for p in read_pins(os.path.join(HERE, "hashes.txt")) if p["name"] == "certifi"]
    except Failure:
        pinned = []
    if pinned and vtuple(version) < vtuple(pinned[-1]):
        return ("problem", "{}, older than the certifi {} this bundle of bootstrap.py pins; run python bootstrap.py "
                "to refresh it".format(what, pinned[-1]),
                ("the CA bundle {} is older than the certifi pin shipped ({} < {})".format(path, version, pinned[-1]),
                 "python bootstrap.py   (refreshes the bundle)"))
    if network_ok:
        index = s.index_url
        host = host_of(index)
        result = tls_probe(index, s.proxy, pip_verifier(cafile=path), DOCTOR_TIMEOUT)
        if result.status == "untrusted":
            presented = presented_issuer(index, s.proxy)
            issuer = presented["issuer"] if presented else "an issuer that could not be read"
            return ("problem", "{}, lacks the CA {} presents now (issued by {}): pips that read only the bundle "
                    "(new venvs' older pips) fail".format(what, host, issuer),
                    ("the CA bundle {} lacks {}, which issues {}'s certificate now".format(path, issuer, host),
                     "get that root CA from IT and run: python bootstrap.py --ca-file CA.pem"))
        if result.ok:
            return "ok", "{}, verifies {}".format(what, host), None
    return "ok", what, None


def tls_verdict(failed, host, issuer, os_has, results, py, pip_v, skew):
    status = failed.status
    if skew is not None and abs(skew) > 300 and status in ("expired", "not-yet-valid", "untrusted"):
        return ("this computer's clock is off by {:.0f} minutes, so certificates look {}".format(
            abs(skew) / 60, "expired" if skew > 0 else "not yet valid"), "set the date and time correctly (automatic time)")
    if status == "not-yet-valid":
        return ("{}'s certificate is not valid yet (or this computer's clock is behind)".format(host),
                "check the date and time; if they are right, tell IT the server certificate is wrong")
    if status == "expired":
        return ("{}'s certificate (issued by {}) has expired".format(host, issuer),
                "tell IT / the index's owner; do not switch verification off")
    if status == "wrong-host":
        return ("the certificate presented for {} is for another host ({})".format(host, failed.detail),
                "check HTTPS_PROXY and DNS: something answers for {} that should not".format(host))
    vendor = interceptor(issuer)
    who = "{} ({})".format(issuer, "TLS interception by " + vendor) if vendor else issuer
    if os_has or results["os"].ok:
        gap = os_store_gap(py, pip_v)
        if gap:
            return ("pip checks only certifi, which lacks {}; the OS trusts it, but this pip cannot use the OS "
                    "store: {}".format(who, gap), "python bootstrap.py   (" + (
                        "writes a CA bundle with that CA to pip's config)" if py < TRUSTSTORE_PYTHON else
                        "installs pip >= 24.2 and truststore)"))
        return ("pip's certificate settings (cert / REQUESTS_CA_BUNDLE) hide {}".format(who), "python bootstrap.py")
    return ("{} is signed by {}, which this computer does not trust".format(host, who),
            "get that root CA from IT and run: python bootstrap.py --ca-file CA.pem")


if __name__ == "__main__":
    sys.exit(main())
