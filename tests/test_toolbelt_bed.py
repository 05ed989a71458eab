"""The toolbelt bed (tests/testbed/toolbelt.py) shows issue 17's before and after: through the intercepting
proxy each tool fails with its own certificate error, and works once given the corporate root by its own
documented setting, set here by the test (the product will later set it by itself).

On Linux git (libcurl-gnutls) and urllib's default context verify against the OS store: they fail only
when the corporate root is not there, so that is their "before"; uv, npm and requests carry their own
roots and fail with the corporate root in the OS store.
"""
import re

import pytest

from testbed import pythons, toolbelt
from testbed.toolbelt import out

pytestmark = pytest.mark.e2e

PAIR = [i for i in pythons(min=(3, 9)) if i.version == (3, 9)][:1] + pythons(min=(3, 10))[-1:]
UV_FIXES = {
    "--system-certs": (["--system-certs"], {}),
    "UV_SYSTEM_CERTS=1": ([], {"UV_SYSTEM_CERTS": "1"}),
    "UV_NATIVE_TLS=1": ([], {"UV_NATIVE_TLS": "1"}),       # the older name, still read
}
NPM_CERT_ERROR = r"UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN"
PY_CERT_ERROR = "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate"


@pytest.fixture(scope="session", params=PAIR, ids=str)
def requests_python(request, tmp_path_factory):
    """A venv with requests from the pinned wheels, one per Python of PAIR, shared by the session."""
    return toolbelt.requests_venv(request.param, tmp_path_factory.mktemp("requests-venv") / "venv")


@pytest.fixture
def laptop(sandbox, toolbed):
    """A sandbox behind the bed's proxy: laptop(corp_in_os_store)."""
    return lambda corp_in_os_store: sandbox(corp_in_os_store=corp_in_os_store, proxy=toolbed.proxy)


def test_the_sandbox_hides_this_machines_git_and_npm_settings(laptop):
    sb = laptop(True)
    assert toolbelt.npm(sb, "config", "get", "cafile").stdout.strip() == "null"     # /usr/etc/npmrc masked
    system = toolbelt.run(sb, ["git", "config", "--system", "--list"])
    assert system.stdout == "", out(system)                                          # /etc/gitconfig masked
    assert toolbelt.run(sb, ["sh", "-c", "env"]).stdout.count("CA_CERTS") == 0      # no NODE_EXTRA_CA_CERTS


# --- git -----------------------------------------------------------------------------------------------

def test_git_clone_fails_without_the_corporate_root_in_the_os_store(laptop, tmp_path):
    result = toolbelt.git_clone(laptop(False), tmp_path / "hello")
    assert result.returncode == 128, out(result)
    assert "server certificate verification failed" in result.stderr
    assert not (tmp_path / "hello" / "README.md").exists()


def test_git_trusts_the_linux_os_store(laptop, tmp_path):
    result = toolbelt.git_clone(laptop(True), tmp_path / "hello")
    assert result.returncode == 0, out(result)


def test_git_clone_works_with_http_sslcainfo_in_the_users_gitconfig(laptop, toolbed, tmp_path):
    sb = laptop(False)
    flag = toolbelt.git_clone(sb, tmp_path / "flag", "-c", "http.sslCAInfo={}".format(toolbed.bundle))
    assert flag.returncode == 0, out(flag)
    toolbelt.run(sb, ["git", "config", "--global", "http.sslCAInfo", toolbed.bundle]).check_returncode()
    origin = toolbelt.run(sb, ["git", "config", "--global", "--list", "--show-origin"]).stdout
    assert origin == "file:{}\thttp.sslcainfo={}\n".format(sb.home / ".gitconfig", toolbed.bundle)
    plain = toolbelt.git_clone(sb, tmp_path / "hello")
    assert plain.returncode == 0, out(plain)
    assert (tmp_path / "hello" / "README.md").read_text() == "hello from the corporate git server\n"


# --- npm -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["view", "install"])
def test_npm_fails_with_the_corporate_root_in_the_os_store(laptop, command, tmp_path):
    result = toolbelt.npm(laptop(True), command, toolbelt.NPM_PKG, cwd=str(tmp_path))
    assert result.returncode == 1, out(result)
    assert re.search(r"npm error code ({})".format(NPM_CERT_ERROR), result.stderr), out(result)
    assert "request to https://registry.npmjs.org/corp-hello failed" in result.stderr


def test_npm_view_works_with_cafile(laptop, toolbed, tmp_path):
    result = toolbelt.npm(laptop(True), "view", toolbelt.NPM_PKG, "--cafile", toolbed.bundle, cwd=str(tmp_path))
    assert result.returncode == 0, out(result)
    dist = toolbed.npm_doc["versions"][toolbelt.NPM_VERSION]["dist"]
    assert "corp-hello@1.0.0" in result.stdout, out(result)
    assert dist["tarball"] in result.stdout and dist["shasum"] in result.stdout     # the bed's own registry


