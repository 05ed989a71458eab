"""The toolbelt bed (issue 17): git, npm, uv, requests and urllib through the intercepting proxy.

One loopback HTTPS server (a certificate from the bed's public root) serves, as static files, a git
repository over git's "dumb" HTTP protocol under github.com and a one-package npm registry under
registry.npmjs.org; a proxy of the bed routes both hosts there (TESTBED_EXTRA_ROUTES, see proxy_addon.py)
and pypi.org to the index, and re-signs everything with the corporate root.

Every tool runs in the laptop sandbox (Sandbox.run: scrubbed environment, empty HOME, the sandbox's OS
store) with this machine's own system-wide tool configuration masked too (/etc/gitconfig, /usr/etc/npmrc:
the latter sets cafile to the OS bundle here, which no laptop has). What each tool reads in the sandbox:

- git: ~/.gitconfig (what `git config --global` writes) and ~/.config/git/config; system /etc/gitconfig
  (masked). Trust: the OS store (/etc/ssl/certs/ca-certificates.crt, libcurl-gnutls), or http.sslCAInfo
  (replaces it).
- npm: ~/.npmrc (userconfig; `cafile=` replaces Node's bundled Mozilla roots), ./.npmrc of the project,
  $PREFIX/etc/npmrc = /usr/etc/npmrc (globalconfig, masked). Proxy: HTTPS_PROXY/https_proxy are honoured
  (npm_config_https_proxy is not needed). Node's own NODE_EXTRA_CA_CERTS is scrubbed.
- uv: ~/.config/uv/uv.toml (user), /etc/uv/uv.toml (system, absent); caches in ~/.cache/uv. Trust: its
  bundled roots, or the OS store with --system-certs / UV_SYSTEM_CERTS=1 (older name --native-tls /
  UV_NATIVE_TLS=1), or SSL_CERT_FILE (replaces).
- requests: no file; REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (replace certifi), else certifi's bundle.
- urllib.request: no file; the default context verifies against OpenSSL's default paths (the OS store).

Usage (fixtures as in tests/test_toolbelt_bed.py):

    bed = toolbelt.ToolBed.start(cas, index, bed_dir, make_proxy)   # session-scoped; bed.stop() at the end
    sb = sandbox(corp_in_os_store=True, proxy=bed.proxy)
    result = toolbelt.git_clone(sb, tmp_path / "hello", "-c", "http.sslCAInfo={}".format(bed.bundle))
    assert result.returncode == 0, toolbelt.out(result)
"""
import base64
import contextlib
import hashlib
import io
import json
import os
import ssl
import subprocess
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import scrubbed_env

DATA = Path(__file__).resolve().parent.parent / "data" / "toolbelt"
WHEELS = DATA / "wheels"
REQUESTS_PINS = DATA / "requests-wheels.txt"
GIT_HOST, NPM_HOST = "github.com", "registry.npmjs.org"
REPO_URL = "https://{}/corp/hello.git".format(GIT_HOST)
NPM_PKG, NPM_VERSION = "corp-hello", "1.0.0"
INDEX_URL = "https://pypi.org/simple"
# this machine's system-wide tool settings, hidden in the sandbox as a laptop has none
MASKED = ("/etc/gitconfig", "/usr/etc/npmrc", "/etc/npmrc")
MASK = 'e="$1"; shift; for f in {}; do if [ -e "$f" ]; then mount --bind "$e" "$f"; fi; done; exec "$@"'.format(
    " ".join(MASKED))


def out(result):
    return result.stdout + result.stderr


# --- the static HTTPS server: one folder per host -----------------------------------------------------

class _ByHost(SimpleHTTPRequestHandler):
    """Serves <root>/<Host>/<path>: github.com and registry.npmjs.org each get their own tree; a folder
    holding index.json is that file (an npm package document lives at /<name>, its tarballs below)."""

    def translate_path(self, path):
        host = (self.headers.get("Host") or "").split(":")[0]
        found = os.path.join(self.directory, host, super().translate_path(path)[len(self.directory):].lstrip("/"))
        document = os.path.join(found, "index.json")
        return document if os.path.isfile(document) else found

    def log_message(self, *args):
        pass


