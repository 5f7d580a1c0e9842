import Foundation
import Testing
@testable import Chat

@Suite struct PersonaTests {
    static let shipped = ChatFixtures.repo.appendingPathComponent("Personas").path

    @Test func everyShippedPersonaLoadsAndValidates() throws {
        let lib = PersonaLibrary.load(from: Self.shipped)
        #expect(lib.errors.isEmpty, "\(lib.errors.map(\.description))")
        let names = Set(lib.personas.map(\.name))
        let required = ["刘备", "关羽", "张飞", "诸葛亮", "曹操", "孙权", "周瑜", "吕布", "赵云", "司马懿",
                        "孙悟空", "猪八戒", "唐僧", "沙僧", "宋江", "武松", "林冲", "鲁智深", "李逵",
                        "林黛玉", "贾宝玉", "薛宝钗", "王熙凤", "RulaiGPT", "ChatBaichuan-HC3", "CuteGPT", "助手"]
        for n in required { #expect(names.contains(n), "missing persona \(n)") }
        #expect(lib.groups == ["assistants", "honglou", "sanguo", "shuihu", "xiyou"])
        for p in lib.personas {
            #expect(!p.description.isEmpty && !p.greetings.isEmpty, "\(p.id)")
            #expect(TemplateRegistry.make(p.template) != nil)
            switch p.group {
            case "sanguo":
                #expect(p.template == "glm-cosplay" && p.model == "glm-demo")
                #expect(p.adapters == [.init(path: "adapters/sanguo-cosplay", scale: 1)])
            case "xiyou", "shuihu", "honglou":
                #expect(p.template == "glm-cosplay" && p.adapters.map(\.path) == ["adapters/classics-cosplay"])
            default:
                break
            }
            if p.template == "glm-cosplay" {
                // The demo bases sample, with the run guard (the seeds' greedy values: Personas/README.md).
                #expect(p.speaker != nil && p.sampling.maxHistory == 10 && p.sampling.doSample == true && p.sampling.maxRepeatRun == 2)
            }
        }
        let liubei = try #require(lib.persona("sanguo/liubei"))
        #expect(liubei.speaker == .init(name: "玄德", verb: "曰"))
        #expect(liubei.userUtterance("曹操引兵南下") == "曹操引兵南下，玄德曰：")
        #expect(liubei.sampling == .init(temperature: 0.8, topP: 0.85, topK: 40, repetitionPenalty: 1.15, maxNewTokens: 128,
                                         doSample: true, numBeams: 1, maxHistory: 10, maxRepeatRun: 2))
        let rulai = try #require(lib.persona("assistants/rulai"))
        #expect(rulai.template == "baichuan-qa" && rulai.model == "baichuan-demo")
        #expect(rulai.adapters.map(\.path) == ["adapters/rulai-v2"] && rulai.sampling.repetitionPenalty == 1.1)
        #expect(try #require(lib.persona("assistants/chatbaichuan-hc3")).adapters.isEmpty)
        #expect(try #require(lib.persona("assistants/cutegpt")).adapters.map(\.path) == ["adapters/cutegpt-style"])
        #expect(try #require(lib.persona("assistants/plain")).adapters.isEmpty)
    }

    @Test func missingModelFoldersAreReportedAtLoadTime() throws {
        let dir = try TempDir()
        try FileManager.default.createDirectory(atPath: dir.file("glm-demo"), withIntermediateDirectories: true)
        let p = try #require(PersonaLibrary.load(from: Self.shipped).persona("sanguo/guanyu"))
        #expect(p.missingFolders(modelsRoot: dir.path) == [dir.path + "/adapters/sanguo-cosplay"])
    }

    /// Each broken file is one error naming the file, its field and line; the good file loads.
    @Test func brokenFilesEachGiveOneErrorAndOthersLoad() throws {
        let root = ChatFixtures.chat.appendingPathComponent("personas-bad").path
        let lib = PersonaLibrary.load(from: root)
        #expect(lib.personas.map(\.id) == ["sanguo/good"])
        #expect(lib.personas.first?.speaker == .init(name: "刘备", verb: "曰"))
        let byFile = Dictionary(uniqueKeysWithValues: lib.errors.map { (URL(fileURLWithPath: $0.file).lastPathComponent, $0) })
        #expect(byFile.count == lib.errors.count && lib.errors.count == 14)
        func check(_ file: String, field: String, _ words: String, line: Int? = nil) {
            guard let e = byFile[file] else { Issue.record("no error for \(file)"); return }
            #expect(e.field == field, "\(file): \(e)")
            #expect(e.reason.contains(words), "\(file): \(e)")
            if let line { #expect(e.line == line, "\(file): \(e)") }
            #expect(e.description.hasPrefix(e.file) && !e.description.contains("\n"))
        }
        check("unknown-key.yaml", field: "sampling.temprature", "did you mean 'temperature'", line: 5)
        check("unknown-top-key.yaml", field: "greting", "unknown key", line: 4)
        check("bad-top-p.yaml", field: "sampling.top_p", "at most 1 (got 1.5)", line: 5)
        check("bad-type.yaml", field: "sampling.max_new_tokens", "expected a whole number, got 'lots'")
        check("unknown-template.yaml", field: "template", "unknown template 'glm-roleplay'")
        check("missing-name.yaml", field: "name", "is required")
        check("syntax.yaml", field: "", "not valid YAML")
        check("wrong-group.yaml", field: "group", "folder 'sanguo'")
        check("absolute-adapter.yaml", field: "adapters[0].path", "relative to Models/")
        check("preamble-not-allowed.yaml", field: "preamble", "glm-chat template has no place")
        check("not-a-mapping.yaml", field: "", "expected a mapping")
        check("bad-accent.yaml", field: "accent", "#rrggbb")
        check("history-baichuan.yaml", field: "sampling.max_history", "single-turn")
        check("dup-key.yaml", field: "name", "given twice")
        #expect(byFile["syntax.yaml"]?.line != nil)
    }

    /// `prompt_lookup_num_tokens` is a sampling key like the others: read, range-checked, passed on.
    @Test func promptLookupIsASamplingKey() throws {
        let dir = try TempDir()
        try FileManager.default.createDirectory(atPath: dir.file("sanguo"), withIntermediateDirectories: true)
        let body = "name: 孔明\ntemplate: glm-cosplay\ngreeting: \"…\"\ndescription: x\nmodel: glm-demo\nsampling:\n  prompt_lookup_num_tokens: "
        try (body + "4\n").write(toFile: dir.file("sanguo/a.yaml"), atomically: true, encoding: .utf8)
        let p = try PersonaFile.load(dir.file("sanguo/a.yaml"))
        #expect(p.sampling.promptLookupNumTokens == 4 && p.sampling.generationParameters.promptLookupNumTokens == 4)
        try (body + "9\n").write(toFile: dir.file("sanguo/b.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: ChatError.self) { try PersonaFile.load(dir.file("sanguo/b.yaml")) }
    }

    @Test func missingFolderIsOneError() {
        let lib = PersonaLibrary.load(from: "/nonexistent/personas")
        #expect(lib.personas.isEmpty && lib.errors.count == 1)
    }
}
