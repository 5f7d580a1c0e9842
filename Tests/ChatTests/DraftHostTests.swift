import Engine
import Foundation
import Testing
@testable import Chat

/// The chat's model host loads a draft model beside a base that shares its tokenizer, and says so in a
/// notice (and goes on without it) beside one that does not; the replies are the same either way.
@Suite struct DraftHostTests {
    final class Notices: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func add(_ s: String) { lock.withLock { list.append(s) } }
        var all: [String] { lock.withLock { list } }
    }

    static let base = ChatFixtures.fixtures.appendingPathComponent("models/llama-trained/safetensors").path

    @Test func aDraftSharingTheTokenizerIsLoadedAndChangesNoReply() throws {
        let notices = Notices()
        let host = LocalModelHost(pool: ThreadPool(threads: 1), notice: { notices.add($0) },
                                  draft: DraftSetting(path: Self.base, tokens: 4, minProbability: 0))
        let engine = try #require(try host.load(Self.base, progress: { _, _ in }) as? LocalEngine)
        let draft = try #require(engine.draft)
        #expect(draft.maxDraft == 4 && notices.all.isEmpty)
        let plain = try #require(try LocalModelHost(pool: ThreadPool(threads: 1)).load(Self.base, progress: { _, _ in }) as? LocalEngine)
        let prompt = Array(plain.tokenizer.encode("hello there, friend", addSpecialTokens: true))
        var p = GenerationParameters()
        p.maxNewTokens = 24
        p.doSample = false
        let request = EngineRequest(promptIDs: prompt, parameters: p)
        let a = plain.generate(request, cancelled: CancellationFlag(), onDelta: { _ in })
        let b = engine.generate(request, cancelled: CancellationFlag(), onDelta: { _ in })
        #expect(a.error == nil && b.error == nil)
        #expect(a.tokens == b.tokens && a.text == b.text && !a.tokens.isEmpty)
        let s = try #require(b.stats)
        #expect(s.draftModelForwards > 0 && s.acceptedDraftTokens == s.draftTokens && s.draftTokens > 0, "\(s)")
    }

    @Test func aDraftWithAnotherTokenizerIsLeftOutWithANotice() throws {
        let notices = Notices()
        let other = ChatFixtures.fixtures.appendingPathComponent("models/chatglm-trained/safetensors").path
        let host = LocalModelHost(pool: ThreadPool(threads: 1), notice: { notices.add($0) },
                                  draft: DraftSetting(path: other, tokens: 4, minProbability: 0.3))
        let engine = try #require(try host.load(Self.base, progress: { _, _ in }) as? LocalEngine)
        #expect(engine.draft == nil)
        let n = try #require(notices.all.first)
        #expect(n.hasPrefix(other) && n.contains("cannot draft for") && n.contains("decoding without a draft model"), "\(n)")
    }
}
