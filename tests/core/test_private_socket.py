"""``open_private_socket`` connects only to a socket no other user can reach, served by
its owner: the permission checks on real sockets, and (as root, with processes switched
to other uids) a socket of another user's and a process of another uid behind one's own.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airlock.security.private_socket import SocketNotPrivate, open_private_socket
from airlock.testing import skip_or_fail_under_ci

CALLER, OTHER = 54_321, 54_322
"""Uids with no account: root may switch a process to any uid, no user needed."""


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder every uid may pass through (the sockets' own modes decide); pytest's own
    temporary folders are root's alone."""
    path = Path(tempfile.mkdtemp(prefix="private-socket-"))
    os.chmod(path, 0o755)  # noqa: S103 - other uids must reach the sockets to be refused
    yield path
    shutil.rmtree(path)


def listening(path: Path, mode: int) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    os.chmod(path, mode)
    return server


def opened(path: Path) -> None:
    async def main() -> None:
        _reader, writer = await open_private_socket(str(path), limit=1024)
        writer.close()

    asyncio.run(main())


def test_a_socket_only_its_owner_can_reach_is_used(folder: Path) -> None:
    with listening(folder / "s", 0o700), listening(folder / "t", 0o755):
        opened(folder / "s")
        opened(folder / "t")  # no write bit for others: they cannot connect


@pytest.mark.parametrize("mode", [0o777, 0o722, 0o702, 0o720])
def test_a_socket_other_users_could_connect_to_is_refused(folder: Path, mode: int) -> None:
    with listening(folder / "s", mode), pytest.raises(SocketNotPrivate, match="other users"):
        opened(folder / "s")


def test_a_link_or_a_file_is_refused(folder: Path) -> None:
    with listening(folder / "s", 0o700):
        (folder / "link").symlink_to(folder / "s")
        with pytest.raises(SocketNotPrivate, match="is a link"):
            opened(folder / "link")
    (folder / "file").write_text("")
    with pytest.raises(SocketNotPrivate, match="not a socket"):
        opened(folder / "file")
    with pytest.raises(FileNotFoundError):
        opened(folder / "nothing")


def forked_as(uid: int, work: Callable[[], str]) -> tuple[int, int]:
    """*work* run in a forked child switched to *uid* (root only; no exec, so no need for
    the interpreter to be reachable by that uid); (pid, fd) to read what it returned."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.write(write_end, work().encode())
        except BaseException as exc:  # told to the parent, which fails naming it
            os.write(write_end, f"the child failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    return pid, read_end


def run_as(uid: int, work: Callable[[], str]) -> str:
    pid, fd = forked_as(uid, work)
    with os.fdopen(fd, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


def open_it(path: Path) -> Callable[[], str]:
    def work() -> str:
        try:
            opened(path)
        except SocketNotPrivate as exc:
            return f"refused: {exc}"
        return "connected"

    return work


def needs_root() -> None:
    if os.geteuid() != 0:
        skip_or_fail_under_ci("needs root to run processes as other uids")


def test_a_socket_of_another_users_is_refused(folder: Path) -> None:
    needs_root()
    with listening(folder / "s", 0o700):
        os.chown(folder / "s", OTHER, OTHER)
        said = run_as(CALLER, open_it(folder / "s"))
    whose = f"{folder / 's'} belongs to uid {OTHER}"
    assert said == f"refused: {whose}: run the service as this user ({CALLER})"


def serving_as(uid: int, path: Path) -> tuple[int, int]:
    """A process of *uid* listening on its own socket at *path* (mode 700), until killed
    (a socket another user planted where root was told to look); (pid, fd) to read what
    it received."""
    ready_read, ready_write = os.pipe()

    def serve() -> str:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            os.chmod(path, 0o700)
            server.listen()
            os.write(ready_write, b"ready")
            conn, _ = server.accept()
            conn.settimeout(10)
            with conn:
                return repr(conn.recv(100))

    pid, said = forked_as(uid, serve)
    os.close(ready_write)
    assert os.read(ready_read, 5) == b"ready"
    os.close(ready_read)
    return pid, said


def test_a_process_of_another_uid_behind_ones_own_socket_is_refused(folder: Path) -> None:
    """Another uid's process listens on a socket that is (now) the caller's own file: what
    a socket swapped between the check and the connection looks like. Refused, and the
    process behind it never got a byte."""
    needs_root()
    path = folder / "s"
    os.chmod(folder, 0o777)  # noqa: S103 - the other uid makes its socket here
    pid, said = serving_as(OTHER, path)
    try:
        os.chown(path, CALLER, CALLER)
        refused = run_as(CALLER, open_it(path))
        with os.fdopen(said, "rb") as pipe:
            got = pipe.read().decode()
    finally:
        os.kill(pid, signal.SIGKILL)  # a child that ended is a zombie until reaped: no error
        os.waitpid(pid, 0)
    assert refused == f"refused: the process behind {path} runs as uid {OTHER}"
    assert got == "b''"  # closed before a byte was sent


def test_root_uses_no_socket_of_an_agent_users(folder: Path) -> None:
    """Root (``sudo airlock signal setup --socket``) may use a socket of the service user's
    (signal-cli runs as ``airlock``), not any user's: a socket an agent user planted where
    the person pointed setup (a folder it can write to) would get the test message and
    answer for the person, whose Signal identity setup then saves."""
    needs_root()
    path = folder / "s"
    os.chmod(folder, 0o777)  # noqa: S103 - the other uid makes its socket here
    pid, said = serving_as(OTHER, path)
    try:
        with pytest.raises(SocketNotPrivate, match=f"belongs to uid {OTHER}"):
            opened(path)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(said)


def test_root_uses_a_socket_of_the_service_users(folder: Path) -> None:
    needs_root()
    nobody = pwd.getpwnam("nobody")
    path = folder / "s"
    os.chmod(folder, 0o777)  # noqa: S103 - the other uid makes its socket here
    pid, said = serving_as(nobody.pw_uid, path)
    try:

        async def main() -> None:
            _reader, writer = await open_private_socket(
                str(path), limit=1024, service_user="nobody"
            )
            writer.write(b"hello")
            await writer.drain()
            writer.close()

        asyncio.run(main())
        with os.fdopen(said, "rb") as pipe:
            assert pipe.read().decode() == "b'hello'"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
