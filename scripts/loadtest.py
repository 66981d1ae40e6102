"""Load test: N clients x M mixed requests against a running MedEdit app, through gradio_client.

    python scripts/loadtest.py --clients 8 --requests 25            # starts `python app.py` itself
    python scripts/loadtest.py --url http://127.0.0.1:7860/ --pid PID  # an app already running
    python scripts/loadtest.py --clients 8 --requests 125 --checkpoints 200,1000 --no-replay  # memory
    python scripts/loadtest.py --clients 8 --requests 25 --uploads  # with /edit_image of one shared file
    python scripts/loadtest.py --clients 8 --requests 25 --largest 2  # and the largest series accepted
    python scripts/loadtest.py --clients 8 --requests 25 --uploads --timeline  # and each request's steps

Each client runs its own sequence of /generate, /edit, /series and /export requests, drawn from a
small pool of seeds and prompts so that identical requests meet (the case where a shared result
file could be rewritten while another client downloads it). With --uploads, /edit_image joins the
mix, every client sending the same PNG: twin uploads, which gradio stores under one path. With
--largest N, one more client sends N of the largest series the server's budget accepts (embedding
and latent in turn, scripts/app_timings.largest_series) while the mix runs: do they end within the
time limit, and how long does a plain /edit take meanwhile? Every file a response names is read
back whole: a PNG must decode, a GIF must hold its frames, a ZIP must pass its own CRCs and the
manifest's sha256 list. Afterwards every distinct request is replayed sequentially by one client,
on a fresh server when the load test started its own (so no cached result is reused), and each
concurrent answer must be bitwise equal (decoded pixels) to its replay.

Reported (JSON on stdout, a summary on stderr): errors, empty or truncated files, mismatches,
latency percentiles per endpoint, where a plain /edit's time went (each answer's own timing, from
the server: outside the handler, i.e. gradio's queue and the transfers, as the client's time less
the server's; then the wait for the device, and of it behind series and exports; computing;
writing; the slowest edit's parts apart), how many requests the server refused as over its budget or
stopped at its time limit, and the server's resident memory (VmRSS from /proc) before the load, at
every fifth of it, at its peak, at the end, and the moment the n-th request of each --checkpoints
finished (with the last checkpoint's level as a ratio of the first: does memory keep growing once
the caches are full?). With --timeline, when the client saw each request queued, started and
completed, and had its files: a plain /edit's time outside its handler told apart as gradio's queue,
its slot (pre- and postprocessing, the SSE stream) and the download. Exit code 1 when anything failed.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client, handle_file
from gradio_client.utils import Status, StatusUpdate
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("generate", "edit", "series", "export")
UPLOAD_KIND = "edit_image"  # with --uploads
LARGEST_KIND = "largest_series"  # with --largest: a /series at the server's budget
SOURCES = (  # (source prompts, the edit) pairs every model understands
    ({"anatomy": "a dermoscopic image with melanocytic nevus (NV)", "style": "light skin, no artifacts"},
     {"to_anatomy": "", "to_style": "light skin, with hairs visible on skin", "sliders": '{"hair": 1.0}'}),
    ({"anatomy": "a frontal chest x-ray, normal lungs", "style": "PA view"},
     {"to_anatomy": "a frontal chest x-ray with pleural effusion", "to_style": "", "sliders": ""}),
)


BUDGET_MESSAGE = "too much work for this server"  # app/serving.check_budget's refusal
TIME_LIMIT_MESSAGE = "time limit per request"  # app/device.Turn.stop's message


class BadFile(Exception):
    """A file a response names that is missing, empty, truncated or corrupt."""


# --- reading responses back -------------------------------------------------------------------

def image_digest(image: Image.Image) -> str:
    return hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()


def png_digest(path) -> str:
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise BadFile(f"{path.name}: missing or empty")
    try:
        with Image.open(path) as image:
            image.load()
            if image.format != "PNG":
                raise BadFile(f"{path.name}: {image.format}, not PNG")
            return image_digest(image)
    except (OSError, SyntaxError) as error:
        raise BadFile(f"{path.name}: {error}") from None


def gif_digest(path) -> str:
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise BadFile(f"{path.name}: missing or empty")
    digest = hashlib.sha256()
    try:
        with Image.open(path) as gif:
            for index in range(gif.n_frames):
                gif.seek(index)
                digest.update(image_digest(gif.convert("RGB")).encode())
    except (OSError, SyntaxError, EOFError) as error:
        raise BadFile(f"{path.name}: {error}") from None
    return digest.hexdigest()


def zip_digest(path) -> str:
    """The decoded pixels of every PNG in the ZIP, after its CRCs and manifest hashes check out."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise BadFile(f"{path.name}: missing or empty")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                raise BadFile(f"{path.name}: a member fails its CRC")
            manifest = json.loads(archive.read("manifest.json"))
            for entry in manifest["files"]:
                if hashlib.sha256(archive.read(entry["path"])).hexdigest() != entry["sha256"]:
                    raise BadFile(f"{path.name}: {entry['path']} differs from its manifest hash")
            for name in sorted(n for n in archive.namelist() if n.endswith(".png")):
                with Image.open(archive.open(name)) as image:
                    image.load()
                    digest.update(f"{name}:{image_digest(image)}".encode())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as error:
        raise BadFile(f"{path.name}: {error}") from None
    return digest.hexdigest()


