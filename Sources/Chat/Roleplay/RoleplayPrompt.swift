import Engine
import Foundation

/// A turn's prompt with what role-play adds around the template, as SillyTavern builds it:
///
/// - The character's definition (the template's preamble). A card without Yanyi settings gives
///   SillyTavern's default story string: system prompt, lore before, description,
///   `{{char}}'s personality: …`, `Scenario: …`, lore after, the user's own description. A
///   YAML persona (or a card bound by `extensions.yanyi`) keeps its preamble, lore around it.
/// - The card's example dialogue: each `<START>` block after a `***` line; blocks are dropped,
///   last first, before any history is dropped to fit the context.
/// - Text at a depth among the messages: the author's note, lore placed at a depth, and the
///   card's post-history instructions (depth 0, after the newest message). Templates think in
///   user and character turns, so injected text joins the user-side text at that depth (after
///   it; before it for hand-over templates, whose user text ends by naming the speaker).
/// - Macros in every card text and greeting, `{{user}}` being the user's profile name.
///
/// Only the prompt changes: history and the stored messages keep what was said.
public struct RoleplayPrompt: Sendable {
    /// What the conversation adds: who the user is, the author's note, when, for macros.
    public struct Inputs: Sendable {
        public var user = UserProfile()
        public var note: AuthorsNote?
        public var chatID = ""
        public var now = Date()
        public var lastUserTime: Date?
        /// A scene's speakers (for `{{group}}`).
        public var scene: [String] = []
        /// Seeds `{{random}}` and `{{roll}}` (nil: varies).
        public var seed: UInt64?

        public init(user: UserProfile = UserProfile(), note: AuthorsNote? = nil, chatID: String = "", now: Date = Date(),
                    lastUserTime: Date? = nil, scene: [String] = [], seed: UInt64? = nil) {
            self.user = user
            self.note = note
            self.chatID = chatID
            self.now = now
            self.lastUserTime = lastUserTime
            self.scene = scene
            self.seed = seed
        }
    }

    /// One piece of text placed `depth` messages from the prompt's end.
    public struct Injection: Sendable, Equatable {
        public var depth: Int
        public var text: String

        public init(depth: Int, text: String) {
            self.depth = depth
            self.text = text
        }
    }

    public var persona: Persona
    /// The definition without example dialogue; the examples' formatted blocks, in order.
    public var story: String
    public var examples: [String]
    public var injections: [Injection]

    /// The parts for `persona` this turn. `lore`: what the lorebooks gave (nil: none).
    public init(persona: Persona, history: [Utterance], input: String, lore: LoreScanner.Result?, inputs: Inputs) {
        self.persona = persona
        var ctx = MacroContext(persona, user: inputs.user)
        ctx.chatID = inputs.chatID
        ctx.now = inputs.now
        ctx.lastUserTime = inputs.lastUserTime
        ctx.group = inputs.scene.isEmpty ? nil : inputs.scene.joined(separator: ", ")
        ctx.input = input
        ctx.lastMessage = history.last?.text ?? ""
        ctx.lastUserMessage = history.last { $0.role == .user }?.text ?? ""
        ctx.lastCharMessage = history.last { $0.role == .assistant }?.text ?? ""
        if let seed = inputs.seed { ctx.rng = SplitMix64(seed: seed) }

        let before = lore?.before.map(\.content) ?? []
        let after = lore?.after.map(\.content) ?? []
        let card = persona.communityCard
        var blocks: [String] = []
        var postHistory = ""
        if let card {
            // Fields may use each other's macros ({{personality}} in a description): expand the
            // fields themselves first, each with the raw others.
            var plain = ctx
            plain.rng = SplitMix64(seed: 0)
            ctx.description = Macros.expand(ctx.description, &plain)
            ctx.personality = Macros.expand(ctx.personality, &plain)
            ctx.scenario = Macros.expand(ctx.scenario, &plain)
            let system: String = {
                var c = ctx
                c.original = persona.preamble ?? ""
                return Macros.expand(card.field("system_prompt").isEmpty ? "{{original}}" : card.field("system_prompt"), &c)
            }()
            var parts = [system] + before + [ctx.description]
            if !ctx.personality.isEmpty { parts.append("\(ctx.char)'s personality: \(ctx.personality)") }
            if !ctx.scenario.isEmpty { parts.append("Scenario: \(ctx.scenario)") }
            parts += after
            parts.append(inputs.user.description.isEmpty ? "" : Macros.expand(inputs.user.description, &ctx))
            story = parts.map { $0.pythonStripped }.filter { !$0.isEmpty }.joined(separator: "\n")
            blocks = Self.exampleBlocks(card.field("mes_example")).map { "***\n" + Macros.expand($0, &ctx) }
            var c = ctx
            c.original = ""
            postHistory = Macros.expand(card.field("post_history_instructions"), &c).pythonStripped
        } else {
            let own = persona.preamble.map { Macros.expand($0, &ctx) }
            if before.isEmpty && after.isEmpty {
                story = own ?? ""
            } else {
                // As the lore was always placed around a persona's preamble.
                story = (before + [own ?? ""].filter { !$0.isEmpty } + after).joined(separator: "\n")
                    + (persona.template == "plain" || persona.template == TemplateRegistry.auto ? "" : "\n")
            }
        }
        examples = blocks

        var inject: [Injection] = []
        if let note = inputs.note, !note.text.pythonStripped.isEmpty {
            inject.append(Injection(depth: max(0, note.depth), text: Macros.expand(note.text, &ctx)))
        }
        for (depth, entries) in lore?.atDepth ?? [] {
            inject.append(Injection(depth: max(0, depth), text: entries.map(\.content).joined(separator: "\n")))
        }
        if !postHistory.isEmpty { inject.append(Injection(depth: 0, text: postHistory)) }
        injections = inject
    }

