"""A remote tier on an HTTP server (``http(s)://host/path/``), through urllib3.

Plain GET, HEAD, PUT and DELETE of files under the URL's path, so that any WebDAV-capable
server works: nginx with ``dav_methods PUT DELETE; create_full_put_path on;``, Apache's
mod_dav, a cloud bucket's HTTP endpoint. ``http://user:password@host/`` sends basic
authentication. 404 is a miss; any other status outside 2xx is an error.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3

from .backend import RemoteUnavailable, Timeouts


class HttpBackend:
    """Get and put entries as files under one base URL; errors become RemoteUnavailable."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        headers = {}
        if parts.username is not None:
            headers = urllib3.make_headers(basic_auth=f"{unquote(parts.username)}:"
                                                      f"{unquote(parts.password or '')}")
        netloc = parts.netloc.rpartition("@")[2]
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self._base = urlunsplit((parts.scheme, netloc, path, "", ""))
        self._pool = urllib3.PoolManager(headers=headers, retries=False, maxsize=4)

    def _request(self, method: str, name: str, timeouts: Timeouts, body: bytes | None = None
                 ) -> urllib3.BaseHTTPResponse:
        timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.operation,
                                  total=timeouts.operation)
        try:
            response = self._pool.request(method, self._base + name, body=body,
                                          timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise RemoteUnavailable(f"{method} {name}: {type(exc).__name__}: {exc}") from None
        if response.status >= 300 and response.status != 404:
            raise RemoteUnavailable(f"{method} {name}: HTTP {response.status} {response.reason}")
        return response

    def get_many(self, names: list[str], timeouts: Timeouts) -> list[bytes | None]:
        found: list[bytes | None] = []
        for name in names:
            response = self._request("GET", name, timeouts)
            found.append(None if response.status == 404 else response.data)
        return found

    def put_many(self, items: dict[str, bytes], timeouts: Timeouts) -> None:
        for name, value in items.items():
            response = self._request("PUT", name, timeouts, value)
            if response.status == 404:
                raise RemoteUnavailable(f"PUT {name}: HTTP 404 (is PUT enabled on the server?)")

    def exists(self, name: str, timeouts: Timeouts) -> bool:
        return self._request("HEAD", name, timeouts).status != 404

    def delete(self, name: str, timeouts: Timeouts) -> None:
        self._request("DELETE", name, timeouts)
