"""Real servers for the remote cache tiers' tests: redis-server and nginx with WebDAV.

Each server runs in a directory of its own, listens on a free loopback port chosen at run
time (another one is tried if that port is taken before the server binds it), and runs in a
session of its own, so signals reach all of its processes and none of the test's.
``stop()``/``cont()`` freeze and thaw it: the kernel still accepts connections, but nothing
answers them (a hung server). ``kill9()`` kills it abruptly; ``close()`` ends it, at most once.
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: How long a server may take to answer after it starts: only a guard against a hang.
START_DEADLINE = 30.0
#: How many ports are tried when another process takes the chosen one first.
PORT_ATTEMPTS = 5


def find_program(name: str) -> str | None:
    """The path of the program ``name``, also in the sbin directories a user's PATH lacks."""
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        path = Path(directory, name)
        if os.access(path, os.X_OK):
            return str(path)
    return None


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """A server process started with ``start_new_session=True``: what both servers share."""

    name = "server"
    proc: subprocess.Popen
    port: int

    def __init__(self, directory: Path, program: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.program = program
        self._closed = False

    # --- start -------------------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen:
        raise NotImplementedError

    def _answers(self) -> bool:
        """Whether this very server (not another one on the port) answers a request."""
        raise NotImplementedError

    def _log(self) -> str:
        raise NotImplementedError

    def _start(self) -> None:
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.proc = self._spawn()
            if self._wait_ready():
                return
        raise RuntimeError(f"{self.name}: {PORT_ATTEMPTS} ports were taken before it bound them")

    def _wait_ready(self) -> bool:
        """True once the server answers; False if it exited because its port was taken."""
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.proc.poll() is not None:
                log = self._log()
                if "Address already in use" in log:
                    return False
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{log}")
            if self._answers():
                return True
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"{self.name} did not answer in {START_DEADLINE} s:\n{self._log()}")
            time.sleep(0.02)

    # --- signals -----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The pid of the server (nginx: of its master process, also its process group)."""
        return self.proc.pid

    def _signal_group(self, sig: int) -> bool:
        """Send ``sig`` to every process of the server; False if it had already exited.

        Only while the leader is not reaped: its pid, the group's id, cannot be reused."""
        if self.proc.poll() is not None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """SIGSTOP every process: connections are still accepted, never answered."""
        self._signal_group(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT every process: a stopped server answers again."""
        self._signal_group(signal.SIGCONT)

    def kill9(self) -> None:
        """SIGKILL every process and reap the server: its port refuses connections after."""
        if self._signal_group(signal.SIGKILL):
            self.proc.wait()

    def close(self) -> None:
        """End the server (SIGCONT, then SIGTERM, SIGKILL after 10 s); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._signal_group(signal.SIGCONT):
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} pid={self.proc.pid}>"


# --- Redis -----------------------------------------------------------------------------------


def resp_command(*args: bytes | str | int) -> bytes:
    """``args`` as one command of the Redis protocol (RESP): an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(stream) -> bytes:
    """One whole RESP reply, raw, from the file ``stream`` (nested arrays included)."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"the Redis server closed the connection mid-reply: {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind == b"$" and int(rest) >= 0:
        return line + stream.read(int(rest) + 2)
    if kind == b"*" and int(rest) > 0:
        return line + b"".join(_read_reply(stream) for _ in range(int(rest)))
    return line


class RedisServer(_Server):
    """``redis-server`` on 127.0.0.1, without persistence, its files in ``directory``.

    ``maxmemory`` ("2mb") and ``policy`` ("allkeys-lru") set its memory limit and eviction.
    """

    name = "redis-server"

    def __init__(self, directory: Path, *, maxmemory: str | None = None, policy: str | None = None,
                 program: str = "redis-server"):
        super().__init__(directory, program)
        self.options = {"maxmemory": maxmemory, "maxmemory-policy": policy}
        self.log_path = self.directory / "redis.log"
        self._start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> subprocess.Popen:
        argv = [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"]
        for option, value in self.options.items():
            if value is not None:
                argv += [f"--{option}", str(value)]
        with open(self.log_path, "wb") as log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _answers(self) -> bool:
        try:
            if not self.command("PING", timeout=1).startswith(b"+PONG"):
                return False
            info = self.command("INFO", "server", timeout=1)
        except OSError:
            return False
        return f"\r\nprocess_id:{self.proc.pid}\r\n".encode() in info

    def command(self, *args: bytes | str | int, timeout: float = 10) -> bytes:
        """Send one command on a new connection and return its raw RESP reply.

        ``command("SET", key, value)`` is ``b"+OK\\r\\n"``, ``command("GET", key)`` is
        ``b"$5\\r\\nvalue\\r\\n"`` (``b"$-1\\r\\n"`` if missing). Raises ``OSError`` (e.g.
        ``TimeoutError``, ``ConnectionRefusedError``) if the server does not answer.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(resp_command(*args))
            with sock.makefile("rb") as stream:
                return _read_reply(stream)


# --- nginx with WebDAV -----------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        location /cache/ {{
            alias {root}/;
            dav_methods PUT DELETE MKCOL;
            create_full_put_path on;
            dav_access user:rw group:rw all:r;
        }}
        location /broken/ {{ return 500; }}
        location = /_ready {{ return 200 "{token}"; }}
    }}
}}
"""


class NginxDavServer(_Server):
    """``nginx`` on 127.0.0.1 storing WebDAV PUTs under ``.url`` in the directory ``.root``.

    ``url + "a/b/c"`` is the file ``root / "a/b/c"`` (PUT creates the directories);
    ``broken_url`` answers 500 to everything. All of nginx's files are in ``directory``.
    """

    name = "nginx"

    def __init__(self, directory: Path, *, program: str = "/usr/sbin/nginx"):
        super().__init__(directory, program)
        self.root = self.directory / "root"
        self.root.mkdir(exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        (self.directory / "temp").mkdir(exist_ok=True)
        self.conf = self.directory / "nginx.conf"
        self.error_log = self.directory / "logs" / "error.log"
        self._token = secrets.token_hex(8)
        self._start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/cache/``: the WebDAV directory, with a trailing slash."""
        return f"http://127.0.0.1:{self.port}/cache/"

    @property
    def broken_url(self) -> str:
        """``http://127.0.0.1:PORT/broken/``: every request under it answers 500."""
        return f"http://127.0.0.1:{self.port}/broken/"

    def _spawn(self) -> subprocess.Popen:
        # As root, workers would run as nobody and could not write to the root directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(NGINX_CONF.format(user=user, prefix=self.directory, port=self.port,
                                               root=self.root, token=self._token))
        self.error_log.unlink(missing_ok=True)
        # -e: the error log before the configuration is read (by default in /var/log/nginx)
        argv = [self.program, "-p", f"{self.directory}/", "-c", str(self.conf),
                "-e", str(self.error_log)]
        with open(self.directory / "logs" / "nginx.out", "wb") as out:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _log(self) -> str:
        logs = [self.directory / "logs" / "nginx.out", self.error_log]
        return "".join(path.read_text(errors="replace") for path in logs if path.exists())

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/_ready")
            response = connection.getresponse()
            return response.status == 200 and response.read() == self._token.encode()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
