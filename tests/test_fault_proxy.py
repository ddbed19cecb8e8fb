"""The fault-injecting proxy of the tests relays what it does not break, whatever the framing."""

import http.client
import socketserver
import threading

import pytest

from tests.fault_proxy import FaultProxy

_ANSWERS = {
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    b"/until-close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world",
    b"/sized": b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
}


class _Upstream(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            request_line = self.rfile.readline()
            if not request_line:
                return
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            path = request_line.split()[1]
            self.wfile.write(_ANSWERS[path])
            if path == b"/until-close":
                return


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    with FaultProxy(f"http://127.0.0.1:{server.server_address[1]}") as proxy:
        yield proxy
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/chunked", "/until-close", "/sized"])
def test_bodies_are_relayed_whole_on_a_kept_alive_connection(proxy, path):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    for _ in range(2):
        connection.request("GET", path)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello world")
    connection.close()
    assert proxy.requests == 2


def test_forced_faults_come_first_and_are_counted(proxy):
    proxy.force("slowdown")
    proxy.force("throttle")
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    statuses = []
    for _ in range(3):
        connection.request("GET", "/sized")
        response = connection.getresponse()
        response.read()
        statuses.append((response.status, response.getheader("Retry-After")))
    connection.close()
    assert statuses == [(503, None), (429, "1"), (200, None)]
    assert dict(proxy.injected) == {"slowdown": 1, "throttle": 1}


def test_unknown_faults_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        FaultProxy("http://127.0.0.1:9", faults=("meteor",))
