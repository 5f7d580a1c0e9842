#!/usr/bin/env python3
"""End-to-end test of `yanyi chat` in a real terminal (tmux), no GPU, no model, no network.

Runs `yanyi chat --fake` in a detached tmux session at 120x36, then: types a question and waits
for the streamed reply; measures input latency (key to screen) while a reply streams; switches
persona; moves a slider; loads and unloads an adapter (the fixture Tests/Fixtures/adapters/llama-qv);
resizes the window (narrow, too small, back); opens help; quits and checks the session was saved.
With --real it also chats with the tiny LLaMA fixture through the real engine backend.
Asserts on `tmux capture-pane` text. Exit status 0 when every check passes.

    python3 tools/e2e/tui_tmux.py --yanyi .build/debug/yanyi [--out DIR] [--real]

Needs tmux (Debian: apt-get install tmux) and python3 (standard library only).
"""
import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Tmux:
    count = 0

    def __init__(self, width, height, command, env):
        # A server of our own per scenario (a socket name reused right after kill-server can race).
        Tmux.count += 1
        self.socket = "yanyi-e2e-%d-%d" % (os.getpid(), Tmux.count)
        self.target = "e2e"
        envs = " ".join("%s=%s" % (k, shq(v)) for k, v in env.items())
        # The shell after yanyi prints its exit status and keeps the pane open to read it.
        self.run("new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), "-c", ROOT,
                 "env %s TERM=xterm-256color %s; status=$?; echo; echo EXIT=$status; sleep 600" % (envs, command))

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.socket] + list(args), check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", self.target, *keys)

    def text(self, literal):
        self.run("send-keys", "-t", self.target, "-l", literal)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", self.target)

    def resize(self, width, height):
        self.run("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def wait(self, predicate, what, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            s = self.screen()
            if predicate(s):
                return s
            if time.monotonic() > end:
                raise Failure("timed out waiting for %s; screen:\n%s" % (what, s))
            time.sleep(0.01)

    def wait_text(self, text, timeout=20.0):
        return self.wait(lambda s: text in s, repr(text), timeout)

    def wait_all(self, texts, timeout=20.0):
        """Until every text shows: a frame is drawn top to bottom, so one text showing says
        nothing about the rows below it yet."""
        return self.wait(lambda s: all(x in s for x in texts), " and ".join(map(repr, texts)), timeout)

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


class Failure(Exception):
    pass


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def check(cond, message, screen=""):
    if not cond:
        raise Failure(message + ("\nscreen:\n" + screen if screen else ""))
    print("ok   " + message)


def input_line(screen):
    """The first line of the input box (after the rule)."""
    lines = screen.split("\n")
    for i, l in enumerate(lines):
        if l.startswith("──") and i + 1 < len(lines):
            return lines[i + 1]
    return ""


def latency(t, samples, streaming):
    """Types one character at a time and times until it shows in the input line."""
    out = []
    typed = ""
    for i in range(samples):
        ch = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        typed += ch
        t0 = time.monotonic()
        t.text(ch)
        t.wait(lambda s: input_line(s).rstrip().endswith(typed), "typed %r" % typed, 5)
        out.append((time.monotonic() - t0) * 1000)
    if streaming:
        check("▌" in t.screen(), "all %d samples taken while the reply streamed (caret still there)" % samples)
    t.keys("C-u")
    t.wait(lambda s: input_line(s).strip() == "›", "input cleared")
    return out


def capture_cost(t, n=20):
    """What one capture-pane poll costs: the floor under every latency sample."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        t.screen()
        out.append((time.monotonic() - t0) * 1000)
    return summary(out)


def summary(ms):
    ms = sorted(ms)
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1),
            "min_ms": round(ms[0], 1)}


def fake_scenario(args, data):
    env = {"XDG_DATA_HOME": data}
    cmd = "%s chat --fake --fake-token-ms %d --personas %s --themes %s" % (
        shq(args.yanyi), args.token_ms, shq(os.path.join(ROOT, "Personas")), shq(os.path.join(ROOT, "Themes")))
    t = Tmux(120, 36, cmd, env)
    results = {}
    try:
        t.wait_all(["fake · canned", "与 刘备（三国演义）对话", "Sliders", "Adapters"], 30)
        check(True, "start: 刘备, sliders and adapters shown")
        t.wait_text("备乃汉室宗亲")
        check(True, "the persona's greeting is shown")

        # Idle latency first (nothing streaming), for comparison, and the cost of one poll.
        results["capture_pane"] = capture_cost(t)
        results["idle"] = summary(latency(t, 10, streaming=False))

        t.text("曹操大军将至，如之奈何？")
        t.keys("Enter")
        t.wait_text("先生所言", 5)
        check(True, "the reply starts streaming")
        results["streaming"] = summary(latency(t, args.samples, streaming=True))
        s = t.wait_all(["然后可图中原也", "输入 · Enter", "tok/s │ TTFT", "/2048 "], 60)
        check("曹操大军将至，如之奈何？" in s and "玄德曰：" not in s, "the question is shown as typed (the hand-over is the prompt's)", s)
        check(True, "status line shows tok/s, TTFT and context")
        if args.out:
            with open(os.path.join(args.out, "screen-sanguo.txt"), "w") as f:
                f.write(s)

        # Persona: filter to 孔明 (诸葛亮), choose.
        t.keys("F2")
        t.wait_all(["Persona · 人物", "三国 · 三国演义", "西游 · 西游记", "水浒 · 水浒传"])
        check(True, "picker groups personas")
        t.text("孔明")
        t.wait_all(["filter: 孔明", "诸葛亮", "sanguo/zhugeliang", "sanguo-cosplay×1"])
        check(True, "filter finds 诸葛亮 with its adapter")
        t.keys("Enter")
        t.wait_all(["与 诸葛亮（三国演义）对话", "换成 诸葛亮（三国）"])
        check(True, "persona switch noted in the conversation")

        # Slider: focus the panel, temperature (4th row), two steps right.
        def temperature(screen):
            for l in screen.split("\n"):
                if "temperature" in l:
                    return float(l.split("│")[-2].split()[-1].rstrip("•"))
            raise Failure("no temperature row:\n" + screen)
        before = temperature(t.screen())
        t.keys("Tab", "Tab", "Down", "Down", "Down", "Right", "Right")
        s = t.wait(lambda s: abs(temperature(s) - (before + 0.10)) < 1e-6, "temperature +0.10")
        check(True, "slider moved: temperature %.2f -> %.2f" % (before, temperature(s)))

        # Adapter: load the fixture, then unload it.
        t.keys("F4", "l")
        t.wait_text("Load adapter")
        t.text("Tests/Fixtures/adapters/llama-qv")
        t.keys("Enter")
        t.wait_all(["8 modules, r 8", "[x] llama-qv", "llama-qv×1"])
        check(True, "adapter loaded, listed and active in the status line")
        t.keys("u")
        t.wait(lambda s: "unloaded llama-qv" in s and "[x] llama-qv" not in s and "llama-qv×1" not in s, "llama-qv gone")
        check(True, "adapter unloaded")
        t.keys("F4", "l")
        t.wait_text("Load adapter")
        t.text("/no/such/adapter")
        t.keys("Enter")
        s = t.wait_text("✗ /no/such/adapter")
        check(True, "a bad adapter folder is a one-line error")
        t.keys("Escape")

        # Resize: narrow (side panel hidden), too small (message), back.
        t.resize(70, 20)
        s = t.wait(lambda s: "Sliders" not in s and "演义" in s, "narrow layout")
        check(len(s.split("\n")[0]) <= 70, "relayout at 70x20 without the side panel", s)
        t.resize(50, 12)
        s = t.wait_text("terminal too small: 50×12")
        t.resize(120, 36)
        t.wait_all(["Sliders", "与 诸葛亮", "然后可图中原也", "换成 诸葛亮（三国）", "F1 help"])
        check(True, "conversation intact after resizes")

        # Help lists keys; any key closes it.
        t.keys("F1")
        t.wait_all(["Help · 帮助", "Ctrl-R", "alternative", "Adapters (F4)"])
        t.keys("PageDown")
        t.wait_all(["Help · 帮助", "Pickers and lists"])
        check(True, "help lists the keys")
        t.keys("Escape")
        t.wait(lambda s: "Help · 帮助" not in s, "help closed")

        # A second question to 诸葛亮, then quit.
        t.text("先生以为如何？")
        t.keys("Enter")
        s = t.wait(lambda s: s.count("然后可图中原也") >= 2 and "输入 · Enter" in s, "second reply", 60)
        check("先生以为如何？" in s and "孔明曰：" not in s, "the second question is shown as typed", s)
        t.keys("C-q")
        s = t.wait_text("EXIT=0")
        check(True, "yanyi exits with status 0")
        # The sessions database: $XDG_DATA_HOME/yanyi/sessions.sqlite.
        db = os.path.join(data, "yanyi", "sessions.sqlite")
        check(os.path.exists(db), "the sessions database was made")
        with sqlite3.connect(db) as conn:
            sessions = conn.execute("SELECT id FROM sessions").fetchall()
            texts = [r[0] for r in conn.execute("SELECT text FROM messages")]
        check(len(sessions) == 1, "the session was saved")
        check(any("然后可图中原也" in x for x in texts) and "先生以为如何？孔明曰：" in texts, "saved messages include both exchanges")
    finally:
        t.close()
    return results


def scene_scenario(args, data):
    """A three-character 三国 scene: marked in the picker, a question naming one, F9 for the next."""
    cmd = "%s chat --fake --fake-token-ms 5 --personas %s --themes %s" % (
        shq(args.yanyi), shq(os.path.join(ROOT, "Personas")), shq(os.path.join(ROOT, "Themes")))
    t = Tmux(120, 36, cmd, {"XDG_DATA_HOME": data})
    try:
        t.wait_all(["fake · canned", "与 刘备"], 30)
        t.keys("F2")
        t.wait_text("Persona · 人物")
        for name in ["刘备", "关羽", "张飞"]:
            t.keys("C-u")
            t.text(name)
            t.keys("C-t")
        t.keys("Enter")
        t.wait_text("场景：刘备、关羽、张飞")
        check(True, "scene started from the picker")
        t.text("云长何在？")
        t.keys("Enter")
        t.wait(lambda s: "关羽 · 三国" in s and "输入 · Enter" in s, "关羽 answers", 30)
        t.keys("F9")
        s = t.wait(lambda s: "张飞 · 三国" in s and "输入 · Enter" in s, "张飞 speaks next", 30)
        check(True, "the named speaker answers, F9 gives the next in turn")
        if args.out:
            with open(os.path.join(args.out, "screen-scene.txt"), "w") as f:
                f.write(s)
        t.keys("C-q")
        t.wait_text("EXIT=0")
        with sqlite3.connect(os.path.join(data, "yanyi", "sessions.sqlite")) as conn:
            rows = conn.execute("SELECT persona, adapters FROM messages WHERE role = 'assistant' AND greeting IS NOT 1 ORDER BY seq").fetchall()
            cast = conn.execute("SELECT personas FROM casts").fetchall()
        check([r[0] for r in rows] == ["sanguo/guanyu", "sanguo/zhangfei"], "replies saved with their speakers", str(rows))
        check(all("sanguo-cosplay" in (r[1] or "") for r in rows), "each reply with its speaker's adapter", str(rows))
        check(json.loads(cast[0][0]) == ["sanguo/liubei", "sanguo/guanyu", "sanguo/zhangfei"], "the cast is saved", str(cast))
    finally:
        t.close()


def real_scenario(args, data):
    model = os.path.join(ROOT, "Tests/Fixtures/models/llama-trained/safetensors")
    cmd = "%s chat --model %s --persona assistants/plain --threads 1 --personas %s --themes %s" % (
        shq(args.yanyi), shq(model), shq(os.path.join(ROOT, "Personas")), shq(os.path.join(ROOT, "Themes")))
    t = Tmux(120, 36, cmd, {"XDG_DATA_HOME": data})
    try:
        t.wait_all(["safetensors · int8", "与 助手"], 60)
        check(True, "real backend: tiny LLaMA fixture loaded")
        t.text("hello")
        t.keys("Enter")
        t.wait(lambda s: "tok/s │ TTFT" in s and "ctx " in s and "输入 · Enter" in s, "a reply from the engine", 60)
        check(True, "real backend: reply streamed with stats")
        t.keys("C-q")
        t.wait_text("EXIT=0")
        check(True, "real backend: exits with status 0")
    finally:
        t.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yanyi", default=os.environ.get("YANYI_BIN", os.path.join(ROOT, ".build/debug/yanyi")))
    ap.add_argument("--out", help="folder for the captured screen and latency JSON")
    ap.add_argument("--samples", type=int, default=20, help="latency samples while a reply streams")
    ap.add_argument("--token-ms", type=int, default=120, help="fake token delay (long enough to sample while streaming)")
    ap.add_argument("--real", action="store_true", help="also chat with the tiny LLaMA fixture (real engine)")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tmux not found (Debian: apt-get install tmux)")
    args.yanyi = os.path.abspath(args.yanyi)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        try:
            results = fake_scenario(args, data)
            scene_scenario(args, tempfile.mkdtemp(dir=data))
            if args.real:
                real_scenario(args, tempfile.mkdtemp(dir=data))
        except Failure as e:
            print("FAIL " + str(e))
            sys.exit(1)
    print("input latency, key to screen (ms): " + json.dumps(results, ensure_ascii=False))
    if args.out:
        with open(os.path.join(args.out, "latency.json"), "w") as f:
            json.dump(results, f, indent=1)
    print("all checks passed")


if __name__ == "__main__":
    main()
