import Foundation
import Testing
@testable import Chat

@Suite struct CharacterCardTests {
    static func card(_ name: String) -> String { ChatFixtures.chat.appendingPathComponent("cards/" + name).path }

    static func liubei() throws -> Persona {
        try #require(PersonaLibrary.load(from: PersonaTests.shipped).persona("sanguo/liubei"))
    }

    /// A persona with its bookkeeping (where it was read from) cleared, for comparisons.
    static func bare(_ p: Persona) -> Persona {
        var p = p
        p.source = ""
        p.card = nil
        return p
    }

    @Test func importsV1V2V3FromJSONAndPNG() throws {
        let (v1, _) = try CharacterCard.read(Self.card("v1.json"))
        #expect(v1.spec == .v1 && v1.name == "貂蝉")
        let p1 = try v1.persona(id: "diaochan", file: "v1.json")
        #expect(p1.id == "cards/diaochan" && p1.template == "auto" && p1.greetings == ["“大人深夜至此，有何吩咐？”"])
        #expect(p1.preamble == nil && p1.communityCard != nil)
        let story = RoleplayPrompt(persona: p1, history: [], input: "", lore: nil, inputs: .init(user: .init(name: "子龙"))).story
        #expect(story.hasPrefix("貂蝉乃王允府中歌伎"), "{{char}} replaced")
        #expect(p1.scene == "王允府后花园，月下")

        let (v2, png2) = try CharacterCard.read(Self.card("v2.png"))
        #expect(png2 != nil && v2.spec == .v2 && v2.name == "诸葛亮")
        #expect(v2 == (try CharacterCard.read(Self.card("v2.json"))).card)
        let p2 = try v2.persona(id: "x", file: "v2.png")
        #expect(p2.id == "sanguo/zhuge-card" && p2.template == "glm-cosplay" && p2.model == "glm-demo")
        #expect(p2.adapters == [.init(path: "adapters/sanguo-cosplay", scale: 0.5)])
        #expect(p2.speaker == .init(name: "孔明", verb: "曰") && p2.sampling.topK == 40 && p2.sampling.topP == 0.75)
        #expect(p2.greetings == ["“将军远来，亮有失远迎。”", "“亮久乐耕锄，懒于应世。”"])

        let (v3, _) = try CharacterCard.read(Self.card("v3.json"))
        #expect(v3.spec == .v3 && v3.name == "司马懿")
        #expect((try CharacterCard.read(Self.card("v1.png"))).card.name == "貂蝉")
    }

    @Test func ccv3ChunkWinsOverChara() throws {
        let (c, _) = try CharacterCard.read(Self.card("v2-and-v3.png"))
        #expect(c.spec == .v3 && c.name == "司马懿")
    }

