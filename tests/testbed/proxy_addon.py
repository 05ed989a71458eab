"""mitmproxy addon for the test bed: pypi.org and files.pythonhosted.org go to the local index; every
other host is refused (403), so no request ever leaves loopback.

TESTBED_EXTRA_ROUTES (optional) routes more hosts, each to its own loopback server:
"github.com=127.0.0.1:PORT,registry.npmjs.org=127.0.0.1:PORT". Unset, only the index is routed."""
import os

from mitmproxy import http

INDEX = ("127.0.0.1", int(os.environ["TESTBED_INDEX_PORT"]))
ROUTES = {"pypi.org": INDEX, "files.pythonhosted.org": INDEX}
for _route in filter(None, os.environ.get("TESTBED_EXTRA_ROUTES", "").split(",")):
    _host, _address = _route.split("=")
    _ip, _port = _address.rsplit(":", 1)
    ROUTES[_host.strip()] = (_ip.strip(), int(_port))
ROUTED = set(ROUTES)


class Router:
    def http_connect(self, flow):
        if flow.request.host not in ROUTED or flow.request.port != 443:
            flow.response = http.Response.make(403, b"refused by the test bed: only pypi.org is routed\n")

    def requestheaders(self, flow):
        if flow.request.host not in ROUTED:
            flow.response = http.Response.make(403, b"refused by the test bed\n")

    def server_connect(self, data):
        if data.server.address and data.server.address[0] in ROUTED:
            data.server.address = ROUTES[data.server.address[0]]


addons = [Router()]