def digest_response(kind: str, response) -> str:
    if kind == "generate":
        return png_digest(response[0])
    if kind == "edit":
        return "|".join(png_digest(p) for p in response[:4])
    if kind == UPLOAD_KIND:
        return "|".join([png_digest(p) for p in response[:4]] + [zip_digest(response[4])])
    if kind in ("series", LARGEST_KIND):
        frames, gif, _ = response
        if not frames:
            raise BadFile("series: no frames")
        return "|".join([png_digest(f["image"]) for f in frames] + [gif_digest(gif)])
    return zip_digest(response)


# --- the workload -----------------------------------------------------------------------------

def workload(clients: int, requests: int, steps: int | None, frames: int, seeds: int, templates: list,
             upload: str | None = None, largest: int = 0) -> list:
    """Per client, its list of (kind, kwargs). Clients go in pairs that send the same sequence at
    the same time (identical requests finishing together); pairs are offset by one step, so the
    kinds mix at every moment and each request recurs later; seeds come from a small pool. With
    `upload` (a PNG's path), /edit_image of that one file joins the kinds. With `largest`, one more
    client sends that many of the largest series accepted, each of its own seed."""
    plan, kinds = [], ((UPLOAD_KIND,) if upload else ()) + KINDS  # first: the first pair sends twins at once
    for client in range(clients):
        group, mine = client // 2, []
        for j in range(requests):
            kind = kinds[(j + group) % len(kinds)]
            seed = (3 * j + group) % seeds
            pair = (j // len(KINDS) + group) % len(SOURCES)
            source, edit = SOURCES[pair]
            if kind == "export":
                settings = {**templates[pair % len(templates)], "seed": seed}
                mine.append((kind, {"settings": json.dumps(settings, sort_keys=True)}))
                continue
            kwargs = {**source, "seed": seed, **({} if steps is None else {"steps": steps})}
            if kind != "generate":
                kwargs.update(edit)
            if kind == "series":
                kwargs.update(mode="latent", frames=frames)
            if kind == UPLOAD_KIND:
                kwargs["image"] = handle_file(upload)
            mine.append((kind, kwargs))
        plan.append(mine)
    if largest:
        sys.path.insert(0, str(ROOT / "scripts"))
        from app_timings import largest_series
        plan.append([(LARGEST_KIND, largest_series(("embedding", "latent")[i % 2], 40_000 + i))
                     for i in range(largest)])
    return plan


def request_key(kind: str, kwargs: dict) -> str:
    return kind + json.dumps(kwargs, sort_keys=True)


def call(client: Client, kind: str, kwargs: dict, timeout: float, timeline: bool = False) -> dict:
    began, submitted = time.perf_counter(), time.time()
    record = {"kind": kind, "key": request_key(kind, kwargs)}
    job = answered_at = None
    try:
        api = "series" if kind == LARGEST_KIND else kind
        job = client.submit(**kwargs, api_name=f"/{api}")
        response = job.result(timeout=timeout)
        answered, answered_at = time.perf_counter() - began, time.time()
        settings = response[-1] if isinstance(response, (list, tuple)) else None
        if isinstance(settings, dict) and isinstance(settings.get("timing"), dict):  # app/api.timed
            record["server"] = {**settings["timing"], "outside": answered - settings["timing"]["total"]}
        record["digest"] = digest_response(kind, response)
    except BadFile as error:
        record["bad_file"] = str(error)
    except Exception as error:  # noqa: BLE001  # every failure is counted and shown, none stops the run
        record["error"] = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    record["seconds"] = time.perf_counter() - began
    if timeline and job is not None:
        record["timeline"] = job_timeline(job, submitted, answered_at, record.get("server"))
    return record


def job_timeline(job, submitted: float, answered: float | None, server: dict | None) -> dict:
    """When (time.time()) the client sent `job`, saw each of its status messages, and had its
    answer: queued (with its rank in its lane's gradio queue), started (it left gradio's queue for
    the handler), completed (the SSE message with the answer), answered (its files downloaded).
    Then the parts of what the server's timing calls outside: queue (submitted to started; an
    upload's transfer first), slot (started to completed less the handler's own total: gradio's pre-
    and postprocessing and the SSE stream) and download (completed to answered)."""
    seen = {"submitted": submitted, "answered": answered}
    updates = job.communicator.updates  # gradio_client's status messages, stamped as the client read them
    while not updates.empty():
        update = updates.get_nowait()
        name = {Status.IN_QUEUE: "queued", Status.PROCESSING: "started",
                Status.FINISHED: "completed"}.get(getattr(update, "code", None))
        if isinstance(update, StatusUpdate) and name and name not in seen:
            seen[name] = update.time.timestamp()
            if name == "queued":
                seen["rank"] = update.rank
    if answered is not None and {"started", "completed"} <= seen.keys():
        seen["queue"] = seen["started"] - submitted
        seen["download"] = answered - seen["completed"]
        if server is not None:
            seen["slot"] = seen["completed"] - seen["started"] - server["total"]
    return seen


def export_templates(url: str, steps: int | None, frames: int, folder: Path) -> list[dict]:
    """Settings that /edit and /series return, for /export to rebuild (one per prompt pair)."""
    client = Client(url, verbose=False, download_files=str(folder))
    templates = []
    for index, (source, edit) in enumerate(SOURCES):
        kwargs = {**source, **edit, "seed": 0, **({} if steps is None else {"steps": steps})}
        if index % 2:
            *_, settings = client.predict(**kwargs, mode="latent", frames=frames, api_name="/series")
        else:
            *_, settings = client.predict(**kwargs, api_name="/edit")
        templates.append(settings)
    return templates


def write_upload(path: Path) -> str:
    """The PNG every client uploads: a chest X-ray phantom, 96x80 (so it is resized and cropped)."""
    sys.path.insert(0, str(ROOT))
    from pipelines.data.phantoms import render
    image = render("cxr", {"effusion": True, "pacemaker": False}, seed=30_000_011, size=128).image
    Image.fromarray(image).resize((96, 80), Image.BOX).save(path)
    return str(path)


# --- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def start_server(model: str | None, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port (not waited for: see wait_until_serving)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    if model:
        env["MEDEDIT_MODEL"] = model
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}/"


