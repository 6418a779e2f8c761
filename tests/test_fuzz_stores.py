"""Every command against every way a store can be damaged or refused.

The stores: a corrupt one (a real store with page headers overwritten), a zero-byte file,
bytes that are not SQLite, other programs' SQLite files (rollback and WAL, with and without a
schema version), an SQLite file with no tables, a store of a newer haggler, a folder, a
device (`/dev/full`), a full disk, a read-only file, a read-only folder and a read-only
filesystem. Whatever the command (play, selfplay, tournament, show, export, report,
leaderboard, the viewer): no traceback; a refusal is one line on stderr with exit status 2;
the refused file stays byte for byte as it was, with nothing left beside it; a store that is
only read-only is read.

Read-only files and folders are real: as root (who ignores permission bits) the commands
run in a child process without the capabilities that override them (`setpriv`); a full disk
and a read-only filesystem are a small tmpfs, where mounting is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.errors import StoreError
from haggler.store import Store
from haggler.store.schema import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent

SELFPLAY_SPEC = """\
game: balloon
roles: {seller: {model: "rule:linear"}, buyer: {model: "rule:linear"}}
coached: seller
critic: rule
rounds: 2
lineages: 1
feedback: [ai]
seed: 0
"""
TOURNAMENT_SPEC = """\
name: fuzz
players: [{name: b, model: "rule:boulware"}, {name: c, model: "rule:conceder"}]
repetitions: 1
"""

# Each command with its arguments; {db}, {out}, {specs}, {selfplay} and {tournament} are
# filled in per test. Readers name their runs, so that on a readable store each succeeds.
WRITERS = {
    "play": ["play", "-q", "--db", "{db}"],
    "selfplay": ["selfplay", "{specs}/selfplay.yaml", "--db", "{db}"],
    "tournament": ["tournament", "{specs}/tournament.yaml", "--db", "{db}"],
}
READERS = {
    "show": ["show", "--db", "{db}"],
    "show --list": ["show", "--list", "--run", "{tournament}", "--db", "{db}"],
    "export jsonl": ["export", "{tournament}", "-o", "{out}/games.jsonl", "--db", "{db}"],
    "export html": ["export", "{selfplay}", "-o", "{out}/report.html", "--db", "{db}"],
    "report": ["report", "{selfplay}", "--csv", "{out}/rounds.csv", "--db", "{db}"],
    "leaderboard": ["leaderboard", "{tournament}", "--db", "{db}"],
}
COMMANDS = WRITERS | READERS


@dataclass(frozen=True)
class RealStore:
    path: Path
    selfplay: str
    tournament: str


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> RealStore:
    """A store holding a played game, a self-play run and a tournament, made by the CLI."""
    folder = tmp_path_factory.mktemp("real")
    specs = _specs(folder)
    db = folder / "real.db"
    for args in (
        ["play", "-q", "--db", str(db)],
        ["selfplay", str(specs / "selfplay.yaml"), "--db", str(db)],
        ["tournament", str(specs / "tournament.yaml"), "--db", str(db)],
    ):
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    with Store(db) as store:
        kinds = {run.kind: run.id for run in store.runs()}
    return RealStore(db, kinds["selfplay"], kinds["tournament"])


def _specs(folder: Path) -> Path:
    specs = folder / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "selfplay.yaml").write_text(SELFPLAY_SPEC)
    (specs / "tournament.yaml").write_text(TOURNAMENT_SPEC)
    return specs


def _args(name: str, db: Path, out: Path, real: RealStore) -> list[str]:
    fill = {
        "db": str(db),
        "out": str(out),
        "specs": str(_specs(out.parent)),
        "selfplay": real.selfplay,
        "tournament": real.tournament,
    }
    return [arg.format(**fill) for arg in COMMANDS[name]]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file in `folder` and a hash of its bytes: what must not change."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def _assert_refused(exit_code: int, stdout: str, stderr: str, expected: str) -> None:
    assert "Traceback" not in stdout + stderr
    assert exit_code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]


# --- damaged and foreign files, every command in this process -----------------------------


def _corrupt(real: RealStore, db: Path) -> None:
    shutil.copyfile(real.path, db)
    with sqlite3.connect(db) as probe:
        page_size = probe.execute("PRAGMA page_size").fetchone()[0]
        roots = [row[0] for row in probe.execute("SELECT rootpage FROM sqlite_master")]
    probe.close()
    with db.open("r+b") as handle:
        # The root page of every table and index: whatever a command reads, it meets one.
        for root in roots:
            handle.seek((root - 1) * page_size)
            handle.write(b"\xa5" * page_size)


def _zero_bytes(real: RealStore, db: Path) -> None:
    db.touch()


def _not_sqlite(real: RealStore, db: Path) -> None:
    db.write_bytes(b"name,price\nballoon,16\n" * 200)


def _foreign(real: RealStore, db: Path) -> None:
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE notes (body TEXT)")
        other.execute("INSERT INTO notes VALUES ('mine')")
    other.close()


def _foreign_wal(real: RealStore, db: Path) -> None:
    other = sqlite3.connect(db)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE notes (body TEXT)")
    other.commit()
    other.close()


def _foreign_versioned(real: RealStore, db: Path) -> None:
    # Another program numbering its own schema, with a table haggler also has a name for.
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE runs (started TEXT)")
        other.execute("PRAGMA user_version=3")
    other.close()


def _empty_sqlite(real: RealStore, db: Path) -> None:
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE scratch (x)")
        other.execute("DROP TABLE scratch")
    other.close()


def _newer(real: RealStore, db: Path) -> None:
    shutil.copyfile(real.path, db)
    with sqlite3.connect(db) as later:
        later.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    later.close()


def _folder(real: RealStore, db: Path) -> None:
    db.mkdir()
    (db / "inside.txt").write_text("not a store")


DAMAGED: dict[str, tuple[Callable[[RealStore, Path], None], str]] = {
    "corrupt": (_corrupt, "is damaged"),
    "zero-byte": (_zero_bytes, "an empty file (0 bytes)"),
    "not sqlite": (_not_sqlite, "not an SQLite database"),
    "foreign": (_foreign, "did not make"),
    "foreign in WAL mode": (_foreign_wal, "did not make"),
    "foreign with a version": (_foreign_versioned, "did not make"),
    "sqlite with no tables": (_empty_sqlite, "an empty SQLite database"),
    "newer haggler": (_newer, "newer than this haggler's"),
    "a folder": (_folder, "is a directory"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_or_foreign_store_is_refused_in_one_line_untouched(
    tmp_path: Path, real_store: RealStore, damage: str, command: str
) -> None:
    make, expected = DAMAGED[damage]
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    db = home / "store.db"
    make(real_store, db)
    before = _snapshot(home)
    inside = _snapshot(db) if db.is_dir() else None

    result = CliRunner().invoke(app, _args(command, db, out, real_store))

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    _assert_refused(result.exit_code, result.stdout, result.stderr, expected)
    assert _snapshot(home) == before, "the refused file changed, or something was left beside it"
    if inside is not None:
        assert _snapshot(db) == inside
    assert list(out.iterdir()) == [], "nothing is written for a store that was refused"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_device_is_refused_and_nothing_is_left_beside_it(
    tmp_path: Path, real_store: RealStore, command: str
) -> None:
    device = Path("/dev/full")
    if not device.exists():
        pytest.skip("no /dev/full on this system")
    beside = [Path(f"{device}{suffix}") for suffix in ("-journal", "-wal", "-shm")]
    if any(path.exists() for path in beside):
        pytest.skip("/dev/full already has a journal beside it")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, _args(command, device, out, real_store))
    try:
        _assert_refused(result.exit_code, result.stdout, result.stderr, "not a regular file")
        assert [path for path in beside if path.exists()] == []
    finally:
        for path in beside:  # what a failure left in /dev must not outlive the test
            if path.exists() and path.is_file():
                path.unlink()


@pytest.mark.parametrize("damage", ["corrupt", "zero-byte", "foreign", "newer haggler"])
def test_the_viewer_refuses_or_answers_with_a_page_never_a_500(
    tmp_path: Path, real_store: RealStore, damage: str
) -> None:
    from haggler.view import make_server

    make, _ = DAMAGED[damage]
    db = tmp_path / "store.db"
    make(real_store, db)
    before = _snapshot(tmp_path)
    try:
        server = make_server(db, 0)
    except StoreError as error:
        assert "\n" not in str(error) and str(error).startswith(f"store {db}")
    else:
        # A viewer that opens the store lazily must still answer every page in words.
        server.start_in_background()
        try:
            for page in ("/", f"/run/{real_store.tournament}"):
                try:
                    with urllib.request.urlopen(server.url.rstrip("/") + page) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                # A store found damaged only when a page reads it is a 503 with one line.
                assert status < 500 or status == 503, f"{page}: {status}"
        finally:
            server.shutdown()
            server.server_close()
    assert _snapshot(tmp_path) == before


def test_a_search_too_long_for_sqlite_is_one_line(tmp_path: Path, real_store: RealStore) -> None:
    words = "balloon " * 7500  # 60,000 characters: past SQLite's LIKE pattern limit
    for args in (
        ["show", "--list", "--run", real_store.tournament, "--search", words],
        ["export", real_store.tournament, "-o", str(tmp_path / "g.jsonl"), "--search", words],
    ):
        result = CliRunner().invoke(app, [*args, "--db", str(real_store.path)])
        assert result.exception is None or isinstance(result.exception, SystemExit)
        _assert_refused(result.exit_code, result.stdout, result.stderr, "")
    assert not (tmp_path / "g.jsonl").exists()


# --- read-only files and folders, for real: a child process that permission bits bind ------


def _unprivileged() -> list[str]:
    """The command prefix that runs a child bound by permission bits; skips where none can."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits would not bind")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return prefix


