import Engine
import Foundation
import Testing
@testable import Chat

@Suite struct LineChatTests {
    /// The Done-when: a scripted line-mode session switches persona and adapter mid-
    /// conversation; the transcript shows both, and every reply equals a direct engine greedy run
    /// of its model under the adapters it records, on the prompt rebuilt from the conversation.
    @Test func scriptedSessionSwitchesPersonaAndAdapter() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        let md = dir.file("t.md"), jsonl = dir.file("t.jsonl")
        let run = ScriptedChat(c, [
            "玄德公安在？",
            "/adapters",
            "/persona runtime/llama-cute",          // same base: another template and adapter
            "孔明何在？",
            "/adapter load adapters/llama-qv=0.5",  // by hand, on top of the persona's
            "/adapters",
            "曹操引兵至。",
            "/persona runtime/glm-cosplay",         // another base model
            "张飞大怒",
            "/persona 丙",                           // by name: Baichuan
            "关羽何在",
            "/save markdown \(md)",
            "/save jsonl \(jsonl)",
            "/quit",
            "never read",
        ])
        let out = run.output
        #expect(!out.contains("error:"), "\(out)")
        #expect(out.contains("· persona runtime/llama-cute (乙), template cutegpt"))
        #expect(out.contains("· unloaded adapters/llama-qv") && out.contains("· adapter adapters/llama-all=0.5"))
        #expect(out.contains("  adapters/llama-all=0.5  (persona)  28 modules, r 8\n  adapters/llama-qv=0.5  8 modules, r 8\n"))
        #expect(out.contains("· loaded models/chatglm-trained/safetensors (ChatGLM-6B, int8)"))
        #expect(!out.contains("never read"))

