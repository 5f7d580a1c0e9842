import Foundation
import Testing
@testable import Chat

/// The lorebook rules, one test each, against hand-written expectations (Chinese keys included).
@Suite struct LorebookTests {
    typealias E = Lorebook.Entry
    static func chars(_ s: String) -> Int { s.count }

    static func fired(_ books: [Lorebook], _ messages: [String], _ scanner: LoreScanner = LoreScanner()) -> [Int] {
        scanner.scan(books, messages: messages, tokens: chars).all.map(\.id).sorted()
    }

    @Test func primaryKeysAnyOfThem() {
        let book = Lorebook(entries: [E(id: 1, keys: ["荆州", "襄阳"], content: "荆州，天下之腹。"),
                                      E(id: 2, keys: ["赤壁"], content: "赤壁在江夏。")])
        #expect(Self.fired([book], ["主公可取襄阳"]) == [1])
        #expect(Self.fired([book], ["无关之言"]) == [])
    }

    @Test func selectiveLogics() {
        func entry(_ logic: Lorebook.Logic) -> E {
            E(id: 1, keys: ["刘备"], secondaryKeys: ["关羽", "张飞"], logic: logic, selective: true, content: "桃园")
        }
        let cases: [(Lorebook.Logic, String, Bool)] = [
            (.andAny, "刘备与关羽", true), (.andAny, "刘备独行", false),
            (.andAll, "刘备与关羽", false), (.andAll, "刘备、关羽、张飞", true),
            (.notAny, "刘备独行", true), (.notAny, "刘备与张飞", false),
            (.notAll, "刘备与张飞", true), (.notAll, "刘备、关羽、张飞", false),
        ]
        for (logic, text, want) in cases {
            #expect(Self.fired([Lorebook(entries: [entry(logic)])], [text]) == (want ? [1] : []), "\(logic) on \(text)")
        }
        // Not selective: the secondary keys do not matter.
        var e = entry(.andAll)
        e.selective = false
        #expect(Self.fired([Lorebook(entries: [e])], ["刘备独行"]) == [1])
    }

    @Test func regexKeysAndCase() {
        let book = Lorebook(entries: [E(id: 1, keys: ["/诸葛(亮|孔明)/"], content: "卧龙"),
                                      E(id: 2, keys: ["/cao\\s*cao/i"], content: "孟德"),
                                      E(id: 3, keys: ["Xuande"], content: "玄德", caseSensitive: true)])
        #expect(Self.fired([book], ["诸葛孔明出山"]) == [1])
        #expect(Self.fired([book], ["CAO  Cao arrives"]) == [2])
        #expect(Self.fired([book], ["xuande"]) == [])
        #expect(Self.fired([book], ["Xuande"]) == [3])
        // Case-insensitive by default.
        #expect(Self.fired([Lorebook(entries: [E(id: 4, keys: ["Guan Yu"], content: "云长")])], ["guan yu rides"]) == [4])
    }

    /// Whole words: Latin keys between non-word characters; Chinese keys anywhere (no spaces).
    @Test func wholeWordsMakeSenseForChinese() {
        let book = Lorebook(entries: [E(id: 1, keys: ["Han"], content: "汉"), E(id: 2, keys: ["关羽"], content: "云长")])
        #expect(Self.fired([book], ["Hanzhong falls"]) == [])
        #expect(Self.fired([book], ["the Han court"]) == [1])
        #expect(Self.fired([book], ["关羽温酒斩华雄"]) == [2])   // inside a run of Chinese: found
        let loose = LoreScanner(wholeWords: false)
        #expect(Self.fired([book], ["Hanzhong falls"], loose) == [1])
    }

    @Test func scanDepthAndConstants() {
        let book = Lorebook(entries: [E(id: 1, keys: ["吕布"], content: "人中吕布"), E(id: 2, keys: [], content: "东汉末年", constant: true),
                                      E(id: 3, keys: ["吕布"], content: "奉先", scanDepth: 3)])
        let messages = ["吕布来了", "一", "二"]
        #expect(Self.fired([book], messages, LoreScanner(scanDepth: 2)) == [2, 3])
        #expect(Self.fired([book], messages, LoreScanner(scanDepth: 3)) == [1, 2, 3])
        var depthBook = book
        depthBook.scanDepth = 1
        #expect(Self.fired([depthBook], messages) == [2, 3])
        // Disabled entries never fire, constant or not.
        depthBook.entries[1].enabled = false
        #expect(Self.fired([depthBook], messages) == [3])
    }

    /// Recursion: an activated entry's content activates others, up to the limit; exclusions.
    @Test func recursionWithALimit() {
        var book = Lorebook(recursive: true, entries: [
            E(id: 1, keys: ["赤壁"], content: "周瑜用火攻。"),
            E(id: 2, keys: ["周瑜"], content: "周瑜字公瑾，与诸葛亮共谋。"),
            E(id: 3, keys: ["诸葛亮"], content: "孔明借东风。"),
            E(id: 4, keys: ["东风"], content: "东风起。", excludeRecursion: true),
        ])
        #expect(Self.fired([book], ["赤壁之战"]) == [1, 2, 3])
        #expect(Self.fired([book], ["赤壁之战"], LoreScanner(maxRecursion: 1)) == [1, 2])
        book.entries[1].preventRecursion = true
        #expect(Self.fired([book], ["赤壁之战"]) == [1, 2])
        book.recursive = false
        #expect(Self.fired([book], ["赤壁之战"]) == [1])
        #expect(Self.fired([book], ["东风起矣"]) == [4])
    }

