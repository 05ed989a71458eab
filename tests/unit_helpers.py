"""Helpers of the in-process tests of bootstrap.py: the module itself, what a laptop test scrubs from the
environment, pip's reading of an INI file, Survey/Plan builders and a stand-in for bootstrap.run.

Fixtures (laptop, ui, corp, https_server) are in conftest.py, certificates in certificates.py, the pins of
hashes.txt and their wheels in bundle_helpers.py.
"""
import configparser
import subprocess
import sys

from bundle_helpers import ROOT, load_module, pinned
from certificates import der

bootstrap = load_module(ROOT / "bootstrap.py", "trustfix_bootstrap")

DATA = ROOT / "tests" / "data"
RECORDED = DATA / "recorded"
CLOSED_INDEX = "https://127.0.0.1:9/simple"     # the discard port: refused at once, never the network
# Variables of this machine that would steer pip, TLS or bootstrap.py: a laptop test starts without them.
SCRUBBED = ("PIP_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "XDG_", "TRUSTFIX_", "HTTPS_PROXY",
            "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
            "APPDATA", "LOCALAPPDATA", "ProgramData", "PYTHONPATH", "PYTHONUTF8")


def read_ini(text):
    """{section: {key: value}} as pip reads a configuration file."""
    parser = configparser.RawConfigParser()                  # what pip uses
    parser.read_string(text)
    return {s: dict(parser.items(s)) for s in parser.sections()}


# --- Survey and Plan --------------------------------------------------------------------------------

def live_pins(python=(3, 12)):
    """{name: pin} hashes.txt gives a Python, as bootstrap's plans hold them (read by the tests' own reader)."""
    return {name: dict(pin._asdict()) for name, pin in pinned(python).items()}


def survey(**kw):
    """A Survey of a laptop's Python: every field, the given ones replaced."""
    fields = dict(version="3.12.1", executable=sys.executable, prefix=sys.prefix, venv=False, openssl="OpenSSL 3",
                  os="Linux", pip=None, truststore=None, dists={}, externally_managed=None,
                  purelib="/usr/lib/python3/site", purelib_writable=True, user_site_enabled=True,
                  index_url="https://pypi.org/simple", proxy=None, config_sources=[], certifi_files=[])
    fields.update(kw)
    return bootstrap.Survey(**fields)


def plan_of(**fields):
    """A Plan with the fields a test sets (the rest as make_plan starts them)."""
    return bootstrap.Plan(fields.pop("pins", {}), fields.pop("mode", "online"), **fields)


def given(*certs):
    """Certificates as a plan holds the CAs given with --ca-file: [(DER, parse_cert's info)]."""
    return [(der(c), bootstrap.parse_cert(der(c))) for c in certs]


# --- commands ---------------------------------------------------------------------------------------

class Recorder:
    """Stands in for bootstrap.run: records each command (and its env), answers with a canned result."""

    def __init__(self, stdout="", returncode=0, on_call=None):
        self.calls, self.stdout, self.returncode, self.on_call = [], stdout, returncode, on_call

    def __call__(self, cmd, env=None, timeout=600, cwd=None):
        self.calls.append({"cmd": list(cmd), "env": env})
        if self.on_call:
            self.on_call(list(cmd))
        return subprocess.CompletedProcess(cmd, self.returncode, stdout=self.stdout)
