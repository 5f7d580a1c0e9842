/// A Jinja template as Hugging Face chat templates need it: transformers' `apply_chat_template`
/// compiles `chat_template` in a jinja2 ImmutableSandboxedEnvironment with trim_blocks and
/// lstrip_blocks, the loopcontrols extension (`break`, `continue`), its own `tojson`
/// (json.dumps with ensure_ascii=False), and the globals `raise_exception(msg)` and
/// `strftime_now(fmt)`. Undefined names print as nothing, as jinja2's default Undefined does.
///
/// Parsed once; `render` is safe to call from any thread (each call has its own state) and is
/// bounded: loop steps, nesting and output size are limited, so a broken template fails with a
/// one-line error instead of running away.
public struct JinjaTemplate: Sendable {
    public let source: String
    let nodes: [JinjaNode]

    public init(_ source: String) throws(JinjaError) {
        self.source = source
        do {
            nodes = try JinjaParser.parse(try JinjaLexer.tokenize(source))
        } catch let e as JinjaError {
            throw e
        } catch {
            throw JinjaError(.syntax, "\(error)")
        }
    }

    /// Renders with `context` (names -> values; see `JinjaContextValue`).
    public func render(_ context: [String: JinjaContextValue]) throws(JinjaError) -> String {
        do {
            return try JinjaRenderer(context: context.mapValues(\.value)).render(nodes)
        } catch let e as JinjaError {
            throw e
        } catch {
            throw JinjaError(.runtime, "\(error)")
        }
    }

    func render(values: [String: JinjaValue]) throws -> String {
        try JinjaRenderer(context: values).render(nodes)
    }

    /// Renders with a context written as a JSON object (key order kept, as Python's dicts keep it).
    public func render(json: String) throws(JinjaError) -> String {
        do {
            guard case .dict(let d) = try JinjaValue.parseJSON(json) else {
                throw JinjaError(.runtime, "the context must be a JSON object")
            }
            var context: [String: JinjaValue] = [:]
            for (k, v) in d.pairs { context[k] = v }
            return try JinjaRenderer(context: context).render(nodes)
        } catch let e as JinjaError {
            throw e
        } catch {
            throw JinjaError(.runtime, "\(error)")
        }
    }
}

/// A value handed to a template from Swift: what `messages`, `add_generation_prompt`,
/// `bos_token` and friends are made of.
public indirect enum JinjaContextValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
                                        ExpressibleByIntegerLiteral {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaContextValue])
    /// A dict, its keys in this order.
    case dict([(String, JinjaContextValue)])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }

    public static func == (a: JinjaContextValue, b: JinjaContextValue) -> Bool {
        switch (a, b) {
        case (.none, .none): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.dict(let x), .dict(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    var value: JinjaValue {
        switch self {
        case .none: .none
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .list(let l): .list(l.map(\.value))
        case .dict(let pairs): .dict(JinjaDict(pairs.map { ($0.0, $0.1.value) }))
        }
    }
}
