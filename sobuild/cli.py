"""The sobuild command line: stats, prune, prebuild, doctor, ls, show, verify, clear.

Tables are drawn with rich on a terminal and printed as plain aligned columns when piped;
``--json`` prints one JSON document. Errors are one line on stderr (``sobuild: error: ...``)
and a non-zero exit code: 1 for a failure, 2 for a bad argument. Commands that only read
never create a missing cache directory.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .config import Settings, format_size, parse_duration, parse_size
from .errors import SobuildError
from .store.store import Store

if TYPE_CHECKING:
    pass

app = typer.Typer(
    name="sobuild", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="sobuild: a content-addressed build cache for generated C++ kernels.",
)

CacheDirOption = Annotated[Path | None, typer.Option(
    "--cache-dir", envvar="SOBUILD_CACHE_DIR", show_envvar=True,
    help="The cache directory (default: the user cache directory, sobuild).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

#: Rows a terminal table shows before it says how many more there are.
TERMINAL_ROWS = 50


class UsageError(SobuildError):
    """A bad argument: exit code 2."""


# -- plumbing ---------------------------------------------------------------------------------

def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _terminal() -> bool:
    return _console().is_terminal


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line; the exception to raise for exit ``code``."""
    print(f"sobuild: error: {' '.join(message.split())}", file=sys.stderr)
    return typer.Exit(code)


