"""deploy/report.schema.json: valid itself, able to fail, and followed by real --json documents.

The real runs here change nothing: a usage error, --help / --version, doctor and undo with nothing to undo,
--dry-run, and failures that stop before the first change, each in a scrubbed environment with an empty
HOME, no pip configuration (PIP_CONFIG_FILE=/dev/null) and an index on a closed loopback port.
"""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import report_schema
import testbed
from bundle_helpers import ROOT
from report_schema import ReportSchemaError, validate_report
from unit_helpers import CLOSED_INDEX

BOOTSTRAP = ROOT / "bootstrap.py"


# --- the schema itself ------------------------------------------------------------------------------

def test_the_schema_is_a_valid_draft_2020_12_schema():
    schema = report_schema.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


CONDITIONS = ("allOf", "anyOf", "oneOf", "if", "then", "else", "not", "contains")   # narrow, never define


def _property_maps(node, where="$"):
    """Every "properties" map that defines keys (not the ones in conditions, which narrow them)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CONDITIONS:
                continue
            if key == "properties" and isinstance(value, dict):
                yield where, value
            yield from _property_maps(value, where + "/" + key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _property_maps(value, "{}/{}".format(where, i))


def test_every_property_is_described_and_every_object_is_closed():
    """The schema is the documentation for fleet tools: each key says what it means; no shape is open."""
    schema = report_schema.schema()
    undescribed, open_objects = [], []
    for where, props in _property_maps(schema):
        for name, sub in props.items():
            if not (isinstance(sub, dict) and sub.get("description")):
                undescribed.append(where + "/" + name)
    for where, props in _property_maps(schema):
        owner = schema if where == "$" else None
        if owner is None:
            node = schema
            for part in where.split("/")[1:]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            owner = node
        if owner.get("additionalProperties") is not False:
            open_objects.append(where)
    assert undescribed == [] and open_objects == []


def test_the_schema_version_is_the_one_bootstrap_prints():
    text = BOOTSTRAP.read_text(encoding="utf-8")
    assert "SCHEMA_VERSION = {}".format(report_schema.schema()["properties"]["schema_version"]["const"]) in text


# --- the validator can fail ---------------------------------------------------------------------------

USAGE_ERROR = {"changed": False, "command": None, "error": "argument --scope: invalid choice: 'machine'",
               "exit_code": 2, "files_changed": [], "packages_changed": [], "schema_version": 1, "steps": [],
               "trustfix": "0.1.0", "warnings": []}

UNDO = {"changed": True, "command": "undo", "error": None, "exit_code": 0, "files_changed": ["/h/.config/pip/pip.conf"],
        "log": None, "packages_changed": ["pip in /venv"], "schema_version": 1, "seconds": 1.5,
        "steps": [{"status": "changed", "step": "undo", "summary": "restored /h/.config/pip/pip.conf"},
                  {"status": "ok", "step": "undo", "summary": "every change bootstrap.py made is undone"}],
        "trustfix": "0.1.0", "warnings": []}

CERT = {"subject": "CN=Corp Root CA, O=Corp", "issuer": "CN=Corp Root CA, O=Corp", "self_signed": True,
        "not_before": "2024-01-01T00:00:00Z", "not_after": "2034-01-01T00:00:00Z", "is_ca": True, "version": 3,
        "sha256": "ab" * 32, "source": "/tmp/corp.pem"}

INSTALL = {
    "changed": True, "command": "install", "error": None, "exit_code": 0, "log": None, "mode": "online",
    "files_changed": ["/h/.local/share/trustfix/ca-bundle.pem", "/h/.config/pip/pip.conf"],
    "packages_changed": ["pip 26.3 in /venv"], "schema_version": 1, "seconds": 4.2, "trustfix": "0.1.0",
    "warnings": [],
    "steps": [{"status": "ok", "step": "survey", "summary": "Python 3.12.3, ..."},
              {"status": "ok", "step": "plan", "summary": "install pip==26.3 into /venv"},
              {"status": "changed", "step": "install", "summary": "pip 26.3 into /venv (1.0 s)"},
              {"status": "changed", "step": "trust", "summary": "wrote /h/.local/share/trustfix/ca-bundle.pem"},
              {"status": "ok", "step": "verify", "summary": "a fresh pip process reached ..."},
              {"status": "changed", "step": "python", "summary": "Python 3.9.2 /usr/bin/python3.9: ..."}],
    "survey": {"python": {"version": "3.12.3", "executable": "/venv/bin/python", "prefix": "/venv", "venv": True},
               "openssl": "OpenSSL 3.0.13 30 Jan 2024", "os": "Linux", "pip": "24.0", "truststore": None,
               "externally_managed": None, "purelib": "/venv/lib/python3.12/site-packages",
               "purelib_writable": True, "user_site_enabled": False, "index_url": "https://pypi.org/simple",
               "proxy": "http://***@proxy:3128",
               "certifi_files": [["/venv/lib/python3.12/site-packages/pip/_vendor/certifi/cacert.pem", "cd" * 32]]},
    "plan": {"install": [{"name": "pip", "version": "26.3", "marker": "", "line": "pip==26.3 --hash=sha256:" + "ef" * 32,
                          "hashes": ["ef" * 32], "number": 3}],
             "skip_install": None, "flags": [], "where": "the virtual environment /venv", "source": "wheels",
             "strategy": "bundle", "extras": [CERT], "trust_reason": "...", "mode": "online",
             "probe": {"os": "ok", "certifi": "untrusted: unable to get local issuer certificate"},
             "bundle_path": "/h/.local/share/trustfix/ca-bundle.pem", "config_path": "/h/.config/pip/pip.conf",
             "notes": [], "pip_after": "26.3", "issuer": dict(CERT, self_signed=False, is_ca=False)},
    "pythons": [{"python": "/venv/bin/python", "version": "3.12.3", "status": "done",
                 "reason": "the Python that ran bootstrap.py", "exit_code": None},
                {"python": "/usr/bin/python3.9", "version": "3.9.2", "status": "changed",
                 "reason": "pip 26.3 in /usr/lib/python3.9", "exit_code": 0},
                {"python": "/usr/bin/python3.13", "version": "3.13.1", "status": "skipped",
                 "reason": "the OS manages it (PEP 668)", "exit_code": None}],
}

DOCTOR = {
    "changed": False, "command": "doctor", "error": None, "exit_code": 1, "files_changed": [], "log": None,
    "packages_changed": [], "schema_version": 1, "seconds": 0.4, "trustfix": "0.1.0", "warnings": [],
    "steps": [{"status": "ok", "step": "python", "summary": "Python 3.12.3"},
              {"status": "problem", "step": "tls", "summary": "pypi.org: certifi untrusted, ..."}],
    "doctor": {"checks": [
        {"name": "python", "status": "ok", "text": "Python 3.12.3"},
        {"name": "tls", "status": "problem", "text": "pypi.org: ...", "results": {
            "certifi": {"status": "untrusted", "detail": "unable to get local issuer certificate"},
            "os": {"status": "ok", "detail": "HTTP 200", "date": "Tue, 01 Dec 2026 10:00:00 GMT"},
            "pip": {"status": "untrusted", "detail": "unable to get local issuer certificate"}}},
        {"name": "pythons", "status": "warning", "text": "Python 3.9.2 /usr/bin/python3.9: ...",
         "python": "/usr/bin/python3.9", "version": "3.9.2", "pip": "20.3.4", "ensurepip": None, "this": False,
         "reaches": False, "new_venvs_reach": None},
        {"name": "pythons", "status": "skipped", "text": "found but does not run: /usr/bin/python3.4",
         "broken": ["/usr/bin/python3.4"]}],
        "verdict": {"ok": False, "cause": "pip 24.0 is too old ...", "fix": "python bootstrap.py"}},
}


@pytest.mark.parametrize("doc", [USAGE_ERROR, UNDO, INSTALL, DOCTOR], ids=["usage", "undo", "install", "doctor"])
def test_the_documents_of_every_shape_are_valid(doc):
    validate_report(doc)
    validate_report(json.dumps(doc))                           # text too


def mutated(doc, path, value=None, delete=False):
    doc = copy.deepcopy(doc)
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize("doc,path,value,delete,words", [
    # a required key missing
    (USAGE_ERROR, ["schema_version"], None, True, ["$:", "'schema_version' is a required property"]),
    (UNDO, ["changed"], None, True, ["'changed' is a required property"]),
    (INSTALL, ["plan", "strategy"], None, True, ["$.plan:", "'strategy' is a required property"]),
    (INSTALL, ["survey"], None, True, ["'survey' is a required property"]),
    (DOCTOR, ["doctor", "verdict", "fix"], None, True, ["$.doctor.verdict:", "'fix' is a required property"]),
    (UNDO, ["steps", 0, "summary"], None, True, ["$.steps[0]:", "'summary' is a required property"]),
    # a wrong type
    (UNDO, ["changed"], "yes", False, ["$.changed:", "'yes' is not of type 'boolean'"]),
    (UNDO, ["files_changed"], "/h/.config/pip/pip.conf", False, ["$.files_changed:", "is not of type 'array'"]),
    (INSTALL, ["survey", "python", "venv"], 1, False, ["$.survey.python.venv:", "1 is not of type 'boolean'"]),
    (INSTALL, ["seconds"], "4.2", False, ["$.seconds:", "is not of type 'number'"]),
    (DOCTOR, ["doctor", "checks", 2, "reaches"], "no", False, ["$.doctor.checks[2].reaches:", "'no' is not of type"]),
    # an unknown key, at the top and inside
    (UNDO, ["filez_changed"], [], False, ["$:", "'filez_changed' was unexpected"]),
    (INSTALL, ["plan", "stratgy"], "none", False, ["$.plan:", "'stratgy' was unexpected"]),
    (UNDO, ["steps", 0, "data"], {}, False, ["$.steps[0]:", "'data' was unexpected"]),
    (DOCTOR, ["doctor", "checks", 1, "results", "curl"], {"status": "ok", "detail": "x"}, False,
     ["$.doctor.checks[1].results:", "'curl' was unexpected"]),
    # a value outside its fixed set
    (UNDO, ["steps", 0, "status"], "done", False, ["$.steps[0].status:", "'done' is not one of"]),
    (UNDO, ["exit_code"], 4, False, ["$.exit_code:", "4 is not one of"]),
    (INSTALL, ["mode"], "air-gapped", False, ["$.mode:", "'air-gapped' is not one of"]),
    (INSTALL, ["pythons", 1, "status"], "installed", False, ["$.pythons[1].status:", "is not one of"]),
    (DOCTOR, ["doctor", "checks", 1, "results", "os", "status"], "fine", False, ["is not one of"]),
    (UNDO, ["schema_version"], 2, False, ["$.schema_version:", "1 was expected"]),
    (INSTALL, ["steps", 0, "step"], "undo", False, ["$.steps[0].step:", "'undo' is not one of"]),
    # the keys that belong to one command only, and the rules between keys
    (UNDO, ["plan"], INSTALL["plan"], False, ["$.plan:", "the key 'plan' is not allowed here (never in undo's"]),
    (USAGE_ERROR, ["log"], None, False, ["$.log:", "the key 'log' is not allowed here (never in a usage error's"]),
    (DOCTOR, ["doctor", "checks", 0, "results"], {}, False, ["$.doctor.checks[0].results:", "not allowed"]),
    (UNDO, ["changed"], False, False, ["$.files_changed:", "is expected to be empty"]),
    (USAGE_ERROR, ["exit_code"], 0, False, ["$.exit_code:"]),
    (DOCTOR, ["exit_code"], 0, False, ["$.exit_code:", "1 was expected"]),
    (INSTALL, ["plan", "extras", 0, "sha256"], "AB:CD", False, ["$.plan.extras[0].sha256:", "does not match"]),
], ids=lambda v: None)
def test_a_document_off_the_schema_fails_naming_the_path(doc, path, value, delete, words):
    bad = mutated(doc, path, value, delete)
    with pytest.raises(ReportSchemaError) as caught:
        validate_report(bad)
    for word in words:
        assert word in str(caught.value), str(caught.value)


@pytest.mark.parametrize("text", ["", "trustfix 0.1.0: fixing TLS trust\n{}", json.dumps(USAGE_ERROR) + "\n{}",
                                  "[]", "null"])
def test_stdout_that_is_not_one_document_of_the_schema_fails(text):
    with pytest.raises(ReportSchemaError):
        validate_report(text)


# --- the hooks: every run that asks for JSON is validated ---------------------------------------------

@pytest.mark.parametrize("argv,env,expected", [
    (["/py", "/b/bootstrap.py", "--json"], {}, True),
    (["/py", Path("/b/bootstrap.py"), "doctor", "--json"], {}, True),
    (["/py", "/b/bootstrap.py", "--dry-run"], {"TRUSTFIX_JSON": "1"}, True),
    (["/py", "/b/bootstrap.py", "--dry-run"], {"TRUSTFIX_JSON": "si"}, False),    # a usage error in text
    (["/py", "/b/bootstrap.py", "--offline"], {}, False),
    (["/py", "/b/build.py", "zip", "--json"], {}, False),
    (["/py", "-m", "pip", "install", "--json"], {}, False),
])
def test_asks_for_json(argv, env, expected):
    assert report_schema.asks_for_json(argv, env) is expected


def test_sandbox_run_validates_the_json_of_every_bootstrap_run(tmp_path, monkeypatch):
    """Whatever the exit code: a failure prints its JSON document too."""
    printed = {}

    def fake_run(args, **kw):
        return subprocess.CompletedProcess(args, printed["code"], printed["stdout"], "")
    monkeypatch.setattr(testbed.subprocess, "run", fake_run)
    sb = testbed.Sandbox(tmp_path / "root", tmp_path / "store", tmp_path / "empty")
    argv = [sys.executable, tmp_path / "bundle" / "bootstrap.py", "--json"]
    printed.update(code=2, stdout=json.dumps(USAGE_ERROR))
    assert sb.run(argv).returncode == 2
    printed.update(code=1, stdout=json.dumps(dict(USAGE_ERROR, exit_code=1, typo=True)))
    with pytest.raises(ReportSchemaError, match="'typo' was unexpected"):
        sb.run(argv)
    printed.update(code=0, stdout="Done. Nothing needed to change.\n")
    with pytest.raises(ReportSchemaError, match="no single JSON document"):
        sb.run(argv)
    assert sb.run(argv[:2] + ["--offline"]).returncode == 0          # text output: not a document


# --- real documents --------------------------------------------------------------------------------

@pytest.fixture
def run_json(tmp_path):
    """bootstrap.py in a laptop's environment: empty HOME, no pip config, state and temp files in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "tmp").mkdir()

    def run(*args, **env):
        full = testbed.scrubbed_env(home=home, extra=dict({
            "PIP_CONFIG_FILE": os.devnull, "TRUSTFIX_STATE_DIR": str(tmp_path / "state"),
            "TMPDIR": str(tmp_path / "tmp"), "TRUSTFIX_TIMEOUT": "3"}, **env))
        proc = subprocess.run([sys.executable, str(BOOTSTRAP)] + list(args), env=full, cwd=str(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        doc = validate_report(proc.stdout, "bootstrap.py " + " ".join(args))
        assert doc["exit_code"] == proc.returncode, proc.stdout
        assert os.listdir(str(home)) == []                    # nothing written for this user
        return doc
    return run


@pytest.mark.parametrize("args,env", [(["--json", "--scope", "machine"], {}), (["--json", "repair"], {}),
                                      (["--dry-run"], {"TRUSTFIX_JSON": "1", "TRUSTFIX_TIMEOUT": "soon"}),
                                      (["--json", "--offline", "--index-url", CLOSED_INDEX], {})],
                         ids=["bad choice", "bad command", "bad variable", "exclusive options"])
def test_a_real_usage_error_follows_the_schema(run_json, args, env):
    doc = run_json(*args, **env)
    assert doc["exit_code"] == 2 and doc["command"] is None and doc["error"]


def test_a_real_doctor_report_follows_the_schema(run_json):
    doc = run_json("doctor", "--json", "--index-url", CLOSED_INDEX)
    assert doc["command"] == "doctor" and doc["exit_code"] == 1 and doc["doctor"]["verdict"]["ok"] is False
    assert any(c["name"] == "tls" and c["results"]["os"]["status"] == "refused" for c in doc["doctor"]["checks"])


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_real_help_and_version_follow_the_schema(run_json, flag):
    assert run_json("--json", flag)["command"] == flag[2:]


def test_a_real_undo_with_nothing_to_undo_follows_the_schema(run_json):
    doc = run_json("undo", "--json")
    assert doc["exit_code"] == 0 and doc["changed"] is False


def test_a_real_dry_run_follows_the_schema(run_json):
    doc = run_json("--dry-run", "--offline", "--json")
    assert doc["exit_code"] == 0 and doc["mode"] == "offline" and doc["plan"]["probe"] == {}


def test_real_failures_follow_the_schema(run_json, tmp_path):
    """Exit 2 (bad input) and 1 (the index cannot be reached), both before the first change, with a log."""
    missing = str(tmp_path / "corp-root.pem")
    bad = run_json("--offline", "--json", "--ca-file", missing)
    unreachable = run_json("--json", "--index-url", CLOSED_INDEX)
    assert (bad["exit_code"], unreachable["exit_code"]) == (2, 1)
    for doc in (bad, unreachable):
        assert doc["error"] and doc["log"] and doc["steps"][-1]["step"] == "error" and doc["changed"] is False
        assert doc["log"].startswith(str(tmp_path / "tmp"))