        let conv = c.conversation
        let replies = conv.path.filter { $0.role == .assistant && $0.greeting != true }
        #expect(replies.map { $0.persona! } == ["runtime/llama-plain", "runtime/llama-cute", "runtime/llama-cute",
                                                "runtime/glm-cosplay", "runtime/baichuan-qa"])
        #expect(replies.map { $0.adapters! } == [["adapters/llama-qv=1.0"], ["adapters/llama-all=0.5"],
                                                 ["adapters/llama-all=0.5", "adapters/llama-qv=0.5"],
                                                 ["adapters/chatglm-qkv=1.0"], ["adapters/baichuan-wpack=1.0"]])
        #expect(replies.map { $0.template! } == ["plain", "cutegpt", "cutegpt", "glm-cosplay", "baichuan-qa"])
        // the cosplay question got the persona's hand-over
        #expect(conv.path.contains { $0.role == .user && $0.text == "张飞大怒，玄德曰：" })

        for m in replies {
            let p = Runtime.persona(m.persona!)
            let prompt = try Runtime.promptIDs(for: m, in: conv, persona: p)
            let ref = try Runtime.engineReply(persona: p, adapters: m.adapters!, prompt: prompt, maxNewTokens: 10)
            #expect(m.text == ref.text, "\(m.persona!): controller \(m.text.debugDescription) vs engine \(ref.text.debugDescription)")
            #expect(out.contains("\(p.name)：\(m.text)\n") || p.template == "plain", "streamed text of \(m.id)")
        }
        // Different adapters on the same prompt give different logits; the replies show it was not
        // a no-op: the hand-loaded adapter changed the reply.
        let cute = Runtime.persona("runtime/llama-cute")
        let third = replies[2]
        let without = try Runtime.engineReply(persona: cute, adapters: ["adapters/llama-all=0.5"],
                                              prompt: try Runtime.promptIDs(for: third, in: conv, persona: cute), maxNewTokens: 10)
        #expect(without.text != third.text, "llama-qv=0.5 on top of llama-all changed nothing")

        // The transcripts show both personas and both adapter sets.
        let markdown = try String(contentsOfFile: md, encoding: .utf8)
        for name in ["**甲**", "**乙**", "**刘备**", "**丙**", "**你**"] { #expect(markdown.contains(name), "\(name)") }
        let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == conv.path.count)
        #expect(lines.contains { $0.contains("\"persona\":\"runtime/llama-plain\"") && $0.contains("adapters/llama-qv=1.0") })
        #expect(lines.contains { $0.contains("\"persona\":\"runtime/glm-cosplay\"") && $0.contains("adapters/chatglm-qkv=1.0") })

        // Every action is in the session log: read back, it is the same conversation.
        let (again, warnings) = try Runtime.store(dir).read(c.sessionID!)
        #expect(warnings.isEmpty && again == conv && again.persona == "runtime/baichuan-qa")
    }

    /// Bad input is one line starting with `error:`; the chat goes on and nothing is lost.
    /// `/stats on` prints a line of figures after each reply; prompt lookup changes the figures, never the reply.
    @Test func statsLineAndPromptLookup() throws {
        var replies: [String] = []
        for k in ["0", "4"] {
            let dir = try TempDir()
            let c = try Runtime.controller(dir, "runtime/llama-plain")
            let out = ScriptedChat(c, ["/stats on", "/set prompt_lookup_num_tokens \(k)", "玄德公安在？玄德公安在？",
                                       "/set prompt_lookup_num_tokens 8", "/stats maybe", "/quit"]).output
            #expect(out.contains("· figures after each reply: on") && out.contains("· prompt_lookup_num_tokens = \(k)"), "\(out)")
            let stats = out.split(separator: "\n").filter { $0.hasPrefix("· stats: prompt ") }
            #expect(stats.count == 1 && stats[0].contains(" tok/s, ") && stats[0].contains(" forwards"), "\(out)")
            if k == "0" { #expect(!out.contains("guesses picked")) }
            #expect(out.split(separator: "\n").contains { $0.hasPrefix("error: ") && $0.contains("prompt_lookup_num_tokens") && $0.contains("0 to 7") }, "\(out)")
            #expect(out.contains("error: usage: /stats on|off"))
            replies.append(try #require(c.conversation.path.last?.text))
        }
        #expect(replies[0] == replies[1])
    }

    @Test func errorsAreOneLineAndChangeNothing() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        let run = ScriptedChat(c, [
            "/continue",                          // only a greeting so far
            "/persona runtime/missing-model",
            "/persona nobody",
            "/set temperature warm",
            "/set top_p 0",
            "/set nonsense 1",
            "/set do_sample true",
            "/set temperature 0",                 // sampling at temperature 0: refused as a whole
            "/adapter load adapters/not-there",
            "/adapter scale adapters/llama-qv 3",
            "/adapter unload adapters/llama-all",
            "/adapter load adapters/chatglm-qkv", // does not fit LLaMA
            "/swipe next",
            "/swipe sideways",
            "/edit",
            "/save",
            "/frobnicate",
        ])
        let errors = run.output.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        #expect(errors.count == 16, "\(run.output)")
        #expect(run.output.contains("error: models/not-installed") || run.output.contains("not-installed: no such folder"))
        #expect(run.output.contains("error: temperature: must be a number from 0 to 100 (got 'warm')"))
        #expect(run.output.contains("error: temperature: temperature must be > 0 when sampling"))
        #expect(run.output.contains("does not fit this base"))
        #expect(c.persona.id == "runtime/llama-plain")
        #expect(c.adapters.map(\.label) == ["adapters/llama-qv=1.0"])
        #expect(c.overrides.parameters.doSample == true && c.overrides.parameters.temperature == nil)
        #expect(c.conversation.path.map(\.text) == ["请讲。"])
    }

    /// /set layers over the persona; /retry, /swipe, /edit, /undo, /continue, /new in one script.
    @Test func conversationCommands() throws {
        let dir = try TempDir()
        let c = try Runtime.controller(dir, "runtime/llama-plain")
        let run = ScriptedChat(c, [
            "/set max_new_tokens 3",
            "/set",
            "却说",
            "/set max_new_tokens default",
            "/continue",
            "/set do_sample true",
            "/set seed 7",
            "/set temperature 1.5",
            "/retry",
            "/swipe prev",
            "/swipe next",
            "/edit 分久必合",
            "/undo",
            "/undo",
            "/new",
        ])
        let out = run.output
        #expect(!out.contains("error:"), "\(out)")
        #expect(out.contains("  max_new_tokens = 3  (set)\n") && out.contains("  do_sample = false  ("))
        #expect(out.contains("乙") == false)
        #expect(out.contains("· alternative 1 of 2\n") && out.contains("· alternative 2 of 2\n"))
        #expect(out.contains("· edited m"))
        #expect(out.contains("· new conversation"))
        // the new conversation is not saved until something is said in it
        let saved = try Runtime.store(dir).list().sessions.count
        #expect(c.sessionID == nil && saved == 1)
        let first = try Runtime.store(dir).list().sessions.first!
        let (conv, _) = try Runtime.store(dir).read(first.id)
        // removing a reply that has an alternative shows the alternative: both undos hit replies
        #expect(out.contains("· removed m4: 分久必合\n· removed m3: "))
        #expect(conv.path.map(\.role) == [.assistant, .user], "\(out)")
        let q = conv.messages.first { $0.role == .user }!
        #expect(conv.children(of: q.id).isEmpty && conv.messages.filter { $0.parent == q.id }.count == 2)
        #expect(conv.messages.count == 4 && out.contains("甲（续）："), "/continue extends m3 in place: \(conv.messages.map(\.text))")
        #expect(conv.messages.contains { $0.text == "分久必合" })
        #expect(c.conversation.path.map(\.text) == ["请讲。"])
    }
}