# Run in the child: each command through the CLI in one process, results as JSON lines.
_DRIVER = """
import json, sys, traceback
from typer.testing import CliRunner
from haggler.cli import app
for args in json.loads(sys.stdin.read()):
    result = CliRunner().invoke(app, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    print(json.dumps({
        "exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
        "crash": "".join(traceback.format_exception(result.exception)) if crashed else None,
    }))
"""


def _run_unprivileged(commands: list[list[str]]) -> list[dict[str, object]]:
    process = subprocess.run(
        [*_unprivileged(), sys.executable, "-c", _DRIVER],
        input=json.dumps(commands),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    return [json.loads(line) for line in process.stdout.splitlines()]


@pytest.fixture
def read_only_store(
    tmp_path: Path, real_store: RealStore, request: pytest.FixtureRequest
) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "store.db"
    shutil.copyfile(real_store.path, db)
    if request.param == "file":
        db.chmod(0o444)
    else:
        home.chmod(0o555)
    yield db
    home.chmod(0o755)


@pytest.mark.parametrize("read_only_store", ["file", "folder"], indirect=True)
def test_a_read_only_store_is_read_and_never_written(
    tmp_path: Path, real_store: RealStore, read_only_store: Path
) -> None:
    db, out = read_only_store, tmp_path / "out"
    out.mkdir()
    before = _snapshot(db.parent)
    names = sorted(COMMANDS)
    ran = _run_unprivileged([_args(name, db, out, real_store) for name in names])
    results = dict(zip(names, ran, strict=True))

    for name, result in results.items():
        assert result["crash"] is None, f"{name}: {result['crash']}"
        if name in WRITERS:
            _assert_refused(result["exit_code"], result["stdout"], result["stderr"], "is read-only")
        else:
            assert result["exit_code"] == 0, f"{name}: {result['stderr']}"
    assert _snapshot(db.parent) == before, "a read-only store changed, or got files beside it"
    assert "games of run" in str(results["show --list"]["stdout"])
    with Store(real_store.path, read_only=True) as store:
        games = store.count_episodes(real_store.tournament)
    assert len((out / "games.jsonl").read_text().splitlines()) == games
    assert (out / "report.html").read_text().lower().startswith("<!doctype html>")
    assert (out / "rounds.csv").read_text().startswith("arm,")


def test_a_wal_the_reader_cannot_use_is_named_not_skipped(
    tmp_path: Path, real_store: RealStore
) -> None:
    # Commits still in the -wal of a store in a read-only folder, without the -shm SQLite
    # needs to read them: reading the store file alone would silently miss them.
    home = tmp_path / "home"
    home.mkdir()
    db = home / "store.db"
    shutil.copyfile(real_store.path, db)
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE runs SET spec_json = spec_json")
    writer.commit()
    wal = (home / "store.db-wal").read_bytes()
    writer.close()
    (home / "store.db-wal").write_bytes(wal)
    (home / "store.db-shm").unlink(missing_ok=True)
    home.chmod(0o555)
    try:
        before = _snapshot(home)
        (result,) = _run_unprivileged([["show", "--list", "--db", str(db)]])
        assert result["crash"] is None, result["crash"]
        _assert_refused(
            result["exit_code"], result["stdout"], result["stderr"], "holds changes not yet in it"
        )
        assert _snapshot(home) == before
    finally:
        home.chmod(0o755)


# --- a full disk and a read-only filesystem: a small tmpfs -------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test; skipped where mounting is not allowed."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> None:
    with (disk / "filler").open("wb", buffering=0) as filler:
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    filler.write(b"\0" * chunk)
            except OSError:
                pass


def test_a_full_disk_refuses_writers_and_still_lets_readers_read(
    tmp_path: Path, real_store: RealStore, small_disk: Path
) -> None:
    db = small_disk / "store.db"
    shutil.copyfile(real_store.path, db)
    (small_disk / "games.jsonl").write_text("the previous export\n")
    _fill(small_disk)
    before = _snapshot(small_disk)
    out = tmp_path / "out"
    out.mkdir()

    for name in sorted(COMMANDS):
        result = CliRunner().invoke(app, _args(name, db, out, real_store))
        assert result.exception is None or isinstance(result.exception, SystemExit), name
        if name in WRITERS:
            _assert_refused(result.exit_code, result.stdout, result.stderr, "full")
        else:
            assert result.exit_code == 0, f"{name}: {result.stderr}"
        assert _snapshot(small_disk) == before, f"{name} changed the full disk"

    # An export onto the full disk: refused, the previous file whole, no temporary left.
    onto = CliRunner().invoke(
        app,
        ["export", real_store.tournament, "-o", str(small_disk / "games.jsonl"), "--db", str(db)],
    )
    _assert_refused(onto.exit_code, onto.stdout, onto.stderr, "No space left on device")
    assert (small_disk / "games.jsonl").read_text() == "the previous export\n"
    assert _snapshot(small_disk) == before

    # A new store on the full disk: refused, and no empty file or journal left behind.
    fresh = CliRunner().invoke(app, ["play", "-q", "--db", str(small_disk / "new.db")])
    _assert_refused(fresh.exit_code, fresh.stdout, fresh.stderr, "disk is full")
    assert _snapshot(small_disk) == before


def test_a_disk_that_fills_during_a_game_keeps_the_store_whole(
    real_store: RealStore, small_disk: Path
) -> None:
    # Room to open the store, not to finish a self-play run: it stops with one line, and
    # the store reads back whole, holding what was committed before.
    db = small_disk / "store.db"
    shutil.copyfile(real_store.path, db)
    _fill(small_disk)
    filler = small_disk / "filler"
    os.truncate(filler, filler.stat().st_size - 96 * 1024)
    with Store(db, read_only=True) as store:
        games_before = len(store.episodes())
    spec = _specs(small_disk.parent) / "selfplay.yaml"
    spec.write_text(SELFPLAY_SPEC.replace("lineages: 1", "lineages: 40"))

    result = CliRunner().invoke(app, ["selfplay", str(spec), "--db", str(db)])

    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    _assert_refused(result.exit_code, result.stdout, result.stderr, "full")
    filler.unlink()
    with Store(db) as store:
        assert len(store.episodes()) >= games_before
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # noqa: SLF001


def test_a_read_only_filesystem_is_read_and_never_written(
    tmp_path: Path, real_store: RealStore, small_disk: Path
) -> None:
    db = small_disk / "store.db"
    shutil.copyfile(real_store.path, db)
    remount = subprocess.run(
        ["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True
    )
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {remount.stderr.strip()}")
    before = _snapshot(small_disk)
    out = tmp_path / "out"
    out.mkdir()
    for name in sorted(COMMANDS):
        result = CliRunner().invoke(app, _args(name, db, out, real_store))
        assert result.exception is None or isinstance(result.exception, SystemExit), name
        if name in WRITERS:
            _assert_refused(result.exit_code, result.stdout, result.stderr, "is read-only")
        else:
            assert result.exit_code == 0, f"{name}: {result.stderr}"
    assert _snapshot(small_disk) == before
