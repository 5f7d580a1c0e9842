import Engine
import Foundation
import Testing
@testable import Chat

@Suite struct ChatControllerTests {
    /// A reply streams as it is generated and equals the engine's own greedy run; the next turn
    /// reuses the session's prefix (only the new part is run).
    @Test func sendStreamsAndReusesThePrefix() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        var deltas: [String] = []
        let first = try c.send("宝玉笑道") { deltas.append($0) }
        #expect(deltas.count > 1 && PlainTemplate().finishReply(deltas.joined()) == first.message!.text, "\(deltas)")
        #expect(first.question!.text == "宝玉笑道" && first.message!.parent == first.question!.id)
        #expect(first.stats!.reusedPromptTokens == 0 && first.reason != nil && !first.partial)
        let ref = try Runtime.engineReply(persona: c.persona, adapters: ["adapters/llama-qv=1.0"], prompt: first.promptIDs, maxNewTokens: 10)
        #expect(first.tokens == ref.tokens && first.message!.text == ref.text)

        let second = try c.send("却说")
        #expect(second.stats!.reusedPromptTokens > first.promptIDs.count / 2, "the history's tokens are not run again")
        let ref2 = try Runtime.engineReply(persona: c.persona, adapters: ["adapters/llama-qv=1.0"], prompt: second.promptIDs, maxNewTokens: 10)
        #expect(second.tokens == ref2.tokens)
    }

    /// Retry keeps the old reply as an alternative; swipes move between them; all of it replays.
    @Test func retryKeepsTheAlternative() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        let first = try c.send("却说")
        try c.set("do_sample", "true")
        try c.set("seed", "11")
        try c.set("temperature", "2")
        let second = try c.retry()
        let conv = c.conversation
        #expect(conv.alternatives(of: first.message!.id).map(\.id) == [first.message!.id, second.message!.id])
        #expect(conv.head!.id == second.message!.id && second.message!.parent == first.question!.id)
        #expect(second.message!.text != first.message!.text, "sampling at temperature 2 gave the greedy reply")
        let back = try c.swipe(-1)
        #expect(back.index == 1 && back.count == 2 && c.conversation.head!.id == first.message!.id)
        #expect(throws: ChatError.self) { try c.swipe(-1) }
        // The same seed retried gives the same reply: the settings really reach the sampler.
        try c.swipe(1)
        let third = try c.retry()
        #expect(third.message!.text == second.message!.text)
        #expect(c.conversation.alternatives(of: first.message!.id).count == 3)
        let (again, _) = try Runtime.store(dir).read(c.sessionID!)
        #expect(again == c.conversation)
    }

    /// Edit and remove change only what is shown; the database keeps every version. Retry after the
    /// reply was removed answers the question again; continue extends a reply in place.
    @Test func editUndoRetryContinue() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/glm-cosplay")
        try c.set("max_new_tokens", "3")
        let r = try c.send("曹操大军将至")
        #expect(r.question!.text == "曹操大军将至，玄德曰：")
        let edited = try c.editLast("“吾当亲往。”")
        #expect(edited.id == r.message!.id && c.conversation.head!.text == "“吾当亲往。”")
        let removed = try c.removeLast()
        #expect(removed.id == r.message!.id && c.conversation.head!.id == r.question!.id)
        let q = try c.editLast("孔明至")
        #expect(q.text == "孔明至，玄德曰：")
        #expect(throws: ChatError.self) { try c.continueLast() }   // the question has no reply yet
        let again = try c.retry()
        #expect(again.message!.parent == r.question!.id && c.conversation.path.count == 2)
        let ref = try Runtime.engineReply(persona: c.persona, adapters: ["adapters/chatglm-qkv=1.0"], prompt: again.promptIDs, maxNewTokens: 3)
        #expect(again.message!.text == ref.text && again.tokens == ref.tokens)
        #expect(again.promptIDs == (try Runtime.promptIDs(for: again.message!, in: c.conversation, persona: c.persona)))

        let more = try c.continueLast()
        let extended = c.conversation.head!
        #expect(extended.id == again.message!.id && extended.text == again.message!.text + more.text)
        #expect(more.text.count > 0 && more.promptIDs.count > again.promptIDs.count)
        // Every version is kept: the text the edit replaced, and the removed reply's row.
        let store = try Runtime.store(dir)
        #expect(try store.textHistory(c.sessionID!, message: r.message!.id) == [r.message!.text])
        #expect(try store.textHistory(c.sessionID!, message: extended.id) == [again.message!.text])
        #expect(try store.read(c.sessionID!).conversation.message(r.message!.id)?.text == "“吾当亲往。”")
        #expect(try Runtime.store(dir).read(c.sessionID!).conversation == c.conversation)
    }

    /// Cancelling mid-reply saves what came, marked partial; the session (and the engine's) is usable
    /// after: the next reply equals a fresh engine run.
    @Test func cancelSavesPartialAndTheSessionGoesOn() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        var seen = 0
        let cut = try c.send("玄德公安在？") { _ in
            seen += 1
            if seen == 2 { c.cancel() }
        }
        #expect(cut.partial && cut.reason == .cancelled && cut.message?.partial == true)
        #expect(cut.tokens.count < 10 && !cut.message!.text.isEmpty)
        let full = try Runtime.engineReply(persona: c.persona, adapters: ["adapters/llama-qv=1.0"], prompt: cut.promptIDs, maxNewTokens: 10)
        #expect(full.tokens.starts(with: cut.tokens) && full.tokens.count > cut.tokens.count)
        #expect(!c.isBusy)

        let next = try c.send("然后呢")
        #expect(!next.partial && next.message?.partial == nil)
        let ref = try Runtime.engineReply(persona: c.persona, adapters: ["adapters/llama-qv=1.0"], prompt: next.promptIDs, maxNewTokens: 10)
        #expect(next.tokens == ref.tokens)
        let (read, _) = try Runtime.store(dir).read(c.sessionID!)
        #expect(read.path.map(\.partial) == [nil, nil, true, nil, nil])
        #expect(TranscriptExport.markdown(read, names: ["runtime/llama-plain": "甲"]).contains("**甲**（未完）："))
    }

    /// The stream API (the TUI's): deltas then `.finished`; ending the consumer cancels and the
    /// partial reply is saved.
    @Test func streamDeliversAndCancels() async throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        var text = ""
        var finished: ReplyOutcome?
        for await e in c.stream(.send("宝玉笑道")) {
            switch e {
            case .delta(let d): text += d
            case .finished(let o): finished = o
            case .failed(let err): Issue.record("\(err)")
            }
        }
        #expect(finished != nil && PlainTemplate().finishReply(text) == finished!.message!.text)

        // cancel() from the consumer's side mid-stream. The producer runs on its own thread and,
        // on a busy machine, may finish all its tokens before this consumer reads the second delta
        // (seen in CI); the deterministic mid-reply cancel is `cancelSavesPartialAndTheSessionGoesOn`
        // (cancel from inside the producer's callback). Here: whichever came first, the outcome is
        // consistent — a cancelled reply is partial, shorter than the limit and saved as partial.
        try c.newSession()   // the fixture model says more without history
        for (k, v) in [("do_sample", "true"), ("temperature", "5"), ("top_k", "0"), ("seed", "1"), ("max_new_tokens", "300")] {
            try c.set(k, v)
        }
        var n = 0
        var cut: ReplyOutcome?
        for await e in c.stream(.send("玄德公安在？")) {
            if case .delta = e { n += 1; if n == 2 { c.cancel() } }
            if case .finished(let o) = e { cut = o }
        }
        #expect(n >= 2 && cut != nil)
        if let cut, cut.reason == .cancelled {
            #expect(cut.partial == true && cut.tokens.count < 300 && c.conversation.head!.partial == true)
        } else {
            #expect(cut?.tokens.count == 300 && cut?.partial != true)
        }

        // Dropping the stream cancels too (when the reply is still running then; a tiny model may
        // already be done). Either way the controller comes back idle and usable.
        try c.set("max_new_tokens", "500")
        try c.newSession()
        let task = Task {
            for await e in c.stream(.send("却说")) { if case .delta = e { break } }
        }
        await task.value
        var waited = 0
        while c.isBusy && waited < 1000 { try await Task.sleep(nanoseconds: 10_000_000); waited += 1 }
        let last = c.conversation.head!
        #expect(!c.isBusy && last.role == .assistant)
        #expect(last.partial == true || last.text.count > 0, "\(c.conversation.path.map { ($0.id, $0.text) })")
        #expect(throws: Never.self) { _ = try c.send("宝玉笑道") }
    }

    /// generation_config.json < persona < user: max_new_tokens from the persona (10), then /set.
    @Test func samplingLayers() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/baichuan-qa")
        #expect(c.effectiveSettings.first { $0.key == "max_new_tokens" }!.value == "10")
        #expect(c.effectiveSettings.first { $0.key == "max_history" }!.value == "0")
        try c.set("max_new_tokens", "2")
        let r = try c.send("问什么")
        #expect(r.tokens.count <= 2 && r.reason != .cancelled)
        #expect(c.overrides.entries.map(\.key) == ["max_new_tokens"])
        try c.set("max_new_tokens", "default")
        #expect(c.overrides.entries.isEmpty)
        let p = Persona.Sampling(temperature: 0.7, topP: 0.9, topK: 20, repetitionPenalty: 1.1, maxNewTokens: 5,
                                 doSample: true, numBeams: 2, maxHistory: 4).generationParameters
        #expect(p.temperature == 0.7 && p.topP == 0.9 && p.topK == 20 && p.repetitionPenalty == 1.1)
        #expect(p.maxNewTokens == 5 && p.doSample == true && p.numBeams == 2 && p.seed == nil)
    }

    /// Resume: the persona the session was last using comes back, and the line chat shows the
    /// same conversation.
    @Test func resumeShowsTheSameConversation() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        _ = try c.send("玄德公安在")
        try c.switchPersona("runtime/llama-cute")
        _ = try c.send("孔明何在")
        let other = try Runtime.controller(dir, "runtime/baichuan-qa")
        let notes = try other.resume(c.sessionID!)
        #expect(notes.isEmpty && other.persona.id == "runtime/llama-cute")
        #expect(other.conversation == c.conversation)
        let shown = ScriptedChat(other, []).output
        for m in c.conversation.path { #expect(shown.contains(m.text)) }
        let next = try other.send("曹操何在")
        #expect(next.message!.adapters == ["adapters/llama-all=0.5"] && next.message!.persona == "runtime/llama-cute")

        // A controller made on a resumed session takes the persona that session was using.
        let onSession = try Runtime.controller(dir, "runtime/glm-cosplay")
        _ = try onSession.resume(c.sessionID!)
        #expect(onSession.persona.id == "runtime/llama-cute")

        // With a model already loaded, resuming switches at once: the persona's adapters are active.
        let third = try Runtime.controller(dir, "runtime/baichuan-qa")
        _ = try third.send("问")
        let loaded = try third.resume(c.sessionID!)
        #expect(loaded.contains("loaded models/llama-trained/safetensors (LlamaForCausalLM, int8)"), "\(loaded)")
        #expect(third.persona.id == "runtime/llama-cute" && third.adapters.map(\.label) == ["adapters/llama-all=0.5"])
    }
}
