import Foundation
import Testing
@testable import Chat

/// The Jinja interpreter against jinja2 itself, set up as transformers' apply_chat_template sets it
/// up (Tests/Fixtures/chat/jinja.json, written by tools/fixtures/make_jinja_fixtures.py): real chat
/// templates over several conversations, and Jinja features on their own. Text must match byte for
/// byte; where jinja2 raised, Yanyi must raise too, with the same message for raise_exception.
@Suite struct JinjaTemplateTests {
    struct Case: Sendable {
        var name: String
        var source: String
        var contextJSON: String
        var expected: String?
        var error: String?
        var raised: Bool
    }

    static let fixture: (templates: Int, cases: [Case]) = {
        guard let data = try? Data(contentsOf: ChatFixtures.chat.appendingPathComponent("jinja.json")),
              case .dict(let doc)? = try? JinjaValue.parseJSON(String(decoding: data, as: UTF8.self)),
              case .dict(let templates)? = doc["templates"], case .list(let cases)? = doc["cases"] else { return (0, []) }
        var out: [Case] = []
        for c in cases {
            guard case .dict(let d) = c, case .string(let name)? = d["name"], let context = d["context"] else { continue }
            var source = ""
            if case .string(let s)? = d["source"] {
                source = s
            } else if case .string(let t)? = d["template"], case .dict(let tmpl)? = templates[t], case .string(let s)? = tmpl["source"] {
                source = s
            }
            var expected: String?
            if case .string(let e)? = d["expected"] { expected = e }
            var error: String?
            if case .string(let e)? = d["error"] { error = e }
            out.append(Case(name: name, source: source, contextJSON: (try? context.json(indent: nil)) ?? "{}",
                            expected: expected, error: error, raised: d["raised"]?.truthy ?? false))
        }
        return (templates.count, out)
    }()

    @Test func fixtureHasTheTemplates() {
        #expect(Self.fixture.templates >= 10)
        #expect(Self.fixture.cases.count >= 200)
    }

    @Test(arguments: fixture.cases.map(\.name)) func rendersLikeJinja2(name: String) throws {
        let c = try #require(Self.fixture.cases.first { $0.name == name })
        do {
            let out = try JinjaTemplate(c.source).render(json: c.contextJSON)
            if let expected = c.expected {
                #expect(Array(out.utf8) == Array(expected.utf8), "\(name): got \(out.debugDescription), want \(expected.debugDescription)")
            } else {
                Issue.record("\(name): rendered \(out.debugDescription) but jinja2 raised \(c.error ?? "")")
            }
        } catch {
            if c.expected != nil {
                Issue.record("\(name): raised \(error) but jinja2 rendered \(c.expected!.debugDescription)")
            } else if c.raised {
                #expect(error.kind == .raised && error.message == c.error, "\(name): \(error) vs \(c.error ?? "")")
            }
        }
    }

    @Test func errorsNameTheLine() {
        #expect(throws: JinjaError(.syntax, "unknown filter 'foo'", line: 3)) { try JinjaTemplate("a\nb\n{{ x | foo }}") }
        #expect(throws: JinjaError(.syntax, "unknown test 'bar'", line: 1)) { try JinjaTemplate("{% if x is bar %}{% endif %}") }
        #expect(throws: JinjaError(.syntax, "unknown tag 'include'", line: 2)) { try JinjaTemplate("\n{% include 'x' %}") }
        #expect(throws: JinjaError(.syntax, "unexpected end of template; expected 'elif' or 'else' or 'endif'", line: 1)) {
            try JinjaTemplate("{% if x %}")
        }
        #expect(throws: JinjaError(.raised, "stop here", line: 2)) { try JinjaTemplate("\n{{ raise_exception('stop here') }}").render([:]) }
        #expect(throws: JinjaError(.runtime, "'x' is undefined", line: 1)) { try JinjaTemplate("{{ x.y }}").render([:]) }
    }

    @Test func runawayLoopsStop() throws {
        let loops = try JinjaTemplate("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
        #expect(throws: JinjaError(.runtime, "template ran more than 200000 loop steps", line: 1)) { try loops.render([:]) }
        let wide = try JinjaTemplate("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}")
        #expect(throws: JinjaError.self) { try wide.render([:]) }
    }

    /// Arithmetic at the edges of Int fails or widens as Python would not crash: never a trap.
    @Test func edgesOfIntegersAreErrorsNotCrashes() throws {
        for source in ["{{ -9223372036854775807 - 2 }}", "{{ (-9223372036854775807 - 1) // -1 }}", "{{ 3 ** 99 }}",
                       "{{ range(-9223372036854775807, 9223372036854775807) }}", "{{ 'ab' * 9223372036854775807 }}"] {
            #expect(throws: JinjaError.self, "\(source)") { try JinjaTemplate(source).render([:]) }
        }
        #expect(try JinjaTemplate("{{ 1 ** 1000000000000000000 }}|{{ [1, 2, 3][::9223372036854775807] }}|{{ 1e300 | int }}|{{ 'x' | indent(-3) }}|{{ [1] | tojson(indent=-2) }}")
            .render([:]) == "1|[1]|0|x|[\n1\n]")
    }

    @Test func runawayRecursionStops() throws {
        let recursion = try JinjaTemplate("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
        #expect(throws: JinjaError.self) { try recursion.render([:]) }
    }

    @Test func deepNestingIsRefused() throws {
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(throws: JinjaError.self) { try JinjaTemplate("{{ " + deep + " }}") }
        let blocks = String(repeating: "{% if x %}", count: 5000)
        #expect(throws: JinjaError.self) { try JinjaTemplate(blocks) }
        let nots = "{{ " + String(repeating: "not ", count: 5000) + "x }}"
        #expect(throws: JinjaError.self) { try JinjaTemplate(nots) }
    }

    /// Garbage made of template pieces: every one either renders or fails with a JinjaError.
    @Test func randomTemplatesNeverCrash() {
        let pieces = ["{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", " if ", " elif ", " else ", " endif ",
                      " for ", " in ", " endfor ", " set ", " = ", " macro ", " endmacro ", " raw ", " endraw ", "x", "m", "ns",
                      "messages", "loop", ".", "(", ")", "[", "]", "{", "}", ":", ",", "|", " trim", " length", " join",
                      " is ", " not ", " defined", " and ", " or ", "'a'", "\"b\"", "'", "1", "-1", "2.5", "+", "-", "*",
                      "/", "//", "%", "**", "~", "==", "<", "\n", " ", "namespace(x=1)", "range(3)", "raise_exception('r')",
                      ".strip()", "[::-1]", "[1:]", "tojson", "items", " break ", " continue ", "\\", "é", "中"]
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: seed >> 33)
        }
        let context: [String: JinjaContextValue] = ["x": 1, "m": .dict([("role", "user"), ("content", " hi ")]),
                                                     "messages": .list([.dict([("role", "user"), ("content", "你好")])])]
        var rendered = 0
        for _ in 0..<3000 {
            let source = (0..<(3 + next() % 30)).map { _ in pieces[next() % pieces.count] }.joined()
            do {
                _ = try JinjaTemplate(source).render(context)
                rendered += 1
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
        #expect(rendered > 0)
    }

    @Test func contextValuesFromSwift() throws {
        let t = try JinjaTemplate("{% for m in messages %}{{ m.role }}:{{ m['content'] }}|{% endfor %}{{ bos_token }}{{ add_generation_prompt }}")
        let out = try t.render(["messages": .list([.dict([("role", "user"), ("content", "你好")])]), "bos_token": "<s>",
                                "add_generation_prompt": true])
        #expect(out == "user:你好|<s>True")
    }
}