def wait_until_serving(server: subprocess.Popen, url: str, log_path: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            Client(url, verbose=False, download_files=False)
            return
        except Exception:  # noqa: BLE001  # not listening yet
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit(f"the app did not answer within {wait_s:.0f} s") from None
            time.sleep(0.5)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class MemorySampler(threading.Thread):
    """The server's RSS every `period` seconds, with how many requests had finished by then."""

    def __init__(self, pid: int | None, done: list, period: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.done, self.period = pid, done, period
        self.samples: list[tuple[int, float]] = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.period):
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append((len(self.done), value))


# --- the run ----------------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"n": len(ordered), "p50": round(pick(0.5), 3), "p90": round(pick(0.9), 3),
            "p99": round(pick(0.99), 3), "max": round(ordered[-1], 3)}


def where_the_time_went(records: list[dict]) -> dict:
    """Percentiles of each part of the requests' time as their servers told it (app/timing.py),
    and the slowest request's parts."""
    timed = [r for r in records if "server" in r]
    if not timed:
        return {}
    parts = ("outside", "before", "waiting", "behind_series", "computing", "writing")
    slowest = max(timed, key=lambda r: r["seconds"])
    return {**{part: percentiles([r["server"][part] for r in timed]) for part in parts},
            "slowest": {"seconds": round(slowest["seconds"], 3),
                        **{part: round(slowest["server"][part], 3) for part in parts}}}


