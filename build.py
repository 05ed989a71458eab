#!/usr/bin/env python3
"""build.py: the IT admin's release tool for trustfix.

    python build.py                  pin the newest wheels, download them, verify each SHA-256 against
                                     the digest the index publishes, then replace wheels/ and hashes.txt
    python build.py --check          wheels/ and hashes.txt agree exactly (CI runs this)
    python build.py zip --ca X.pem   the reproducible zip handed to new hires
    python build.py zip --python ">=3.10"
                                     a slim zip: only the pins (and wheels) those Pythons need

Pins: the newest pip wheel for each Python 3.6 .. 3.14, read from each release's Requires-Python and
grouped into ranges of Pythons that get the same pip; the newest truststore and certifi, each with the
Pythons its Requires-Python admits as its marker. hashes.txt is a pip requirements file: bootstrap.py
parses it and installs pip (and truststore on 3.10+) from its lines for the running Python, with
`--no-index --require-hashes --no-deps`; certifi's wheel is read for its roots, never installed.

Standard library only; `cryptography` is imported only to validate the CA files given to `zip --ca`.
"""

import sys

if sys.version_info < (3, 10):
    sys.exit("build.py needs Python 3.10 or newer (this is {}.{}); bootstrap.py itself runs on 3.6+."
             .format(*sys.version_info[:2]))

import argparse
import datetime
import hashlib
import html.parser
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import NamedTuple

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INDEX_URL = "https://pypi.org/simple/"
PYTHONS = tuple((3, minor) for minor in range(6, 15))   # the Pythons a bundle serves: 3.6 .. 3.14
PER_PYTHON = ("pip",)                    # one pin per range of Pythons: each gets its newest pip
NEWEST = ("certifi", "truststore")       # one pin: the newest release, marked by its Requires-Python
ALWAYS = ("certifi",)                    # kept in every slim bundle: bootstrap.py reads certifi's roots from
                                         # its wheel on every Python (the CA bundle; 3.6 too, which its
                                         # marker does not install it on)
SERVES = "# serves: python "             # the hashes.txt header line of a slim bundle (see serves_line)
SLIM_NOTE = (                            # and the two lines after it
    "# A slim bundle: only the pins those Pythons need (and certifi, whose roots bootstrap.py reads",
    "# on every Python). The full bundle (python build.py zip) serves Python {} .. {}.".format(
        ".".join(map(str, PYTHONS[0])), ".".join(map(str, PYTHONS[-1]))),
)
TIMEOUT = 30.0                           # seconds, for any single network operation
DOWNLOAD_DEADLINE = 600.0                # seconds, for a whole file: a trickling server cannot hang us
PATCH_LEVELS = range(100)                # 3.X.0 .. 3.X.99: "supports 3.X" means every patch release
ZIP_MIN_EPOCH = 315532800                # 1980-01-01T00:00:00Z: the earliest time a zip entry can hold
ZIP_MAX_EPOCH = 4354819198               # 2107-12-31T23:59:58Z: the latest
ZIP_TOP = "trustfix"
NEAR_EXPIRY = datetime.timedelta(days=30)

JSON_API = "application/vnd.pypi.simple.v1+json"
ACCEPT = "{}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01".format(JSON_API)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EXAMPLES = """\
examples:
  python build.py                          refresh wheels/ and hashes.txt from https://pypi.org
  python build.py --dry-run                show what would be pinned; change nothing
  python build.py --index-url https://mirror.corp/simple/
                                           the same from a mirror (PEP 691 JSON or PEP 503 HTML)
  python build.py --check                  CI: wheels/ and hashes.txt agree exactly
  python build.py zip --ca corp-root.pem   dist/trustfix-<digest>.zip with the company root CA
  SOURCE_DATE_EPOCH=1767225600 python build.py zip --ca corp-root.pem -o dist/trustfix-2026.zip
  python build.py zip --python ">=3.10" --ca corp-root.pem
                                           a slim zip for a fleet on Python 3.10+: one pip, not five
                                           (any PEP 440 specifier: "==3.12.*", ">=3.8,<3.11")

what it writes:
  wheels/      one pip wheel per range of Pythons, truststore and certifi (pure-Python wheels)
  hashes.txt   a pip requirements file: one `name==version ; marker --hash=sha256:...` line per wheel
  the zip      trustfix/{bootstrap.py, hashes.txt, README.txt, wheels/*, ca/*.pem}, byte-identical
               for identical inputs (sorted entries, fixed time and permissions, stored uncompressed);
               with --python, hashes.txt keeps only the pins whose markers can hold on a Python 3.X
               the specifier matches (certifi always: bootstrap.py reads its roots on every Python),
               wheels/ only their wheels, and hashes.txt and README.txt say which Pythons it serves

exit codes: 0 ok, 1 failed (network, digest mismatch, --check found a difference), 2 bad usage or input.
The index is reached with urllib: HTTPS_PROXY/NO_PROXY apply; TLS verifies against the default
certificate store (SSL_CERT_FILE/SSL_CERT_DIR apply).
"""


class BuildError(Exception):
    """Something failed; the message is one plain sentence naming the file or URL."""

    code = EXIT_FAILED


class BadInput(BuildError):
    """The user gave something unusable (an argument, a --ca file)."""

    code = EXIT_BAD_INPUT


class IndexFile(NamedTuple):
    """One file as a simple-API page lists it."""

    filename: str
    url: str
    sha256: str | None
    requires_python: str
    yanked: bool
    upload_time: str | None = None


class Pin(NamedTuple):
    """One line of hashes.txt: a wheel and the range of Pythons (first, last; inclusive) it serves."""

    project: str
    version: str
    file: IndexFile
    first: tuple[int, int]
    last: tuple[int, int]


class PinnedLine(NamedTuple):
    """One line of hashes.txt as read back by --check."""

    lineno: int
    project: str
    version: str
    pythons: tuple[tuple[int, int], ...]
    hashes: tuple[str, ...]


class Serves(NamedTuple):
    """The Pythons a bundle serves: spec None (the full bundle: every one of PYTHONS), or the
    normalized `zip --python` specifier and the minor versions it matches."""

    spec: str | None
    pythons: tuple[tuple[int, int], ...]


FULL = Serves(None, PYTHONS)


# --------------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------------

def say(text: str = "") -> None:
    """Progress and warnings go to stderr, so stdout holds only the result (and --json stays clean)."""
    print(text, file=sys.stderr, flush=True)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def human_size(size: int) -> str:
    if size >= 1000 * 1000:
        return "{:.1f} MB".format(size / 1e6)
    return "{:.1f} kB".format(size / 1e3)


def pystr(python: tuple[int, ...]) -> str:
    return ".".join(map(str, python))


def normalize_name(name: str) -> str:
    """PEP 503 normalization: the form used in index URLs and in hashes.txt."""
    return re.sub(r"[-_.]+", "-", name).lower()


def redact_url(url: str) -> str:
    """Drop user:password from a URL before it is printed or written to hashes.txt."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def source_date_epoch() -> int | None:
    """SOURCE_DATE_EPOCH (reproducible-builds.org), if set; a value that is not a number is bad input."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    if not re.fullmatch(r"-?\d+", value):
        raise BadInput("SOURCE_DATE_EPOCH={!r} is not a number of seconds since 1970; unset it or "
                       "give e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct).".format(value))
    return int(value)


