"""A real HTTPS package index: pypiserver's WSGI app behind a threaded TLS server, on 127.0.0.1.

Usage: python index_server.py PACKAGES_DIR CERTFILE KEYFILE PORTFILE
Writes the chosen port to PORTFILE once it accepts connections; runs until killed.
"""
import os
import socketserver
import ssl
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pypiserver


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    packages, certfile, keyfile, portfile = sys.argv[1:5]
    app = pypiserver.app(roots=[packages], authenticate=[], password_file=".", hash_algo="sha256")
    httpd = make_server("127.0.0.1", 0, app, server_class=ThreadingServer, handler_class=QuietHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(portfile + ".tmp", portfile)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
