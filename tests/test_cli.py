"""`python -m limpyd reap|check`, run as a user runs them: in a process of their own, on the
session's real server (an in-memory server cannot be shared with another process)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

from limpyd_testing.server import free_port

pytestmark = pytest.mark.limpyd_backends("redis")

APP = """
from limpyd import fields, model
from limpyd.contrib import related

class Visit(model.RedisModel):
    database = None  # given with --url
    namespace = "cli"
    page = fields.InstanceHashField(indexable=True)

class InMemory(model.RedisModel):
    database = model.RedisDatabase.from_url("fakeredis://app")
    namespace = "cli"
    name = fields.StringField()

class Base(model.RedisModel):
    abstract = True
    namespace = "cli"

class Team(related.RelatedModel):
    database = None
    namespace = "cli"
    name = fields.StringField(indexable=True)

class Member(related.RelatedModel):
    database = None
    namespace = "cli"
    team = related.FKStringField("Team")
"""


@pytest.fixture
def app(tmp_path, db):
    """A models module on disk, its Visit model on the test's database (and two modules
    that fail to import)."""
    (tmp_path / "cliapp.py").write_text(textwrap.dedent(APP))
    (tmp_path / "badapp.py").write_text('raise RuntimeError("boom")\n')
    (tmp_path / "syntaxapp.py").write_text("def (\n")
    (tmp_path / "exitapp.py").write_text("import sys\nsys.exit(3)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import cliapp

        cliapp.Visit.use_database(db)
        yield cliapp
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("cliapp", None)


def limpyd(app, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -m limpyd ARGS` from the module's directory, output captured (no terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "limpyd", *args],
        cwd=Path(app.__file__).parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def one_line_error(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 2, done
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert text in done.stderr and "Traceback" not in done.stderr


def test_reap_and_check_print_their_target_first(app, db):
    url = db.backend.describe()
    for name in ("a", "b", "c"):
        app.Visit(page=name)
    app.Visit(1).expireat(1)
    done = limpyd(app, "reap", "cliapp:Visit", "--url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"reaping Visit on {url} (--url)",
        "Visit: 1 expired instance(s) reaped",
    ]
    assert done.stderr == ""  # no terminal: no progress
    done = limpyd(app, "check", "cliapp:Visit", "--url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"checking Visit on {url} (--url)", "no problem found"]
    db.client.delete(app.Visit(2).page.key)  # a stale index entry now
    done = limpyd(app, "check", "cliapp:Visit", "--url", url)
    assert done.returncode == 1 and "Visit.page: stale" in done.stdout


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["nosuch.models:Visit"], "error: cannot import 'nosuch.models:Visit': No module named"),
        (["cliapp:Nope"], "error: 'cliapp:Nope' is not a limpyd model"),
        (["cliapp:Visit", "--url", "redis://127.0.0.1:1/abc"], "the db must be a number"),
        (["cliapp:Visit", "--url", "http://127.0.0.1/"], "Unsupported database URL"),
        (["cliapp:Visit", "--url", "redis://u:s3cret@127.0.0.1:{closed}/0"], "cannot reach"),
        (["cliapp:Visit", "--url", "{server}/99"], "DB index is out of range"),
        (["cliapp:Visit", "--url", "fakeredis://app"], "in-memory server private to this"),
        (["cliapp:InMemory"], "fakeredis://app/0 is an in-memory server private to this"),
        (["cliapp:Visit"], "error: Visit has no database: give --url"),
        (["badapp:Visit"], "error: cannot import 'badapp:Visit': RuntimeError: boom"),
        (["syntaxapp:Visit"], "error: cannot import 'syntaxapp:Visit': SyntaxError"),
        ([":Visit"], "error: cannot import ':Visit': ValueError"),
        (["cliapp:Base"], "error: model Base is abstract: give its concrete models"),
        (["cliapp:Visit", "--url", "{server}/0?nosuch=1"], "unexpected keyword argument 'nosuch'"),
        (["cliapp:Visit", "--url", "redis+cluster://{hostport}"], "error: redis+cluster://"),
        (["cliapp:InMemory", "--url", ""], "Unsupported database URL ''"),  # not "no URL"
        (["exitapp:Visit"], "error: importing 'exitapp:Visit' exited (3)"),  # was "error: 3"
        (["cliapp:Visit", "--url", "redis://[::1"], "error: --url: Invalid IPv6 URL"),
    ],
    ids=[
        "module", "model", "db", "scheme", "unreachable", "db-range", "fake-url", "fake", "none",
        "raising", "syntax", "no-module", "abstract", "url-option", "not-a-cluster", "empty-url",
        "exiting", "bad-url",
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["reap", "check"])
def test_mistakes_are_one_line(app, limpyd_server, command, args, text):
    server = limpyd_server.url.rsplit("/", 1)[0]
    hostport = server.split("//", 1)[1]
    args = [a.format(closed=free_port(), server=server, hostport=hostport) for a in args]
    done = limpyd(app, command, *args)
    one_line_error(done, text)
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("command", ["reap", "check"])
def test_a_related_model_named_without_its_target_is_one_line(app, db, command):
    app.Team.use_database(db)
    app.Member.use_database(db)
    app.Member(team=app.Team(name="core"))
    app.Member(1).expireat(1)  # something to reap
    url = db.backend.describe()
    done = limpyd(app, command, "cliapp:Member", "--url", url)  # Team stays unresolved
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "Member.team: the related model 'Team' is not defined" in done.stderr
    done = limpyd(app, command, "cliapp:Member", "cliapp:Team", "--url", url)
    assert done.returncode == 0, done.stderr


def test_migrate_refuses_in_memory_urls(app):
    done = limpyd(app, "migrate-from-redis-limpyd", "cliapp:Visit", "--url", "fakeredis://x")
    one_line_error(done, "fakeredis://x is an in-memory server private to this process")


def _on_a_terminal(app, *args: str) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal: the exit status and what the terminal showed."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "limpyd", *args],
        cwd=Path(app.__file__).parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(main)
    return process.wait(timeout=10), shown.decode(errors="replace")


def test_progress_with_totals_on_a_terminal(app, db):
    pytest.importorskip("tqdm", reason="progress bars need the cli extra (tqdm)")
    url = db.backend.describe()
    app.Visit.create_many([{"page": str(i)} for i in range(1500)])
    for pk in range(1, 1201):
        app.Visit.lazy_connect(str(pk)).expireat(1)
    status, shown = _on_a_terminal(app, "reap", "cliapp:Visit", "--url", url)
    assert status == 0, shown
    assert "Visit: expired instances: 100%" in shown and "1200/1200" in shown
    status, shown = _on_a_terminal(app, "check", "cliapp:Visit", "--url", url)
    assert status == 0, shown
    assert "Visit: instances checked: 100%" in shown and "300/300" in shown


def test_an_interrupted_command_is_one_line(app, db, monkeypatch, capsys):
    """Ctrl-C printed a KeyboardInterrupt traceback."""
    from limpyd import integrity
    from limpyd.cli import main

    def interrupted(*models, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(integrity, "check", interrupted)
    assert main(["check", "cliapp:Visit"], in_process_servers=True) == 130
    assert capsys.readouterr().err == "python -m limpyd check: interrupted\n"
