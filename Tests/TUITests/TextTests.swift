import Foundation
import Testing
@testable import TUI

/// Widths against the PyPI wcwidth package (tools/tui/make_width_table.py wrote the fixture).
struct WidthFixture: Decodable {
    struct Sample: Decodable { var text: String; var width: Int }
    var wcwidth: String
    var runs: [[Int]]
    var strings: [Sample]

    static func load() throws -> WidthFixture {
        try JSONDecoder().decode(WidthFixture.self, from: Data(contentsOf: Fx.fixtures.appendingPathComponent("tui/widths.json")))
    }
}

@Suite struct DisplayWidthTests {
    @Test func everyCodePointMatchesWcwidth() throws {
        let f = try WidthFixture.load()
        #expect(f.wcwidth == "0.2.13")
        var checked = 0
        var mismatches: [String] = []
        for run in f.runs {
            for cp in run[0]...run[1] {
                guard let s = Unicode.Scalar(UInt32(cp)) else { continue }   // surrogates
                let want = max(run[2], 0)   // control characters: -1 there, 0 here (never drawn raw)
                let got = DisplayWidth.of(s)
                if got != want && mismatches.count < 10 { mismatches.append(String(format: "U+%04X: %d, wcwidth %d", cp, got, want)) }
                checked += 1
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
        #expect(checked > 0x3F000)
    }

    @Test func stringsMatchWcswidth() throws {
        for s in try WidthFixture.load().strings {
            #expect(s.text.displayWidth == s.width, "\(s.text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test func cjkIsTwoCombiningIsZeroEmojiIsTwo() {
        #expect("刘备".displayWidth == 4)
        #expect("ｆｕｌｌ".displayWidth == 8)
        #expect("e\u{301}".displayWidth == 1)
        #expect("😀".displayWidth == 2)
        #expect("👨\u{200D}👩\u{200D}👧".displayWidth == 2)
        #expect("❤\u{FE0F}".displayWidth == 2)
        #expect("刘备".count == 2)   // Character count is not width
    }
}

@Suite struct WrapTests {
    func wrap(_ s: String, _ w: Int) -> [String] { TextLayout.wrap(s, width: w).map(\.text) }

    @Test func cjkBreaksAnywhereByWidth() {
        #expect(wrap("曹操大军将至如之奈何", 8) == ["曹操大军", "将至如之", "奈何"])
        // An odd width leaves a cell empty rather than splitting a character.
        #expect(wrap("曹操大军将至", 5) == ["曹操", "大军", "将至"])
    }

    @Test func latinBreaksAtSpaces() {
        #expect(wrap("the quick brown fox", 10) == ["the quick", "brown fox"])
        #expect(wrap("abcdefghijkl", 5) == ["abcde", "fghij", "kl"])
    }

    @Test func mixedScriptsAndNewlines() {
        #expect(wrap("刘备 says hello\n第二行", 10) == ["刘备 says", "hello", "第二行"])
        #expect(wrap("", 5) == [""])
        #expect(wrap("a\n\nb", 5) == ["a", "", "b"])
    }

    @Test func closingPunctuationNeverStartsALine() {
        // "。" would start line 2: the character before it comes down too.
        #expect(wrap("先取荆州为家。后取西川", 12) == ["先取荆州为", "家。后取西川"])
        #expect(wrap("甲乙丙丁。”戊", 8) == ["甲乙丙", "丁。”戊"])
    }

    @Test func combiningMarksStayWithTheirBase() {
        #expect(wrap("e\u{301}e\u{301}e\u{301}", 2) == ["e\u{301}e\u{301}", "e\u{301}"])
    }

    @Test func clipAndFitByWidth() {
        #expect(TextLayout.clip("刘备曹操", width: 5) == "刘备")
        #expect(TextLayout.fit("刘备曹操", width: 6) == "刘备… ")
        #expect(TextLayout.fit("ab", width: 4) == "ab  ")
        #expect(TextLayout.printable("a\tb\u{7}") == "a    b\u{FFFD}")
    }
}

@Suite struct CellBufferTests {
    @Test func wideCharactersTakeTwoCells() {
        var b = CellBuffer(rows: 1, columns: 6)
        #expect(b.put("刘a备", x: 0, y: 0, style: .plain) == 5)
        #expect(b[0, 0].width == 2 && b[1, 0].width == 0 && b[2, 0].text == "a" && b[3, 0].width == 2)
        #expect(b.line(0) == "刘a备")
    }

    @Test func aWideCharacterThatDoesNotFitBecomesASpace() {
        var b = CellBuffer(rows: 1, columns: 3)
        b.put("ab刘", x: 0, y: 0, style: .plain)
        #expect(b.line(0) == "ab")
        #expect(b[2, 0].width == 1)
    }

    @Test func overwritingHalfAWideCharacterClearsTheOtherHalf() {
        var b = CellBuffer(rows: 1, columns: 4)
        b.put("刘备", x: 0, y: 0, style: .plain)
        b.put("x", x: 1, y: 0, style: .plain)        // right half of 刘
        #expect(b.line(0) == " x备")
        b.put("y", x: 2, y: 0, style: .plain)        // left half of 备
        #expect(b.line(0) == " xy")
    }

    @Test func combiningMarkJoinsThePreviousCell() {
        var b = CellBuffer(rows: 1, columns: 3)
        #expect(b.put("e\u{301}x", x: 0, y: 0, style: .plain) == 2)
        #expect(b[0, 0].text == "e\u{301}")
        #expect(b.line(0) == "e\u{301}x")
    }

    @Test func changesListOnlyDifferingCells() {
        var a = CellBuffer(rows: 2, columns: 3)
        var b = a
        b.put("z", x: 1, y: 1, style: .plain)
        #expect(b.changes(from: a).map { [$0.x, $0.y] } == [[1, 1]])
        a.put("z", x: 1, y: 1, style: Style(.error))
        #expect(b.changes(from: a).count == 1)       // same text, other style
        #expect(b.changes(from: CellBuffer(rows: 3, columns: 3)).count == 6)   // size change: all
        #expect(b.changes(from: nil).count == 6)
    }
}

@Suite struct KeyDecoderTests {
    let d = KeyDecoder(codes: .init(up: 259, down: 258, left: 260, right: 261, home: 262, end: 360, pageUp: 339, pageDown: 338,
                                    backspace: 263, delete: 330, enter: 343, backTab: 353, resize: 410, f0: 264))

    @Test func charactersControlsAndFunctionKeys() {
        let keys = d.decode([.char(0x5218), .char(13), .char(10), .char(18), .char(127), .char(9), .keyCode(265), .keyCode(353), .keyCode(410)])
        #expect(keys == [.char("刘"), .enter, .ctrl("j"), .ctrl("r"), .backspace, .tab, .f(1), .backTab, .resize])
    }

    @Test func escapeThenCharacterIsAlt() {
        #expect(d.decode([.char(27), .char(UInt32(UInt8(ascii: "x")))]) == [.alt("x")])
        #expect(d.decode([.char(27), .char(13)]) == [.altEnter])
        #expect(d.decode([.char(27)]) == [.escape])
        #expect(d.decode([.keyCode(KeyDecoder.Extra.altLeft.rawValue), .keyCode(KeyDecoder.Extra.ctrlRight.rawValue)]) == [.altLeft, .ctrlRight])
    }

    @Test func bracketedPasteBecomesOneKey() {
        let start = KeyDecoder.Raw.keyCode(KeyDecoder.Extra.pasteStart.rawValue)
        let end = KeyDecoder.Raw.keyCode(KeyDecoder.Extra.pasteEnd.rawValue)
        let keys = d.decode([.char(0x61), start, .char(0x7B2C), .char(13), .char(0x4E8C), end, .char(0x62)])
        #expect(keys == [.char("a"), .paste("第\n二"), .char("b")])
    }
}

@Suite struct InputEditorTests {
    @Test func editingKeys() {
        var e = InputEditor("曹操 cao")
        e.backspace()
        #expect(e.string == "曹操 ca")
        e.home()
        e.right()
        e.insert("丞相")
        #expect(e.string == "曹丞相操 ca" && e.cursor == 3)
        e.killToEnd()
        #expect(e.string == "曹丞相")
        e.deleteWord()
        #expect(e.string == "曹丞")
        e.insert("a b")
        e.deleteWord()
        #expect(e.string == "曹丞a ")
        e.killToStart()
        #expect(e.string == "" && e.cursor == 0)
    }

    @Test func cursorIsPlacedByDisplayWidth() {
        var e = InputEditor("刘备ab")
        #expect(e.layout(width: 20, prefixWidth: 2).cursor == (0, 8))   // 2 + 4 + 2
        e.left(); e.left()
        #expect(e.layout(width: 20, prefixWidth: 2).cursor == (0, 6))
    }

    @Test func wrapsByWidthAndFollowsTheCursor() {
        let e = InputEditor("一二三四五六")
        let (lines, cursor) = e.layout(width: 8, prefixWidth: 2)   // 6 cells of text per line
        #expect(lines == ["一二三", "四五六", ""])
        #expect(cursor == (2, 2))   // the last line is full: the cursor starts the next
    }

    @Test func verticalMoveKeepsTheDisplayColumn() {
        var e = InputEditor("abcd\n刘备曹操")
        #expect(!e.onFirstLine && e.onLastLine)
        e.home(); e.right(); e.right()    // after 备: column 4
        e.verticalMove(-1)
        #expect(e.cursor == 4)            // after "abcd"
        e.verticalMove(+1)
        #expect(e.cursor == 7)
    }
}