    /// Order and place: before / after the character, at a depth; lowest order first in each.
    /// The budget keeps constants and the highest orders.
    @Test func orderPositionAndBudget() {
        let book = Lorebook(entries: [
            E(id: 1, keys: ["曹操"], content: "甲甲甲甲", order: 50, position: .afterCharacter),
            E(id: 2, keys: ["曹操"], content: "乙乙乙乙", order: 10, position: .afterCharacter),
            E(id: 3, keys: ["曹操"], content: "丙丙", order: 5, position: .atDepth(2)),
            E(id: 4, keys: [], content: "丁丁丁丁", constant: true, order: 1),
        ])
        let all = LoreScanner().scan([book], messages: ["曹操至"], tokens: Self.chars)
        #expect(all.before.map(\.id) == [4] && all.after.map(\.id) == [2, 1] && all.atDepth.map(\.depth) == [2])
        #expect(all.atDepth.first?.entries.map(\.id) == [3] && all.dropped.isEmpty)
        let tight = LoreScanner(tokenBudget: 10).scan([book], messages: ["曹操至"], tokens: Self.chars)
        #expect(tight.all.map(\.id).sorted() == [1, 3, 4] && tight.dropped.map(\.id) == [2], "constant 4, then order 50, then 5 fit")
    }

    /// The formats: a card's character_book (spec names) and a SillyTavern world-info file.
    @Test func readsCardBooksAndWorldInfoFiles() throws {
        let card = try JSON.parse(Data(#"""
            {"name":"三国","scan_depth":2,"token_budget":300,"recursive_scanning":true,"entries":[
              {"keys":["刘备","玄德"],"content":"刘备字玄德。","enabled":true,"insertion_order":20,"id":7,"comment":"刘备",
               "selective":true,"secondary_keys":["曹操"],"position":"after_char","case_sensitive":false,
               "extensions":{"selectiveLogic":2,"match_whole_words":false}},
              {"keys":["荆州"],"content":"荆州。","enabled":true,"insertion_order":5,"extensions":{"position":4,"depth":1}}]}
            """#.utf8))
        let b = try Lorebook.characterBook(card, file: "c.json")
        #expect(b.name == "三国" && b.scanDepth == 2 && b.tokenBudget == 300 && b.recursive)
        #expect(b.entries[0].id == 7 && b.entries[0].logic == .notAny && b.entries[0].position == .afterCharacter)
        #expect(b.entries[0].wholeWords == false && b.entries[0].order == 20 && b.entries[0].selective)
        #expect(b.entries[1].position == .atDepth(1) && b.entries[1].id == 1)
        let wi = Data(#"""
            {"entries":{"0":{"uid":0,"key":["长坂"],"keysecondary":["赵云"],"selectiveLogic":3,"selective":true,
              "content":"长坂坡。","constant":false,"disable":false,"order":100,"position":4,"depth":0,"comment":"长坂"},
             "1":{"uid":1,"key":["新野"],"content":"新野。","disable":true,"position":1}}}
            """#.utf8)
        let w = try Lorebook.worldInfo(wi, file: "wi.json")
        #expect(w.entries.count == 2 && w.entries[0].logic == .andAll && w.entries[0].position == .atDepth(0))
        #expect(!w.entries[1].enabled && w.entries[1].position == .afterCharacter)
        #expect(Self.fired([w], ["长坂坡前赵云"]) == [0] && Self.fired([w], ["长坂坡前"]) == [])
        #expect(throws: ChatError.self) { try Lorebook.worldInfo(Data("[]".utf8), file: "bad.json") }
        #expect(throws: ChatError.self) { try Lorebook.characterBook(try JSON.parse(Data(#"{"entries":3}"#.utf8)), file: "c.json") }
    }

    /// The shipped lorebooks: 三国 (people, places, factions, events; ≥ 60 entries) and 红楼; the
    /// library does not take them for personas.
    @Test func shippedLorebooks() throws {
        let root = ChatFixtures.repo.appendingPathComponent("Personas").path
        let sanguo = try PersonaLibrary.lorebook("sanguo", in: root)
        let honglou = try PersonaLibrary.lorebook("honglou", in: root)
        #expect(sanguo.entries.count >= 60 && honglou.entries.count >= 20)
        #expect(PersonaLibrary.load(from: root).errors.isEmpty)
        let hits = LoreScanner().scan([sanguo], messages: ["玄德公，云长已至荆州。"], tokens: Self.chars)
        #expect(Set(hits.all.map(\.comment)) == ["刘备", "关羽", "荆州"], "\(hits.all.map(\.comment))")
        let hong = LoreScanner().scan([honglou], messages: ["宝玉往潇湘馆去了"], tokens: Self.chars)
        #expect(Set(hong.all.map(\.comment)) == ["贾宝玉", "潇湘馆"])
    }
}
