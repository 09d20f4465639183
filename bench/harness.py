"""The bench's workbench: sandboxes, plugin processes and what the Fortnox request log says.

Owns starting both sandboxes (``sandbox.launcher.SandboxProcess``) in one work folder, seeding them
at bench sizes (big seeds take longer than ``SandboxProcess.admin``'s 30 s, so seeding has its own
call), building the plugins' config files for the two contenders (ours: the client-side limiter on;
the baseline: limiter off and singer-sdk's default retry on 429), running the real plugin
executables as child processes (``tap | target`` pipes, a tap alone, a tap under the RSS meter, or
several of those started at the same moment) and turning the sandbox's request log into figures
(requests, writes, 429s, sustained rate, busiest window, overlap).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.launcher import SandboxProcess

BIN = Path(sys.executable).parent
WINDOW_SECONDS = 5.0
# singer-sdk's RESTStream defaults (backoff_wait_generator = expo(factor=2), backoff_max_tries = 5,
# full jitter, no time cap): what a straightforward SDK plugin does on a 429.
SDK_RETRY = {"max_tries": 5, "retry_base_seconds": 2.0, "max_retry_seconds": 3600.0}
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


def post_json(url: str, body: Any, timeout: float = 900.0) -> Any:
    """POST JSON and decode the answer; for admin calls that may outlast the launcher's 30 s."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


@dataclass
class Contender:
    """One way of running the plugins: ours (limiter on) or the naive baseline."""

    name: str
    limiter: bool

    def fortnox_settings(self, limit: int) -> dict[str, Any]:
        if self.limiter:
            return {"max_requests_per_5s": limit}
        return {"max_requests_per_5s": 0, **SDK_RETRY}


OURS = Contender("ours", limiter=True)
BASELINE = Contender("baseline", limiter=False)


@dataclass
class RunResult:
    """One plugin run: wall time, the Fortnox requests it made and the summary it wrote."""

    seconds: float
    requests: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    records_out: int = 0
    error: str = ""  # set when a run allowed to fail (the baseline's) failed

    @property
    def api_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if str(r.get("path", "")).startswith("/3/")]

    @property
    def total(self) -> int:
        return len(self.api_requests)

    @property
    def refused(self) -> int:
        return sum(1 for r in self.api_requests if r.get("status") == 429)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.api_requests if r.get("status") != 429]

    @property
    def writes(self) -> int:
        return sum(1 for r in self.accepted if r.get("method") in WRITE_METHODS)

    @property
    def reads(self) -> int:
        return sum(1 for r in self.accepted if r.get("method") == "GET")

    def count(self, method: str, path_prefix: str, *, single: bool | None = None) -> int:
        """Accepted requests of ``method`` under ``path_prefix``; ``single`` = by-key GETs only."""
        found = 0
        for r in self.accepted:
            path = str(r.get("path", ""))
            if r.get("method") != method or not path.startswith(path_prefix):
                continue
            is_single = path.rstrip("/") != path_prefix.rstrip("/")
            if single is None or single == is_single:
                found += 1
        return found

    def summary_total(self, outcome: str) -> int:
        streams = self.summary.get("streams", {})
        return sum(int(s.get(outcome, 0)) for s in streams.values())

    def summary_429s(self) -> int:
        return int((self.summary.get("requests") or {}).get("rate_limited", 0))


@dataclass
class AtOnce:
    """Runs started together: each run (its own requests) and the whole period's request log."""

    runs: list[RunResult]
    period: RunResult  # every request between the first start and the last end; its wall time

    @property
    def succeeded(self) -> int:
        return sum(1 for run in self.runs if not run.error)


def arrival(request: dict[str, Any]) -> float:
    """When a request reached the server, as the Fortnox sandbox's limiter counted it.

    That is the instant the limiter counted it (``arrived``), so windows are counted here as the
    limiter counted them; else the answer's stamp less the handling time (a request refused
    before the limiter, e.g. a 401).
    """
    if request.get("arrived") is not None:
        return float(request["arrived"])
    return float(request["time"]) - float(request.get("ms") or 0) / 1000


def arrivals(requests: Iterable[dict[str, Any]]) -> list[float]:
    """When each accepted request reached the server, in order."""
    return sorted(arrival(r) for r in requests if r.get("status") != 429)


