#!/usr/bin/env python3
"""luas's throughput ratios to nginx and haproxy, round by round, pooled
over one or more runs of bench/run.sh.

    python3 bench/ratios.py bench/results/<time> [bench/results/<time> ...]

For A1, A2 and A3: each round's req/s per proxy core and luas's ratio to
each other proxy within the round, then the median of those ratios over
every round of every run given, with their min-max and count. One run on
a shared VM can put luas on either side of a target ratio; the pooled
median of many rounds, each comparing runs minutes apart, is the figure to
judge a target by. Reads the same results directories as bench/report.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (bench/report.py, beside this file)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 64
    pooled = {}
    for results in sys.argv[1:]:
        runs, _ = report.load_runs(results)
        proxies = [p for p in report.PROXIES if any(k[1] == p for k in runs)]
        if "luas" not in proxies or len(proxies) < 2:
            print(f"{results}: no luas and other proxy to compare", file=sys.stderr)
            continue
        print(f"# {results}")
        for scenario in ("A1", "A2", "A3"):
            header, rows, ratios = report.round_ratios(runs, scenario, proxies)
            if not rows:
                continue
            print(f"\n{scenario}\n")
            print(report.table(header, rows))
            for other, values in ratios.items():
                pooled.setdefault((scenario, other), []).extend(values)
        print()
    if not pooled:
        return 1
    print(f"# Pooled over {len(sys.argv) - 1} run(s): median of the per-round ratios (min–max), rounds")
    for (scenario, other), values in sorted(pooled.items()):
        print(f"{scenario} luas ÷ {other}: {report.ratio_summary(values)}, {len(values)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
