"""Helpers shared by the end-to-end tests of bootstrap.py: bundle copies, pins, file-tree snapshots (tree_snapshot).

Expectations are computed independently of bootstrap.py's own code: pins are read from hashes.txt with
`packaging` (pip's and pytest's marker implementation), not with bootstrap's parser.
"""
import hashlib
import os
import re
import shutil
from pathlib import Path

from packaging.markers import Marker

from tree_snapshot import tree  # noqa: F401  (the one snapshot; imported from here by the e2e tests)

ROOT = Path(__file__).resolve().parent.parent


def expected_pins(version):
    """{name: version} that hashes.txt pins for a Python (major, minor)."""
    out = {}
    for line in (ROOT / "hashes.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)\s*(?:;(.*?))?\s*--hash", line)
        assert m, line
        marker = (m.group(3) or "").strip()
        if not marker or Marker(marker).evaluate({"python_version": "{}.{}".format(*version)}):
            out.setdefault(m.group(1).lower(), m.group(2))
    return out


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


def openssl_v1_cert(tmp_path, name, signer=None):
    """An X.509 v1 certificate (no extensions at all) made by the openssl command: self-signed, or signed
    by signer (a (cert, key) path pair). cryptography can only make v3."""
    key, csr, crt = (tmp_path / (name + ext) for ext in (".key", ".csr", ".pem"))
    import subprocess

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


USER = (65534, 65534)          # nobody: the unprivileged user of machine-wide tests (conftest's user_home)


def as_user(sb, home, argv, **kw):
    """argv in the sandbox as the unprivileged USER, with that home, from it."""
    return sb.run(argv, user=USER, env_extra={"HOME": str(home), "USER": "nobody", "LOGNAME": "nobody"},
                  cwd=str(home), **kw)