def handled(command: Callable) -> Callable:
    """Turn sobuild's and the settings' errors into one line and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            raise fail(str(exc), 2) from None
        except BrokenPipeError:
            raise
        except (SobuildError, ValueError, OSError) as exc:  # the index's errors say what to do
            raise fail(str(exc) or type(exc).__name__, 1) from None
        except sqlite3.Error as exc:
            raise fail(f"the cache's index could not be used ({exc})", 1) from None

    return wrapper


def _settings(cache_dir: Path | None) -> Settings:
    try:
        return Settings.from_env(cache_dir)
    except ValueError as exc:  # SOBUILD_MAX_SIZE and friends
        raise UsageError(f"bad sobuild setting in the environment: {exc}") from None


def _size_arg(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _duration_arg(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _missing(store: Store, json_output: bool = False, empty: Any = None) -> bool:
    """True (after saying so) when there is no cache at ``store``."""
    if store.exists():
        return False
    if json_output:
        print(json.dumps(empty, indent=1))
    else:
        print(f"no sobuild cache at {store.root} (nothing has been built there yet)")
    return True


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                numeric: Iterable[str] = (), limit: int | None = TERMINAL_ROWS) -> None:
    """A rich table on a terminal; aligned plain columns (every row) when piped."""
    numeric = set(numeric)
    cells = [[str(c) for c in row] for row in rows]
    if _terminal():
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(c, justify="right" if c in numeric else "left")
        shown = cells if limit is None else cells[:limit]
        for row in shown:
            table.add_row(*row)
        _console().print(table)
        if len(shown) < len(cells):
            print(f"... and {len(cells) - len(shown)} more (pipe the output or use --json)")
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values):
        parts = [v.rjust(w) if c in numeric else v.ljust(w)
                 for v, w, c in zip(values, widths, columns)]
        return "  ".join(parts).rstrip()

    print(line(columns))
    for row in cells:
        print(line(row))


def print_fields(title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Name/value lines, as a rich grid on a terminal."""
    if _terminal():
        from rich.table import Table

        grid = Table(title=title, title_justify="left", show_header=False, box=None)
        grid.add_column(style="bold")
        grid.add_column()
        for name, value in fields:
            grid.add_row(name, value)
        _console().print(grid)
        return
    width = max(len(n) for n, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}")


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """``1 entry``, ``3 entries``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def _ago(when: float, now: float) -> str:
    seconds = max(0.0, now - when)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _compact_toolchain(name: str) -> str:
    """``gcc x86_64-linux-gnu-g++-12 (Debian 12.2.0-14) 12.2.0`` -> ``gcc 12.2.0``."""
    parts = name.split()
    return f"{parts[0]} {parts[-1]}" if len(parts) > 2 else name


# -- reading a cache --------------------------------------------------------------------------

def _store(settings: Settings) -> Store:
    """The cache a command works on (its index waits up to SOBUILD_SQLITE_TIMEOUT)."""
    return Store(settings.cache_dir, trust_group=settings.trust_group)


# -- commands ---------------------------------------------------------------------------------

def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"sobuild {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_print_version, is_eager=True,
        help="Print sobuild's version and exit.")] = False) -> None:
    """sobuild: a content-addressed build cache for generated C++ kernels."""


@app.command()
@handled
def stats(cache_dir: CacheDirOption = None, json_output: JsonOption = False,
          zero: Annotated[bool, typer.Option("--zero", help="Reset the counters (hits, misses, "
                                             "builds ...); keep the entries.")] = False) -> None:
    """Entries, size, hits, misses, builds, compile seconds spent and saved, per toolchain."""
    settings = _settings(cache_dir)
    store = _store(settings)
    if zero:
        if store.reset_counters():
            print(f"counters reset at {store.root} (entries kept)")
        else:
            print(f"no counters to reset at {store.root}")
        return
    s = store.stats(settings.max_size)
    if json_output:
        print(json.dumps(s, indent=1))
        return
    if not s["exists"]:
        print(f"no sobuild cache at {store.root} (nothing has been built there yet)")
        return
    c = s["data"]
    kinds = ", ".join(f"{n['namespace']} {n['entries']}" for n in c["namespaces"])
    print_fields("sobuild cache", [
        ("cache directory", s["cache_dir"]),
        ("entries", f"{s['entries']} ({_n(s['shared_objects'], 'shared object')} holding "
                    f"{_n(s['kernels'], 'kernel')}, "
                    f"{_n(s['data_entries'], 'data entry', 'data entries')})"),
        ("size", f"{format_size(s['bytes'])} of {format_size(s['max_size'])} "
                 "(SOBUILD_MAX_SIZE)"),
        ("hits", str(s["hits"])),
        ("misses", str(s["misses"])),
        ("hit rate", f"{100 * s['hit_rate']:.1f} %"),
        ("builds", f"{s['builds']} kernels, {s['build_seconds']:.2f} s compiling"),
        ("saved", f"{s['saved_seconds']:.2f} s of compiling, by hits"),
        ("errors", f"{s['build_errors']} build errors, {s['corrupt']} corrupt entries"),
        ("data entries", f"{c['entries']} ({format_size(c['bytes'])}"
                         + (f": {kinds}" if kinds else "") + f"), {c['hits']} hits, "
                         f"{c['misses']} misses, {c['bypasses']} bypasses, "
                         f"{c['saved_seconds']:.2f} s saved"),
    ])
    if len(s["tiers"]) > 1:
        print()
        print_table("per tier", ["tier", "hits", "misses", "errors", "refused", "in", "out"],
                    [[t["tier"], t["hits"], t.get("misses", "-"), t.get("errors", "-"),
                      t.get("refused", "-"),
                      format_size(t["bytes_in"]) if "bytes_in" in t else "-",
                      format_size(t["bytes_out"]) if "bytes_out" in t else "-"]
                     for t in s["tiers"]],
                    numeric={"hits", "misses", "errors", "refused", "in", "out"})
    if s["toolchains"]:
        print()
        print_table("per toolchain",
                    ["toolchain", "shared objects", "kernels", "size", "compile s", "hits",
                     "saved s"],
                    [[t["toolchain"], t["shared_objects"], t["kernels"], format_size(t["bytes"]),
                      f"{t['build_seconds']:.2f}", t["hits"], f"{t['saved_seconds']:.2f}"]
                     for t in s["toolchains"]],
                    numeric={"shared objects", "kernels", "size", "compile s", "hits",
                             "saved s"})


@app.command()
@handled
def prune(cache_dir: CacheDirOption = None,
          max_size: Annotated[str | None, typer.Option(
              "--max-size", help="Evict least recently used entries until the cache fits "
              "(500M, 2G; default SOBUILD_MAX_SIZE).")] = None,
          older_than: Annotated[str | None, typer.Option(
              "--older-than", help="Evict entries unused for longer than this (12h, 30d).")
          ] = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed; "
                                                "remove nothing.")] = False,
          json_output: JsonOption = False) -> None:
    """Evict entries by age and least recent use; say what was freed."""
    settings = _settings(cache_dir)
    size = _size_arg(max_size, "--max-size")
    age = _duration_arg(older_than, "--older-than")
    if size is None and age is None:
        size = settings.max_size
    store = _store(settings)
    empty = {"removed": [], "before": 0, "after": 0, "freed": 0, "dry_run": dry_run}
    if _missing(store, json_output, empty):
        return
    result = store.prune(size, age, dry_run)
    if json_output:
        print(json.dumps({"removed": [v.__dict__ for v in result.victims],
                          "before": result.before, "after": result.after,
                          "freed": result.freed, "dry_run": dry_run,
                          "temp_removed": result.temp_removed}, indent=1))
        return
    now = time.time()
    verb = "would remove" if dry_run else "removed"
    if result.victims:
        print_table(f"{verb}:", ["entry", "kind", "size", "last used", "reason"],
                    [[v.id, v.kind, format_size(v.bytes), _ago(v.last_use, now), v.reason]
                     for v in result.victims], numeric={"size"})
    temp = (f"; {_n(result.temp_removed, 'leftover')} of crashed processes removed"
            if result.temp_removed else "")
    print(f"{verb} {_n(len(result.victims), 'entry', 'entries')}, freeing {format_size(result.freed)}: "
          f"{format_size(result.before)} -> {format_size(result.after)}{temp}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@handled
def prebuild(script: Annotated[Path, typer.Argument(help="The Brian2 script to run.")],
             args: Annotated[list[str] | None, typer.Argument(
                 help="Arguments for the script (its sys.argv[1:]).")] = None,
             into: Annotated[str | None, typer.Option(
                 "--into", help="Fill this cache directory (a shared tier, say) instead of "
                 "the default one; or a remote tier's URL (redis://, http(s)://): what the "
                 "script builds or finds in the local cache is uploaded there.")] = None,
             target: Annotated[str | None, typer.Option(
                 "--target", help="Force this Brian2 target for every run (default: "
                 "'sobuild', unless the script chooses another).")] = None) -> None:
    """Run a Brian2 script in build-only mode: build every run()'s code, simulate nothing.

    The cache is SOBUILD_CACHE_DIR's (or the script's own choice), unless --into says.
    """
    if not script.is_file():
        raise UsageError(f"{script}: no such script")
    # the adapter's import would build its support library in the background into the
    # default cache; here the cache is --into's, chosen after the import
    os.environ["SOBUILD_BRIAN_PREWARM"] = "0"
    from .brian_adapter.prebuild import prebuild as run_prebuild

    directory = _remote_target(into)
    result = _with_progress(lambda progress: run_prebuild(script, args or [], into=directory,
                                                          target=target, progress=progress))
    c = result.counters
    print(f"prebuild of {script}: {result.runs} run(s), {result.code_objects} code objects")
    print(f"  kernels: {int(c.get('builds', 0))} built ({c.get('build_seconds', 0):.2f} s of "
          f"compiling), {int(c.get('hits', 0))} already cached, "
          f"{int(c.get('build_errors', 0))} failed")
    print(f"  data entries (Brian2's code generation): {int(c.get('data_stored', 0))} stored, "
          f"{int(c.get('data_hits', 0))} hits")
    print(f"  cache: {result.cache_dir}")
    for name, value in sorted(c.items()):
        if name.startswith("remote ") and name.endswith((" uploads", " errors")):
            print(f"  {name}: {int(value)}")
    if not result.ok:
        sys.stderr.write(result.traceback)
        raise fail(f"{script} failed: {result.error} (what was built before is kept)")


def _remote_target(into: str | None) -> Path | None:
    """``--into``'s directory; for a remote tier's URL, None, with that tier configured to
    receive everything the run builds or finds (ccache's ``reshare``)."""
    if into is None or "://" not in into:
        return Path(into) if into is not None else None
    from .config import parse_remotes
    from .remote.signing import signer_from_env

    try:
        (remote,) = parse_remotes(into)
    except ValueError as exc:
        raise UsageError(f"--into: {exc}") from None
    if remote.read_only or signer_from_env() is None:
        raise UsageError("--into URL uploads signed entries: set SOBUILD_REMOTE_SECRET_FILE to "
                         "the team secret (and do not mark the URL |read-only)")
    os.environ["SOBUILD_REMOTE"] = into + ("" if remote.reshare else "|reshare")
    return None


def _with_progress(job: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Run ``job(progress)`` with a progress bar of builds on stderr (lines when piped)."""
    err = _console(stderr=True)
    if not err.is_terminal:
        def lines(done: int, total: int) -> None:
            if done == 0:
                print(f"building {total} translation unit(s)", file=sys.stderr)
            else:
                print(f"built {done}/{total}", file=sys.stderr)

        return job(lines)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        state: dict[str, Any] = {"task": None, "builds": 0}

        def update(done: int, total: int) -> None:
            if state["task"] is None or done == 0:
                state["builds"] += 1
                state["task"] = bar.add_task(f"build {state['builds']}: compiling", total=total)
            bar.update(state["task"], completed=done, total=total)

        return job(update)


@app.command()
@handled
def doctor(cache_dir: CacheDirOption = None) -> None:
    """Check the toolchains, the cache directory, its filesystem and index, Brian2."""
    from .doctor import run_checks

    checks = run_checks(cache_dir)
    print_table("sobuild doctor", ["check", "status", "detail"],
                [[c.name, c.status, c.detail] for c in checks], limit=None)
    broken = [c for c in checks if c.status == "FAIL"]
    for c in checks:
        if c.todo and c.status != "ok":
            print(f"{c.name}: {c.todo}")
    if broken:
        raise fail(f"{len(broken)} problem(s): " + "; ".join(c.name for c in broken))


@app.command("ls")
@handled
def list_entries(cache_dir: CacheDirOption = None, json_output: JsonOption = False) -> None:
    """The entries, most recently used first."""
    store = _store(_settings(cache_dir))
    if _missing(store, json_output, []):
        return
    rows = store.entries().rows
    rows.sort(key=lambda r: (-r["last_use"], r["id"]))
    if json_output:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        print(f"the cache at {store.root} is empty")
        return
    now = time.time()
    terminal = _terminal()
    print_table(f"{len(rows)} entries in {store.root}",
                ["entry", "kind", "size", "kernels", "toolchain", "compile s", "hits",
                 "last used"],
                [[r["id"][:12] if terminal else r["id"], r["kind"], format_size(r["bytes"]),
                  r["kernels"], _compact_toolchain(r["toolchain"]) or "-",
                  f"{r['build_seconds']:.2f}", r["hits"], _ago(r["last_use"], now)]
                 for r in rows],
                numeric={"size", "kernels", "compile s", "hits"})


@app.command()
@handled
def show(key: Annotated[str, typer.Argument(help="An artifact digest, kernel key or data "
                                            "key; a unique prefix is enough.")],
         cache_dir: CacheDirOption = None) -> None:
    """An entry's meta data, source and build log (a kernel that failed to build, too)."""
    store = _store(_settings(cache_dir))
    if _missing(store):
        raise typer.Exit(1)
    key = key.strip().lower()
    if len(key) < 2 or any(ch not in "0123456789abcdef" for ch in key):
        raise UsageError(f"{key!r} is not a key prefix: give at least 2 hex digits "
                         "(see `sobuild ls`)")
    found = store.find(key)
    if not found:
        raise fail(f"no entry starts with {key} in {store.root} (see `sobuild ls`)")
    if len(found) > 1:
        names = ", ".join(f"{e.kind} {e.id}" for e in found[:5])
        raise fail(f"{key} is ambiguous ({len(found)} entries: {names}): give more digits")
    entry = found[0]
    for title, text, language in entry.sections():
        _print_section(title, text, language)


def _print_section(title: str, text: str, language: str | None) -> None:
    if _terminal():
        from rich.rule import Rule
        from rich.syntax import Syntax

        console = _console()
        console.print(Rule(title, align="left"))
        console.print(Syntax(text, language) if language else text, markup=False)
        return
    print(f"== {title}")
    print(text.rstrip("\n"))


@app.command()
@handled
def verify(cache_dir: CacheDirOption = None,
           repair: Annotated[bool, typer.Option("--repair", help="Remove what is broken and "
                                                "rebuild the index from the files.")] = False
           ) -> None:
    """Check digests, kernel keys, data entries, orphaned temp dirs and the index."""
    from .store.verify import relative
    from .store.verify import repair as repair_store
    from .store.verify import verify as verify_store

    store = _store(_settings(cache_dir))
    if _missing(store):
        return
    report = verify_store(store)
    pchs = (f", {_n(report.precompiled_headers, 'precompiled header')}"
            if report.precompiled_headers else "")
    print(f"checked {_n(report.artifacts, 'shared object')}, {_n(report.kernels, 'kernel key')}, "
          f"{_n(report.data, 'data entry', 'data entries')}{pchs} in {store.root}")
    if report.problems:
        print_table(f"{len(report.problems)} problem(s)", ["problem", "where", "detail"],
                    [[p.kind, relative(store.root, p.path), p.detail] for p in report.problems])
    if repair:
        done = repair_store(store, report)
        print(f"repaired: removed {_n(done['removed'], 'broken entry', 'broken entries')}; the "
              f"index was rebuilt from the files ({_n(done['artifacts'], 'entry', 'entries')}, "
              f"{_n(done['keys'], 'kernel key')})")
        return
    if report.problems and all(p.kind == "index locked" for p in report.problems):
        raise fail(report.problems[0].detail)
    if report.problems:
        raise fail(f"{len(report.problems)} problem(s) found: `sobuild verify --repair` removes "
                   "the broken entries and rebuilds the index")
    print("no problems found")


@app.command()
@handled
def clear(cache_dir: CacheDirOption = None,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
          failed: Annotated[bool, typer.Option(
              "--failed", help="Remove only the remembered build failures, so that those "
                               "kernels are built again.")] = False) -> None:
    """Remove every entry (kernels, shared objects, data entries, failed builds, precompiled
    headers)."""
    from .store.prune import pch_rows

    store = _store(_settings(cache_dir))
    if _missing(store):
        return
    if failed:
        count = store.forget_failures()
        print(f"removed {_n(count, 'remembered build failure')} from {store.root}: those "
              "kernels are built again on their next load")
        return
    if not yes and not typer.confirm(f"remove every entry of the cache at {store.root}?"):
        raise fail("nothing removed (answer y, or pass --yes)")
    before = sum(r["bytes"] for r in [*store.entries().rows, *pch_rows(store.layout)])
    counts = store.clear()
    pchs = f", {_n(counts['pch'], 'precompiled header')}" if counts["pch"] else ""
    print(f"removed {_n(counts['shared_objects'], 'shared object')}, "
          f"{_n(counts['kernels'], 'kernel key')}, "
          f"{_n(counts['data'], 'data entry', 'data entries')}{pchs} and "
          f"{_n(counts['failed'], 'failed build')} from {store.root}, "
          f"freeing {format_size(before)}")


def main() -> None:
    """The ``sobuild`` console script."""
    try:
        app()
    except BrokenPipeError:  # `sobuild ls | head`: the reader has gone; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


__all__ = ["app", "main"]
