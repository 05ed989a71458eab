"""Helpers shared by the tests of bootstrap.py: bundle copies, the pins of hashes.txt and their wheels,
file-tree snapshots (tree_snapshot), the product's scripts loaded as modules.

Expectations are computed independently of bootstrap.py's own code: hashes.txt is read here, with
`packaging` (pip's and pytest's requirement and marker implementation), never with bootstrap's parser;
this is the tests' one reader of hashes.txt.
"""
import hashlib
import importlib.util
import re
import shutil
from collections import namedtuple
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tree_snapshot import tree  # noqa: F401  (the one snapshot; imported from here by the e2e tests)

ROOT = Path(__file__).resolve().parent.parent
HASHES = ROOT / "hashes.txt"


def load_module(path, name):
    """A script of the product (bootstrap.py, build.py) imported as a module under name."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    """Write bytes or text (UTF-8) to path, making its folders; returns the Path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# --- hashes.txt -----------------------------------------------------------------------------------

class Pin(namedtuple("Pin", "name version marker hashes line")):
    """One pin of a hashes.txt: name (canonical), version, marker ("" for none), hashes (sha256 hex digests)
    and line (its text as written; lines continued with a backslash joined by newlines)."""
    __slots__ = ()

    def applies(self, python):
        """Whether the marker holds for a Python (major, minor[, ...])."""
        return not self.marker or Marker(self.marker).evaluate({"python_version": "{}.{}".format(*python[:2])})

    def wheel(self, folder):
        """The file in folder whose SHA-256 this pin lists (the bytes decide, not the file name)."""
        prefix = "{}-{}-".format(re.sub(r"[-_.]+", "_", self.name), self.version).lower()
        found = [p for p in sorted(Path(folder).glob("*.whl"))
                 if p.name.lower().startswith(prefix) and sha256(p.read_bytes()) in self.hashes]
        assert found, "no wheel in {} matches {}=={}".format(folder, self.name, self.version)
        return found[0]


PIN_LINE = re.compile(r"^(?P<requirement>[^;#\\s][^;#\\]*?)\s*(?:;(?P<marker>[^#\\]*?))?"
                      r"(?P<hashes>(?:\s+--hash=\S+)+)\s*(?:#.*)?$")


def parse_pins(text):
    """Every pin of a hashes.txt's text, in file order, as pip reads a requirements file: comments, blank
    lines, backslash continuations. A line that is not a hash-pinned `name==version [; marker]` fails."""
    found, physical = [], []
    for raw in text.splitlines():
        if not physical and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        physical.append(raw)
        if raw.rstrip().endswith("\\"):
            continue
        logical = " ".join(line.rstrip()[:-1] if line.rstrip().endswith("\\") else line for line in physical)
        m = PIN_LINE.match(logical.strip())
        assert m, "not a pin: " + logical
        requirement = Requirement(m.group("requirement"))
        [specifier] = requirement.specifier
        hashes = re.findall(r"--hash=(\S+)", m.group("hashes"))
        assert specifier.operator == "==" and all(re.match(r"^sha256:[0-9a-f]{64}$", h) for h in hashes), logical
        found.append(Pin(canonicalize_name(requirement.name), specifier.version, (m.group("marker") or "").strip(),
                         [h[len("sha256:"):] for h in hashes], "\n".join(physical)))
        physical = []
    return found


def pins(path=HASHES):
    """Every pin of the hashes.txt at path (the committed one by default)."""
    return parse_pins(Path(path).read_text(encoding="utf-8-sig"))


def pinned(python, path=HASHES):
    """{name: Pin}: the pin of each project that a Python (major, minor) gets, in file order."""
    chosen = {}
    for pin in pins(path):
        if pin.applies(python):
            chosen.setdefault(pin.name, pin)
    return chosen


def expected_pins(version, path=HASHES):
    """{name: version} that hashes.txt pins for a Python (major, minor)."""
    return {name: pin.version for name, pin in pinned(version, path).items()}


def wheel_of(name, python, path=HASHES):
    """The wheel file (a Path in the wheels/ next to path) that hashes.txt pins for a project and a Python:
    wheel_of("pip", (3, 12)).name is e.g. "pip-26.3-py3-none-any.whl"."""
    return pinned(python, path)[name].wheel(Path(path).parent / "wheels")


def copy_bundle(dest, wheels=True, ca=()):
    """A copy of the product as the new hire receives it: bootstrap.py, hashes.txt, wheels/, ca/."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "bootstrap.py", dest / "bootstrap.py")
    shutil.copy2(ROOT / "hashes.txt", dest / "hashes.txt")
    if wheels:
        shutil.copytree(ROOT / "wheels", dest / "wheels")
    if ca:
        (dest / "ca").mkdir()
        for i, pem in enumerate(ca):
            shutil.copy2(pem, dest / "ca" / "corp-{}.pem".format(i))
    return dest


def changes(before, after):
    """What differs, one line per path (the assertion message of a 'nothing changed' check)."""
    lines = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            lines.append("{}: {} -> {}".format(path, before.get(path, "(absent)"), after.get(path, "(absent)")))
    return "\n".join(lines[:15] + (["... {} more".format(len(lines) - 15)] if len(lines) > 15 else []))


def installed_version(sb, python, name):
    """The version of a distribution in that interpreter, read from its dist-info (no pip needed)."""
    code = ("import sys,os,re\n"
            "for d in sys.path:\n"
            "  if os.path.isdir(d):\n"
            "    for n in os.listdir(d):\n"
            "      m=re.match(r'^{}-([^-]+)\\.dist-info$',n,re.I)\n"
            "      if m: print(m.group(1)); sys.exit(0)\n"
            "print('absent')\n").format(name)
    out = sb.run([str(python), "-c", code])
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def bootstrap(sb, python, bundle, *args, **kw):
    """Run the bundle's bootstrap.py with python in the sandbox sb, from the bundle's folder."""
    return sb.run([str(python), str(Path(bundle) / "bootstrap.py")] + [str(a) for a in args], cwd=str(bundle), **kw)


def out(result):
    return result.stdout + result.stderr


USER = (65534, 65534)          # nobody: the unprivileged user of machine-wide tests (conftest's user_home)


def as_user(sb, home, argv, **kw):
    """argv in the sandbox as the unprivileged USER, with that home, from it."""
    return sb.run(argv, user=USER, env_extra={"HOME": str(home), "USER": "nobody", "LOGNAME": "nobody"},
                  cwd=str(home), **kw)