def write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------------------------------
# Versions (PEP 440) and Requires-Python, parsed here so that build.py needs no third-party package
# --------------------------------------------------------------------------------------------------

_VERSION = re.compile(r"""
    v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d*))?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d*))?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d*))?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
""", re.VERBOSE | re.IGNORECASE)


def version_key(text: str) -> tuple | None:
    """A sort key in PEP 440 order (dev < pre < final < post), or None for a non-PEP 440 version."""
    m = _VERSION.fullmatch(text.strip())
    if not m:
        return None
    release = tuple(int(part) for part in m["release"].split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]          # 3.6 == 3.6.0
    post = m["post_n1"] or m["post_n2"] or ("0" if m["post_l"] else None)
    if m["pre_l"]:
        pre = ({"a": 0, "alpha": 0, "b": 1, "beta": 1}.get(m["pre_l"].lower(), 2), int(m["pre_n"] or 0))
    elif m["dev_l"] and post is None:
        pre = (-1, 0)                   # 1.0.dev1 sorts before 1.0a1
    else:
        pre = (3, 0)                    # a final release
    dev = (0, int(m["dev_n"] or 0)) if m["dev_l"] else (1, 0)
    return (int(m["epoch"] or 0), release, pre, -1 if post is None else int(post), dev)


def is_prerelease(text: str) -> bool:
    m = _VERSION.fullmatch(text.strip())
    return bool(m and (m["pre_l"] or m["dev_l"]))


_CLAUSE = re.compile(r"\s*(~=|===|==|!=|<=|>=|<|>)\s*(\S+?)\s*")


def parse_requires_python(text: str) -> list[tuple[str, str]]:
    """Requires-Python as [(operator, version)]; raises ValueError saying what is wrong.

    Covers what PEP 440 allows there: >=, >, <=, <, ==, !=, ==X.*, !=X.*, ~=, ===, comma-joined.
    An empty string admits every Python.
    """
    clauses = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _CLAUSE.fullmatch(part)
        if not m:
            raise ValueError("{!r} is not `<operator> <version>`".format(part.strip()))
        op, version = m.groups()
        if op == "===":
            clauses.append((op, version))
            continue
        wildcard = version.endswith(".*")
        if wildcard and op not in ("==", "!="):
            raise ValueError("{!r}: only == and != take a .* suffix".format(part.strip()))
        base = version[:-2] if wildcard else version
        if (wildcard and not re.fullmatch(r"\d+(\.\d+)*", base)) or version_key(base) is None:
            raise ValueError("{!r} is not a PEP 440 version".format(version))
        if op == "~=" and not re.fullmatch(r"\d+(\.\d+)+.*", base):
            raise ValueError("{!r}: ~= needs at least two release numbers".format(part.strip()))
        clauses.append((op, version))
    return clauses


def _release_prefix(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in _VERSION.fullmatch(version)["release"].split("."))


def python_satisfies(clauses: list[tuple[str, str]], python: tuple[int, ...]) -> bool:
    """Does the Python release `python` (e.g. (3, 8, 10)) satisfy every clause?"""
    target = version_key(pystr(python))
    for op, version in clauses:
        if op == "===":
            ok = pystr(python) == version.lower()
        elif version.endswith(".*"):
            prefix = _release_prefix(version[:-2])
            padded = tuple(python) + (0,) * len(prefix)
            ok = (padded[:len(prefix)] == prefix) == (op == "==")
        elif op == "~=":
            prefix = _release_prefix(version)[:-1]
            padded = tuple(python) + (0,) * len(prefix)
            ok = target >= version_key(version) and padded[:len(prefix)] == prefix
        else:
            other = version_key(version)
            ok = {"==": target == other, "!=": target != other, "<": target < other,
                  "<=": target <= other, ">": target > other, ">=": target >= other}[op]
        if not ok:
            return False
    return True


def admits(clauses: list[tuple[str, str]], minor: tuple[int, int]) -> bool:
    """Is Python 3.X supported, i.e. does every patch release 3.X.Y satisfy the clauses?

    A pin for 3.X must install on whichever 3.X.Y the new hire has, so `>=3.6.2` does not admit 3.6.
    """
    return all(python_satisfies(clauses, minor + (patch,)) for patch in PATCH_LEVELS)


# --------------------------------------------------------------------------------------------------
# The index: PEP 691 JSON simple API, falling back to PEP 503 HTML pages
# --------------------------------------------------------------------------------------------------

