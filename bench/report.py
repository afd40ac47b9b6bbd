#!/usr/bin/env python3
"""Builds benchmarks.md and benchmarks.png from a bench/run.sh results
directory.

    python3 bench/report.py bench/results/<time> OUT_DIR

Reads the raw tool output (wrk text, h2load text and per-request log, oha
JSON), the per-run facts (facts.txt: CPU ticks, RSS, per-backend counts) and
the settings and versions run.sh recorded. Every figure is the median over
the rounds, with the min-max spread when there was more than one round.
matplotlib is needed for the picture only; without it the markdown is still
written.
"""

import json
import os
import re
import statistics
import sys

PROXIES = ["luas", "nginx", "haproxy"]
BACKEND_PORTS = ["19101", "19102", "19103"]
BALANCERS = {
    "aware": {"luas": "p2c-ewma", "nginx": "least_conn", "haproxy": "leastconn"},
    "rr": {"luas": "round-robin", "nginx": "round-robin (default)", "haproxy": "roundrobin"},
}
DEFAULT_BALANCER = {"luas": "p2c-ewma", "nginx": "round-robin", "haproxy": "roundrobin"}


# ---- parsing ----

def read_kv(path):
    """'key value...' lines into a dict (the value is the rest of the line)."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, value = line.partition(" ")
            out[key] = value
    return out


def to_ms(text):
    """wrk / h2load durations (123.45us, 1.20ms, 2.00s, 1.00m) to ms."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read duration {text!r}")
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(path):
    text = open(path).read()
    out = {}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if not m:
        raise ValueError(f"no Requests/sec in {path}")
    out["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m:
            out[f"p{pct}"] = to_ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    out["requests"] = int(m.group(1)) if m else 0
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def percentile(sorted_values, q):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(round(q / 100.0 * len(sorted_values) + 0.5 - 1e-9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def parse_h2load(path, log_path):
    text = open(path).read()
    out = {}
    m = re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", text)
    if not m:
        raise ValueError(f"no req/s in {path}")
    out["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        out["requests"] = int(m.group(4))
        out["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out["errors"] = out.get("errors", 0) + int(m.group(3)) + int(m.group(4))
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        out["min"], out["max"], out["mean"], out["sd"] = (to_ms(x) for x in m.groups())
    if os.path.exists(log_path):
        times = []
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3:
                    times.append(int(parts[2]) / 1000.0)
        times.sort()
        out["p50"] = percentile(times, 50)
        out["p99"] = percentile(times, 99)
        out["logged"] = len(times)
    return out


def parse_oha(path):
    d = json.load(open(path))
    lat = d.get("latencyPercentiles", {})
    out = {
        "rps": d["summary"].get("requestsPerSec") or 0.0,
        "p50": (lat.get("p50") or 0) * 1000,
        "p90": (lat.get("p90") or 0) * 1000,
        "p99": (lat.get("p99") or 0) * 1000,
        "max": (d["summary"].get("slowest") or 0) * 1000,
    }
    statuses = {k: int(v) for k, v in (d.get("statusCodeDistribution") or {}).items()}
    errors = {k: int(v) for k, v in (d.get("errorDistribution") or {}).items()}
    out["statuses"] = statuses
    out["error_kinds"] = errors
    out["ok"] = sum(v for k, v in statuses.items() if k.startswith("2"))
    out["non2xx"] = sum(v for k, v in statuses.items() if not k.startswith("2"))
    out["errors"] = sum(errors.values())
    out["requests"] = sum(statuses.values()) + out["errors"]
    out["failed"] = out["non2xx"] + out["errors"]
    return out


def cpu_facts(facts):
    out = {}
    try:
        wall = float(facts["wall_s"])
        hz = float(facts["clk_tck"])
        ticks = float(facts["proxy_ticks"])
        total = float(facts["cpu1_total_ticks"])
        busy = float(facts["cpu1_busy_ticks"])
        irq = float(facts["cpu1_irq_ticks"])
    except (KeyError, ValueError):
        return out
    out["cpu"] = ticks / hz / wall if wall > 0 else float("nan")
    if total > 0:
        # Without CONFIG_IRQ_TIME_ACCOUNTING the proxy's own stime includes
        # the softirq work done while it ran, which /proc/stat files under
        # softirq: compare the proxy with busy + irq.
        out["other"] = max(0.0, (busy + irq - ticks) / total)
        out["irq"] = irq / total
    return out


def load_runs(results):
    """{(scenario, proxy): [run dict per round]}"""
    runs = {}
    rounds = sorted(
        (d for d in os.listdir(results) if re.fullmatch(r"r\d+", d)), key=lambda d: int(d[1:])
    )
    for rnd in rounds:
        rdir = os.path.join(results, rnd)
        for scenario in sorted(os.listdir(rdir)):
            sdir = os.path.join(rdir, scenario)
            for proxy in sorted(os.listdir(sdir)):
                pdir = os.path.join(sdir, proxy)
                facts = read_kv(os.path.join(pdir, "facts.txt"))
                run = {"round": int(rnd[1:]), "dir": pdir, "facts": facts}
                try:
                    if scenario in ("A1", "A3"):
                        run.update(parse_wrk(os.path.join(pdir, "load.txt")))
                    elif scenario == "A2":
                        run.update(parse_h2load(os.path.join(pdir, "load.txt"),
                                                os.path.join(pdir, "requests.tsv")))
                    elif scenario in ("L",) or scenario.startswith(("B-", "C-")):
                        run.update(parse_oha(os.path.join(pdir, "load.json")))
                    elif scenario == "D":
                        text = open(os.path.join(pdir, "idle.txt")).read()
                        m = re.search(r"^ready ok=(\d+) failed=(\d+)", text, re.M)
                        if m:
                            run["held"] = int(m.group(1))
                            run["idle_failed"] = int(m.group(2))
                        m = re.search(r"^closed-by-peer=(\d+)", text, re.M)
                        if m:
                            run["closed_by_peer"] = int(m.group(1))
                        before = float(facts.get("rss_before_kib", "nan"))
                        after = float(facts.get("rss_after_kib", "nan"))
                        run["rss_before"] = before / 1024
                        run["rss_after"] = after / 1024
                        run["established"] = int(facts.get("established", "0"))
                        if run.get("held"):
                            run["per_conn"] = (after - before) / run["held"]
                except (OSError, ValueError, KeyError) as error:
                    print(f"report: skipping {pdir}: {error}", file=sys.stderr)
                    continue
                run.update(cpu_facts(facts))
                run["disturbed"] = facts.get("disturbed") == "1"
                try:
                    wall, hz = float(facts["wall_s"]), float(facts["clk_tck"])
                    run["foreign"] = float(facts["foreign_ticks"]) / hz / wall
                    run["steal"] = float(facts["steal_ticks"]) / hz / wall / 2
                except (KeyError, ValueError, ZeroDivisionError):
                    pass
                if "rps" in run and run.get("cpu"):
                    run["rps_per_core"] = run["rps"] / run["cpu"]
                counts = {p: int(facts[f"backend_{p}"]) for p in BACKEND_PORTS
                          if f"backend_{p}" in facts}
                if counts:
                    total = sum(counts.values())
                    run["counts"] = counts
                    for p, n in counts.items():
                        run[f"share_{p}"] = 100.0 * n / total if total else float("nan")
                if "dead_tries_after_kill" in facts:
                    run["dead_tries"] = int(facts["dead_tries_after_kill"])
                if run.get("requests"):
                    run["failed_pct"] = 100.0 * run.get("failed", run.get("errors", 0)) / run["requests"]
                runs.setdefault((scenario, proxy), []).append(run)
    return runs, len(rounds)


# ---- formatting ----

def values(runs, key):
    return [r[key] for r in runs if isinstance(r.get(key), (int, float)) and r[key] == r[key]]


def med(runs, key):
    v = values(runs, key)
    return statistics.median(v) if v else None


def fmt_num(x, digits):
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}f}"


def cell(runs, key, digits=2, pct=False, suffix=""):
    """median (min–max) of a key over the rounds."""
    v = values(runs, key)
    if not v:
        return "–"
    scale = 100.0 if pct else 1.0
    m = statistics.median(v) * scale
    text = fmt_num(m, digits) + suffix
    if len(v) > 1:
        lo, hi = min(v) * scale, max(v) * scale
        text += f" ({fmt_num(lo, digits)}–{fmt_num(hi, digits)})"
    return text


def mark(name, runs):
    """The row name, with a dagger when a run of it was kept disturbed."""
    return name + (" †" if any(r.get("disturbed") for r in runs) else "")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def first_commands(results, scenario, proxies):
    """The exact command lines of round 1 of a scenario."""
    out = []
    for proxy in proxies:
        path = os.path.join(results, "r1", scenario, proxy, "cmd.txt")
        if os.path.exists(path):
            for line in open(path):
                line = line.strip()
                if line:
                    out.append(f"{proxy:8} {line}")
    return out


# ---- the picture ----

def plot(runs, out_png, proxies):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is missing; no picture", file=sys.stderr)
        return False

    colors = {"luas": "#d9822b", "nginx": "#2b8a3e", "haproxy": "#1c7ed6", "direct": "#868e96"}

    def stat(scenario, proxy, key, scale=1.0):
        v = values(runs.get((scenario, proxy), []), key)
        if not v:
            return 0.0, (0.0, 0.0)
        m = statistics.median(v) * scale
        return m, (m - min(v) * scale, max(v) * scale - m)

    def bars(ax, groups, series, title, ylabel):
        """groups: x labels; series: [(label, color, [(value, (lo, hi))])]"""
        n = len(series)
        width = 0.8 / max(n, 1)
        for i, (label, color, points) in enumerate(series):
            xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
            ys = [p[0] for p in points]
            err = [[p[1][0] for p in points], [p[1][1] for p in points]]
            ax.bar(xs, ys, width * 0.95, yerr=err, capsize=3, label=label, color=color,
                   edgecolor="black", linewidth=0.4)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    # A1 throughput.
    ax = axes[0][0]
    names = [p for p in proxies if ("A1", p) in runs]
    series = []
    for p in names:
        series.append((p, colors[p], [stat("A1", p, "rps")]))
    for i, (label, color, points) in enumerate(series):
        ax.bar([i], [points[0][0]], 0.6, yerr=[[points[0][1][0]], [points[0][1][1]]], capsize=3,
               color=color, edgecolor="black", linewidth=0.4)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_title("A1: HTTP/1.1 keep-alive, wrk -c64, one proxy core", fontsize=10)
    ax.set_ylabel("requests/s", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    # A1 latency.
    bars(axes[0][1], names,
         [("p50", "#74c0fc", [stat("A1", p, "p50") for p in names]),
          ("p99", "#1864ab", [stat("A1", p, "p99") for p in names])],
         "A1 latency at full load (wrk)", "ms")
    axes[0][1].legend(fontsize=8)
    # A2 throughput.
    names2 = [p for p in proxies if ("A2", p) in runs]
    bars(axes[0][2], names2,
         [("requests/s", "#adb5bd", [stat("A2", p, "rps") for p in names2])],
         "A2: h2c, h2load -c8 -m8, one proxy core", "requests/s")
    for patch, p in zip(axes[0][2].patches, names2):
        patch.set_facecolor(colors[p])
    # B latency.
    names_b = [p for p in proxies if ("B-aware", p) in runs or ("B-rr", p) in runs]
    bars(axes[1][0], names_b,
         [("load-aware p50", "#b2f2bb", [stat("B-aware", p, "p50") for p in names_b]),
          ("load-aware p99", "#2f9e44", [stat("B-aware", p, "p99") for p in names_b]),
          ("round-robin p50", "#ffc9c9", [stat("B-rr", p, "p50") for p in names_b]),
          ("round-robin p99", "#e03131", [stat("B-rr", p, "p99") for p in names_b])],
         "B: one replica 50 ms slower, 500 req/s (corrected)", "ms (log scale)")
    axes[1][0].set_yscale("log")
    axes[1][0].legend(fontsize=7)
    # B share of the slow backend.
    bars(axes[1][1], names_b,
         [("load-aware", "#2f9e44", [stat("B-aware", p, "share_19103") for p in names_b]),
          ("round-robin", "#e03131", [stat("B-rr", p, "share_19103") for p in names_b])],
         "B: share of requests sent to the slow replica", "% of requests")
    axes[1][1].axhline(100 / 3, color="black", linewidth=0.6, linestyle="--")
    axes[1][1].legend(fontsize=8)
    # D memory per connection.
    names_d = [p for p in proxies if ("D", p) in runs]
    bars(axes[1][2], names_d,
         [("KiB per idle connection", "#adb5bd", [stat("D", p, "per_conn") for p in names_d])],
         "D: resident memory per idle keep-alive connection", "KiB")
    for patch, p in zip(axes[1][2].patches, names_d):
        patch.set_facecolor(colors[p])
    fig.suptitle("luas vs nginx vs haproxy, one worker each on one core (medians; bars: min–max)",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return True


# ---- the report ----

def round_ratios(runs, scenario, proxies):
    """Per round: each proxy's req/s per core, and luas's ratio to each other
    proxy in that round, as a table's header and rows, and the ratios by
    proxy. Rounds where a proxy has no figure are left out of that proxy's
    ratios."""
    by_round = {}
    for p in proxies:
        for r in runs.get((scenario, p), []):
            value = r.get("rps_per_core")
            if isinstance(value, (int, float)) and value == value and value > 0:
                by_round.setdefault(r["round"], {})[p] = value
    rows, ratios = [], {p: [] for p in proxies if p != "luas"}
    for rnd in sorted(by_round):
        got = by_round[rnd]
        row = [str(rnd)] + [f"{got[p] / 1000:.1f}k" if p in got else "–" for p in proxies]
        for other in ratios:
            if "luas" in got and other in got:
                ratio = got["luas"] / got[other]
                ratios[other].append(ratio)
                row.append(f"{ratio:.2f}")
            else:
                row.append("–")
        rows.append(row)
    header = ["round"] + list(proxies) + [f"luas ÷ {p}" for p in ratios]
    return header, rows, ratios


def ratio_summary(values):
    """The median of some per-round ratios, with their min–max."""
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    results, out_dir = sys.argv[1], sys.argv[2]
    settings = read_kv(os.path.join(results, "settings.txt"))
    versions = read_kv(os.path.join(results, "versions.txt"))
    runs, n_rounds = load_runs(results)
    proxies = [p for p in PROXIES if any(k[1] == p for k in runs)]
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, "benchmarks.png")
    have_png = plot(runs, png, proxies)

    duration = settings.get("duration", "?")
    rate = settings.get("rate", "500")
    md = []
    w = md.append
    w("# Benchmarks: luas, nginx and haproxy side by side")
    w("")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(results))))
    w(f"Generated by `bash bench/run.sh` on {settings.get('date', '?')}"
      + (" in QUICK mode (a check of the script, not a measurement)" if settings.get("quick") == "1" else "")
      + f"; the run took {int(settings.get('elapsed_s', '0')) / 60:.1f} min. "
      f"Raw output: `{os.path.relpath(os.path.abspath(results), root)}/` "
      "(git-ignored; `python3 bench/report.py RESULTS_DIR docs` rebuilds this page from it).")
    w("")
    w(f"Every figure is the **median of {n_rounds} round(s)**"
      + (", with the spread (min–max) over the rounds in parentheses" if n_rounds > 1 else "")
      + ". Loopback only, on a shared cloud VM: compare rows of one run, not numbers across machines.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- CPUs: {settings.get('nproc', '?')} × {settings.get('cpu_model', '?')}; "
      f"memory {settings.get('memory', '?')}")
    w(f"- OS: {settings.get('os', '?')}, kernel {settings.get('kernel', '?')}")
    w(f"- Load average before / after the runs: {settings.get('loadavg_start', '?')} / "
      f"{settings.get('loadavg_end', '?')}")
    all_runs = [r for rs in runs.values() for r in rs]
    steal = values(all_runs, "steal")
    if steal:
        w(f"- Hypervisor steal time during the measured runs: median {100 * statistics.median(steal):.1f} %, "
          f"at most {100 * max(steal):.1f} % of the two CPUs")
    redone = []
    list_path = os.path.join(results, "disturbed", "list.txt")
    if os.path.exists(list_path):
        redone = [line.strip() for line in open(list_path) if line.strip()]
    kept = [f"{r['dir'].split(os.sep)[-3]} {r['dir'].split(os.sep)[-2]} {r['dir'].split(os.sep)[-1]}"
            for r in all_runs if r.get("disturbed")]
    foreign = values(all_runs, "foreign")
    w(f"- Other processes on the machine (builds, tests) during the measured runs: median "
      f"{100 * statistics.median(foreign):.1f} % of a CPU" if foreign else "- Other processes: not measured")
    w(f"  ({len(redone)} run(s) redone because other processes took more than "
      f"{settings.get('disturb_pct', '?')} % of a CPU during them"
      + (f"; kept disturbed after {settings.get('max_redo', '?')} redos, marked † below: "
         + ", ".join(kept) if kept else "")
      + ")")
    for name in ("luas", "nginx", "haproxy", "wrk", "h2load", "oha", "backend", "python"):
        if name in versions:
            w(f"- {name}: `{versions[name]}`")
    w("")
    w("## Set-up")
    w("")
    w("- **One core per proxy.** The proxy runs on CPU 1 (`taskset -c 1`) with one worker: "
      "luas `--worker-threads 1`, nginx `worker_processes 1`, haproxy `nbthread 1`. The load "
      "generator and the backends (`examples/backend.rs --threads 1`, three ports 19101–19103, "
      "HTTP/1.1 and h2c, a 3-byte body) share CPU 0.")
    w("- **Same work per request.** All three speak HTTP/1.1 with keep-alive to the backends and "
      "reuse idle backend connections across clients (nginx `keepalive 64`, haproxy "
      "`http-reuse always`, luas's own pool); nginx and haproxy are configured to add what luas "
      "adds: `X-Forwarded-For`, `-Proto`, `-Host`, `Via` both ways and an `x-request-id`. "
      "Only the B and C listeners of nginx write an access log (`$upstream_addr $status`, to "
      "count each backend's share); no proxy logs requests in A, L and D. No active health checks "
      "anywhere. Keep-alive idle timeouts are 300 s everywhere (for D); no per-connection request "
      "limits.")
    w("- **Fresh start, warm-up, interleaving.** Every run starts the proxy afresh, sends "
      f"{settings.get('warmup', '?')} s of the same load (not measured), measures "
      f"{duration} s, and stops it. Within a round the proxies take turns scenario by scenario, "
      "and each round starts with the next one (round 1: luas, nginx, haproxy; round 2: nginx, "
      "haproxy, luas; …), so drift on the shared VM hits all three alike, and so does the "
      "advantage this VM gives whichever proxy runs first.")
    w("- **CPU share** is the proxy's utime+stime over the run (`/proc/PID/stat`, summed over "
      "its processes) divided by the wall time: 100 % is the one core saturated. On this kernel "
      "(no `CONFIG_IRQ_TIME_ACCOUNTING`) it includes the softirq work, mostly the loopback TCP "
      "stack, that ran on CPU 1 while the proxy was running. *Other on CPU 1* is the time CPU 1 "
      "was busy (`/proc/stat`: user, system, irq, softirq, steal) beyond the proxy's own: "
      "anything above a few percent means something else disturbed the run. "
      "*req/s per proxy core* = req/s ÷ CPU share.")
    w("- Configs: [`bench/luas-bench.yaml`](../bench/luas-bench.yaml), "
      "[`bench/nginx.conf`](../bench/nginx.conf), [`bench/haproxy.cfg`](../bench/haproxy.cfg); "
      "one listener per variant. Balancers: luas p2c-ewma, nginx and haproxy round-robin (their "
      "defaults) unless a scenario says otherwise.")
    w("")
    if have_png:
        w("![luas vs nginx vs haproxy](benchmarks.png)")
        w("")

    def row_for(scenario, proxy, cols):
        rs = runs.get((scenario, proxy), [])
        return [mark(proxy, rs)] + [c(rs) for c in cols]

    # A1
    if any(k[0] == "A1" for k in runs):
        w("## A1: throughput, HTTP/1.1 keep-alive")
        w("")
        w(f"`wrk -t1 -c64 -d{duration}s --latency`, three 0 ms backends. *direct* is wrk straight "
          "at one backend: the ceiling of the set-up (wrk and the backend share CPU 0), not a proxy.")
        w("")
        cols = [lambda r: cell(r, "rps", 0), lambda r: cell(r, "p50", 3), lambda r: cell(r, "p99", 3),
                lambda r: cell(r, "cpu", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "rps_per_core", 0),
                lambda r: cell(r, "other", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "errors", 0)]
        rows = [row_for("A1", p, cols) for p in proxies if ("A1", p) in runs]
        if ("A1", "direct") in runs:
            rs = runs[("A1", "direct")]
            rows.append([mark("direct", rs), cell(rs, "rps", 0), cell(rs, "p50", 3), cell(rs, "p99", 3),
                         "–", "–", "–", cell(rs, "errors", 0)])
        w(table(["", "requests/s", "p50 (ms)", "p99 (ms)", "proxy CPU", "req/s per proxy core",
                 "other on CPU 1", "errors"], rows))
        w("")
    # A2
    if any(k[0] == "A2" for k in runs):
        w("## A2: throughput, h2c (HTTP/2 prior knowledge) to the proxy")
        w("")
        w(f"`h2load -c8 -m8 -D {duration}` (8 connections × 8 concurrent streams); HTTP/1.1 to the "
          "backends. luas detects h2c on its `auto` listener; nginx has `listen … http2` and haproxy "
          "`bind … proto h2` on a dedicated port. *mean* is h2load's own \"time for request\" mean; "
          "h2load prints no percentiles, so p50 and p99 are computed from its per-request log "
          "(`--log-file`, time from request start to end of response).")
        w("")
        cols = [lambda r: cell(r, "rps", 0), lambda r: cell(r, "mean", 3), lambda r: cell(r, "p50", 3),
                lambda r: cell(r, "p99", 3), lambda r: cell(r, "max", 1),
                lambda r: cell(r, "cpu", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "rps_per_core", 0),
                lambda r: cell(r, "other", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "errors", 0)]
        rows = [row_for("A2", p, cols) for p in proxies if ("A2", p) in runs]
        w(table(["", "requests/s", "mean (ms)", "p50 (ms)", "p99 (ms)", "max (ms)", "proxy CPU",
                 "req/s per proxy core", "other on CPU 1", "failed"], rows))
        w("")
    # A3
    if any(k[0] == "A3" for k in runs):
        w("## A3: a new client connection per request")
        w("")
        w(f"`wrk -t1 -c64 -d{duration}s --latency -H 'Connection: close'`: every request on a new "
          "TCP connection, which the proxy closes after the answer (wrk's latency does not include "
          "the connect). Backend connections are still pooled. Where the proxy CPU stays well "
          "below 100 %, the proxy was not the bottleneck (wrk's connects and the backend on CPU 0 "
          "were), so compare *req/s per proxy core* rather than requests/s.")
        w("")
        cols = [lambda r: cell(r, "rps", 0), lambda r: cell(r, "p50", 3), lambda r: cell(r, "p99", 3),
                lambda r: cell(r, "cpu", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "rps_per_core", 0),
                lambda r: cell(r, "other", 0, pct=True, suffix=" %"),
                lambda r: cell(r, "errors", 0)]
        rows = [row_for("A3", p, cols) for p in proxies if ("A3", p) in runs]
        w(table(["", "requests/s", "p50 (ms)", "p99 (ms)", "proxy CPU", "req/s per proxy core",
                 "other on CPU 1", "errors"], rows))
        w("")
    # Per-round ratios: the medians above come from different rounds for
    # each proxy; the ratio within a round compares runs minutes apart.
    if "luas" in proxies and len(proxies) > 1 and any(k[0] in ("A1", "A2", "A3") for k in runs):
        w("## Throughput ratios per round")
        w("")
        w("Each round's req/s per proxy core, and luas's ratio to each other proxy within the "
          "round (the proxies of one round ran minutes apart, so machine drift weighs less on "
          "these ratios than on the medians above). The summary line is the median of the "
          "per-round ratios, with their min–max.")
        w("")
        for scenario in ("A1", "A2", "A3"):
            header, rows, ratios = round_ratios(runs, scenario, proxies)
            if not rows:
                continue
            w(f"**{scenario}**")
            w("")
            w(table(header, rows))
            w("")
            summary = [f"luas ÷ {p} {ratio_summary(v)}" for p, v in ratios.items() if v]
            if summary:
                w(f"{scenario}, median of the per-round ratios: " + "; ".join(summary) + ".")
                w("")
    # L
    if any(k[0] == "L" for k in runs):
        w(f"## Added latency at {rate} req/s")
        w("")
        w(f"`oha -q {rate} -c 50 -z {duration}s --latency-correction` with all three backends at "
          "0 ms: straight at one backend (*direct*), then through each proxy. *added* is the "
          "proxy's median minus direct's median.")
        w("")
        d50 = med(runs.get(("L", "direct"), []), "p50")
        d99 = med(runs.get(("L", "direct"), []), "p99")
        rows = []
        for p in ["direct"] + proxies:
            rs = runs.get(("L", p))
            if not rs:
                continue
            m50, m99 = med(rs, "p50"), med(rs, "p99")
            add50 = f"{(m50 - d50) * 1000:+.0f} µs" if p != "direct" and d50 is not None else "–"
            add99 = f"{(m99 - d99) * 1000:+.0f} µs" if p != "direct" and d99 is not None else "–"
            rows.append([mark(p, rs), cell(rs, "p50", 3), add50, cell(rs, "p99", 3), add99,
                         cell(rs, "failed", 0)])
        w(table(["", "p50 (ms)", "p50 added", "p99 (ms)", "p99 added", "failed"], rows))
        w("")
    # B
    if any(k[0].startswith("B-") for k in runs):
        w("## B: one slow replica")
        w("")
        w(f"Backends at 0, 0 and **50 ms** (19103 is the slow one); `oha -q {rate} -c 50 -z "
          f"{duration}s --latency-correction` (latency measured from when each request was due, "
          "so a stall is not hidden by the client waiting). Each backend's share of the requests: "
          "luas from `luas_backend_requests_total`, haproxy from `show stat` (stot), nginx from its "
          "access log (`$upstream_addr`), over the measured run only.")
        w("")
        rows = []
        for variant in ("aware", "rr"):
            for p in proxies:
                rs = runs.get((f"B-{variant}", p))
                if not rs:
                    continue
                rows.append([mark(p, rs), BALANCERS[variant][p], cell(rs, "p50", 2), cell(rs, "p90", 2),
                             cell(rs, "p99", 2), cell(rs, "max", 1),
                             cell(rs, "share_19101", 1, suffix=" %"),
                             cell(rs, "share_19102", 1, suffix=" %"),
                             cell(rs, "share_19103", 1, suffix=" %"),
                             cell(rs, "failed", 0)])
        w(table(["", "balancer", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)",
                 "share 19101 (0 ms)", "share 19102 (0 ms)", "share 19103 (50 ms)", "failed"], rows))
        w("")
    # C
    if any(k[0].startswith("C-") for k in runs):
        w("## C: a replica dies")
        w("")
        w(f"Three backend processes (one per port); 19103 is killed (SIGKILL) "
          f"{settings.get('kill_at', '?')} s into a {duration} s `oha -q {rate} -c 50 "
          f"--latency-correction` run, with every backend at 0 ms and at 20 ms. *failed* is what the "
          "client saw: non-2xx answers plus connection errors.")
        w("")
        w("Retry settings (each proxy's equivalent of \"two more tries, on another backend\"; no "
          "active health checks):")
        w("")
        w("- luas: `retry: { attempts: 2, on: [reset, 5xx, timeout] }` (no `per_try_timeout`); "
          "requests that never reached a backend (connect refused) are always retried on another "
          "one; passive outlier ejection on by default (5 consecutive failures → 30 s out); "
          "balancer p2c-ewma.")
        w("- nginx: `proxy_next_upstream error timeout http_502 http_503 http_504; "
          "proxy_next_upstream_tries 3;` and the default passive health check "
          "(`max_fails=1 fail_timeout=10s`); round-robin.")
        w("- haproxy: `retries 2`, `option redispatch 1` (every retry to another server), "
          "`retry-on all-retryable-errors`; no passive health checks without `check`; roundrobin.")
        w("")
        rows = []
        for delay in ("0ms", "20ms"):
            for p in proxies:
                rs = runs.get((f"C-{delay}", p))
                if not rs:
                    continue
                kinds = {}
                for r in rs:
                    for k, v in r.get("statuses", {}).items():
                        if not k.startswith("2"):
                            kinds[k] = kinds.get(k, 0) + v
                    for k, v in r.get("error_kinds", {}).items():
                        kinds[k] = kinds.get(k, 0) + v
                detail = "; ".join(f"{k}: {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
                rows.append([mark(p, rs), delay.replace("ms", " ms"), cell(rs, "requests", 0),
                             cell(rs, "failed", 0), cell(rs, "failed_pct", 2, suffix=" %"),
                             cell(rs, "p50", 2), cell(rs, "p99", 2), cell(rs, "max", 1),
                             cell(rs, "dead_tries", 0), detail or "–"])
        w(table(["", "backend delay", "requests", "failed", "failed share", "p50 (ms)", "p99 (ms)",
                 "max (ms)", "tries to 19103 after the kill",
                 f"what failed (sum over {n_rounds} round(s))"], rows))
        w("")
        w("*Tries to 19103 after the kill* counts the tries each proxy still sent to the dead "
          "backend (each failed at connect and went on to another backend): luas and haproxy "
          "count tries, nginx logs each try in `$upstream_addr`.")
        w("")
    # D
    if any(k[0] == "D" for k in runs):
        w("## D: idle keep-alive connections")
        w("")
        w(f"`bench/idle_conns.py` opens {settings.get('idle_conns', '?')} HTTP/1.1 connections to "
          "the proxy (50 at a time), sends one request on each, reads the answer, and holds them "
          "open and idle. Resident memory (VmRSS, summed over the proxy's processes: nginx master "
          "and worker, haproxy, luas) after a short warm-up and 1 s pause (*before*) and 2 s after "
          "the last connection was answered (*after*); *per connection* = (after − before) ÷ "
          "connections held. *established* is what `ss` counted on the proxy's port at that moment. "
          "RSS is the proxies' own memory; the kernel's socket buffers are not in it.")
        w("")
        cols = [lambda r: cell(r, "held", 0), lambda r: cell(r, "established", 0),
                lambda r: cell(r, "rss_before", 1), lambda r: cell(r, "rss_after", 1),
                lambda r: cell(r, "per_conn", 2)]
        rows = [row_for("D", p, cols) for p in proxies if ("D", p) in runs]
        w(table(["", "connections held", "established", "RSS before (MiB)", "RSS after (MiB)",
                 "per connection (KiB)"], rows))
        w("")
    # Commands
    w("## Exact commands")
    w("")
    w("Round 1's command lines as run (warm-up first, then the measured run; every load tool is "
      "pinned with `taskset -c 0`, and bounded by `timeout`). Ports: luas 1818x, nginx 1828x, "
      "haproxy 1838x; x = 0 HTTP/1.1, 1 h2c, 2 B load-aware, 3 B round-robin, 4 C with retries.")
    w("")
    w("Proxies:")
    w("")
    w("```sh")
    w("RUST_LOG=warn taskset -c 1 target/release/luas run --config bench/luas-bench.yaml --worker-threads 1")
    w("taskset -c 1 nginx -p RUNDIR/nginx/ -e RUNDIR/nginx/error.log -c bench/nginx.conf -g 'pid RUNDIR/nginx/nginx.pid;'")
    w("HAPROXY_RUNDIR=RUNDIR/haproxy taskset -c 1 haproxy -db -f bench/haproxy.cfg")
    w("taskset -c 0 target/release/examples/backend --ports 19101,19102,19103 --delays 0,0,0 --threads 1   # B: --delays 0,0,50")
    w("taskset -c 0 target/release/examples/backend --ports 1910N --delay-ms D --threads 1   # C: one per port")
    w("```")
    w("")
    w("<details><summary>Load commands of every run in round 1</summary>")
    w("")
    for scenario in ("A1", "A2", "A3", "L", "B-aware", "B-rr", "C-0ms", "C-20ms", "D"):
        lines = first_commands(results, scenario, ["direct"] + PROXIES)
        if not lines:
            continue
        w(f"{scenario}:")
        w("")
        w("```")
        for line in lines:
            w(line.replace(os.path.abspath(results), "RESULTS").replace(root + "/", ""))
        w("```")
        w("")
    w("</details>")
    w("")
    text = "\n".join(md).rstrip() + "\n"
    with open(os.path.join(out_dir, "benchmarks.md"), "w") as f:
        f.write(text)
    print(f"report: wrote {os.path.join(out_dir, 'benchmarks.md')}"
          + (f" and {png}" if have_png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
