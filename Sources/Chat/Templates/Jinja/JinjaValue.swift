import Foundation
import Engine

// Values of the Jinja interpreter, with the Python semantics Hugging Face chat templates rely on:
// str() and repr() as Python prints them, truthiness, ==, ordering, and json.dumps for `tojson`.

/// A Jinja failure: a syntax error, an unknown filter, a type error, or `raise_exception(msg)`.
/// `line` is the template line (1-based) where it happened, when known.
public struct JinjaError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case syntax
        case runtime
        /// The template called `raise_exception(message)` (transformers' TemplateError).
        case raised
    }
    public var kind: Kind
    public var message: String
    public var line: Int?

    public init(_ kind: Kind, _ message: String, line: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

extension Character {
    /// Every code point of it is Python whitespace.
    var isPythonWhitespace: Bool { unicodeScalars.allSatisfy(\.isPythonWhitespace) }
}

/// A Python dict: string keys in insertion order.
struct JinjaDict {
    private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    init() {}
    init(_ pairs: [(String, JinjaValue)]) { for (k, v) in pairs { self[k] = v } }

    subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if storage[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil, storage[key] != nil { keys.removeAll { $0 == key } }
            storage[key] = newValue
        }
    }

    var count: Int { keys.count }
    var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0]!) } }
}

/// `namespace(...)`: the one mutable object templates may assign attributes on (`ns.x = …`).
final class JinjaNamespace {
    var dict: JinjaDict
    init(_ dict: JinjaDict) { self.dict = dict }
}

/// A callable: a builtin, a bound method, or a macro.
struct JinjaFunction {
    var name: String
    var call: ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue
}

enum JinjaValue {
    /// A missing variable or key (jinja2's default Undefined): prints as nothing, is falsy,
    /// iterates as empty; any other use is an error naming `hint`.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: "Undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        }
    }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): d.count > 0
        case .namespace, .function: true
        }
    }

    /// `str(x)`, as `{{ x }}` prints it (Undefined prints as nothing).
    var str: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: repr
        }
    }

    /// `repr(x)`.
    var repr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): pythonFloat(d)
        case .string(let s): pythonRepr(s)
        case .list(let l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.pairs.map { pythonRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        case .namespace(let n): "<Namespace " + JinjaValue.dict(n.dict).repr + ">"
        case .function(let f): "<function \(f.name)>"
        }
    }

    /// Python `==` (1 == 1.0 == True).
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a == b
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count && a.pairs.allSatisfy { k, v in b[k].map { v.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let x = number, let y = other.number { return x == y }
            return false
        }
    }

    /// Numbers (bools count as 0 and 1, as in Python).
    var number: Double? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    var intValue: Int? {
        switch self {
        case .bool(let b): b ? 1 : 0
        case .int(let i): i
        default: nil
        }
    }

    /// Python `<` for numbers, strings (by code point) and lists; nil where Python raises.
    func less(_ other: JinjaValue) -> Bool? {
        switch (self, other) {
        case (.string(let a), .string(let b)): return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        case (.list(let a), .list(let b)):
            for (x, y) in zip(a, b) where !x.equals(y) { return x.less(y) }
            return a.count < b.count
        default:
            if case .int(let x) = self, case .int(let y) = other { return x < y }
            if let x = number, let y = other.number { return x < y }
            return nil
        }
    }
}

/// Python's repr of a float: shortest round-trip digits, `.0` on whole numbers, exponent from 1e16.
func pythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
    var s = "\(d)"   // Swift prints the shortest round-trip digits too
    if let e = s.firstIndex(of: "e") {
        // Python writes e+16, e-05: a sign and at least two digits.
        let mantissa = s[..<e]
        var exp = String(s[s.index(after: e)...])
        var sign = "+"
        if exp.hasPrefix("-") { sign = "-"; exp.removeFirst() } else if exp.hasPrefix("+") { exp.removeFirst() }
        if exp.count < 2 { exp = "0" + exp }
        s = mantissa + "e" + sign + exp
    }
    return s
}

/// Python's repr of a str: single quotes unless the text holds a single quote and no double one.
func pythonRepr(_ s: String) -> String {
    let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
    var out = String(quote)
    for u in s.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(u) == quote {
                out += "\\" + String(quote)
            } else if u.value < 0x20 || u.value == 0x7F {
                out += String(format: "\\x%02x", u.value)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + String(quote)
}

// MARK: - JSON

extension JinjaValue {
    /// `json.dumps(x, ensure_ascii=False, indent=indent, separators=…, sort_keys=…)`, as
    /// transformers' own `tojson` filter calls it.
    func json(indent: Int?, sortKeys: Bool = false, ensureASCII: Bool = false, separators: (String, String)? = nil,
              level: Int = 0) throws -> String {
        let itemSep = separators?.0 ?? (indent == nil ? ", " : ",")
        let keySep = separators?.1 ?? ": "
        func pad(_ n: Int) -> String { indent.map { "\n" + String(repeating: " ", count: min(max($0, 0), 64) * n) } ?? "" }
        func inner(_ v: JinjaValue) throws -> String {
            try v.json(indent: indent, sortKeys: sortKeys, ensureASCII: ensureASCII, separators: separators, level: level + 1)
        }
        switch self {
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
            return pythonFloat(d)
        case .string(let s): return jsonString(s, ensureASCII: ensureASCII)
        case .list(let l):
            if l.isEmpty { return "[]" }
            let items = try l.map { try pad(level + 1) + inner($0) }
            return "[" + items.joined(separator: itemSep) + pad(level) + "]"
        case .dict(let d):
            if d.count == 0 { return "{}" }
            let pairs = sortKeys ? d.pairs.sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) } : d.pairs
            let items = try pairs.map { k, v in
                try pad(level + 1) + jsonString(k, ensureASCII: ensureASCII) + keySep + inner(v)
            }
            return "{" + items.joined(separator: itemSep) + pad(level) + "}"
        case .namespace, .function, .undefined:
            throw JinjaError(.runtime, "Object of type \(typeName) is not JSON serializable")
        }
    }

    /// An ordered JSON document as Jinja values (objects keep their key order, as Python's do),
    /// read by the engine's strict JSON reader.
    static func parseJSON(_ text: String) throws -> JinjaValue {
        do {
            return JinjaValue(json: try JSONParser.parse(Array(text.utf8)))
        } catch {
            throw JinjaError(.runtime, "JSON: \(error.description)")
        }
    }

    init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(JinjaValue.init(json:)))
        case .object(let members):
            var d = JinjaDict()
            for (k, v) in members { d[k] = JinjaValue(json: v) }
            self = .dict(d)
        }
    }
}

/// A JSON string as Python's json.dumps writes it (`ensureASCII`: every non-ASCII code point as
/// `\uXXXX`, surrogate pairs beyond the BMP).
func jsonString(_ s: String, ensureASCII: Bool = false) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if u.value < 0x20 || (ensureASCII && u.value > 0x7E) {
                for unit in String(u).utf16 { out += String(format: "\\u%04x", unit) }
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
