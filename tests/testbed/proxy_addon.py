"""mitmproxy addon for the test bed: pypi.org and files.pythonhosted.org go to the local index; every
other host is refused (403), so no request ever leaves loopback."""
import os

from mitmproxy import http

ROUTED = {"pypi.org", "files.pythonhosted.org"}
INDEX = ("127.0.0.1", int(os.environ["TESTBED_INDEX_PORT"]))


class Router:
    def http_connect(self, flow):
        if flow.request.host not in ROUTED or flow.request.port != 443:
            flow.response = http.Response.make(403, b"refused by the test bed: only pypi.org is routed\n")

    def requestheaders(self, flow):
        if flow.request.host not in ROUTED:
            flow.response = http.Response.make(403, b"refused by the test bed\n")

    def server_connect(self, data):
        if data.server.address and data.server.address[0] in ROUTED:
            data.server.address = INDEX


addons = [Router()]
