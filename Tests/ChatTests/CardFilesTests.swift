import Foundation
import Testing
@testable import Chat

/// Cards as files in the personas folder: import copies, the library loads, export writes back
/// every field.
@Suite struct CardFilesTests {
    /// V1 JSON, V2 JSON and PNG, V3 JSON and a V2+V3 PNG: imported into a personas folder, each
    /// loads as the persona it says, exports as PNG (both chunks) and JSON with every field of
    /// the card (character_book, unknown fields, other apps' extensions) as it came.
    @Test func importLoadExportKeepsEveryField() throws {
        let dir = try TempDir()
        for source in ["v1.json", "v2.json", "v2.png", "v3.json", "v2-and-v3.png"] {
            let root = dir.file("Personas-" + source)   // v2.json and v2.png are one card: one id
            let path = CharacterCardTests.card(source)
            let (orig, _) = try CharacterCard.read(path)
            let taken = Set(PersonaLibrary.load(from: root).personas.map(\.id))
            let (p, file) = try CardFiles.importCard(path, into: root, taken: taken)
            #expect(FileManager.default.contents(atPath: file) == FileManager.default.contents(atPath: path), "copied unchanged")
            let lib = PersonaLibrary.load(from: root)
            #expect(lib.errors.isEmpty, "\(lib.errors)")
            let loaded = try #require(lib.persona(p.id), "\(source): \(p.id) not in the library")
            #expect(CharacterCardTests.bare(loaded) == CharacterCardTests.bare(p))

            for format in ["png", "json"] {
                let out = dir.file("out-\(source).\(format)")
                try CardFiles.export(loaded, format: format, to: out)
                let (back, png) = try CharacterCard.read(out)
                if format == "png" {
                    let keys = try PNGFile.chunks(try #require(png), file: out).compactMap { $0.textEntry?.keyword }
                    #expect(keys.contains("chara") && keys.contains("ccv3"), "\(keys)")
                }
                guard orig.spec != .v1 else {
                    #expect(back.name == orig.name && back.data["description"] == orig.data["description"])
                    continue
                }
                var want = orig.data, got = back.data
                if back.spec == .v3 { got["group_only_greetings"] = want["group_only_greetings"] }
                var wantExt = want["extensions"]?.object ?? [:], gotExt = got["extensions"]?.object ?? [:]
                wantExt["yanyi"] = nil
                gotExt["yanyi"] = nil
                want["extensions"] = nil
                got["extensions"] = nil
                #expect(got == want, "\(source) -> \(format)")
                #expect(gotExt == wantExt, "\(source) -> \(format): extensions")
            }
        }
    }

    /// Refused with a one-line reason, nothing written: a taken id, a bad --as, a file that is
    /// not a card, a card whose own id differs from --as.
    @Test func badImportsWriteNothing() throws {
        let dir = try TempDir()
        let root = dir.file("Personas")
        let v1 = CharacterCardTests.card("v1.json")
        _ = try CardFiles.importCard(v1, into: root)
        #expect(throws: ChatError.self) { try CardFiles.importCard(v1, into: root, taken: ["cards/v1"]) }
        #expect(throws: ChatError.self) { try CardFiles.importCard(v1, into: root, as: "../x") }
        #expect(throws: ChatError.self) { try CardFiles.importCard(v1, into: root, as: "a/b/c") }
        #expect(throws: ChatError.self) { try CardFiles.importCard(CharacterCardTests.card("v2.png"), into: root, as: "cards/other") }
        try Data("not a card".utf8).write(to: URL(fileURLWithPath: dir.file("x.json")))
        #expect(throws: ChatError.self) { try CardFiles.importCard(dir.file("x.json"), into: root) }
        let (p, _) = try CardFiles.importCard(v1, into: root, as: "sanguo/diaochan")
        #expect(p.id == "sanguo/diaochan" && PersonaLibrary.load(from: root).persona("sanguo/diaochan") != nil)
        let files = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.contains(".") }.sorted()
        #expect(files == ["cards/v1.json", "sanguo/diaochan.json"], "\(files)")
    }
}
