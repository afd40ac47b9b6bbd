#!/usr/bin/env python3
"""Opens N keep-alive HTTP/1.1 connections to 127.0.0.1:PORT, sends one
request on each and reads its answer, then holds them all open and idle.

    idle_conns.py --port 18180 --count 10000 [--concurrency 50] [--hold 120]

Used by bench/run.sh for scenario D (memory per idle client connection).
Once every connection has been tried it prints one line,

    ready ok=N failed=M

and keeps the successful ones open, sending nothing, until SIGTERM or SIGINT
or --hold seconds have passed; then it prints `closed-by-peer=K` (how many
of the held connections the server closed meanwhile) and exits 0. Raises its
own open-file limit (RLIMIT_NOFILE) as far as it may.
"""

import argparse
import asyncio
import resource
import signal
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: luas-bench-idle\r\n\r\n"


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_response(reader):
    """Reads one response with a Content-Length body; returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding":
            raise ValueError("chunked answer; this script expects Content-Length")
    if length:
        await reader.readexactly(length)
    return status


async def open_one(port, semaphore, timeout):
    async with semaphore:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout
            )
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            writer.write(REQUEST)
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout)
            if status != 200:
                raise ValueError(f"status {status}")
        except (OSError, ValueError, IndexError, asyncio.TimeoutError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return None
        return reader, writer


async def watch_close(reader, closed):
    """Counts the connection as closed by the server once it reads EOF."""
    try:
        data = await reader.read(1)
    except OSError:
        data = b""
    if not data:
        closed[0] += 1


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50,
                        help="connections being opened at once (default 50)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds for one connect or one answer (default 10)")
    parser.add_argument("--hold", type=float, default=120.0,
                        help="longest time to hold the connections (default 120 s)")
    args = parser.parse_args()

    limit = raise_nofile(args.count + 100)
    if limit < args.count + 20:
        print(f"idle_conns: open-file limit {limit} is too low for {args.count} "
              "connections; raise `ulimit -n`", file=sys.stderr)
        return 1

    semaphore = asyncio.Semaphore(args.concurrency)
    results = await asyncio.gather(
        *(open_one(args.port, semaphore, args.timeout) for _ in range(args.count))
    )
    held = [result for result in results if result is not None]
    print(f"ready ok={len(held)} failed={args.count - len(held)}", flush=True)

    closed = [0]
    watchers = [asyncio.ensure_future(watch_close(reader, closed)) for reader, _ in held]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.hold)
    except asyncio.TimeoutError:
        pass
    print(f"closed-by-peer={closed[0]}", flush=True)
    for watcher in watchers:
        watcher.cancel()
    for _, writer in held:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