def sustained_rate(requests: Iterable[dict[str, Any]]) -> float:
    """Accepted requests per second: the least-squares slope of the request count over time.

    A sliding-window limiter sends in bursts (a window's worth at once, then a pause); the slope
    averages the bursts out, so a bursty and an even sender at the same rate get the same figure,
    and a partial first or last window barely moves it (unlike first-to-last arrival).
    """
    times = arrivals(requests)
    if len(times) < 2:
        return 0.0
    mean_t = sum(times) / len(times)
    mean_i = (len(times) - 1) / 2
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (i - mean_i) for i, t in enumerate(times)) / spread


def own_requests(
    requests: Iterable[dict[str, Any]], paths: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The requests under one of ``paths``: one process's share of a log that several wrote to.

    Processes started at once share one client and tenant, so the sandbox's log cannot tell them
    apart by caller; the resources each one uses can (e.g. customers vs supplier invoices).
    """
    return [r for r in requests if str(r.get("path", "")).startswith(paths)]


def overlap_seconds(first: Iterable[dict[str, Any]], second: Iterable[dict[str, Any]]) -> float:
    """Seconds during which both logs' requests were arriving (refused ones included); 0 if none."""
    spans = []
    for requests in (first, second):
        times = [arrival(r) for r in requests]
        if not times:
            return 0.0
        spans.append((min(times), max(times)))
    return max(0.0, min(end for _, end in spans) - max(start for start, _ in spans))


def busiest_window(requests: Iterable[dict[str, Any]], window: float = WINDOW_SECONDS) -> int:
    """Most accepted requests that arrived within any ``window`` seconds (the server's view)."""
    times = arrivals(requests)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def windows_at_the_limit(
    requests: Iterable[dict[str, Any]], limit: int, window: float = WINDOW_SECONDS
) -> tuple[int, int]:
    """``(windows holding ≥ 95 % of limit accepted arrivals, whole windows)``.

    The windows are back-to-back ``window``-second windows from the first arrival. Few full
    windows with no 429 mean the machine, not the limiter, set the pace (a CPU-starved run).
    """
    times = arrivals(requests)
    if not times:
        return 0, 0
    whole = int((times[-1] - times[0]) // window)
    counts = Counter(int((t - times[0]) // window) for t in times)
    return sum(1 for i in range(whole) if counts[i] >= 0.95 * limit), whole


class Bench:
    """Both sandboxes in ``workdir`` and the plugin runs against them."""

    def __init__(self, workdir: Path, limit: int) -> None:
        self.workdir, self.limit = workdir, limit
        self.fortnox = SandboxProcess(
            "fortnox", workdir / "fortnox.db", seed=1, extra_args=["--max-requests-per-5s", "0"]
        )
        self.moment = SandboxProcess("moment", workdir / "moment.db", seed=1)
        self.token_store = workdir / "fortnox-token.json"
        self._refresh_seed: str | None = None
        self._last_run_ended = 0.0

    def __enter__(self) -> Bench:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.fortnox.start()
        self.moment.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.moment.stop()
        self.fortnox.stop()

    # --- sandboxes -------------------------------------------------------------------------------

    def seed_fortnox(self, **sizes: int) -> dict[str, Any]:
        sizes = {"customers": 0, "supplierinvoices": 0, "moment_projects": 20, **sizes}
        answer: dict[str, Any] = post_json(
            f"{self.fortnox.url}/_sandbox/seed", {"seed": 1, **sizes}
        )
        return answer

    def seed_moment(self, **sizes: int) -> dict[str, Any]:
        sizes = {"customers": 0, "projects": 0, "invoices": 0, "expenses": 0, **sizes}
        answer: dict[str, Any] = post_json(f"{self.moment.url}/_sandbox/seed", {"seed": 1, **sizes})
        return answer

    def server_limit(self, on: bool) -> None:
        """The Fortnox sandbox's own limiter: the bench's scaled limit, or off for set-up runs."""
        value = self.limit if on else 0
        request = urllib.request.Request(
            f"{self.fortnox.url}/_sandbox/settings",
            data=json.dumps({"max_requests_per_5s": value}).encode(),
            method="PATCH",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    def settle(self) -> None:
        """Let the server's 5 s window empty before the next plugin process starts.

        Scheduled runs are minutes apart; the bench waits out the window so each run is measured
        alone (its rate, requests and 429s not mixed with the previous run's). Ours would wait by
        itself (fortnox-client's window shared between processes shows a new process the previous
        one's requests still in Fortnox's window); the baseline has its limiter off and would not.
        """
        remaining = self._last_run_ended + WINDOW_SECONDS + 0.2 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def finished(
        self, name: str, seq: int, paths: tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        """Mark the end of a run; keep and return the requests it made (also as a JSON file).

        ``paths``: only the requests under these (a run sharing the log with another one).
        """
        self._last_run_ended = time.monotonic()
        found = self.requests_since(seq)
        if paths is not None:
            found = own_requests(found, paths)
        (self.workdir / "logs").mkdir(exist_ok=True)
        (self.workdir / "logs" / f"{name}-requests.json").write_text(json.dumps(found))
        return found

    def at_once(self, name: str, *runs: Callable[[], RunResult]) -> AtOnce:
        """Start ``runs`` at the same moment, each in a thread, and wait for all of them.

        Each run is a ``pipeline(...)`` or ``expenses_tap(...)`` call with ``settle=False`` and
        ``paths`` naming the resources it uses (so each keeps its own requests); the bench settles
        once before all of them. Returns the runs and every request of the period between the
        first start and the last end, whichever process made it.
        """
        self.settle()
        seq = self.log_seq()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            futures = [pool.submit(run) for run in runs]
            results = [future.result() for future in futures]
        seconds = time.monotonic() - started
        return AtOnce(results, RunResult(seconds=seconds, requests=self.finished(name, seq)))

    def log_seq(self) -> int:
        return int(self.fortnox.admin("GET", "requests?since=999999999999")["last"])

    def requests_since(self, seq: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.fortnox.admin("GET", f"requests?since={seq}")["requests"]
        return found

    # --- configs ---------------------------------------------------------------------------------

    def fortnox_config(
        self, results: Path, contender: Contender, *, limiter: bool = True, **extra: Any
    ) -> dict[str, Any]:
        config: dict[str, Any] = {
            "api_url": f"{self.fortnox.url}/3",
            "token_url": f"{self.fortnox.url}/oauth-v1/token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "token_store_path": str(self.token_store),
            "results_dir": str(results),
        }
        if not self.token_store.exists():
            # Stands in for the one-time consent; the token store rotates it from then on.
            if self._refresh_seed is None:
                self._refresh_seed = self.fortnox.admin("POST", "refresh-tokens", {})[
                    "refresh_token"
                ]
            config["refresh_token"] = self._refresh_seed
        if limiter:
            config.update(contender.fortnox_settings(self.limit))
        else:
            config["max_requests_per_5s"] = 0  # set-up runs: as fast as the machine goes
        config.update(extra)
        return config

    def moment_config(self, **extra: Any) -> dict[str, Any]:
        return {
            "api_url": f"{self.moment.url}/api/1.0",
            "company_code": "demo",
            "api_key": "sandbox-key",
            "results_dir": str(self.workdir / "results"),  # the tap's run summaries
            **extra,
        }

    def write_config(self, name: str, config: dict[str, Any]) -> Path:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    # --- runs ------------------------------------------------------------------------------------

    def pipeline(
        self,
        name: str,
        target_config: dict[str, Any],
        *,
        state: dict[str, Any] | None = None,
        tap_config: dict[str, Any] | None = None,
        settle: bool = True,
        paths: tuple[str, ...] | None = None,
        allow_failure: bool = False,
    ) -> RunResult:
        """``tap-moment | target-fortnox``; returns the run with its final STATE.

        ``settle=False`` starts at once, while the previous run's requests may still be in the
        server's window (a webhook-triggered run right after another, or runs started together by
        :meth:`at_once`); ``paths``: see :meth:`finished`.
        """
        tap_path = self.write_config(f"{name}-tap", tap_config or self.moment_config())
        target_path = self.write_config(f"{name}-target", target_config)
        tap_cmd = [str(BIN / "tap-moment"), "--config", str(tap_path)]
        if state:
            state_path = self.write_config(f"{name}-state", state)
            tap_cmd += ["--state", str(state_path)]
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        if settle:
            self.settle()
        seq = self.log_seq()
        started = time.monotonic()
        with (
            open(logs / f"{name}-tap.log", "w") as tap_err,
            open(logs / f"{name}-target.log", "w") as target_err,
        ):
            tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=tap_err)
            target = subprocess.run(
                [str(BIN / "target-fortnox"), "--config", str(target_path)],
                stdin=tap.stdout,
                stdout=subprocess.PIPE,
                stderr=target_err,
                text=True,
                check=False,
            )
            if tap.stdout is not None:
                tap.stdout.close()
            tap_code = tap.wait()
        seconds = time.monotonic() - started
        error = ""
        if tap_code or target.returncode:
            error = (
                f"{name}: tap-moment exited {tap_code}, target-fortnox {target.returncode}; "
                f"see {logs}/{name}-*.log"
            )
            if not allow_failure:
                raise RuntimeError(error)
        return RunResult(
            error=error,
            seconds=seconds,
            requests=self.finished(name, seq, paths),
            summary=latest_summary(Path(target_config["results_dir"]), "target-fortnox"),
            state=last_state(target.stdout),
        )

    def expenses_tap(
        self,
        name: str,
        config: dict[str, Any],
        state: dict[str, Any] | None = None,
        *,
        settle: bool = True,
        paths: tuple[str, ...] | None = None,
        allow_failure: bool = False,
    ) -> RunResult:
        """``tap-fortnox-expenses``; its records are counted, its last STATE kept.

        ``settle`` and ``paths``: as for :meth:`pipeline`.
        """
        cmd = [str(BIN / "tap-fortnox-expenses"), "--config", str(self.write_config(name, config))]
        if state:
            cmd += ["--state", str(self.write_config(f"{name}-state", state))]
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        if settle:
            self.settle()
        seq = self.log_seq()
        started = time.monotonic()
        with open(logs / f"{name}.log", "w") as err:
            done = subprocess.run(cmd, capture_output=False, stdout=subprocess.PIPE, stderr=err)
        seconds = time.monotonic() - started
        error = f"{name}: tap-fortnox-expenses exited {done.returncode}" if done.returncode else ""
        if error and not allow_failure:
            raise RuntimeError(f"{error}; see {logs}/{name}.log")
        out = done.stdout.decode()
        records = sum(
            1 for line in out.splitlines() if line.startswith('{"type":"RECORD"')
        ) or out.count('"type": "RECORD"')
        return RunResult(
            error=error,
            seconds=seconds,
            requests=self.finished(name, seq, paths),
            summary=latest_summary(Path(config["results_dir"]), "tap-fortnox-expenses"),
            state=last_state(out),
            records_out=records,
        )

    def tap_moment_rss(self, name: str, config: dict[str, Any]) -> tuple[int, float, int]:
        """(peak RSS in bytes, seconds, records) of tap-moment with its output counted."""
        path = self.write_config(name, config)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bench.rss", str(BIN / "tap-moment"), "--config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
        seconds = time.monotonic() - started
        if done.returncode:
            raise RuntimeError(f"{name}: tap-moment under bench.rss failed: {done.stderr[-2000:]}")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        return int(measured["peak_rss_bytes"]), seconds, int(measured["records"])


def last_state(singer_output: str) -> dict[str, Any]:
    """The last state in a tap's output (STATE messages) or a target's (bare state lines)."""
    state: dict[str, Any] = {}
    for line in singer_output.splitlines():
        if not line.startswith("{") or ("STATE" not in line and "bookmarks" not in line):
            continue
        message = json.loads(line)
        if message.get("type") == "STATE":
            state = message.get("value") or {}
        elif "type" not in message:
            state = message
    return state


def latest_summary(results_dir: Path, plugin: str) -> dict[str, Any]:
    """The newest run summary of ``plugin`` in ``results_dir``, {} when there is none."""
    files = sorted((results_dir / "runs").glob(f"*-{plugin}.json"))
    return json.loads(files[-1].read_text()) if files else {}