class StaticServer:
    """A threaded HTTPS static-file server on 127.0.0.1 (cert, key: PEM files); stop() ends it."""

    def __init__(self, root, cert, key):
        self.root = Path(root)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_ByHost, directory=str(self.root)))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


# --- what it serves ----------------------------------------------------------------------------------

def _git(*args, cwd=None):
    env = scrubbed_env(home=cwd, extra={"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Corp", "GIT_AUTHOR_EMAIL":
                                        "dev@corp.example", "GIT_COMMITTER_NAME": "Corp",
                                        "GIT_COMMITTER_EMAIL": "dev@corp.example"})
    subprocess.run(["git"] + list(args), cwd=str(cwd), env=env, check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)


def build_git_repo(root, work):
    """corp/hello.git under root/github.com, a bare repository ready for the dumb HTTP protocol."""
    work.mkdir(parents=True)
    (work / "README.md").write_text("hello from the corporate git server\n")
    _git("init", "-q", "-b", "main", ".", cwd=work)
    _git("add", "README.md", cwd=work)
    _git("commit", "-q", "-m", "hello", cwd=work)
    bare = root / GIT_HOST / "corp" / "hello.git"
    bare.parent.mkdir(parents=True)
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=work)
    _git("update-server-info", cwd=bare)      # info/refs and objects/info/packs: what a dumb client reads
    return bare


def build_npm_package(root, name=NPM_PKG, version=NPM_VERSION):
    """The package document and tarball of one npm package under root/registry.npmjs.org."""
    folder = root / NPM_HOST / name
    (folder / "-").mkdir(parents=True)
    files = {"package/package.json": json.dumps({"name": name, "version": version, "main": "index.js"}),
             "package/index.js": "module.exports = 'hello from the corporate registry';\n"}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(text.encode()), 499162500, 0o644
            tar.addfile(info, io.BytesIO(text.encode()))
    tgz = folder / "-" / "{}-{}.tgz".format(name, version)
    tgz.write_bytes(raw.getvalue())
    dist = {"tarball": "https://{}/{}/-/{}".format(NPM_HOST, name, tgz.name),
            "shasum": hashlib.sha1(raw.getvalue()).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(raw.getvalue()).digest()).decode()}
    when = "2024-01-01T00:00:00.000Z"
    doc = {"name": name, "dist-tags": {"latest": version}, "time": {"created": when, "modified": when, version: when},
           "versions": {version: {"name": name, "version": version, "main": "index.js", "dist": dist}}}
    (folder / "index.json").write_text(json.dumps(doc))
    return doc


def certifi_bundle(path, *pems):
    """certifi's roots (read from the pinned certifi wheel) + pems: the "full bundle" a replacing setting needs."""
    wheel = next(WHEELS.glob("certifi-*.whl"))
    with zipfile.ZipFile(str(wheel)) as z:
        roots = z.read("certifi/cacert.pem")
    Path(path).write_bytes(roots.rstrip(b"\n") + b"\n" + b"".join(Path(p).read_bytes().strip() + b"\n" for p in pems))
    return Path(path)