    /// The preamble with the first `examples` example blocks.
    public func preamble(examples count: Int) -> String? {
        let shown = examples.prefix(count)
        if shown.isEmpty { return story.isEmpty && persona.preamble == nil ? nil : story }
        return ([story].filter { !$0.isEmpty } + shown).joined(separator: "\n")
    }

    /// `<START>`-separated blocks of a card's example dialogue, trimmed, empty ones left out.
    public static func exampleBlocks(_ text: String) -> [String] {
        guard !text.pythonStripped.isEmpty else { return [] }
        let marker = "<START>"
        var blocks: [String] = []
        var rest = Substring(text)
        while let r = rest.range(of: marker, options: .caseInsensitive) {
            blocks.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        blocks.append(String(rest))
        return blocks.map(\.pythonStripped).filter { !$0.isEmpty }
    }

    /// History and input with the injections joined to the user-side texts at their depths;
    /// texts at one place go deepest first (then in the order note, lore, instructions).
    public func inject(history: [Utterance], input: String) -> (history: [Utterance], input: String) {
        guard !injections.isEmpty else { return (history, input) }
        var all = history + [Utterance.user(input)]
        let handOver = persona.template == "glm-cosplay"
        var before: [Int: [Injection]] = [:], after: [Int: [Injection]] = [:]
        for inj in injections {
            let at = all.count - inj.depth      // before all[at]; at == count: after the last
            if at >= all.count {
                if handOver { before[all.count - 1, default: []].append(inj) } else { after[all.count - 1, default: []].append(inj) }
                continue
            }
            let p = max(0, at)
            if all[p].role == .user {
                before[p, default: []].append(inj)
            } else if p > 0, all[p - 1].role == .user, !handOver {
                after[p - 1, default: []].append(inj)
            } else if let q = all[p...].firstIndex(where: { $0.role == .user }) {
                before[q, default: []].append(inj)
            }
        }
        func joined(_ list: [Injection]) -> String {
            list.enumerated().sorted { ($0.element.depth, -$0.offset) > ($1.element.depth, -$1.offset) }.map(\.element.text)
                .joined(separator: "\n")
        }
        for (i, list) in before { all[i].text = joined(list) + "\n" + all[i].text }
        for (i, list) in after { all[i].text += "\n" + joined(list) }
        return (Array(all.dropLast()), all.last!.text)
    }

    /// The turn's plan: injections placed, then as many example blocks as fit without dropping
    /// history for the budget (all of them when they fit, none when even that drops history).
    public func plan(history: [Utterance], input: String, tokenizer: any Tokenizer, contextLength: Int,
                     defaultMaxNewTokens: Int) throws(ChatError) -> TurnPlan {
        let (h, u) = inject(history: history, input: input)
        var count = examples.count
        while true {
            var p = persona
            p.preamble = preamble(examples: count)
            do throws(ChatError) {
                let plan = try TurnPlan(persona: p, history: h, utterance: u, tokenizer: tokenizer,
                                        contextLength: contextLength, defaultMaxNewTokens: defaultMaxNewTokens)
                if plan.fitted.droppedForBudget.isEmpty || count == 0 { return plan }
            } catch {
                if count == 0 { throw error }     // even without examples the prompt does not fit
            }
            count -= 1
        }
    }
}

extension RoleplayPrompt {
    /// What `books` give a turn (nil: nothing fired), and the names of the entries that fired.
    /// Lore takes at most a quarter of the context; a template with no room for a definition
    /// gets what would go around it after the newest message.
    public static func scan(_ books: [Lorebook], persona p: Persona, history: [Utterance], input: String,
                            tokenizer: any Tokenizer, contextLength: Int) -> (result: LoreScanner.Result?, fired: [String]) {
        guard !books.isEmpty else { return (nil, []) }
        let scanner = LoreScanner(tokenBudget: max(contextLength / 4, 16))
        var found = scanner.scan(books, messages: history.map(\.text) + [input]) {
            tokenizer.encode($0, addSpecialTokens: false).count
        }
        guard !found.all.isEmpty else { return (nil, []) }
        if !p.promptTemplate.acceptsPreamble {
            found.atDepth = [(0, found.before + found.after)].filter { !$0.1.isEmpty } + found.atDepth
            found.before = []
            found.after = []
        }
        return (found, found.all.map { $0.comment.isEmpty ? $0.keys.first ?? "?" : $0.comment })
    }