LIGHT_KINDS = ("generate", "edit", UPLOAD_KIND)  # gradio's "light" lane (app/serving.event_options)
STEPS = ("submitted", "queued", "started", "completed", "answered")


def timeline_report(records: list[dict]) -> dict:
    """With --timeline: every request's steps in seconds from the first request, the parts of a
    plain edit's time outside its handler (queue, slot, download: job_timeline), and for the slowest
    plain edit, the light-lane requests that held gradio's slots while it waited in the queue."""
    timed = [r for r in records if "timeline" in r]
    if not timed:
        return {}
    origin = min(r["timeline"]["submitted"] for r in timed)
    rows = []
    for r in sorted(timed, key=lambda r: r["timeline"]["submitted"]):
        t = r["timeline"]
        row = {"kind": r["kind"], "seconds": round(r["seconds"], 3), "rank": t.get("rank"),
               **{step: round(t[step] - origin, 3) for step in STEPS if t.get(step) is not None},
               **{part: round(t[part], 3) for part in ("queue", "slot", "download") if part in t}}
        if "server" in r:
            row["handler"] = r["server"]["total"]
        rows.append(row)
    edits = [row for row in rows if row["kind"] == "edit" and "queue" in row]
    report = {"plain_edit_outside_parts_s": {part: percentiles([row[part] for row in edits if part in row])
                                             for part in ("queue", "slot", "download")},
              "requests": rows}
    if edits:
        slowest = max(edits, key=lambda row: row["seconds"])
        report["slowest_plain_edit"] = {**slowest, "light_slots_meanwhile": [
            {k: row.get(k) for k in ("kind", "started", "completed", "handler")} for row in rows
            if row is not slowest and row["kind"] in LIGHT_KINDS and "started" in row
            and row["started"] < slowest["started"] and row.get("completed", 1e9) > slowest["submitted"]]}
    return report


def memory_report(before: float | None, sampler: MemorySampler, total: int, after: float | None,
                  checkpoints: dict[int, float | None]) -> dict:
    report = {"before_load": before, "peak": max((v for _, v in sampler.samples), default=None),
              "end": after}
    for fifth in range(1, 6):  # the level once each fifth of the requests had finished
        reached = [v for done, v in sampler.samples if done >= total * fifth / 5]
        report[f"after_{fifth * 20}pct"] = reached[0] if reached else after
    if checkpoints:
        report["checkpoints"] = {str(n): mb for n, mb in sorted(checkpoints.items())}
        first, last = checkpoints[min(checkpoints)], checkpoints[max(checkpoints)]
        report["last_over_first_checkpoint"] = round(last / first, 3) if first and last else None
    return report


def load_phase(url: str, pid: int | None, plan: list, scratch: Path, timeout: float,
               checkpoints: tuple[int, ...] = (), timeline: bool = False) -> tuple[list, dict, float]:
    """Every client's requests at once; returns the records, the memory report and the wall time.
    The server's RSS is read the moment the n-th request finishes, for each n in `checkpoints`;
    `timeline`: each record gets its job_timeline."""
    done: list[dict] = []
    at_checkpoint: dict[int, float | None] = {}
    finishing = threading.Lock()
    before = rss_mb(pid)
    sampler = MemorySampler(pid, done)
    sampler.start()

    def client_run(index: int) -> None:
        client = Client(url, verbose=False, download_files=str(scratch / f"client{index}"))
        for kind, kwargs in plan[index]:
            record = call(client, kind, kwargs, timeout, timeline)
            with finishing:
                done.append(record)
                if len(done) in checkpoints:
                    at_checkpoint[len(done)] = rss_mb(pid)
                    print(f"after {len(done)} requests: server RSS {at_checkpoint[len(done)]} MB",
                          file=sys.stderr, flush=True)  # a long run's levels, even if it is cut short

    began = time.perf_counter()
    with ThreadPoolExecutor(len(plan)) as pool:
        list(pool.map(client_run, range(len(plan))))
    wall = time.perf_counter() - began
    sampler.stopped.set()
    sampler.join()
    return done, memory_report(before, sampler, len(done), rss_mb(pid), at_checkpoint), wall


