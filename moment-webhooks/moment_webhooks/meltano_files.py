"""Meltano's plugin config files: private while a run uses them, gone when no run can.

Meltano 4 (``meltano/core/plugin/singer/base.py``) writes every Singer plugin's whole config,
secrets included, to ``<system dir>/run/<plugin>/<tap|target|mapper>.<uuid7>.config.json`` before
it starts the plugin, and removes it when the plugin ends. The file is opened with the process's
umask, so under the usual 022 it is readable by every user of the machine (0644); and a run
killed with SIGKILL (or stopped by a reboot) never removes it: one file per killed run.

The project's launchers (``moment-webhooks serve`` and ``run``, ``make demo``) therefore:

- start Meltano with umask 077 (:data:`PRIVATE_UMASK`), so the files it writes are 0600 and its
  folders 0700, and make ``<system dir>/run`` itself 0700;
- remove the config files left by runs that are over (:func:`remove_stale_config_files`), before
  and after each run.

A run may be going on beside ours (a webhook run and the daily job, or a run started by hand), so
a file is removed only when no live process can be using it. It is in use while:

- a live process names it on its command line (the plugin Meltano started, which may outlive a
  killed ``meltano``); or
- a live Meltano process of the same system directory started before the file was written (it
  may be the one that wrote it: still preparing the plugin, or a ``meltano invoke`` command whose
  arguments do not name the file). ``meltano invoke <plugin>`` counts only for its own plugin,
  and a Meltano process whose child already runs the plugin on another config file did not
  write this one (Meltano prepares one config file per plugin at a time).

The file's time is its modification time; a process is a Meltano process when its program is the
``meltano`` executable or it runs ``python -m meltano``. Only this user's processes count (another
user's cannot write into this user's run folder). Process details come from psutil (Meltano's own
dependency); a Meltano process whose environment or working directory cannot be read is taken as
one of the same system directory, so a doubt keeps the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Final

import psutil

logger = logging.getLogger(__name__)

PRIVATE_UMASK: Final = 0o077
CONFIG_GLOB: Final = "*.config.json"
# A process started up to this long after a file's time still counts as its possible writer
# (file and process clocks have different granularity).
CLOCK_MARGIN_SECONDS: Final = 2.0
# meltano's global options that take a value (``meltano --environment prod invoke …``).
_VALUED_OPTIONS: Final = frozenset(
    {"--environment", "--cwd", "--log-level", "--log-config", "--log-format", "--plugin-type"}
)


@dataclass(frozen=True)
class LiveProcess:
    """What the rule needs of a live process."""

    argv: tuple[str, ...]
    started: float
    # Meltano's system directory for a Meltano process; None when it cannot be known.
    sys_dir: Path | None
    pid: int = 0
    ppid: int = 0


def find_project_root(cwd: str | os.PathLike[str], env: Mapping[str, str]) -> Path | None:
    """The Meltano project a command run in ``cwd`` with ``env`` uses, as Meltano finds it."""
    if env.get("MELTANO_PROJECT_ROOT"):
        return Path(env["MELTANO_PROJECT_ROOT"]).resolve()
    here = Path(cwd).resolve()
    for folder in (here, *here.parents):
        if (folder / "meltano.yml").is_file():
            return folder
    return None


def system_dir(project_root: Path, env: Mapping[str, str]) -> Path:
    """Meltano's system directory (``MELTANO_SYS_DIR_ROOT``, default ``<project>/.meltano``)."""
    configured = env.get("MELTANO_SYS_DIR_ROOT")
    if not configured:
        return project_root / ".meltano"
    path = Path(configured)
    return (path if path.is_absolute() else project_root / path).resolve()


def prepare(cwd: str | os.PathLike[str], env: Mapping[str, str]) -> list[Path]:
    """Before and after a launcher's Meltano run: the run folder private, stale files gone.

    Never raises: tidying must not stop a run; a problem is logged. Returns the removed files.
    """
    try:
        project = find_project_root(cwd, env)
        if project is None:
            return []
        run_dir = system_dir(project, env) / "run"
        _make_private(run_dir)
        return remove_stale_config_files(run_dir, _live_processes())
    except (OSError, psutil.Error) as exc:
        logger.warning("could not tidy Meltano's run folder: %s", exc)
        return []


