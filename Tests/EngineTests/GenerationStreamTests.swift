import Foundation
import Testing
@testable import Engine

/// The token loop: cancellation (within one token, session still usable), the AsyncStream, seeded
/// sampling, stop strings, stats, and session reuse.
@Suite struct GenerationStreamTests {
    /// A model that takes `delay` seconds per forward and counts them (cancellation timing).
    final class SlowModel: LanguageModel, @unchecked Sendable {
        let base: any LanguageModel
        let delay: Double
        private let lock = NSLock()
        private var n = 0
        init(_ base: any LanguageModel, delay: Double) {
            self.base = base
            self.delay = delay
        }
        var forwards: Int { lock.withLock { n } }
        var family: ModelFamily { base.family }
        var vocabSize: Int { base.vocabSize }
        var contextLength: Int { base.contextLength }
        var precision: Precision { base.precision }
        var weightBytes: Int { base.weightBytes }
        var bytesPerToken: Int { base.bytesPerToken }
        var lora: LoRAStack { base.lora }
        var projectionShapes: [String: (rows: Int, cols: Int)] { base.projectionShapes }
        func makeSession(capacity: Int?) -> ModelSession { base.makeSession(capacity: capacity) }
        func forward(_ tokens: [Int32], session: ModelSession, logits: LogitsWanted) throws(ModelError) -> [Float] {
            Thread.sleep(forTimeInterval: delay)
            lock.withLock { n += 1 }
            return try base.forward(tokens, session: session, logits: logits)
        }
    }

    static let prompt: [Int32] = try! GenerationReferenceTests.fixture("llama").prompts[2].ids   // the novel passage

    static func settings(_ edit: (inout GenerationSettings) -> Void = { _ in }) -> GenerationSettings {
        var s = GenerationSettings()
        s.maxNewTokens = 40
        s.eos = [2]
        edit(&s)
        return s
    }

    static func collect(_ g: TokenGenerator) throws -> ([(Int32, String)], GenerationResult) {
        var tokens: [(Int32, String)] = []
        while let e = try g.next() {
            switch e {
            case .token(let id, let text): tokens.append((id, text))
            case .finished(let r): return (tokens, r)
            }
        }
        throw GenerationError("no finished event")
    }

    /// The session's cache agrees with its tokens: the next forward gives what a fresh run gives.
    static func expectConsistent(_ lm: any LanguageModel, _ session: ModelSession, next: Int32) throws {
        let seq = session.tokens + [next]
        let got = try lm.forward([next], session: session, logits: .last)
        let want = try lm.forward(seq, session: lm.makeSession(capacity: seq.count), logits: .last)
        #expect(ForwardReferenceTests.maxAbsDiff(got[...], want[...]) <= 1e-4)
    }

