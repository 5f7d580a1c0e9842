#!/usr/bin/env python3
"""Crash test: SIGKILL `yanyi chat --plain --fake` at random moments, many times, over one sessions
database. A question is acknowledged once the chat starts answering it (it was recorded before the
reply began); a reply once its line is complete. After every kill, every acknowledged question and
every completed reply must be in the database, and the database must open without a notice.

    tools/e2e/crash_kill.py [--yanyi .build/debug/yanyi] [--runs 200] [--seed 1]
"""
import argparse
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_once(args, folder, rng, run):
    """One chat, killed after a random time; returns (acknowledged questions, completed replies)."""
    cmd = [args.yanyi, "chat", "--plain", "--fake", "--fake-token-ms", "3", "--fake-load-ms", "0",
           "--persona", "assistants/plain", "--sessions", folder,
           "--personas", os.path.join(ROOT, "Personas"), "--models", os.path.join(ROOT, "Models")]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + rng.uniform(0.05, 0.9)
    acked, completed, pending, out = [], [], None, b""
    k = 0
    try:
        # The start: the header and the greeting (also "助手：…") are not answers; skip them.
        while b"/help lists commands" not in out and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            out += os.read(p.stdout.fileno(), 65536)
        while select.select([p.stdout], [], [], 0.03)[0]:
            if not os.read(p.stdout.fileno(), 65536):
                break
        out = b""
        while time.monotonic() < deadline:
            if pending is None:
                q = "q%d-%d" % (run, k)
                k += 1
                p.stdin.write((q + "\n").encode())
                p.stdin.flush()
                pending = q
            r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            # "助手：" starts the answer (the question is saved); a newline after it ends the reply.
            while True:
                text = out.decode("utf-8", "ignore")
                start = text.find("助手：")
                if start < 0 or pending is None:
                    break
                if pending not in acked:
                    acked.append(pending)
                end = text.find("\n", start)
                if end < 0:
                    break
                completed.append(text[start + len("助手："):end])
                out = text[end + 1:].encode()
                pending = None
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
        stderr = p.stderr.read().decode("utf-8", "ignore")
    return acked, completed, stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yanyi", default=os.path.join(ROOT, ".build/debug/yanyi"))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    all_acked, all_completed = 0, 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "sessions.sqlite")
        for run in range(args.runs):
            acked, completed, stderr = run_once(args, folder, rng, run)
            all_acked += len(acked)
            all_completed += len(completed)
            if "warning" in stderr or "damaged" in stderr:
                sys.exit("FAIL run %d: the database was not clean on start: %s" % (run, stderr.strip()))
            if not os.path.exists(db):
                if acked:
                    sys.exit("FAIL run %d: %d questions acknowledged and no database" % (run, len(acked)))
                continue
            with sqlite3.connect(db) as conn:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
                # Killed while the first start was making the schema: no tables yet, nothing said.
                made = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'messages'").fetchone()[0]
                texts = set(r[0] for r in conn.execute("SELECT text FROM messages")) if made else set()
            if ok != "ok":
                sys.exit("FAIL run %d: integrity_check says %s" % (run, ok))
            lost = [q for q in acked if q not in texts]
            if lost:
                sys.exit("FAIL run %d: acknowledged questions lost: %s" % (run, lost))
            lost = [r for r in completed if r not in texts]
            if lost:
                sys.exit("FAIL run %d: completed replies lost: %s" % (run, lost[:2]))
    print("crash_kill: %d kills, %d acknowledged questions and %d completed replies all kept (%.0f s)"
          % (args.runs, all_acked, all_completed, time.monotonic() - t0))


if __name__ == "__main__":
    main()