@contextmanager
def launching(cwd: str | os.PathLike[str], env: Mapping[str, str]) -> Iterator[None]:
    """Around a launcher's Meltano command (started with ``umask=PRIVATE_UMASK``): the run
    folder tidied before it starts and after it ends, however it ends (a killed or timed-out
    run leaves its config files: they go now)."""
    prepare(cwd, env)
    try:
        yield
    finally:
        prepare(cwd, env)


def remove_stale_config_files(run_dir: Path, processes: Sequence[LiveProcess]) -> list[Path]:
    """Remove the ``<plugin>/*.config.json`` under ``run_dir`` no live process can be using."""
    removed: list[Path] = []
    for path in sorted(run_dir.glob(f"*/{CONFIG_GLOB}")):
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:
            continue  # its run ended meanwhile
        if _in_use(path, written, run_dir.parent.resolve(), processes):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        logger.info(
            "removed %d config file(s) of Meltano runs that are over (they hold the plugins' "
            "settings, secrets included): %s",
            len(removed),
            ", ".join(str(p.relative_to(run_dir)) for p in removed),
        )
    return removed


def _in_use(path: Path, written: float, sys_dir: Path, processes: Sequence[LiveProcess]) -> bool:
    plugin = path.parent.name
    if any(path.name in arg for process in processes for arg in process.argv):
        return True
    # A Meltano process prepares one plugin at a time: one whose child already runs this plugin
    # on another config file did not write this one.
    running_this_plugin = {
        process.ppid for process in processes if _names_config_of(process.argv, plugin)
    }
    for process in processes:
        if not _is_meltano(process.argv) or process.started > written + CLOCK_MARGIN_SECONDS:
            continue
        if process.sys_dir is not None and process.sys_dir != sys_dir:
            continue  # another project, or a run with its own system directory
        if process.pid and process.pid in running_this_plugin:
            continue
        invoked = _invoked_plugin(process.argv)
        if invoked is None or invoked == plugin:
            return True
    return False


def _names_config_of(argv: Iterable[str], plugin: str) -> bool:
    """Whether a command line names a config file of ``plugin``'s run folder."""
    return any(arg.endswith(".config.json") and Path(arg).parent.name == plugin for arg in argv)


def _is_meltano(argv: Sequence[str]) -> bool:
    if any(Path(arg).name == "meltano" for arg in argv[:2]):
        return True
    return any(pair == ("-m", "meltano") for pair in pairwise(argv))


def _invoked_plugin(argv: Sequence[str]) -> str | None:
    """The plugin of ``meltano … invoke <plugin>[:command]``; None for any other command."""
    try:
        at = argv.index("invoke")
    except ValueError:
        return None
    rest = iter(argv[at + 1 :])
    for arg in rest:
        if arg in _VALUED_OPTIONS:
            next(rest, None)
        elif not arg.startswith("-"):
            return arg.split(":", 1)[0]
    return None


def _live_processes() -> list[LiveProcess]:
    """This user's live processes: another user's cannot write into this user's run folder."""
    processes: list[LiveProcess] = []
    uid = os.geteuid()
    for proc in psutil.process_iter():
        try:
            with proc.oneshot():
                if proc.uids().effective != uid:
                    continue
                argv = tuple(proc.cmdline())
                started = proc.create_time()
                sys_dir = _sys_dir_of(proc) if _is_meltano(argv) else None
                ppid = proc.ppid()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            continue  # hidden from this user (hidepid): not a run of this user's project
        processes.append(LiveProcess(argv, started, sys_dir, proc.pid, ppid))
    return processes


def _sys_dir_of(proc: psutil.Process) -> Path | None:
    """A Meltano process's system directory, from its environment and working directory."""
    try:
        env = proc.environ()
        cwd = _option(proc.cmdline(), "--cwd") or proc.cwd()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None
    project = find_project_root(cwd, env)
    return None if project is None else system_dir(project, env).resolve()


def _option(argv: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _make_private(run_dir: Path) -> None:
    """``run_dir`` 0700 (files of live runs written under another umask included)."""
    try:
        info = run_dir.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        run_dir.chmod(0o700)