    @Test func errorsNameFileAndField() throws {
        #expect(throws: ChatError.self) { try CharacterCard.read(Self.card("plain.png")) }
        do {
            _ = try CharacterCard.decode(json: Data(#"{"spec":"chara_card_v2","data":{"description":"x"}}"#.utf8), file: "c.json")
            Issue.record("no error")
        } catch {
            #expect(error.description == "c.json: data.name: is required")
        }
        do {
            let bad = #"{"spec":"chara_card_v2","data":{"name":"甲","extensions":{"yanyi":{"template":"glm-cosplay","model":"glm-demo","sampling":{"top_p":7}}}}}"#
            _ = try CharacterCard.decode(json: Data(bad.utf8), file: "c.json").persona(id: "a", file: "c.json")
            Issue.record("no error")
        } catch {
            #expect(error.field == "sampling.top_p" && error.file == "c.json")
        }
        var png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.card("v2.png"))))
        png[40] ^= 0xFF   // inside the first tEXt chunk
        #expect(throws: ChatError.self) { try CharacterCard.decode(png: png, file: "x.png") }
    }

    /// An imported card keeps every field it came with (character_book, other apps' extensions,
    /// unknown fields) through persona -> card, V2 and V3, JSON and PNG.
    @Test func roundTripKeepsUnknownFields() throws {
        for source in ["v2.json", "v3.json", "v2.png"] {
            let (orig, _) = try CharacterCard.read(Self.card(source))
            let p = try orig.persona(id: "x", file: source)
            for spec in [CharacterCard.Spec.v2, .v3] {
                let out = CharacterCard(persona: p, spec: spec)
                let back = try CharacterCard.decode(json: out.jsonData(), file: "out")
                #expect(back.spec == spec)
                var want = orig.data
                var got = back.data
                if spec == .v3 { got["group_only_greetings"] = want["group_only_greetings"] }
                // Everything but Yanyi's own extension block is byte-for-byte the card's.
                var wantExt = want["extensions"]?.object ?? [:]
                var gotExt = got["extensions"]?.object ?? [:]
                wantExt["yanyi"] = nil
                gotExt["yanyi"] = nil
                want["extensions"] = nil
                got["extensions"] = nil
                #expect(got == want, "\(source) -> \(spec)")
                #expect(gotExt == wantExt, "\(source) -> \(spec): extensions")
                #expect(back.root["create_date"] == orig.root["create_date"])
                #expect(Self.bare(try back.persona(id: "x", file: "out")) == Self.bare(p))
            }
            let png = try CharacterCard.png(persona: p)
            let fromPNG = try CharacterCard.decode(png: png, file: "out.png")
            let fromPNGPersona = try fromPNG.persona(id: "x", file: "o")
            #expect(fromPNG.spec == .v3 && Self.bare(fromPNGPersona) == Self.bare(p))
        }
    }

    /// A shipped YAML persona -> V2/V3 JSON and PNG -> the same persona.
    @Test func personaRoundTrips() throws {
        for id in ["sanguo/liubei", "assistants/cutegpt", "assistants/plain", "assistants/rulai"] {
            let p = try #require(PersonaLibrary.load(from: PersonaTests.shipped).persona(id))
            for spec in [CharacterCard.Spec.v2, .v3] {
                let json = CharacterCard(persona: p, spec: spec).jsonData()
                let c = try CharacterCard.decode(json: json, file: "out.json")
                #expect(c.data["extensions"]?["yanyi"]?["template"] == .string(p.template))
                #expect(Self.bare(try c.persona(id: "other", file: "out.json")) == Self.bare(p), "\(id) \(spec)")
            }
            let png = try CharacterCard.png(persona: p)
            let chunks = try PNGFile.chunks(png, file: "out.png")
            let keys = chunks.compactMap(\.textEntry?.keyword)
            #expect(keys == ["chara", "ccv3"] && chunks.last?.type == "IEND")
            let chara = try #require(chunks.first { $0.textEntry?.keyword == "chara" }?.textEntry?.text)
            let v2 = try CharacterCard.decode(json: try #require(Data(base64Encoded: chara)), file: "chara")
            #expect(v2.spec == .v2 && v2.root["name"] == .string(p.name), "V1 fields mirrored at the top")
            #expect(Self.bare(try CharacterCard.decode(png: png, file: "o").persona(id: "o", file: "o")) == Self.bare(p))
        }
    }

    /// Exporting into an existing PNG keeps its image and other chunks and replaces the card.
    @Test func exportIntoExistingPNG() throws {
        let image = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.card("v2-and-v3.png"))))
        let p = try Self.liubei()
        let out = try CharacterCard.png(persona: p, image: image)
        let before = try PNGFile.chunks(image, file: "in").filter { $0.type != "tEXt" }
        let after = try PNGFile.chunks(out, file: "out")
        #expect(after.filter { $0.type != "tEXt" } == before)
        #expect(after.compactMap(\.textEntry?.keyword) == ["chara", "ccv3"])
        #expect(try CharacterCard.decode(png: out, file: "o").name == "刘备")
    }

    /// The PNG written without an image is valid: CRCs check (chunks() verifies them), the IDAT
    /// zlib stream inflates (stored blocks) to the right pixels with a matching Adler-32.
    @Test func generatedImageIsAValidPNG() throws {
        var p = try Self.liubei()
        p.accent = "#102030"
        let chunks = try PNGFile.chunks(try CharacterCard.png(persona: p), file: "o")
        #expect(chunks.map(\.type) == ["IHDR", "tEXt", "tEXt", "IDAT", "IEND"] || chunks.map(\.type) == ["IHDR", "IDAT", "tEXt", "tEXt", "IEND"])
        let ihdr = chunks[0].data
        #expect(PNGFile.be32(ihdr, 0) == 64 && PNGFile.be32(ihdr, 4) == 64 && Array(ihdr[8...]) == [8, 2, 0, 0, 0])
        let z = try #require(chunks.first { $0.type == "IDAT" }).data
        #expect(z[0] == 0x78 && (UInt16(z[0]) << 8 | UInt16(z[1])) % 31 == 0)
        var raw: [UInt8] = []
        var i = 2
        while true {   // stored blocks: header byte, LEN, NLEN, bytes
            let final = z[i] & 1
            #expect(z[i] & 0b110 == 0)
            let len = Int(z[i + 1]) | Int(z[i + 2]) << 8
            let nlen = Int(z[i + 3]) | Int(z[i + 4]) << 8
            #expect(len ^ nlen == 0xFFFF)
            raw += z[(i + 5)..<(i + 5 + len)]
            i += 5 + len
            if final == 1 { break }
        }
        #expect(PNGFile.be32(z, i) == PNGFile.adler32(raw) && i + 4 == z.count)
        #expect(raw.count == 64 * (1 + 64 * 3) && raw[0] == 0 && Array(raw[1...3]) == [0x10, 0x20, 0x30])
        // Known answers: zlib's own adler32/crc32 of "Wikipedia" / "123456789".
        #expect(PNGFile.adler32(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(PNGFile.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        // Stored blocks split at 65535 bytes.
        let big = [UInt8](repeating: 7, count: 150_000)
        let zs = PNGFile.zlibStored(big)
        #expect(zs.count == 2 + 3 * 5 + 150_000 + 4)
    }
}