    /// The lorebooks of `p`: its `lore:` names read by `named`, and its card's character_book;
    /// one line for each that could not be read.
    public static func books(of p: Persona, also names: [String] = [],
                             named: (String) throws(ChatError) -> Lorebook) -> (books: [Lorebook], problems: [String]) {
        var books: [Lorebook] = []
        var problems: [String] = []
        var all = p.lore
        for n in names where !all.contains(n) { all.append(n) }
        for name in all {
            do {
                books.append(try named(name))
            } catch {
                problems.append(error.description)
            }
        }
        let data = p.card?["data"] ?? p.card
        if let book = data?["character_book"] {
            do {
                books.append(try Lorebook.characterBook(book, file: p.source))
            } catch {
                problems.append(error.description)
            }
        }
        return (books, problems)
    }
}

extension Persona {
    /// The card's fields when this persona is a community card (one without `extensions.yanyi`):
    /// its prompt is built from them. Nil for YAML personas and cards bound to Yanyi.
    public var communityCard: CardFields? {
        guard let card else { return nil }
        let data = card["data"]?.object ?? card.object ?? [:]
        if data["extensions"]?["yanyi"] != nil { return nil }
        return CardFields(data: data)
    }

    /// The greetings as shown: macros expanded for `user`.
    public func greetings(for user: UserProfile) -> [String] {
        guard card != nil else { return greetings }
        var ctx = MacroContext(self, user: user)
        return greetings.map { Macros.expand($0, &ctx) }
    }
}

extension MacroContext {
    /// The macros `p` and `user` define: names, the user's description and, for a community
    /// card, its character fields.
    public init(_ p: Persona, user: UserProfile) {
        self.init(char: p.name, user: user.name)
        persona = user.description
        if let card = p.communityCard {
            description = card.field("description")
            personality = card.field("personality")
            scenario = card.field("scenario")
            charPrompt = card.field("system_prompt")
            charInstruction = card.field("post_history_instructions")
            mesExamples = card.field("mes_example")
        }
    }
}

/// A card's character fields, by their spec names.
public struct CardFields: Sendable, Equatable {
    public var data: [String: JSON]

    public func field(_ key: String) -> String { data[key]?.string ?? "" }

    /// Greetings meant only for group chats (V3 `group_only_greetings`).
    public var groupOnlyGreetings: [String] {
        (data["group_only_greetings"]?.array ?? []).compactMap(\.string).filter { !$0.pythonStripped.isEmpty }
    }
}