def replay_phase(url: str, plan: list, scratch: Path, timeout: float) -> dict:
    """Each distinct request once, in order, by one client: the sequential reference."""
    client = Client(url, verbose=False, download_files=str(scratch / "replay"))
    replayed = {}
    for kind, kwargs in (item for mine in plan for item in mine):
        if kind == LARGEST_KIND:  # each a minute of the machine, and each asked once: not replayed
            continue
        key = request_key(kind, kwargs)
        if key not in replayed:
            replayed[key] = call(client, kind, kwargs, timeout)
    return replayed


def run(args) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="mededit-loadtest-"))
    # gradio_client leaves an empty folder in the temp dir per downloaded file (~1,000 a run):
    # keep them in the scratch folder, which goes at the end.
    tempfile.tempdir, system_temp = str(scratch), tempfile.tempdir
    own_server = args.url is None
    servers, url, pid = [], args.url, args.pid
    log_text = ""
    try:
        if own_server:
            # Two apps start together (their imports take most of the time): one takes the load,
            # the other, idle until then, gives the sequential reference with nothing cached.
            names = ("load", "replay") if args.replay else ("load",)  # no replay: no second app to start
            servers = [start_server(args.model, scratch / f"{name}.log") for name in names]
            for (server, server_url), name in zip(servers, names):
                wait_until_serving(server, server_url, scratch / f"{name}.log", args.start_timeout)
            url, pid = servers[0][1], servers[0][0].pid
        templates = export_templates(url, args.steps, args.frames, scratch / "warmup")
        upload = write_upload(scratch / "upload.png") if args.uploads else None
        plan = workload(args.clients, args.requests, args.steps, args.frames, args.seeds, templates, upload,
                        args.largest)
        done, memory, wall = load_phase(url, pid, plan, scratch, args.timeout, args.checkpoints,
                                        args.timeline)
        if own_server:
            stop_server(servers[0][0])
            log_text = (scratch / "load.log").read_text(errors="replace")
            url = servers[-1][1]
        replayed = replay_phase(url, plan, scratch, args.timeout) if args.replay else {}
    finally:
        for server, _ in servers:
            stop_server(server)
        tempfile.tempdir = system_temp
        if not args.keep_files:  # every file the run downloaded, and the servers' logs
            shutil.rmtree(scratch, ignore_errors=True)
    mismatches = [r["key"][:160] for r in done if "digest" in r and r["key"] in replayed
                  and replayed[r["key"]].get("digest") not in (None, r["digest"])]
    errors = [r for r in done if "error" in r] + [r for r in replayed.values() if "error" in r]
    bad = [r for r in done if "bad_file" in r] + [r for r in replayed.values() if "bad_file" in r]
    return {
        "config": {"clients": args.clients, "requests_per_client": args.requests,
                   "steps": args.steps or "the model's default",
                   "frames": args.frames, "seed_pool": args.seeds, "model": args.model or "the app's default",
                   "uploads": args.uploads, "largest_series": args.largest,
                   "server": "started by the load test" if own_server else url,
                   "replay": ("none (--no-replay)" if not args.replay else
                              "a fresh server" if own_server else "the same server (its caches warm)")},
        "requests": len(done), "distinct_requests": len({r["key"] for r in done}), "wall_s": round(wall, 2),
        "throughput_per_s": round(len(done) / wall, 3) if wall else None,
        "errors": len(errors), "error_samples": [r["error"] for r in errors[:5]],
        "bad_files": len(bad), "bad_file_samples": [r["bad_file"] for r in bad[:5]],
        "mismatches": len(mismatches) if args.replay else None, "mismatch_samples": mismatches[:5],
        "refused_over_budget": sum(BUDGET_MESSAGE in r.get("error", "") for r in done),
        "stopped_at_time_limit": sum(TIME_LIMIT_MESSAGE in r.get("error", "") for r in done),
        "latency_s": {"all": percentiles([r["seconds"] for r in done]),
                      **{k: percentiles([r["seconds"] for r in done if r["kind"] == k])
                         for k in KINDS + ((UPLOAD_KIND,) if args.uploads else ())
                         + ((LARGEST_KIND,) if args.largest else ())}},
        "plain_edit_parts_s": where_the_time_went([r for r in done if r["kind"] == "edit"]),
        "server_rss_mb": memory,
        **({"timeline": timeline_report(done)} if args.timeline else {}),
        "server_content_length_warnings": log_text.count("Content-Length"),
        "files_kept_in": str(scratch) if args.keep_files else None,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps of every request "
                                                                  "(default: the app's, its model's own)")
    parser.add_argument("--frames", type=int, default=4, help="frames of every series")
    parser.add_argument("--seeds", type=int, default=20, help="size of the seed pool (smaller: more repeats)")
    parser.add_argument("--model", default=None, help="MEDEDIT_MODEL for the started app")
    parser.add_argument("--url", default=None, help="test an app already running here instead")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server's pid, for memory")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one request may take")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds the app may take to start")
    parser.add_argument("--checkpoints", default="", help="comma-separated request counts (e.g. 200,1000) "
                                                         "at which to read the server's memory")
    parser.add_argument("--no-replay", dest="replay", action="store_false",
                        help="skip the sequential replay (no bitwise comparison; for long memory runs)")
    parser.add_argument("--uploads", action="store_true",
                        help="add /edit_image of one PNG that every client sends (twin uploads)")
    parser.add_argument("--largest", type=int, default=0,
                        help="one more client sends this many of the largest series the budget accepts")
    parser.add_argument("--timeline", action="store_true",
                        help="record when the client saw each request queued, started, completed and "
                             "downloaded (where the time outside the handler went)")
    parser.add_argument("--keep-files", action="store_true",
                        help="keep the downloaded files and the servers' logs (default: removed at the end)")
    args = parser.parse_args(argv)
    for name in ("clients", "requests", "steps", "frames", "seeds"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    try:
        args.checkpoints = tuple(sorted({int(n) for n in args.checkpoints.split(",") if n.strip()}))
    except ValueError:
        parser.error(f"--checkpoints must be whole numbers separated by commas, got {args.checkpoints!r}")
    total = args.clients * args.requests
    if any(not 1 <= n <= total for n in args.checkpoints):
        parser.error(f"--checkpoints must lie between 1 and the {total} requests of the run")
    return args


def main(argv=None) -> int:
    report = run(parse_args(argv))
    print(json.dumps(report, indent=2))
    latency, memory = report["latency_s"]["all"], report["server_rss_mb"]
    checkpoints = "".join(f", {n} requests {mb} MB" for n, mb in memory.get("checkpoints", {}).items())
    ratio = memory.get("last_over_first_checkpoint")
    print(f"{report['requests']} requests ({report['distinct_requests']} distinct) in {report['wall_s']} s: "
          f"{report['errors']} errors ({report['refused_over_budget']} over budget, "
          f"{report['stopped_at_time_limit']} at the time limit), {report['bad_files']} bad files, "
          f"{report['mismatches']} mismatches; "
          f"latency p50 {latency.get('p50')} s, p90 {latency.get('p90')} s, p99 {latency.get('p99')} s, "
          f"max {latency.get('max')} s; server RSS {memory['before_load']} -> {memory['end']} MB "
          f"(peak {memory['peak']}{checkpoints}{'' if ratio is None else f'; last/first {ratio}'})",
          file=sys.stderr)
    edit, largest = report["latency_s"]["edit"], report["latency_s"].get(LARGEST_KIND)
    print(f"plain /edit: p50 {edit.get('p50')} s, p99 {edit.get('p99')} s, max {edit.get('max')} s"
          + (f"; the largest series: {largest}" if largest is not None else ""), file=sys.stderr)
    parts = report["plain_edit_parts_s"]
    if parts:
        print("plain /edit's time, p99 (max) of each part: " + ", ".join(
            f"{part} {parts[part]['p99']} ({parts[part]['max']}) s" for part in
            ("outside", "waiting", "behind_series", "computing", "writing"))
            + f"; the slowest: {parts['slowest']}", file=sys.stderr)
    timeline = report.get("timeline", {})
    if timeline.get("slowest_plain_edit"):
        outside = timeline["plain_edit_outside_parts_s"]
        print("plain /edit outside its handler, p99 (max): " + ", ".join(
            f"{part} {outside[part].get('p99')} ({outside[part].get('max')}) s" for part in outside)
            + f"; the slowest: {timeline['slowest_plain_edit']}", file=sys.stderr)
    return 0 if not (report["errors"] or report["bad_files"] or report["mismatches"]) else 1


if __name__ == "__main__":
    sys.exit(main())