    @Test func cancelStopsBeforeTheNextForwardAndLeavesSessionUsable() throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings())
        var ids: [Int32] = []
        for _ in 0..<5 {
            guard case .token(let id, _) = try g.next() else { Issue.record("expected a token"); return }
            ids.append(id)
        }
        g.cancel()
        guard case .finished(let r) = try g.next() else { Issue.record("expected finished"); return }
        #expect(r.reason == .cancelled)
        #expect(r.tokens == ids)
        #expect(r.stats.forwards == 5)                 // prefill + 4 decodes: nothing after the cancel
        #expect(try g.next().map { _ in true } == nil)
        #expect(g.session.tokens == Self.prompt + ids.dropLast())
        try Self.expectConsistent(lm, g.session, next: ids.last!)
    }

    /// Through the AsyncStream at 30 ms a token: a cancel from another thread once 4 forwards have
    /// run ends the stream after at most one more forward, with reason `.cancelled`. (Measured at
    /// the producer: under a busy test run the consumer's task may be scheduled late.)
    @Test func streamCancelsWithinOneToken() async throws {
        let (folder, base) = try GenerationReferenceTests.open("llama")
        let lm = SlowModel(base, delay: 0.03)
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt,
                                   settings: Self.settings { $0.maxNewTokens = 1000; $0.eos = [] })
        final class Mark: @unchecked Sendable { var forwards = 0 }
        let mark = Mark()
        let canceller = Thread {
            while lm.forwards < 4 { usleep(500) }
            mark.forwards = lm.forwards
            g.cancel()
        }
        var seen = 0
        var result: GenerationResult?
        let stream = g.stream()
        canceller.start()
        for await e in stream {
            switch e {
            case .token: seen += 1
            case .finished(let r): result = r
            }
        }
        let r = try #require(result)
        #expect(r.reason == .cancelled)
        #expect(lm.forwards <= mark.forwards + 1, "\(lm.forwards - mark.forwards) forwards after the cancel")
        #expect(r.tokens.count == seen && seen <= mark.forwards + 1)
        #expect(g.session.tokens == Self.prompt + r.tokens.dropLast())
        try Self.expectConsistent(base, g.session, next: r.tokens.last!)
    }

    /// Dropping the stream (leaving the loop) cancels too: the forwards stop.
    @Test func leavingTheStreamCancels() async throws {
        let (folder, base) = try GenerationReferenceTests.open("llama")
        let lm = SlowModel(base, delay: 0.02)
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt,
                                   settings: Self.settings { $0.maxNewTokens = 200; $0.eos = [] })
        var seen = 0
        for await e in g.stream() {
            if case .token = e { seen += 1 }
            if seen == 3 { break }
        }
        let atBreak = lm.forwards
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(g.cancellation.isCancelled)
        #expect(lm.forwards <= atBreak + 1, "\(lm.forwards - atBreak) forwards after leaving the stream")
    }

    @Test func streamMatchesIteratorAndStatsAreFilled() async throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        let (_, r1) = try Self.collect(TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings()))
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings())
        var ids: [Int32] = [], text = ""
        var r2: GenerationResult?
        for await e in g.stream() {
            switch e {
            case .token(let id, let t): ids.append(id); text += t
            case .finished(let r): r2 = r; text += r.remainingText
            }
        }
        let r = try #require(r2)
        #expect(ids == r1.tokens && r.tokens == r1.tokens)
        #expect(text == r.text && r.text == folder.tokenizer.decode(r.tokens, skipSpecialTokens: true))
        #expect(r.stats.promptTokens == Self.prompt.count && r.stats.generatedTokens == r.tokens.count)
        #expect(r.stats.timeToFirstToken > 0 && r.stats.prefillSeconds > 0 && r.stats.tokensPerSecond > 0)
        #expect(r.reason == .maxNewTokens)
    }

    @Test func seededSamplingRepeats() throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        func run(_ seed: UInt64, beams: Int = 1) throws -> [Int32] {
            let s = Self.settings { $0.doSample = true; $0.temperature = 1.2; $0.topK = 0; $0.seed = seed; $0.numBeams = beams; $0.maxNewTokens = 24 }
            return try Self.collect(TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: s)).1.tokens
        }
        let a = try run(11), b = try run(11)
        #expect(a == b && a.count == 24)
        #expect(try [12, 13, 14].map { try run($0) }.contains { $0 != a })
        // beam sampling: reproducible too
        #expect(try run(3, beams: 3) == run(3, beams: 3))
    }

    @Test func stopStringEndsAndIsStripped() throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        let (_, plain) = try Self.collect(TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings()))
        // a stop string from the middle of the greedy reply
        let chars = Array(plain.text)
        let stop = String(chars[8..<11])
        let before = String(plain.text[..<plain.text.range(of: stop)!.lowerBound])
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt,
                                   settings: Self.settings { $0.stopStrings = [stop, "never appears"] })
        let (events, r) = try Self.collect(g)
        #expect(r.reason == .stopString && r.stopString == stop)
        #expect(r.text == before)
        #expect(events.map(\.1).joined() + r.remainingText == before)
        #expect(r.tokens == Array(plain.tokens.prefix(r.tokens.count)) && r.tokens.count < plain.tokens.count)
        // the token that completed it is the first whose text reaches past the stop string's start
        let upTo = folder.tokenizer.decode(r.tokens, skipSpecialTokens: true)
        #expect(upTo.contains(stop) && !folder.tokenizer.decode(Array(r.tokens.dropLast()), skipSpecialTokens: true).contains(stop))
    }

    @Test func stopStringMatcherHoldsBackPrefixes() {
        var m = StopStringMatcher(["<end>"])
        #expect(m.push("好<").text == "好")
        #expect(m.push("e").text == "")
        #expect(m.push("x").text == "<ex")
        #expect(m.push("<en").text == "")
        let r = m.push("d>后")
        #expect(r.text == "" && r.stop == "<end>")
        #expect(m.emitted == "好<ex")
        var n = StopStringMatcher(["ab"])
        #expect(n.push("xa").text == "x")
        #expect(n.flush() == "a")
    }

    @Test func sessionPrefixIsReusedAndGreedyUnchanged() throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        let (_, fresh) = try Self.collect(TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings()))
        let s = lm.makeSession(capacity: 200)
        _ = try lm.forward(Array(Self.prompt.prefix(10)) + [5, 6, 7], session: s, logits: .last)  // shares 10 tokens
        let g = try TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt, settings: Self.settings(), session: s)
        let (_, r) = try Self.collect(g)
        #expect(r.stats.reusedPromptTokens == 10)
        #expect(r.tokens == fresh.tokens)
    }

    @Test func contextFullEndsEarly() throws {
        let (folder, lm) = try GenerationReferenceTests.open("llama")
        let s = lm.makeSession(capacity: Self.prompt.count + 5)
        let (_, r) = try Self.collect(TokenGenerator(model: lm, tokenizer: folder.tokenizer, prompt: Self.prompt,
                                                     settings: Self.settings { $0.eos = [] }, session: s))
        #expect(r.reason == .contextFull && r.tokens.count == 6)
    }
}
