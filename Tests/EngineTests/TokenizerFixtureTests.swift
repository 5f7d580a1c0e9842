import Foundation
import Testing
@testable import Engine

/// Token ids, pieces and decoded text against what the real Python tokenizers (transformers
/// 4.30.2 LlamaTokenizer, Baichuan's tokenizer class, ChatGLM-6B's remote-code ChatGLMTokenizer)
/// gave for the same strings: Tests/Fixtures/expected/tokens-<kind>.json, by tools/fixtures.
@Suite struct TokenizerFixtureTests {
    struct Expected: Decodable {
        struct Facts: Decodable {
            var bos_id: Int32?
            var eos_id: Int32?
            var unk_id: Int32?
            var pad_id: Int32?
        }
        struct Case: Decodable {
            var name: String
            var text: String
            var ids: [Int32]
            var ids_plain: [Int32]
            var pieces: [String]
            var decoded: String
            var decoded_skip: String
        }
        struct Stream: Decodable {
            var text: String
            var ids: [Int32]
            var prefix_decoded_skip: [String]
        }
        var kind: String
        var model_folder: String
        var facts: Facts
        var cases: [Case]
        var stream: Stream
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let kinds = ["llama", "baichuan", "chatglm", "chatglm-preslim"]

    static func load(_ kind: String) throws -> (Expected, any Tokenizer) {
        let url = fixtures.appendingPathComponent("expected/tokens-\(kind).json")
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
        let t = try TokenizerLoader.load(folder: fixtures.appendingPathComponent(e.model_folder).path)
        return (e, t)
    }

    @Test(arguments: kinds) func specialIDs(kind: String) throws {
        let (e, t) = try Self.load(kind)
        #expect(t.specials.bos == e.facts.bos_id)
        #expect(t.specials.eos == e.facts.eos_id)
        #expect(t.specials.unk == e.facts.unk_id)
        #expect(t.specials.pad == e.facts.pad_id)
    }

    @Test(arguments: kinds) func idsMatchPython(kind: String) throws {
        let (e, t) = try Self.load(kind)
        #expect(e.cases.count >= 40)
        for c in e.cases {
            #expect(t.encode(c.text, addSpecialTokens: true) == c.ids, "\(kind) '\(c.name)' encode")
            #expect(t.encode(c.text, addSpecialTokens: false) == c.ids_plain, "\(kind) '\(c.name)' encode plain")
            #expect(t.tokenize(c.text) == c.pieces, "\(kind) '\(c.name)' pieces")
        }
    }

    @Test(arguments: kinds) func decodeMatchesPython(kind: String) throws {
        let (e, t) = try Self.load(kind)
        for c in e.cases {
            #expect(t.decode(c.ids, skipSpecialTokens: false) == c.decoded, "\(kind) '\(c.name)' decode")
            #expect(t.decode(c.ids, skipSpecialTokens: true) == c.decoded_skip, "\(kind) '\(c.name)' decode skip")
        }
    }

    /// Where the Python tokenizer gives the text back, so must we; and it must for most strings.
    @Test(arguments: kinds) func roundTrips(kind: String) throws {
        let (e, t) = try Self.load(kind)
        var roundTripped = 0
        for c in e.cases where c.decoded_skip == c.text {
            roundTripped += 1
            #expect(t.decode(t.encode(c.text, addSpecialTokens: true), skipSpecialTokens: true) == c.text,
                    "\(kind) '\(c.name)'")
        }
        #expect(roundTripped >= e.cases.count / 2, "\(kind): only \(roundTripped) of \(e.cases.count) round-trip")
    }

    /// The streaming decoder emits, after each id, exactly the text Python's decode of the ids so far
    /// gives — except that it holds back a character still incomplete (Python shows U+FFFD there).
    @Test(arguments: kinds) func streamingMatchesPrefixDecodes(kind: String) throws {
        let (e, t) = try Self.load(kind)
        var stream = t.makeStreamingDecoder()
        var shown = ""
        for (k, id) in e.stream.ids.enumerated() {
            let delta = stream.push(id)
            #expect(!delta.contains("\u{FFFD}"), "\(kind) step \(k) emitted a replacement character")
            shown += delta
            var want = e.stream.prefix_decoded_skip[k + 1]
            while want.hasSuffix("\u{FFFD}") { want.removeLast() }
            #expect(shown == want, "\(kind) step \(k) (id \(id))")
        }
        shown += stream.flush()
        #expect(shown == e.stream.prefix_decoded_skip.last)
        #expect(shown == t.decode(e.stream.ids, skipSpecialTokens: true))
    }

    /// A byte-fallback character split over three pieces comes out whole, once.
    @Test func streamingNeverSplitsAUTF8Character() throws {
        let (_, t) = try Self.load("llama")
        let ids = t.encode("龘", addSpecialTokens: false)
        #expect(ids.count >= 3, "龘 should need byte fallback in the tiny vocabulary: \(ids)")
        var s = t.makeStreamingDecoder()
        let out = ids.map { s.push($0) }
        #expect(out.dropLast().allSatisfy { $0.isEmpty })
        #expect(out.last == "龘")
    }
}
