import Engine
import Foundation
import Testing
@testable import Chat

/// The shipped personas on the shipped demo models (Models/, trained by tools/demo): every persona finds
/// its model and adapters, and the LLaMA-based assistants load and answer through the Chat layer, CuteGPT
/// with its own template, sampling and stop rule.
@Suite struct DemoPersonaTests {
    static let models = ChatFixtures.repo.appendingPathComponent("Models").path
    static let library = PersonaLibrary.load(from: ChatFixtures.repo.appendingPathComponent("Personas").path)

    static func controller(_ dir: TempDir, _ id: String) throws -> ChatController {
        let p = try #require(library.persona(id))
        return ChatController(options: .init(modelsRoot: models), host: Runtime.host, library: library, store: try Runtime.store(dir),
                              persona: p)
    }

    @Test func everyShippedPersonaFindsItsFolders() {
        #expect(Self.library.errors.isEmpty && Self.library.personas.count >= 27)
        for p in Self.library.personas {
            #expect(p.missingFolders(modelsRoot: Self.models).isEmpty, "\(p.id)")
        }
    }

    /// CuteGPT (the demo's sampling at a fixed seed, 256 new tokens at most): each reply ends its turn
    /// (the text `<end>` or EOS) long before the limit, and the stored reply has no marker; the
    /// second turn carries the first in its prompt (`问：…\n答：\n{reply}\n`) and ends as well.
    @Test func cuteGPTAnswersAndEndsItsTurn() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/cutegpt")
        try c.set("seed", "1")
        for q in ["如何缓解压力？", "什么是人工智能？"] {
            let r = try c.send(q)
            let m = try #require(r.message)
            #expect((r.reason == .stopString || r.reason == .eos) && r.tokens.count < 128, "\(q): \(r.reason.map(\.rawValue) ?? "nil") \(m.text)")
            #expect(!m.text.isEmpty && !m.text.contains("<end>") && !r.partial, "\(q): \(m.text)")
            #expect(m.template == "cutegpt" && m.adapters == ["adapters/cutegpt-style=1.0"])
        }
        #expect(c.conversation.path.filter { $0.role == .assistant && $0.greeting != true }.count == 2)
    }

    /// The plain assistant (no adapter, sampling) loads the LLaMA base and answers.
    @Test func plainAssistantAnswersOnTheLLaMABase() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/plain")
        let r = try c.send("你好")
        #expect(r.error == nil && !r.partial && r.reason != nil && !r.tokens.isEmpty)
        #expect(r.message?.template == "plain" && r.message?.adapters == [])
    }

    /// The shipped personas exactly as shipped (their sampling for the demo bases, int8), two
    /// fixed scenes each at fixed seeds: replies end their turn, no character runs more than 3
    /// times in a row, and RulaiGPT still answers 到底来没来 with 如来. tools/demo/quality.py
    /// measures the same on 20 scenes; the bounds here leave room for the two base-only
    /// assistants (their tiny bases never say EOS) and for sampling on another kernel path.
    @Test func shippedPersonasReplyWithoutLooping() throws {
        let scenes = ["sanguo": ["曹操引大军南下，兵临新野", "众人饮酒，论天下英雄"],
                      "honglou": ["众姊妹在大观园中起诗社", "中秋夜宴，贾母命众人行令"],
                      "shuihu": ["众好汉聚义梁山泊", "酒店里有人大声说话"],
                      "xiyou": ["师徒四人行至一座高山", "前面有妖怪拦路"],
                      "assistants": ["什么是人工智能？", "如何保持身体健康？"]]
        var replies = 0, ended = 0, runsOK = 0
        var lines: [String] = []
        for p in Self.library.personas {
            for (i, scene) in (scenes[p.group] ?? scenes["assistants"]!).enumerated() {
                let dir = try TempDir()
                let c = try Self.controller(dir, p.id)
                try c.set("seed", "\(i + 1)")
                let r = try c.send(scene)
                let text = r.message?.text ?? ""
                let cosplay = p.template == "glm-cosplay"
                let end = (r.reason == .eos || r.reason == .stopString) && (!cosplay || text.hasSuffix("”"))
                let run = Self.longestRun(text)
                replies += 1
                ended += end ? 1 : 0
                runsOK += run <= 3 ? 1 : 0
                lines.append("\(p.id) [\(r.reason.map(\.rawValue) ?? "-")] run \(run): \(text.prefix(40))")
            }
        }
        let report = lines.joined(separator: "\n")
        #expect(Double(ended) >= 0.90 * Double(replies), "\(ended)/\(replies) ended their turn\n\(report)")
        #expect(Double(runsOK) >= 0.95 * Double(replies), "\(runsOK)/\(replies) without a run over 3\n\(report)")

        let dir = try TempDir()
        let rulai = try Self.controller(dir, "assistants/rulai")
        let answer = try rulai.send("到底来没来？").message?.text ?? ""
        #expect(answer.contains("如来"), "RulaiGPT: \(answer)")
    }

    /// Distinct-2 (different character bigrams / all bigrams) of one cosplay persona per book over eight
    /// scenes of quality.py at seeds 1–8, the replies pooled: at least 0.7 each, the issue's bar for the
    /// 20-scene measure in tools/demo (which falls as replies are added: these read about 0.8–0.9 here,
    /// 0.78 on average over 20). A base or persona that loops again reads below 0.3.
    @Test func cosplayRepliesAreVaried() throws {
        let scenes = ["sanguo/zhugeliang": ["曹操引大军南下，兵临新野", "孔明初出茅庐，众将不服", "关公欲单刀赴会", "赤壁火起，曹军大乱",
                                            "张飞当阳桥上大喝一声", "刘表病重，欲以荆州相托", "周瑜设宴，欲害玄德", "马超兵至潼关"],
                      "honglou/lindaiyu": ["众姊妹在大观园中起诗社", "宝玉挨了打，众人来看", "中秋夜宴，贾母命众人行令", "黛玉葬花，宝玉闻声而来",
                                           "凤姐协理宁国府", "刘姥姥进了大观园", "元妃省亲，众人迎驾", "宝钗扑蝶"],
                      "shuihu/wusong": ["众好汉聚义梁山泊", "景阳冈上，大虫扑来", "林冲风雪山神庙", "鲁智深拳打镇关西",
                                        "宋江浔阳楼题反诗", "李逵沂岭杀四虎", "武松醉打蒋门神", "智取生辰纲"],
                      "xiyou/sunwukong": ["师徒四人行至一座高山", "前面有妖怪拦路", "唐僧被妖精捉去", "八戒又想散伙回高老庄",
                                          "悟空借芭蕉扇", "路过女儿国", "过通天河", "观音菩萨现身"]]
        for (id, lines) in scenes.sorted(by: { $0.key < $1.key }) {
            var replies: [String] = []
            for (i, scene) in lines.enumerated() {
                let dir = try TempDir()
                let c = try Self.controller(dir, id)
                try c.set("seed", "\(i + 1)")
                replies.append(try c.send(scene).message?.text ?? "")
            }
            let d2 = Self.distinct2(replies)
            #expect(d2 >= 0.7, "\(id): distinct-2 \(d2)\n\(replies.joined(separator: "\n"))")
        }
    }

    /// Different character bigrams over all bigrams of the texts (bigrams do not cross texts), as quality.py.
    static func distinct2(_ texts: [String]) -> Double {
        var all = 0
        var seen = Set<String>()
        for t in texts {
            let c = Array(t.unicodeScalars)
            guard c.count > 1 else { continue }
            for i in 0..<(c.count - 1) { seen.insert(String(c[i]) + String(c[i + 1])) }
            all += c.count - 1
        }
        return all == 0 ? 0 : Double(seen.count) / Double(all)
    }

    static func longestRun(_ s: String) -> Int {
        var best = 0, run = 0
        var prev: Character?
        for ch in s {
            run = ch == prev ? run + 1 : 1
            prev = ch
            best = max(best, run)
        }
        return best
    }
}