@contextlib.contextmanager
def _environ(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class ToolBed:
    """server (StaticServer), proxy (a testbed.Proxy routing github.com and registry.npmjs.org to the server,
    pypi.org to the index), bundle (certifi's roots + the corporate root: the "after" of a replacing
    setting), npm_doc (the package document served for corp-hello)."""

    def __init__(self, server, proxy, bundle, npm_doc):
        self.server, self.proxy, self.bundle, self.npm_doc = server, proxy, bundle, npm_doc

    @classmethod
    def start(cls, cas, index, bed_dir, make_proxy):
        folder = Path(bed_dir) / "toolbelt"
        root = folder / "www"
        build_git_repo(root, folder / "hello-work")
        npm_doc = build_npm_package(root)
        leaf = cas.public.issue_cert(GIT_HOST, NPM_HOST, "127.0.0.1")
        cert, key = folder / "cert.pem", folder / "key.pem"
        cert.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        server = StaticServer(root, cert, key)
        routes = ",".join("{}=127.0.0.1:{}".format(h, server.port) for h in (GIT_HOST, NPM_HOST))
        with _environ(TESTBED_EXTRA_ROUTES=routes):     # the proxy's environment is os.environ's copy
            proxy = make_proxy(index)
        return cls(server, proxy, certifi_bundle(folder / "certifi-and-corp.pem", cas.corp_pem), npm_doc)

    def stop(self):
        self.server.stop()


# --- the tools, run in the sandbox ---------------------------------------------------------------------

def run(sb, argv, env_extra=None, cwd=None, timeout=120):
    """argv in the sandbox sb with this machine's /etc/gitconfig and /usr/etc/npmrc masked."""
    return sb.run(["/bin/sh", "-c", MASK, "sh", str(sb.empty)] + [str(a) for a in argv], env_extra=env_extra,
                  cwd=cwd, timeout=timeout)


def git_clone(sb, dest, *git_args, env_extra=None):
    """`git [git_args] clone https://github.com/corp/hello.git dest`, e.g. git_args ("-c", "http.sslCAInfo=…")."""
    return run(sb, ["git"] + list(git_args) + ["clone", REPO_URL, str(dest)], env_extra=env_extra)


def npm(sb, *args, env_extra=None, cwd=None):
    """`npm args…` with an empty cache in the sandbox's HOME, no audit, no fund, no update check, and no
    retries (npm retries a failed fetch with back-off for over a minute; trust is not involved)."""
    env = {"npm_config_cache": str(sb.home / ".npm"), "npm_config_update_notifier": "false",
           "npm_config_audit": "false", "npm_config_fund": "false", "npm_config_fetch_retries": "0"}
    env.update(env_extra or {})
    return run(sb, ["npm"] + list(args), env_extra=env, cwd=cwd)


def uv_bin():
    import uv
    return uv.find_uv_bin()


def uv(sb, *args, env_extra=None):
    """`uv args…`; its caches and config are the sandbox HOME's (~/.cache/uv, ~/.config/uv/uv.toml)."""
    return run(sb, [uv_bin()] + list(args), env_extra=env_extra)


def uv_venv(sb, interp, path):
    """A new venv of interp (a testbed.Interp) at path made by `uv venv` in the sandbox (no network);
    returns its python."""
    run(sb, [uv_bin(), "venv", "-q", "--python", str(interp.path), str(path)]).check_returncode()
    return Path(path) / "bin" / "python"


def uv_pip_install(sb, python, *args, package="corp-hello", env_extra=None):
    """`uv pip install --python PYTHON --index-url https://pypi.org/simple [args] corp-hello`: give it a new
    venv each time (an installed package needs no network, and would pass without any TLS)."""
    return uv(sb, "pip", "install", "--python", str(python), "--index-url", INDEX_URL, *args, package,
              env_extra=env_extra)


def requests_venv(interp, path):
    """A venv of interp (a testbed.Interp) with requests and its dependencies from the pinned wheels
    (tests/data/toolbelt/wheels, --no-index --require-hashes): nothing from any index. Returns its python."""
    from . import make_venv
    python = make_venv(interp, path, with_pip=False)
    subprocess.run([uv_bin(), "pip", "install", "--python", str(python), "--no-index", "--no-cache", "--find-links",
                    str(WHEELS), "--require-hashes", "-r", str(REQUESTS_PINS)], check=True,
                   env=scrubbed_env(home=path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return python


GET = {
    "urllib": "import urllib.request; r = urllib.request.urlopen('{url}', timeout=30); print('HTTP', r.status)",
    "requests": "import requests; r = requests.get('{url}', timeout=30); print('HTTP', r.status_code)",
}


def python_get(sb, python, client, url=INDEX_URL + "/", env_extra=None):
    """A GET of url from python in the sandbox with client "urllib" (the default context) or "requests";
    prints "HTTP 200" when it works."""
    return run(sb, [str(python), "-c", GET[client].format(url=url)], env_extra=env_extra)
