#!/usr/bin/env bash
# End-to-end: a scripted `yanyi chat --plain` session on the trained fixture models switches
# persona (LLaMA plain -> LLaMA CuteGPT -> ChatGLM cosplay) and adapters (persona-bound and one
# loaded by hand) mid-conversation; the saved Markdown transcript must show all of it.
#   tools/e2e/plain_chat.sh [path/to/yanyi]
set -euo pipefail
cd "$(dirname "$0")/../.."
yanyi=${1:-.build/debug/yanyi}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' '你好' '/persona runtime/llama-cute' '再说一句' \
  '/adapter load Tests/Fixtures/adapters/llama-qv=0.5' '/adapters' '好' \
  '/persona runtime/glm-cosplay' '主公安在？' "/save markdown $tmp/t.md" '/quit' |
  "$yanyi" chat --plain --personas Tests/Fixtures/chat/personas-runtime --models Tests/Fixtures \
    --sessions "$tmp/sessions" --persona runtime/llama-plain --threads 1 > "$tmp/out.txt" 2>&1
fail() { echo "plain_chat: $1"; cat "$tmp/out.txt"; exit 1; }
grep -q '· persona runtime/llama-cute (乙), template cutegpt' "$tmp/out.txt" || fail "no switch to llama-cute"
grep -q '· adapter adapters/llama-all=0.5' "$tmp/out.txt" || fail "persona adapter not loaded"
grep -q '· adapter Tests/Fixtures/adapters/llama-qv=0.5' "$tmp/out.txt" || fail "hand-loaded adapter missing"
grep -q '· loaded models/chatglm-trained/safetensors (ChatGLM-6B, int8)' "$tmp/out.txt" || fail "ChatGLM not loaded on switch"
grep -q '· adapter adapters/chatglm-qkv=1.0' "$tmp/out.txt" || fail "cosplay adapter missing"
for who in '**甲**' '**乙**' '**刘备**' '**你**'; do grep -qF "$who" "$tmp/t.md" || fail "transcript lacks $who"; done
[ "$(grep -c '^\*\*你\*\*' "$tmp/t.md")" -eq 4 ] || fail "transcript should hold 4 user messages"
[ -f "$tmp/sessions/sessions.sqlite" ] || fail "no sessions database"
"$yanyi" sessions search '主公安在' --sessions "$tmp/sessions" | grep -q '主公安在' || fail "the session was not saved (or not found)"
echo "plain_chat: all checks passed"
