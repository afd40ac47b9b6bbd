#!/usr/bin/env python3
"""Keeps `rust-version` in Cargo.toml true, and the pinned toolchain above it.

    python3 scripts/check-msrv.py

Fails (exit 1) when
  - a package of the locked dependency graph (`cargo metadata --locked`, every
    package Cargo.lock holds, dev-dependencies and other platforms included)
    declares a `rust-version` above ours: then luas cannot build with the
    version it claims, as happened when a lockfile update brought in a
    dependency that needs 1.89 while Cargo.toml still said 1.88;
  - the toolchain pinned in rust-toolchain.toml is older than `rust-version`.

It only reads: it neither raises `rust-version` nor updates the lockfile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(text: str) -> tuple[int, ...]:
    """'1.89' -> (1, 89, 0); '1.95.0' -> (1, 95, 0)."""
    parts = [int(p) for p in text.strip().split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def show(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def main() -> int:
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    ours_text = manifest["package"].get("rust-version")
    if ours_text is None:
        print("error: Cargo.toml has no [package] rust-version", file=sys.stderr)
        return 1
    ours = version(ours_text)
    name = manifest["package"]["name"]

    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    needs = sorted(
        (
            (version(p["rust_version"]), p["name"], p["version"])
            for p in metadata["packages"]
            if p.get("rust_version") and p["name"] != name
        ),
        reverse=True,
    )
    failures = []
    above = [n for n in needs if n[0] > ours]
    for need, package, package_version in above:
        failures.append(
            f"{package} {package_version} (in Cargo.lock) needs Rust {show(need)}, "
            f"above luas's rust-version {ours_text}"
        )
    if needs:
        need, package, package_version = needs[0]
        print(
            f"rust-version {ours_text}; the locked graph ({len(metadata['packages'])} packages) "
            f"needs at most {show(need)} ({package} {package_version})"
        )

    toolchain_file = ROOT / "rust-toolchain.toml"
    if toolchain_file.exists():
        channel = tomllib.loads(toolchain_file.read_text(encoding="utf-8"))["toolchain"]["channel"]
        try:
            pinned = version(channel)
        except ValueError:
            failures.append(f"rust-toolchain.toml pins {channel!r}, not a version number")
        else:
            print(f"rust-toolchain.toml pins {channel}")
            if pinned < ours:
                failures.append(f"rust-toolchain.toml pins {channel}, older than rust-version {ours_text}")
    else:
        failures.append("rust-toolchain.toml is missing")

    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if above:
        print(
            f"error: raise rust-version in Cargo.toml to {show(above[0][0])} "
            "or lock older versions of those packages",
            file=sys.stderr,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