def check_index_url(url: str) -> str:
    """The index's digests are the trust anchor of the bundle, so they must come over HTTPS.

    Plain http is accepted only for a loopback address (a local mirror, the tests).
    """
    parts = urllib.parse.urlsplit(url)
    loopback = (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadInput("--index-url {} is not an http(s) URL; give the simple index, e.g. {}."
                       .format(redact_url(url), DEFAULT_INDEX_URL))
    if parts.scheme == "http" and not loopback:
        raise BadInput("--index-url {} is plain http: the SHA-256 digests it publishes could be changed "
                       "on the way; use its https URL.".format(redact_url(url)))
    return url if url.endswith("/") else url + "/"


def network_error(url: str, exc: BaseException) -> BuildError:
    """Turn urllib's exceptions into one sentence that says what to do."""
    where = redact_url(url)
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 407:
            return BuildError("the proxy asks for a login (HTTP 407) when fetching {}; put it in "
                              "HTTPS_PROXY=http://user:password@proxy:port.".format(where))
        if exc.code == 404:
            return BuildError("{} does not exist (HTTP 404); check --index-url.".format(where))
        return BuildError("{} answered HTTP {} {}.".format(where, exc.code, exc.reason))
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return BuildError("TLS verification failed for {} ({}); if a proxy intercepts TLS here, point "
                          "SSL_CERT_FILE at a PEM bundle that holds its CA.".format(
                              where, reason.verify_message or reason))
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return BuildError("{} did not answer in time ({}); retry, or raise --timeout.".format(where, reason))
    return BuildError("cannot reach {} ({}); check the network, HTTPS_PROXY and --index-url."
                      .format(where, reason))


def open_url(url: str, timeout: float, accept: str = "*/*"):
    """urlopen with urllib's defaults (proxy from the environment, default TLS verification)."""
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "trustfix-build"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise network_error(url, exc) from None


class _Anchors(html.parser.HTMLParser):
    """Collects the <a> tags (and a <base href>) of a PEP 503 page; HTMLParser wants a subclass."""

    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.anchors.append(dict(attrs))


def parse_html_page(text: str, page_url: str) -> list[IndexFile]:
    """PEP 503: each <a href="URL#sha256=HEX" data-requires-python=".." data-yanked> is a file."""
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs in parser.anchors:
        if not attrs.get("href"):
            continue
        url, fragment = urllib.parse.urldefrag(urllib.parse.urljoin(base, attrs["href"]))
        digest = None
        for name, value in urllib.parse.parse_qsl(fragment):
            if name == "sha256":
                digest = value.lower()
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        files.append(IndexFile(filename, url, digest, attrs.get("data-requires-python") or "",
                               "data-yanked" in attrs))
    return files


def parse_json_page(data: bytes, page_url: str) -> list[IndexFile]:
    """PEP 691: {"meta": {"api-version": "1.x"}, "files": [{filename, url, hashes, requires-python,
    yanked, upload-time (PEP 700)}]}."""
    try:
        page = json.loads(data)
        major = str(page.get("meta", {}).get("api-version", "1.0")).split(".")[0]
        if major != "1":
            raise BuildError("{} speaks simple-API version {}; build.py knows version 1."
                             .format(redact_url(page_url), major))
        files = []
        for entry in page["files"]:
            url = urllib.parse.urldefrag(urllib.parse.urljoin(page_url, entry["url"]))[0]
            digest = (entry.get("hashes") or {}).get("sha256")
            files.append(IndexFile(str(entry["filename"]), url, str(digest).lower() if digest else None,
                                   entry.get("requires-python") or "", bool(entry.get("yanked")),
                                   entry.get("upload-time")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError("{} is not a PEP 691 simple-API page ({}: {}).".format(
            redact_url(page_url), type(exc).__name__, exc)) from None
    return files


def project_files(index_url: str, project: str, timeout: float) -> list[IndexFile]:
    """Every file the index lists for a project, from the JSON API if it speaks it, else HTML."""
    url = urllib.parse.urljoin(index_url, normalize_name(project) + "/")
    try:
        with open_url(url, timeout, ACCEPT) as response:
            data = response.read()
            final_url = response.geturl()
            content_type = response.headers.get_content_type()
            charset = response.headers.get_content_charset() or "utf-8"
    except (OSError, ValueError) as exc:     # a read that times out or breaks off
        raise network_error(url, exc) from None
    if urllib.parse.urlsplit(final_url).scheme != urllib.parse.urlsplit(url).scheme:
        check_index_url(final_url)           # redirected from https to plain http: refuse
    if content_type in (JSON_API, "application/json"):
        return parse_json_page(data, final_url)
    return parse_html_page(data.decode(charset, "replace"), final_url)


# --------------------------------------------------------------------------------------------------
# Resolution: which wheel for which Python
# --------------------------------------------------------------------------------------------------

def wheel_name_version(filename: str) -> tuple[str, str] | None:
    """(normalized project, version) of a wheel file name, or None if it is not a wheel."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    return normalize_name(parts[0]), parts[1]


def is_universal_py3(filename: str) -> bool:
    """Pure-Python wheel for every Python 3 (py3-none-any, py2.py3-none-any): one file fits all."""
    parts = filename[:-4].split("-")
    return "py3" in parts[-3].split(".") and parts[-2] == "none" and parts[-1] == "any"


def candidates(files: list[IndexFile], project: str) -> list[tuple[IndexFile, list]]:
    """The wheels eligible as pins, newest first, each with its parsed Requires-Python.

    Yanked files and pre-releases never become pins; a file whose Requires-Python cannot be parsed is
    skipped with a warning rather than guessed at.
    """
    found = []
    for f in files:
        name_version = wheel_name_version(f.filename)
        if not name_version or name_version[0] != normalize_name(project) or not is_universal_py3(f.filename):
            continue
        key = version_key(name_version[1])
        if key is None or f.yanked or is_prerelease(name_version[1]):
            continue
        try:
            clauses = parse_requires_python(f.requires_python)
        except ValueError as exc:
            say("warning: skipping {}: Requires-Python {!r}: {}".format(f.filename, f.requires_python, exc))
            continue
        found.append((key, f.filename, f, clauses))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [(f, clauses) for _, _, f, clauses in found]


def ranges(picks: dict[tuple[int, int], IndexFile]) -> list[tuple[IndexFile, tuple[int, int], tuple[int, int]]]:
    """Group consecutive Pythons (in PYTHONS order) that got the same file: [(file, first, last)]."""
    groups: list = []
    for index, python in enumerate(PYTHONS):
        f = picks.get(python)
        if f is None:
            continue
        if groups and groups[-1][0] == f and groups[-1][2] == PYTHONS[index - 1]:
            groups[-1] = (f, groups[-1][1], python)
        else:
            groups.append((f, python, python))
    return groups


def resolve_project(project: str, files: list[IndexFile], per_python: bool) -> list[Pin]:
    """Pins for one project: per Python the newest wheel it admits (pip), or the newest wheel overall
    with the Pythons it admits (truststore, certifi)."""
    eligible = candidates(files, project)
    if not eligible:
        raise BuildError("the index lists no usable wheel of {} (pure-Python, not yanked, not a "
                         "pre-release).".format(project))
    picks: dict[tuple[int, int], IndexFile] = {}
    if per_python:
        for python in PYTHONS:
            for f, clauses in eligible:
                if admits(clauses, python):
                    picks[python] = f
                    break
        missing = [pystr(p) for p in PYTHONS if p not in picks]
        if missing:
            raise BuildError("no {} wheel on the index supports Python {}.".format(project, ", ".join(missing)))
    else:
        for f, clauses in eligible:
            admitted = [p for p in PYTHONS if admits(clauses, p)]
            if admitted:
                picks = {p: f for p in admitted}
                break
        if not picks:
            raise BuildError("no {} wheel on the index supports any Python {} .. {}.".format(
                project, pystr(PYTHONS[0]), pystr(PYTHONS[-1])))
    pins = []
    for f, first, last in ranges(picks):
        if not f.sha256:
            raise BuildError("the index publishes no SHA-256 for {}; build.py pins only files it can "
                             "verify.".format(f.filename))
        pins.append(Pin(normalize_name(project), wheel_name_version(f.filename)[1], f, first, last))
    return pins


def resolve(index_url: str, timeout: float) -> list[Pin]:
    pins = []
    for project in PER_PYTHON + NEWEST:
        say("reading {}{}/".format(redact_url(index_url), normalize_name(project)))
        pins += resolve_project(project, project_files(index_url, project, timeout), project in PER_PYTHON)
    return sort_pins(pins)


def sort_pins(pins: list[Pin]) -> list[Pin]:
    """pip first, oldest Python first; then the other projects alphabetically."""
    return sorted(pins, key=lambda p: (p.project not in PER_PYTHON, p.project, p.first))


# --------------------------------------------------------------------------------------------------
# hashes.txt: write and read
# --------------------------------------------------------------------------------------------------

def marker(first: tuple[int, int], last: tuple[int, int]) -> str:
    """`python_version >= "3.X"` [`and python_version < "3.Y"`]; empty when a pin serves them all."""
    if (first, last) == (PYTHONS[0], PYTHONS[-1]):
        return ""
    clauses = ['python_version >= "{}"'.format(pystr(first))]
    if last != PYTHONS[-1]:
        clauses.append('python_version < "{}"'.format(pystr((last[0], last[1] + 1))))
    return " and ".join(clauses)


def pin_line(pin: Pin) -> str:
    condition = marker(pin.first, pin.last)
    return "{}=={}{} --hash=sha256:{}".format(
        pin.project, pin.version, " ; " + condition if condition else "", pin.file.sha256)


def made_when(pins: list[Pin]) -> str:
    """The date for the header, chosen so that the same index state gives the same bytes:
    SOURCE_DATE_EPOCH if set, else the newest upload among the pinned files (if the index says)."""
    epoch = source_date_epoch()
    if epoch is not None:
        return " on {:%Y-%m-%d}".format(datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc))
    uploads = sorted(p.file.upload_time for p in pins if p.file.upload_time)
    return " (newest pinned file uploaded {})".format(uploads[-1][:10]) if uploads else ""


def render_hashes(pins: list[Pin], index_url: str) -> str:
    header = [
        "# hashes.txt: the trust anchor of the trustfix bundle. Every wheel in wheels/, pinned by version",
        "# and SHA-256; bootstrap.py and pip install nothing else. Generated by build.py: do not edit.",
        "# Made from {}{}.".format(redact_url(index_url), made_when(pins)),
        "# Regenerate: python build.py        Check wheels/ against it: python build.py --check",
        "# bootstrap.py installs pip (and truststore on Python >= 3.10) from the lines for the running Python,",
        "# with --no-index --require-hashes --no-deps; certifi's wheel is read for its roots, never installed.",
        "# The python_version markers give each Python {} .. {} its own pip.".format(
            pystr(PYTHONS[0]), pystr(PYTHONS[-1])),
    ]
    return "\n".join(header + [pin_line(pin) for pin in pins]) + "\n"


_LINE = re.compile(r"(?P<name>[a-z0-9]+(?:[-_.][a-z0-9]+)*)==(?P<version>[^\s;]+)"
                   r"(?:\s+;\s+(?P<marker>[^-]*?))?"
                   r"(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})+)")
_MARKER_CLAUSE = re.compile(r'python_version (>=|<) "(3)\.(\d+)"')


def parse_marker(text: str) -> tuple[tuple[int, int], ...]:
    """The Pythons in PYTHONS that a build.py marker admits; ValueError for anything else."""
    pythons = set(PYTHONS)
    if not text:
        return PYTHONS
    for clause in text.split(" and "):
        m = _MARKER_CLAUSE.fullmatch(clause.strip())
        if not m:
            raise ValueError('marker clause {!r} is not python_version >= or < "3.X"'.format(clause.strip()))
        bound = (int(m[2]), int(m[3]))
        pythons &= {p for p in PYTHONS if (p >= bound if m[1] == ">=" else p < bound)}
    return tuple(sorted(pythons))


def hashes_lines(path: str) -> list[str]:
    """The lines of a hashes.txt; BuildError when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        raise BuildError("{} is missing; make it with `python build.py`.".format(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError("{} cannot be read ({}).".format(path, exc)) from None


def read_hashes(path: str) -> list[PinnedLine]:
    """Parse hashes.txt as build.py writes it; BuildError naming the first malformed line."""
    lines = hashes_lines(path)
    pinned = []
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        m = _LINE.fullmatch(text)
        try:
            if not m:
                raise ValueError('expected `name==version ; python_version >= "3.X" --hash=sha256:<64 hex>`')
            if version_key(m["version"]) is None:
                raise ValueError("{!r} is not a version".format(m["version"]))
            pythons = parse_marker((m["marker"] or "").strip())
        except ValueError as exc:
            raise BuildError("{} line {} is malformed: {}; got: {}".format(path, lineno, exc, text[:120])) from None
        hashes = tuple(re.findall(r"sha256:([0-9a-f]{64})", m["hashes"]))
        pinned.append(PinnedLine(lineno, normalize_name(m["name"]), m["version"], pythons, hashes))
    if not pinned:
        raise BuildError("{} pins nothing; make it with `python build.py`.".format(path))
    return pinned


# --------------------------------------------------------------------------------------------------
# Slim bundles: `zip --python SPEC` serves only the Pythons a specifier matches
# --------------------------------------------------------------------------------------------------

def served_by(clauses: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    """The minor versions 3.X in PYTHONS that a fleet specifier matches: those with at least one patch
    release 3.X.Y that satisfies it (`>=3.10.4` still has 3.10 machines to serve). hashes.txt's markers
    test only python_version (3.X), so a pin chosen for 3.X serves every 3.X.Y."""
    return tuple(p for p in PYTHONS if any(python_satisfies(clauses, p + (patch,)) for patch in PATCH_LEVELS))


def parse_fleet(spec: str) -> Serves:
    """`zip --python SPEC` as the Pythons it serves; BadInput (one sentence) for a specifier that is not
    PEP 440 or that matches none of PYTHONS."""
    example = 'give e.g. --python ">=3.10", "==3.12.*" or ">=3.8,<3.11"'
    if not spec.strip():
        raise BadInput("--python needs a PEP 440 specifier of the Pythons the zip serves; {}.".format(example))
    try:
        clauses = parse_requires_python(spec)
    except ValueError as exc:
        raise BadInput("--python {!r} is not a PEP 440 specifier ({}); {}.".format(spec, exc, example)) from None
    pythons = served_by(clauses)
    if not pythons:
        raise BadInput("--python {!r} matches no Python a bundle can serve ({} .. {}), so no zip was written; "
                       "{}.".format(spec, pystr(PYTHONS[0]), pystr(PYTHONS[-1]), example))
    return Serves(",".join(op + version for op, version in clauses), pythons)


def serves_line(serves: Serves) -> str:
    """`# serves: python >=3.10 (3.10, 3.11, 3.12, 3.13, 3.14)`: the specifier has no spaces (normalized),
    the list in parentheses is every minor version it matches, comma-and-space separated."""
    return "{}{} ({})".format(SERVES, serves.spec, ", ".join(pystr(p) for p in serves.pythons))


_SERVES_LINE = re.compile(re.escape(SERVES) + r"(?P<spec>\S+) \((?P<list>3\.\d+(?:, 3\.\d+)*)\)")


def read_serves(path: str) -> Serves:
    """The Pythons a hashes.txt serves: its `# serves:` line (a slim bundle), else all of PYTHONS.

    BuildError naming the line when it is malformed or its list is not what its specifier matches."""
    lines = hashes_lines(path)
    found = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip().startswith(SERVES.rstrip())]
    if not found:
        return FULL
    if len(found) > 1:
        raise BuildError("{} has {} `{}` lines ({}); a bundle serves one set of Pythons.".format(
            path, len(found), SERVES.strip(), ", ".join(str(n) for n, _ in found)))
    lineno, text = found[0]
    m = _SERVES_LINE.fullmatch(text)
    try:
        if not m:
            raise ValueError('expected `{}>=3.10 (3.10, 3.11, ...)`'.format(SERVES))
        serves = parse_fleet(m["spec"])
    except (ValueError, BadInput) as exc:
        raise BuildError("{} line {} is malformed: {}; got: {}".format(path, lineno, exc, text[:120])) from None
    listed = tuple(tuple(int(x) for x in item.split(".")) for item in m["list"].split(", "))
    if listed != serves.pythons:
        raise BuildError("{} line {} lists Python {}, but {} matches Python {}; rebuild the zip.".format(
            path, lineno, m["list"], serves.spec, ", ".join(pystr(p) for p in serves.pythons)))
    return serves


def describe_serves(serves: Serves) -> str:
    """`Python >=3.10 (3.10, 3.11, 3.12, 3.13, 3.14)`, or `Python 3.6 .. 3.14` for the full bundle."""
    if serves.spec is None:
        return "Python {} .. {}".format(pystr(PYTHONS[0]), pystr(PYTHONS[-1]))
    return "Python {} ({})".format(serves.spec, ", ".join(pystr(p) for p in serves.pythons))


def needed_pins(pinned: list[PinnedLine], serves: Serves) -> list[PinnedLine]:
    """The pins a bundle serving these Pythons needs: each whose marker holds on one of them, and certifi."""
    return [p for p in pinned if p.project in ALWAYS or set(p.pythons) & set(serves.pythons)]


def slim_hashes(text: str, pinned: list[PinnedLine], keep: list[PinnedLine], serves: Serves) -> str:
    """hashes.txt for a slim bundle: the header without its `give each Python 3.6 .. 3.14 its own pip`
    line (and without the serves line and note of a slim hashes.txt: slimming again gives the same text
    for the same Pythons), the serves line and note, then the kept pin lines, unchanged."""
    pins, kept = {p.lineno for p in pinned}, {p.lineno for p in keep}
    first_pin = min(pins)
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if lineno == first_pin:
            out += [serves_line(serves), *SLIM_NOTE]
        if lineno in pins and lineno not in kept:
            continue
        if lineno not in pins and (line.strip().startswith(SERVES.rstrip()) or line.strip() in SLIM_NOTE
                                   or re.fullmatch(r"# The python_version markers give each Python .* its own pip\.",
                                                   line.strip())):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# `python build.py`: download, verify, then swap wheels/ and hashes.txt in
# --------------------------------------------------------------------------------------------------

def progress(name: str, done: int, total: int | None, end: str = "") -> None:
    """One line per file: name, size, then `done` (updated in place while it runs, on a terminal)."""
    size = human_size(total) if total else human_size(done)
    if end:
        say("  {:<42} {:>9}  {}".format(name, size, end))
    elif sys.stderr.isatty() and total:
        print("\r  {:<42} {:>9}  {:3.0f}%".format(name, size, 100.0 * done / total),
              end="", file=sys.stderr, flush=True)


def download(f: IndexFile, dest: str, timeout: float) -> str:
    """Stream one file to dest, hashing as it comes; returns its SHA-256."""
    digest = hashlib.sha256()
    done = 0
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    with open_url(f.url, timeout) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        while True:
            try:
                chunk = response.read(1 << 16)
                if time.monotonic() > deadline:
                    raise TimeoutError("no complete file after {:.0f} s".format(DOWNLOAD_DEADLINE))
            except (OSError, ValueError) as exc:      # the network, not the disk: say so
                if sys.stderr.isatty():
                    print(file=sys.stderr)
                raise network_error(f.url, exc) from None
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            progress(f.filename, done, total)
        out.flush()
        os.fsync(out.fileno())
    if sys.stderr.isatty() and total:
        print("\r", end="", file=sys.stderr)
    return digest.hexdigest()


def fetch_verified(f: IndexFile, dest_dir: str, reuse_dir: str, timeout: float) -> int:
    """Put f into dest_dir, verified against the index's digest; returns its size.

    A file already in wheels/ with exactly that digest is copied instead of downloaded again.
    """
    dest = os.path.join(dest_dir, f.filename)
    existing = os.path.join(reuse_dir, f.filename)
    if os.path.isfile(existing) and sha256_file(existing) == f.sha256:
        shutil.copyfile(existing, dest)
        progress(f.filename, os.path.getsize(dest), None, "done (already in wheels/, SHA-256 ok)")
        return os.path.getsize(dest)
    actual = download(f, dest, timeout)
    if actual != f.sha256:
        progress(f.filename, os.path.getsize(dest), None, "SHA-256 MISMATCH")
        raise BuildError("{}: SHA-256 mismatch: the index publishes {} but the downloaded file has {}; "
                         "nothing was changed.".format(f.filename, f.sha256, actual))
    progress(f.filename, os.path.getsize(dest), None, "done (SHA-256 ok)")
    return os.path.getsize(dest)


def swap_in(root: str, staging: str) -> None:
    """Replace wheels/ and hashes.txt with the staged ones; on any failure put the old ones back.

    Each rename is atomic on one file system (staging is inside root for that reason); the pair is
    undone on failure, so a build leaves either the old or the new bundle, never a mix.
    """
    wheels, hashes = os.path.join(root, "wheels"), os.path.join(root, "hashes.txt")
    old_wheels = os.path.join(staging, "old-wheels")
    had_wheels = os.path.isdir(wheels)
    if had_wheels:
        os.rename(wheels, old_wheels)
    try:
        os.rename(os.path.join(staging, "wheels"), wheels)
        try:
            os.replace(os.path.join(staging, "hashes.txt"), hashes)
        except BaseException:
            os.rename(wheels, os.path.join(staging, "wheels"))
            raise
    except BaseException:
        if had_wheels:
            os.rename(old_wheels, wheels)
        raise


def up_to_date(root: str, text: str, filenames: set[str]) -> bool:
    wheels, hashes = os.path.join(root, "wheels"), os.path.join(root, "hashes.txt")
    try:
        with open(hashes, encoding="utf-8") as f:
            current = f.read()
        return current == text and set(os.listdir(wheels)) == filenames
    except OSError:
        return False


def describe_pins(pins: list[Pin]) -> list[str]:
    lines = []
    for pin in pins:
        if (pin.first, pin.last) == (PYTHONS[0], PYTHONS[-1]):
            pythons = "every Python"
        elif pin.last == PYTHONS[-1]:
            pythons = "Python >= " + pystr(pin.first)
        elif pin.first == pin.last:
            pythons = "Python " + pystr(pin.first)
        else:
            pythons = "Python {} .. {}".format(pystr(pin.first), pystr(pin.last))
        lines.append("  {:<11} {:<12} {:<22} {}".format(pin.project, pin.version, pythons, pin.file.filename))
    return lines


def cmd_pins(root: str, index_url: str, timeout: float, dry_run: bool, as_json: bool) -> int:
    """Resolve, download into a staging folder next to wheels/, verify all, then swap in."""
    pins = resolve(index_url, timeout)
    text = render_hashes(pins, index_url)
    files = {pin.file.filename: pin.file for pin in pins}
    if not as_json:
        print("Pins from {}:".format(redact_url(index_url)))
        print("\n".join(describe_pins(pins)))
    result = {"index_url": redact_url(index_url), "changed": False, "dry_run": dry_run,
              "pins": [{"project": p.project, "version": p.version, "filename": p.file.filename,
                        "sha256": p.file.sha256, "marker": marker(p.first, p.last)} for p in pins]}
    if dry_run:
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            print("--dry-run: nothing downloaded, nothing changed.")
        return EXIT_OK
    staging = tempfile.mkdtemp(prefix=".build-", dir=root)
    try:
        os.mkdir(os.path.join(staging, "wheels"))
        say("downloading {} wheels:".format(len(files)))
        total = 0
        for name in sorted(files):
            total += fetch_verified(files[name], os.path.join(staging, "wheels"),
                                    os.path.join(root, "wheels"), timeout)
        if up_to_date(root, text, set(files)):
            summary = "wheels/ and hashes.txt are already up to date ({} wheels, {})".format(
                len(files), human_size(total))
        else:
            write_synced(os.path.join(staging, "hashes.txt"), text.encode("utf-8"))
            swap_in(root, staging)
            result["changed"] = True
            summary = "wrote wheels/ ({} wheels, {}) and hashes.txt; all SHA-256 verified".format(
                len(files), human_size(total))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(summary)
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# `python build.py --check`: wheels/ and hashes.txt agree exactly
# --------------------------------------------------------------------------------------------------

def coverage_problems(pinned: list[PinnedLine], serves: Serves = FULL) -> list[str]:
    """Every Python served gets exactly one pip, and no Python two pins of one project (pip would refuse);
    a slim bundle has no pin that only Pythons it does not serve could use."""
    problems = []
    if serves.spec is not None:
        for p in pinned:
            if p.project not in ALWAYS and not set(p.pythons) & set(serves.pythons):
                problems.append("hashes.txt line {} pins {}=={} for Python {} only, which this slim bundle does "
                                "not serve (it serves {}).".format(p.lineno, p.project, p.version,
                                                                   ", ".join(map(pystr, p.pythons)) or "none",
                                                                   describe_serves(serves)))
    for project in sorted({p.project for p in pinned}):
        lines = [p for p in pinned if p.project == project]
        for python in serves.pythons:
            serving = [p.lineno for p in lines if python in p.pythons]
            if len(serving) > 1:
                problems.append("hashes.txt lines {} all pin {} for Python {}.".format(
                    ", ".join(map(str, serving)), project, pystr(python)))
            elif not serving and project in PER_PYTHON:
                problems.append("hashes.txt pins no {} for Python {}.".format(project, pystr(python)))
    return problems


def check_tree(root: str) -> tuple[list[str], list[PinnedLine], list[str]]:
    """(problems, pins, wheel file names): each problem names the file and what is wrong. A slim bundle
    (a `# serves:` line in hashes.txt) is checked for the Pythons it serves."""
    hashes_path = os.path.join(root, "hashes.txt")
    wheels = os.path.join(root, "wheels")
    pinned = read_hashes(hashes_path)
    serves = read_serves(hashes_path)
    names = sorted(os.listdir(wheels)) if os.path.isdir(wheels) else []
    digests = {n: sha256_file(os.path.join(wheels, n)) for n in names if os.path.isfile(os.path.join(wheels, n))}
    problems = coverage_problems(pinned, serves)
    matched: set[str] = set()
    for pin in pinned:
        same_name = [n for n in names if wheel_name_version(n)
                     and wheel_name_version(n)[0] == pin.project
                     and version_key(wheel_name_version(n)[1]) == version_key(pin.version)]
        good = [n for n in same_name if digests.get(n) in pin.hashes]
        matched.update(good)
        if good:
            continue
        if same_name:
            matched.update(same_name)
            for n in same_name:
                problems.append("changed: wheels/{} has SHA-256 {}, but hashes.txt line {} pins {}.".format(
                    n, digests.get(n, "(not a file)"), pin.lineno, pin.hashes[0]))
        else:
            problems.append("missing: hashes.txt line {} pins {}=={}, but wheels/ has no such wheel.".format(
                pin.lineno, pin.project, pin.version))
    for n in names:
        if n not in matched:
            problems.append("extra: wheels/{} is not pinned by hashes.txt; remove it or run "
                            "`python build.py`.".format(n))
    return problems, pinned, names


def cmd_check(root: str, as_json: bool) -> int:
    serves = FULL
    try:
        problems, pinned, names = check_tree(root)
        serves = read_serves(os.path.join(root, "hashes.txt"))
    except BuildError as exc:
        problems, pinned, names = [str(exc)], [], []
    if as_json:
        print(json.dumps({"ok": not problems, "problems": problems, "pins": len(pinned), "files": len(names),
                          "serves": {"spec": serves.spec, "pythons": [pystr(p) for p in serves.pythons]}},
                         indent=2))
    elif problems:
        print("build.py --check FAILED:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
    else:
        print("OK: wheels/ matches hashes.txt exactly ({} pins, {} wheels, SHA-256 verified){}.".format(
            len(pinned), len(names), "" if serves.spec is None else
            "; a slim bundle: it serves only {}".format(describe_serves(serves))))
    return EXIT_FAILED if problems else EXIT_OK


# --------------------------------------------------------------------------------------------------
# `python build.py zip`: the CA files, the README, the reproducible zip
# --------------------------------------------------------------------------------------------------

def _x509():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
    except ImportError:
        raise BuildError("--ca needs the `cryptography` package to validate certificates: "
                         "python -m pip install cryptography") from None
    return x509, hashes, serialization


def fingerprint(digest: bytes) -> str:
    """Colon-separated upper-case hex, as browsers and `openssl x509 -fingerprint` show it."""
    return ":".join("{:02X}".format(b) for b in digest)


def ca_slug(cert) -> str:
    """A file-name-safe name from the CN (else O): `Example Corp Root CA` -> `example-corp-root-ca`."""
    x509, _, _ = _x509()
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            slug = re.sub(r"[^a-z0-9]+", "-", str(values[0].value).lower()).strip("-")[:48].strip("-")
            if slug:
                return slug
    return "ca"


def load_cas(path: str, now: datetime.datetime) -> list[dict]:
    """Validate one --ca file: PEM, each certificate a CA (basicConstraints CA=true), valid today.

    Returns one record per certificate; raises BadInput with one sentence naming the file, what it
    holds and what was expected. Certificates expiring within 30 days pass with a warning.
    """
    x509, hashes, serialization = _x509()
    expected = "expected a PEM file with the company's root CA certificate (-----BEGIN CERTIFICATE-----)"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BadInput("{} does not exist; {}.".format(path, expected)) from None
    except OSError as exc:
        raise BadInput("{} cannot be read ({}); {}.".format(path, exc.strerror or exc, expected)) from None
    if not data.strip():
        raise BadInput("{} is empty; {}.".format(path, expected))
    if b"PRIVATE KEY-----" in data:
        raise BadInput("{} holds a private key, which must never be shipped; {} and nothing else."
                       .format(path, expected))
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", data, re.DOTALL)
    if not blocks:
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            pass
        else:
            stem = os.path.splitext(path)[0]
            raise BadInput("{} is a DER (binary) certificate, but a PEM file is expected; convert it with: "
                           "openssl x509 -inform der -in {} -out {}.pem".format(path, path, stem))
        try:
            serialization.load_der_private_key(data, password=None)
        except Exception:   # noqa: BLE001 - any failure means "not a DER private key"
            pass
        else:
            raise BadInput("{} is a private key (DER), which must never be shipped; {}.".format(path, expected))
        raise BadInput("{} is not a certificate (no PEM certificate block, not DER either); {}."
                       .format(path, expected))
    records = []
    for number, block in enumerate(blocks, 1):
        which = path if len(blocks) == 1 else "{} (certificate {} of {})".format(path, number, len(blocks))
        try:
            cert = x509.load_pem_x509_certificate(block)
            subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
            not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:               # an X.509 v1 self-signed root is a CA to OpenSSL
                is_ca = cert.version == x509.Version.v1 and cert.subject == cert.issuer
        except ValueError as exc:
            raise BadInput("{} holds a damaged certificate ({}); {}.".format(which, exc, expected)) from None
        if not is_ca:
            raise BadInput("{} is a server (leaf) certificate for {}, not a CA (basicConstraints CA is not "
                           "true); expected the root CA that issued it ({}).".format(which, subject, issuer))
        if not_after < now:
            raise BadInput("{} is the CA {}, which expired on {:%Y-%m-%d}; expected a CA that is valid "
                           "today: ask for the current one.".format(which, subject, not_after))
        if not_before > now:
            raise BadInput("{} is the CA {}, which is not valid before {:%Y-%m-%d %H:%M} UTC; expected a CA "
                           "that is valid today: check this computer's clock.".format(which, subject, not_before))
        if not_after - now < NEAR_EXPIRY:
            say("warning: {} ({}) expires on {:%Y-%m-%d}, in {} days; plan its replacement.".format(
                which, subject, not_after, (not_after - now).days))
        if subject != issuer:
            say("note: {} is an intermediate CA issued by {}; bootstrap.py will trust it as given."
                .format(which, issuer))
        digest = cert.fingerprint(hashes.SHA256())
        records.append({
            "source": path, "subject": subject, "issuer": issuer,
            "sha256_fingerprint": fingerprint(digest),
            "not_before": not_before.strftime("%Y-%m-%d"), "not_after": not_after.strftime("%Y-%m-%d"),
            "name": "ca/{}-{}.pem".format(ca_slug(cert), digest.hex()[:8]),
            "pem": cert.public_bytes(serialization.Encoding.PEM),
        })
    return records


def collect_cas(paths: list[str], now: datetime.datetime | None = None) -> list[dict]:
    """Every certificate of every --ca file, validated, without duplicates, sorted by zip name."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    unique = {}
    for path in paths:
        for record in load_cas(path, now):
            unique.setdefault(record["name"], record)
    return [unique[name] for name in sorted(unique)]


def readme_text(cas: list[dict], contact: str, serves: Serves = FULL) -> str:
    """README.txt for the new hire: what this is, how to run it, what changes, how to undo it; a slim
    bundle also says which Pythons it serves (the full bundle's text is as it always was)."""
    if serves.spec is None:
        serves_lines = []
    else:
        serves_lines = [
            "This bundle serves Python {} only: {}.".format(serves.spec, ", ".join(pystr(p) for p in serves.pythons)),
            "With another Python it stops and changes nothing: run it with one of",
            "those (Windows: py -{} bootstrap.py), or ask {} for the full bundle.".format(
                pystr(serves.pythons[-1]), contact),
            "",
        ]
    if cas:
        ca_lines = ["  The company CA(s) it trusts, in ca/:"] + [
            "    {}  ({})".format(ca["subject"], ca["name"][3:]) for ca in cas]
    else:
        ca_lines = ["  No company CA is included; it uses the CAs your computer already trusts."]
    lines = [
        "trustfix: make Python's pip work on the company network",
        "=======================================================",
        "",
        "Our network inspects HTTPS traffic, so `pip install` fails with",
        "CERTIFICATE_VERIFY_FAILED. This folder fixes that once, offline: it installs",
        "pip (and truststore on Python 3.10+) from the wheels/ folder, checked against",
        "the SHA-256 digests in hashes.txt, and tells pip which CAs to trust.",
        "",
    ] + serves_lines + [
        "Run it from this folder, with the Python you use:",
        "  Windows:          py bootstrap.py",
        "  macOS and Linux:  python3 bootstrap.py",
        "  Preview first:    add --dry-run (shows the plan, changes nothing)",
        "",
        "What it changes:",
        "  - pip (and truststore) of that Python, upgraded to the pinned versions;",
        "  - if needed, one line `cert = <CA bundle>` in your own pip configuration,",
        "    with the bundle stored in your user profile.",
        "  It never turns certificate checks off and never edits certifi.",
        "",
    ] + ca_lines + [
        "",
        "Undo (restores every file it changed, byte for byte):",
        "  py bootstrap.py undo          (Windows)",
        "  python3 bootstrap.py undo     (macOS and Linux)",
        "",
        "Something still wrong? Run `python3 bootstrap.py doctor` (Windows:",
        "`py bootstrap.py doctor`) and send its output to {}.".format(contact),
    ]
    return "\r\n".join(lines) + "\r\n"     # CRLF: readable in every Windows editor, fine elsewhere


def zip_date_time(epoch: int | None) -> tuple[int, int, int, int, int, int]:
    """SOURCE_DATE_EPOCH clamped to what a zip can hold, else 1980-01-01 00:00:00 (UTC)."""
    epoch = ZIP_MIN_EPOCH if epoch is None else min(max(epoch, ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)
    return time.gmtime(epoch)[:6]


def zip_entries(root: str, cas: list[dict], contact: str, serves: Serves | None = None,
                pinned: list[PinnedLine] = ()) -> list[tuple[str, bytes]]:
    """(name in zip, bytes), sorted by name: the whole bundle, read into memory (about 10 MB).

    With serves (zip --python), only the pins (of `pinned`, hashes.txt as check_tree read it) those
    Pythons need, in a hashes.txt that says which Pythons it serves, and only their wheels."""
    bootstrap = os.path.join(root, "bootstrap.py")
    if not os.path.isfile(bootstrap):
        raise BuildError("{} is missing; the zip needs the installer next to hashes.txt and wheels/."
                         .format(bootstrap))
    hashes_path = os.path.join(root, "hashes.txt")
    sources = {"bootstrap.py": bootstrap, "hashes.txt": hashes_path}
    keep = needed_pins(list(pinned), serves) if serves else list(pinned)
    wanted = {(p.project, version_key(p.version)) for p in keep}
    for name in sorted(os.listdir(os.path.join(root, "wheels"))):
        project_version = wheel_name_version(name)
        if serves is None or (project_version and (project_version[0], version_key(project_version[1])) in wanted):
            sources["wheels/" + name] = os.path.join(root, "wheels", name)
    entries = {}
    for name, path in sources.items():
        with open(path, "rb") as f:
            entries[name] = f.read()
    if serves:
        with open(hashes_path, encoding="utf-8") as f:       # as read_hashes read it: same line numbers
            entries["hashes.txt"] = slim_hashes(f.read(), list(pinned), keep, serves).encode("utf-8")
    for ca in cas:
        entries[ca["name"]] = ca["pem"]
    entries["README.txt"] = readme_text(cas, contact, serves or FULL).encode("utf-8")
    return sorted(("{}/{}".format(ZIP_TOP, name), data) for name, data in entries.items())


def write_zip(path: str, entries: list[tuple[str, bytes]], date_time: tuple) -> None:
    """A reproducible zip: entries in the given (sorted) order, one fixed time, Unix 0644 regular files,
    and every entry ZIP_STORED.

    Why stored, even for text: deflate output depends on the zlib build, so a compressed entry can
    differ between two Pythons; stored bytes cannot. The wheels are compressed already, and the text
    files are well under 1% of the bundle, so storing costs almost nothing (the zip stays < 1.01x the
    wheels' size).
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3                      # Unix, so external_attr means permissions
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)


def cmd_zip(root: str, ca_paths: list[str], output: str | None, contact: str, as_json: bool,
            python: str | None = None) -> int:
    serves = parse_fleet(python) if python is not None else None   # bad input first: nothing is written
    cas = collect_cas(ca_paths)             # for a bad --python or --ca
    problems, pinned, _ = check_tree(root)
    if problems:
        raise BuildError("wheels/ and hashes.txt disagree, so no zip was written:\n  " + "\n  ".join(problems)
                         + "\nRun `python build.py` (or fix wheels/), then `python build.py --check`.")
    tree_serves = read_serves(os.path.join(root, "hashes.txt"))
    if serves is None and tree_serves.spec is not None:
        serves = tree_serves                 # a zip of a slim tree is that slim bundle again
    if serves and not set(serves.pythons) <= set(tree_serves.pythons):
        raise BadInput("--python {} matches Python {}, which {} does not serve (it serves {}); build from the "
                       "full tree.".format(serves.spec, ", ".join(pystr(p) for p in serves.pythons
                                                                   if p not in tree_serves.pythons),
                                           os.path.join(root, "hashes.txt"), describe_serves(tree_serves)))
    entries = zip_entries(root, cas, contact, serves, pinned)
    serves = serves or FULL
    date_time = zip_date_time(source_date_epoch())
    if output and (os.path.isdir(output) or output.endswith(("/", os.sep))):
        output, out_dir = None, os.path.abspath(output)         # -o FOLDER/: the default name there
    else:
        out_dir = os.path.dirname(os.path.abspath(output)) if output else os.path.join(root, "dist")
    tmp = None
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".trustfix-", suffix=".zip.tmp", dir=out_dir)
        os.close(fd)
        write_zip(tmp, entries, date_time)
        digest = sha256_file(tmp)
        final = os.path.abspath(output) if output else os.path.join(out_dir, "trustfix-{}.zip".format(digest[:12]))
        os.replace(tmp, final)
    except OSError as exc:
        raise BuildError("cannot write the zip in {} ({}).".format(out_dir, exc.strerror or exc)) from None
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    size = os.path.getsize(final)
    wheels_size = sum(len(data) for name, data in entries if name.startswith(ZIP_TOP + "/wheels/"))
    if as_json:
        print(json.dumps({"zip": final, "sha256": digest, "size": size, "wheels_size": wheels_size,
                          "serves": {"spec": serves.spec, "pythons": [pystr(p) for p in serves.pythons]},
                          "entries": [name for name, _ in entries],
                          "cas": [{k: v for k, v in ca.items() if k != "pem"} for ca in cas]}, indent=2))
        return EXIT_OK
    print("zip:     {}".format(final))
    print("SHA-256: {}".format(digest))
    print("size:    {:,} bytes ({}; {:.3f}x the {:,} bytes of its wheels)".format(
        size, human_size(size), size / wheels_size if wheels_size else 0.0, wheels_size))
    if serves.spec is not None:
        shipped = sum(1 for name, _ in entries if name.startswith(ZIP_TOP + "/wheels/"))
        print("serves:  {}; a slim bundle: {} of {} pins, {} wheels".format(
            describe_serves(serves), len(needed_pins(pinned, serves)), len(pinned), shipped))
    for ca in cas:
        print("CA:      {}".format(ca["subject"]))
        print("  SHA-256 fingerprint: {}".format(ca["sha256_fingerprint"]))
        print("  valid {} to {}; in the zip as {}/{}".format(ca["not_before"], ca["not_after"], ZIP_TOP, ca["name"]))
    if not cas:
        print("CA:      none (add the company root CA with --ca FILE.pem)")
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build.py", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Build the trustfix bundle: pin and verify the wheels (default command `pins`), "
                    "check that wheels/ and hashes.txt agree (`--check`), and write the zip for new "
                    "hires (`zip`).")
    p.add_argument("command", nargs="?", choices=("pins", "check", "zip"), default="pins",
                   help="pins (default): refresh wheels/ and hashes.txt from the index; "
                        "check: same as --check; zip: write the bundle zip")
    p.add_argument("--check", action="store_true",
                   help="verify that wheels/ and hashes.txt agree exactly; change nothing (exit 1 if not)")
    p.add_argument("--root", metavar="DIR", default=ROOT,
                   help="the project folder holding wheels/, hashes.txt, bootstrap.py (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    g = p.add_argument_group("pins options")
    g.add_argument("--index-url", metavar="URL", default=DEFAULT_INDEX_URL,
                   help="the simple index to pin from (PEP 691 JSON or PEP 503 HTML; default: %(default)s)")
    g.add_argument("--timeout", metavar="SECONDS", type=float, default=TIMEOUT,
                   help="give up on any single network operation after this long (default: %(default)s)")
    g.add_argument("--dry-run", action="store_true", help="resolve and show the pins; download and change nothing")
    z = p.add_argument_group("zip options")
    z.add_argument("--ca", metavar="PEM", action="append", default=[],
                   help="a company root CA certificate (PEM) to ship in ca/; repeat for several")
    z.add_argument("-o", "--output", metavar="FILE",
                   help="where to write the zip (default: dist/trustfix-<first 12 hex of its SHA-256>.zip)")
    z.add_argument("--contact", metavar="TEXT", default="the IT service desk",
                   help="who the new hire should ask, for README.txt (default: %(default)s)")
    z.add_argument("--python", metavar="SPEC",
                   help='a slim zip for the Pythons this PEP 440 specifier matches, e.g. ">=3.10", "==3.12.*", '
                        '">=3.8,<3.11": only the pins and wheels they need (default: every Python {} .. {})'
                        .format(pystr(PYTHONS[0]), pystr(PYTHONS[-1])))
    return p


def _terminate(signum, frame) -> None:
    """SIGTERM (a CI timeout, a fleet tool) cleans up exactly like Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    command = "check" if args.check else args.command
    if args.check and args.command not in ("pins", "check"):
        p.error("--check is a command of its own; drop `{}`".format(args.command))
    if command != "zip" and (args.ca or args.output or args.python is not None):
        p.error("--ca, -o/--output and --python belong to the zip command: python build.py zip --ca FILE.pem")
    if args.timeout <= 0:
        p.error("--timeout must be a positive number of seconds")
    root = os.path.abspath(args.root)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:                   # not the main thread: leave signals alone
        pass
    try:
        if not os.path.isdir(root):
            raise BadInput("--root {} is not a folder.".format(args.root))
        if command == "check":
            return cmd_check(root, args.json)
        if command == "zip":
            return cmd_zip(root, args.ca, args.output, args.contact, args.json, args.python)
        return cmd_pins(root, check_index_url(args.index_url), args.timeout, args.dry_run, args.json)
    except BuildError as exc:
        print("build.py: error: {}".format(exc), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("build.py: interrupted; wheels/ and hashes.txt are as before.", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:               # a full disk, a read-only folder: say which file, no traceback
        print("build.py: error: {}".format(exc), file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
