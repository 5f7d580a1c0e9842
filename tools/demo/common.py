"""Shared setup for the demo scripts: paths, the seed-era Python stack, text sources, file writers.

Importing this module puts tools/fixtures/.pydeps (transformers 4.30.2, peft 0.3.0), .pydeps-adapter
(accelerate for peft) and .upstream (ChatGLM-6B / Baichuan-7B remote code) on sys.path, as
tools/fixtures/make_fixtures.py does, and reuses that script's SentencePiece trainer and deterministic
torch.save (its `fix_torch_zip`).
"""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURES = os.path.join(REPO, "tools", "fixtures")
sys.path.insert(0, FIXTURES)
sys.path.insert(1, os.path.join(FIXTURES, ".pydeps-adapter"))
import make_fixtures as mf  # noqa: E402  (.pydeps/.upstream on sys.path; asserts transformers 4.30.2)

import torch  # noqa: E402

# One thread: OpenMP with two threads crawls on the shared 2-core machine (spin-waits while the other core
# is busy), and the thread count changes the floating-point results.
THREADS = int(os.environ.get("YANYI_DEMO_THREADS", "1"))
torch.set_num_threads(THREADS)
torch.use_deterministic_algorithms(True)

# The shared data folder beside the repository (../shared/data), or YANYI_DEMO_DATA.
DATA = os.environ.get("YANYI_DEMO_DATA", os.path.join(REPO, "..", "shared", "data"))
MODELS = os.path.join(REPO, "Models")
WORK = os.environ.get("YANYI_DEMO_WORK", os.path.join(HERE, "work"))  # git-ignored scratch (training logs, checkpoints)
DIALOGUE = os.path.join(HERE, "data")
NOVEL_FILES = ["三国演义.txt", "水浒传.txt", "红楼梦.txt", "西游记.txt"]

GLM_SPECIALS = mf.GLM_SPECIALS
GLM_USER = mf.GLM_USER
dump_json = mf.dump_json
fix_torch_zip = mf.fix_torch_zip


def log(*a):
    print(*a, flush=True)


def novel_paragraphs(name):
    """The novel's paragraphs (wrapped lines joined, as extract_dialogue.py does), headings kept."""
    import extract_dialogue as ed
    with open(os.path.join(DATA, "classics", name), encoding="utf-8") as f:
        text = f.read()
    return ed.paragraphs(text)


# One chapter per novel is held out of the default base's training (and of the adapters' dialogue lines);
# `yanyi eval` on these chapters gives the held-out nats per character (train_base.py, quality.py).
HELD_OUT = {"三国演义.txt": "第六十一回", "水浒传.txt": "第61回", "红楼梦.txt": "第六十一回", "西游记.txt": "第五十一回"}


def _chapter_lines(name):
    """(lines, [(line index, label)]) of a novel: a heading line is `第…回` after optional `正文` / `《》目录`."""
    import extract_dialogue as ed
    with open(os.path.join(DATA, "classics", name), encoding="utf-8") as f:
        lines = f.read().split("\n")
    heads = []
    for i, line in enumerate(lines):
        m = ed.CHAPTER.match(line)
        if m:
            heads.append((i, m.group(1)))
    return lines, heads


def split_held_out(name):
    """(text without the held-out chapter, the held-out chapter's text from its heading line on)."""
    lines, heads = _chapter_lines(name)
    at = [k for k, (_, label) in enumerate(heads) if label == HELD_OUT[name]]
    assert len(at) == 1, (name, at)
    start = heads[at[0]][0]
    end = heads[at[0] + 1][0] if at[0] + 1 < len(heads) else len(lines)
    return "\n".join(lines[:start] + lines[end:]), "\n".join(lines[start:end])


def training_paragraphs(name):
    """The novel's paragraphs without its held-out chapter."""
    import extract_dialogue as ed
    return ed.paragraphs(split_held_out(name)[0])


def held_out_paragraphs(name):
    import extract_dialogue as ed
    return ed.paragraphs(split_held_out(name)[1])


def rulai(name):
    with open(os.path.join(DATA, "rulai", name), encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def qa_text(row):
    """(`问：q`, `答：a`) with the prefixes added where a line lacks them (RulaiGPT's data mixes both)."""
    q, a = row["q"], row["a"]
    return (q if q.startswith("问：") else "问：" + q), (a if a.startswith("答：") else "答：" + a)


def is_rulai_line(row):
    """The 如来 / 如如 lines of the RulaiGPT sets (the rest of rulai_enhance is ordinary HC3 Q&A): answers that
    say 如来 or 如如, the drawn-out `答：如~来~` ones included, and the questions about 如来 (`问：如来是什么意思？`
    -> `来了又好像没来，…`)."""
    a = row["a"].replace("~", "")
    return "如来" in a or "如如" in a or "如来" in row["q"]


def ordinary_qa():
    """The ordinary HC3 Q&A lines of rulai_enhance.json (31 of 107): not the 如来 lines, nor the scraped
    "network error" answer."""
    return [r for r in rulai("rulai_enhance.json") if not is_rulai_line(r) and "network error" not in r["a"]]


def dialogue(name, exclude_held_out=False):
    """Rows of data/<name>.jsonl, extracted first when missing; `exclude_held_out` drops the rows whose
    quote is in a held-out chapter."""
    path = os.path.join(DIALOGUE, name + ".jsonl")
    if not os.path.exists(path):
        import extract_dialogue as ed
        ed.main()
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(l) for l in f]
    if exclude_held_out:  # lines of a held-out chapter never reach an adapter
        held = "".join(p for n in NOVEL_FILES for p in held_out_paragraphs(n))
        rows = [r for r in rows if r["chat"] not in held]
    return rows


def sha256_file(path):
    with open(path, "rb") as f:
        return mf.sha256_bytes(f.read())


sys.path.insert(0, HERE)
_ = glob  # (kept for scripts that list files)
