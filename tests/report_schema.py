"""Every --json document bootstrap.py prints must follow deploy/report.schema.json (fleet tools build on it).

validate_report(text_or_doc) raises ReportSchemaError naming the JSON path and the schema's complaint.
The tests call it by mechanism: testbed.Sandbox.run and test_bootstrap_unit.cli() validate the stdout of
every bootstrap.py run that asks for JSON (--json or TRUSTFIX_JSON), whatever its exit code.
"""
import json
import os
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "deploy" / "report.schema.json"
_VALIDATOR = None


class ReportSchemaError(AssertionError):
    """A --json document that does not follow deploy/report.schema.json (or is not one JSON document)."""


def schema():
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        loaded = schema()
        jsonschema.Draft202012Validator.check_schema(loaded)
        _VALIDATOR = jsonschema.Draft202012Validator(loaded)
    return _VALIDATOR


def _path(error):
    out = "$"
    for part in error.absolute_path:
        out += "[{}]".format(part) if isinstance(part, int) else "." + str(part)
    return out


def _leaves(error):
    """The innermost errors of an anyOf/oneOf/if-then, where the actual complaint is."""
    if not error.context:
        return [error]
    out = []
    for sub in error.context:
        out += _leaves(sub)
    return out


def _message(error):
    if error.validator == "not" and error.validator_value == {}:          # a key this kind of document lacks
        return "the key {!r} is not allowed here ({})".format(
            error.absolute_path[-1] if error.absolute_path else "?", error.schema.get("description", ""))
    return error.message[:300]


def describe_errors(errors, limit=10):
    lines = []
    for error in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))[:limit]:
        lines.append("at {}: {} (schema: {})".format(
            _path(error), _message(error), "/".join(map(str, error.absolute_schema_path))))
        for leaf in _leaves(error)[:4] if error.context else []:
            lines.append("    at {}: {}".format(_path(leaf), _message(leaf)[:200]))
    if len(errors) > limit:
        lines.append("... and {} more".format(len(errors) - limit))
    return "\n".join(lines)


def validate_report(text_or_doc, what="bootstrap.py --json"):
    """The document (a dict), after checking it against the schema; text must be exactly one JSON document."""
    if isinstance(text_or_doc, (str, bytes)):
        text = text_or_doc.decode("utf-8") if isinstance(text_or_doc, bytes) else text_or_doc
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ReportSchemaError("{} printed no single JSON document on stdout ({}); stdout was:\n{}".format(
                what, e, text[:2000] or "(empty)"))
    else:
        doc = text_or_doc
    errors = list(validator().iter_errors(doc))
    if errors:
        raise ReportSchemaError("{} printed a document that does not follow {}:\n{}\ndocument:\n{}".format(
            what, SCHEMA_PATH.relative_to(ROOT), describe_errors(errors),
            json.dumps(doc, indent=1, sort_keys=True, default=str)[:4000]))
    return doc


_YES = ("1", "true", "yes", "on")


def asks_for_json(argv, env=None):
    """Whether argv runs a bootstrap.py (directly or through a wrapper such as sh -c) that prints JSON:
    --json on the command line, or TRUSTFIX_JSON set to yes in env (as bootstrap.py reads it)."""
    args = [str(a) for a in argv]
    if not any(os.path.basename(a) == "bootstrap.py" for a in args):
        return False
    return "--json" in args or (env or {}).get("TRUSTFIX_JSON", "").strip().lower() in _YES


def check_run(argv, env, returncode, stdout, stderr=""):
    """For a finished process: validate its stdout if it was a bootstrap.py run that asked for JSON."""
    if not asks_for_json(argv, env):
        return None
    what = "{} (exit code {})".format(" ".join(str(a) for a in argv)[-400:], returncode)
    try:
        return validate_report(stdout, what)
    except ReportSchemaError as e:
        raise ReportSchemaError("{}\nstderr:\n{}".format(e, (stderr or "")[-2000:]))
