"""Unpack a trustfix zip (from `build.py zip`) into a folder, for the Ansible role. Standard library only.

usage: python unpack_bundle.py ZIP DEST [--only NAME,...]

The zip's single top folder (trustfix/) is stripped, so DEST gets bootstrap.py, hashes.txt, wheels/, ca/.
A file is written only when its bytes differ (temp file + rename); files under wheels/ and ca/ that the zip
no longer holds are removed. --only NAME,... unpacks just those entries (a name ending in / is a folder).
Prints one JSON line: {"changed": [...], "removed": [...]}.
"""
import json
import os
import sys
import zipfile


def main(argv):
    only = None
    if len(argv) == 4 and argv[2] == "--only":
        only = [n for n in argv[3].split(",") if n]
        argv = argv[:2]
    if len(argv) != 2:
        sys.exit("usage: unpack_bundle.py ZIP DEST [--only NAME,...]")
    archive, dest = argv
    with zipfile.ZipFile(archive) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        strip = len(tops) == 1 and all("/" in n for n in names)
        entries = {}
        for name in names:
            rel = name.split("/", 1)[1] if strip else name
            parts = rel.split("/")
            if rel.startswith("/") or "\\" in rel or ".." in parts or ":" in parts[0]:
                sys.exit("unpack_bundle.py: refusing the entry {!r} of {}".format(name, archive))
            if only is None or any(rel == o or (o.endswith("/") and rel.startswith(o)) for o in only):
                entries[rel] = name
        if "bootstrap.py" not in entries:
            sys.exit("unpack_bundle.py: {} holds no bootstrap.py: not a trustfix bundle".format(archive))
        changed, removed = [], []
        for rel, name in sorted(entries.items()):
            data = z.read(name)
            target = os.path.join(dest, *rel.split("/"))
            try:
                with open(target, "rb") as f:
                    if f.read() == data:
                        continue
            except OSError:
                pass
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = target + ".tmp-trustfix"
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            changed.append(rel)
    if only is None:
        for folder in ("wheels", "ca"):
            top = os.path.join(dest, folder)
            if os.path.isdir(top):
                for entry in sorted(os.listdir(top)):
                    rel = folder + "/" + entry
                    if rel not in entries and os.path.isfile(os.path.join(top, entry)):
                        os.remove(os.path.join(top, entry))
                        removed.append(rel)
    print(json.dumps({"changed": changed, "removed": removed}))


if __name__ == "__main__":
    main(sys.argv[1:])