def test_npm_install_works_with_cafile_in_the_users_npmrc(laptop, toolbed, tmp_path):
    sb = laptop(True)
    (sb.home / ".npmrc").write_text("cafile={}\n".format(toolbed.bundle))
    assert toolbelt.npm(sb, "config", "get", "cafile").stdout.strip() == str(toolbed.bundle)
    assert toolbelt.npm(sb, "config", "get", "userconfig").stdout.strip() == str(sb.home / ".npmrc")
    result = toolbelt.npm(sb, "install", toolbelt.NPM_PKG, cwd=str(tmp_path))
    assert result.returncode == 0, out(result)
    assert (tmp_path / "node_modules" / "corp-hello" / "index.js").exists()


# --- uv ------------------------------------------------------------------------------------------------

def test_uv_pip_install_fails_with_the_corporate_root_in_the_os_store(laptop, tmp_path):
    sb = laptop(True)
    result = toolbelt.uv_pip_install(sb, toolbelt.uv_venv(sb, PAIR[-1], tmp_path / "venv"))
    assert result.returncode == 2, out(result)
    assert "invalid peer certificate: UnknownIssuer" in result.stderr
    assert "--system-certs" in result.stderr                    # uv's own hint


@pytest.mark.parametrize("fix", sorted(UV_FIXES))
def test_uv_pip_install_works_with_the_os_store(laptop, fix, tmp_path):
    sb = laptop(True)
    args, env = UV_FIXES[fix]
    result = toolbelt.uv_pip_install(sb, toolbelt.uv_venv(sb, PAIR[-1], tmp_path / "venv"), *args, env_extra=env)
    assert result.returncode == 0, out(result)
    assert "+ corp-hello==1.0" in result.stderr


def test_uv_system_certs_needs_the_corporate_root_in_the_os_store(laptop, tmp_path):
    sb = laptop(False)
    result = toolbelt.uv_pip_install(sb, toolbelt.uv_venv(sb, PAIR[-1], tmp_path / "venv"), "--system-certs")
    assert result.returncode == 2 and "invalid peer certificate: UnknownIssuer" in result.stderr, out(result)


def test_uv_reads_system_certs_from_the_users_uv_toml(laptop, tmp_path):
    sb = laptop(True)
    (sb.home / ".config" / "uv").mkdir(parents=True)
    (sb.home / ".config" / "uv" / "uv.toml").write_text("system-certs = true\n")
    result = toolbelt.uv_pip_install(sb, toolbelt.uv_venv(sb, PAIR[-1], tmp_path / "venv"))
    assert result.returncode == 0, out(result)


def test_uv_works_with_ssl_cert_file_holding_the_full_bundle(laptop, toolbed, tmp_path):
    sb = laptop(False)
    result = toolbelt.uv_pip_install(sb, toolbelt.uv_venv(sb, PAIR[-1], tmp_path / "venv"),
                                     env_extra={"SSL_CERT_FILE": str(toolbed.bundle)})
    assert result.returncode == 0, out(result)


# --- requests and urllib -----------------------------------------------------------------------------------

def test_requests_fails_with_the_corporate_root_in_the_os_store(laptop, requests_python):
    result = toolbelt.python_get(laptop(True), requests_python, "requests")
    assert result.returncode == 1 and "requests.exceptions.SSLError" in result.stderr, out(result)
    assert PY_CERT_ERROR in result.stderr


@pytest.mark.parametrize("client, variable, corp_in_os_store", [("requests", "REQUESTS_CA_BUNDLE", True),
                                                              ("urllib", "SSL_CERT_FILE", False)])
def test_python_clients_work_with_their_bundle_variable(laptop, toolbed, requests_python, client, variable,
                                                        corp_in_os_store):
    result = toolbelt.python_get(laptop(corp_in_os_store), requests_python, client,
                                 env_extra={variable: str(toolbed.bundle)})
    assert result.returncode == 0 and result.stdout == "HTTP 200\n", out(result)


@pytest.mark.parametrize("corp_in_os_store", [False, True], ids=["plain-store", "corp-store"])
def test_urllib_default_context_follows_the_os_store(laptop, requests_python, corp_in_os_store):
    result = toolbelt.python_get(laptop(corp_in_os_store), requests_python, "urllib")
    if corp_in_os_store:
        assert result.returncode == 0 and result.stdout == "HTTP 200\n", out(result)
    else:
        assert result.returncode == 1 and "urllib.error.URLError" in result.stderr, out(result)
        assert PY_CERT_ERROR in result.stderr
