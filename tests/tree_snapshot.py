"""The one file-tree snapshot of the tests, for "nothing changed" and "put back exactly" checks.

tree(*paths) is {path: what} for each path and everything under it: "absent", "dir", "link:<target>" or a
file's SHA-256; modes=True appends each mode (" 644"), owners=True each owner's uid (" 0"). __pycache__
folders (and any folder named in skip) and .pyc files are left out: Python writes them as it likes.

Standard library only, Python 3.6+, and a script as well, so that the same code runs inside a sandbox run
(where an overlay exists only for that run):
    python tree_snapshot.py [--modes] [--owners] OUT|- PATH...      (JSON to the file OUT, or stdout)
"""
import hashlib
import json
import os
import stat
import sys

SCRIPT = os.path.abspath(__file__)


def _what(path, st, modes, owners):
    if stat.S_ISLNK(st.st_mode):
        return "link:" + os.readlink(path)
    if stat.S_ISDIR(st.st_mode):
        what = "dir"
    else:
        with open(path, "rb") as f:
            what = hashlib.sha256(f.read()).hexdigest()
    if modes:
        what += " {:o}".format(stat.S_IMODE(st.st_mode))
    if owners:
        what += " {}".format(st.st_uid)
    return what


def tree(*paths, modes=False, owners=False, skip=("__pycache__",)):
    out = {}
    for top in map(str, paths):
        if not os.path.lexists(top):
            out[top] = "absent"
            continue
        out[top] = _what(top, os.lstat(top), modes, owners)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in skip]
            for name in dirnames + [f for f in filenames if not f.endswith(".pyc")]:
                path = os.path.join(dirpath, name)
                out[path] = _what(path, os.lstat(path), modes, owners)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    flags = {a for a in args if a.startswith("--")}
    dest, paths = [a for a in args if not a.startswith("--")][0], [a for a in args if not a.startswith("--")][1:]
    text = json.dumps(tree(*paths, modes="--modes" in flags, owners="--owners" in flags), indent=0, sort_keys=True)
    if dest == "-":
        print(text)
    else:
        with open(dest, "w") as f:
            f.write(text)
