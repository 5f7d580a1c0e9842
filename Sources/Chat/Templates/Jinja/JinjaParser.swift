// The parser: tokens -> a tree of statements and expressions, with jinja2's precedence
// (lowest first): `x if c else y`, or, and, not, comparisons (`== != < <= > >= in not in`),
// `+ -`, `~`, `* / // %`, `**`, unary `- +`, then primaries with `.attr`, `[i]`, `[a:b:c]`,
// calls, `|filter` and `is test`.

enum JinjaLiteral: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

struct JinjaExpr: Sendable {
    indirect enum Kind: Sendable {
        case literal(JinjaLiteral)
        case name(String)
        case list([JinjaExpr])
        case dict([(JinjaExpr, JinjaExpr)])
        case attribute(JinjaExpr, String)
        case item(JinjaExpr, JinjaExpr)
        case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
        case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
        case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
        case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
        case not(JinjaExpr)
        case negate(JinjaExpr)
        case plus(JinjaExpr)
        case binary(String, JinjaExpr, JinjaExpr)
        case and(JinjaExpr, JinjaExpr)
        case or(JinjaExpr, JinjaExpr)
        case compare(JinjaExpr, [(String, JinjaExpr)])
        case conditional(JinjaExpr, JinjaExpr, JinjaExpr?)
    }
    var kind: Kind
    var line: Int
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case ifElse([(JinjaExpr, [JinjaNode])], [JinjaNode])
    case forLoop(targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case set(targets: [String], JinjaExpr, line: Int)
    case setAttribute(String, String, JinjaExpr, line: Int)
    case setBlock(String, [JinjaNode], filters: [(String, [JinjaExpr], [(String, JinjaExpr)], Int)])
    case macro(String, [(String, JinjaExpr?)], [JinjaNode])
    case filterBlock([(String, [JinjaExpr], [(String, JinjaExpr)], Int)], [JinjaNode])
    case breakLoop(line: Int)
    case continueLoop(line: Int)
    /// `{% generation %}` (transformers' AssistantTracker): renders its body.
    case block([JinjaNode])
}

struct JinjaParser {
    /// Blocks, brackets and operators nested in one another (real chat templates stay near 10);
    /// the parser and the evaluator recurse, so this bounds their stack.
    static let maxDepth = 40

    private let tokens: [JinjaToken]
    private var p = 0
    private var depth = 0

    static func parse(_ tokens: [JinjaToken]) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: tokens)
        let (body, end) = try parser.statements(until: [])
        if let end { throw JinjaError(.syntax, "unexpected '\(end)'", line: parser.tokens[parser.p].line) }
        return body
    }

    private init(tokens: [JinjaToken]) { self.tokens = tokens }

    private var current: JinjaToken { tokens[p] }
    private var line: Int { current.line }

    private func error(_ message: String) -> JinjaError { JinjaError(.syntax, message, line: line) }

    private func describe(_ k: JinjaToken.Kind) -> String {
        switch k {
        case .text: "template text"
        case .variableBegin: "'{{'"
        case .variableEnd: "end of print statement ('}}')"
        case .blockBegin: "'{%'"
        case .blockEnd: "end of statement block ('%}')"
        case .name(let n): "'\(n)'"
        case .string: "string"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .op(let o): "'\(o)'"
        case .eof: "end of template"
        }
    }

    private mutating func next() -> JinjaToken {
        let t = tokens[p]
        if p < tokens.count - 1 { p += 1 }
        return t
    }

    private func isOp(_ o: String) -> Bool { current.kind == .op(o) }
    private func isName(_ n: String) -> Bool { current.kind == .name(n) }

    private mutating func skipOp(_ o: String) -> Bool {
        if isOp(o) { p += 1; return true }
        return false
    }

    private mutating func skipName(_ n: String) -> Bool {
        if isName(n) { p += 1; return true }
        return false
    }

    private mutating func expectOp(_ o: String) throws {
        guard skipOp(o) else { throw error("expected '\(o)', got \(describe(current.kind))") }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name, got \(describe(current.kind))") }
        p += 1
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected end of statement block ('%}'), got \(describe(current.kind))") }
        p += 1
    }

    private mutating func nested<T>(_ body: (inout JinjaParser) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxDepth { throw error("template nests too deeply (more than \(Self.maxDepth) levels)") }
        return try body(&self)
    }

    // MARK: statements

    /// Statements up to a block tag whose first word is in `ends` (consumed up to the word).
    private mutating func statements(until ends: Set<String>) throws -> ([JinjaNode], String?) {
        try nested { parser in
            var nodes: [JinjaNode] = []
            while true {
                let t = parser.current
                switch t.kind {
                case .eof:
                    if !ends.isEmpty {
                        throw JinjaError(.syntax, "unexpected end of template; expected \(ends.sorted().map { "'\($0)'" }.joined(separator: " or "))", line: t.line)
                    }
                    return (nodes, nil)
                case .text(let s):
                    parser.p += 1
                    nodes.append(.text(s))
                case .variableBegin:
                    parser.p += 1
                    let e = try parser.expression()
                    guard parser.current.kind == .variableEnd else {
                        throw parser.error("expected end of print statement ('}}'), got \(parser.describe(parser.current.kind))")
                    }
                    parser.p += 1
                    nodes.append(.output(e))
                case .blockBegin:
                    parser.p += 1
                    guard case .name(let word) = parser.current.kind else {
                        throw parser.error("expected a statement name, got \(parser.describe(parser.current.kind))")
                    }
                    if ends.contains(word) {
                        parser.p += 1
                        return (nodes, word)
                    }
                    nodes.append(try parser.statement(word))
                default:
                    throw parser.error("unexpected \(parser.describe(t.kind))")
                }
            }
        }
    }

    private mutating func statement(_ word: String) throws -> JinjaNode {
        let l = line
        p += 1
        switch word {
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var cond = try expression()
            while true {
                try expectBlockEnd()
                let (body, end) = try statements(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                switch end {
                case "elif":
                    cond = try expression()
                case "else":
                    try expectBlockEnd()
                    let (otherwise, _) = try statements(until: ["endif"])
                    try expectBlockEnd()
                    return .ifElse(branches, otherwise)
                default:
                    try expectBlockEnd()
                    return .ifElse(branches, [])
                }
            }
        case "for":
            var targets = [try expectName()]
            while skipOp(",") { targets.append(try expectName()) }
            guard skipName("in") else { throw error("expected 'in', got \(describe(current.kind))") }
            let iterable = try expression(conditional: false)
            var condition: JinjaExpr?
            if skipName("if") { condition = try expression() }
            if isName("recursive") { throw error("recursive loops are not supported") }
            try expectBlockEnd()
            let (body, end) = try statements(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            try expectBlockEnd()
            if end == "else" {
                (otherwise, _) = try statements(until: ["endfor"])
                try expectBlockEnd()
            }
            return .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: l)
        case "set":
            let first = try expectName()
            if skipOp(".") {
                let attr = try expectName()
                try expectOp("=")
                let value = try expression()
                try expectBlockEnd()
                return .setAttribute(first, attr, value, line: l)
            }
            var targets = [first]
            while skipOp(",") { targets.append(try expectName()) }
            if skipOp("=") {
                let value = try tupleExpression()
                try expectBlockEnd()
                return .set(targets: targets, value, line: l)
            }
            guard targets.count == 1 else { throw error("expected '='") }
            let filters = try filterChain()
            try expectBlockEnd()
            let (body, _) = try statements(until: ["endset"])
            try expectBlockEnd()
            return .setBlock(first, body, filters: filters)
        case "macro":
            let name = try expectName()
            try expectOp("(")
            var params: [(String, JinjaExpr?)] = []
            while !skipOp(")") {
                if !params.isEmpty { try expectOp(",") }
                if skipOp(")") { break }
                let n = try expectName()
                params.append((n, skipOp("=") ? try expression() : nil))
            }
            try expectBlockEnd()
            let (body, _) = try statements(until: ["endmacro"])
            if case .name = current.kind { p += 1 }   // {% endmacro name %}
            try expectBlockEnd()
            return .macro(name, params, body)
        case "filter":
            let filters = try filterChain(leadingPipe: false)
            try expectBlockEnd()
            let (body, _) = try statements(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters, body)
        case "break", "continue":
            try expectBlockEnd()
            return word == "break" ? .breakLoop(line: l) : .continueLoop(line: l)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try statements(until: ["endgeneration"])
            try expectBlockEnd()
            return .block(body)
        default:
            throw JinjaError(.syntax, "unknown tag '\(word)'", line: l)
        }
    }

    private mutating func filterChain(leadingPipe: Bool = true) throws -> [(String, [JinjaExpr], [(String, JinjaExpr)], Int)] {
        var out: [(String, [JinjaExpr], [(String, JinjaExpr)], Int)] = []
        var first = !leadingPipe
        while first || skipOp("|") {
            first = false
            let l = line
            let name = try filterName()
            let (args, kwargs) = isOp("(") ? try callArguments() : ([], [])
            out.append((name, args, kwargs, l))
        }
        return out
    }

    // MARK: expressions

    /// `a, b` without brackets (as in `{% set a, b = 1, 2 %}`) is a tuple.
    private mutating func tupleExpression() throws -> JinjaExpr {
        let l = line
        let first = try expression()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .blockEnd || current.kind == .variableEnd { break }
            items.append(try expression())
        }
        return JinjaExpr(kind: .list(items), line: l)
    }

    mutating func expression(conditional: Bool = true) throws -> JinjaExpr {
        try nested { parser in
            let l = parser.line
            let e = try parser.or()
            guard conditional, parser.skipName("if") else { return e }
            let cond = try parser.or()
            let otherwise = parser.skipName("else") ? try parser.expression() : nil
            return JinjaExpr(kind: .conditional(cond, e, otherwise), line: l)
        }
    }

    private mutating func or() throws -> JinjaExpr {
        var e = try and()
        while isName("or") {
            let l = line
            p += 1
            e = JinjaExpr(kind: .or(e, try and()), line: l)
        }
        return e
    }

    private mutating func and() throws -> JinjaExpr {
        var e = try not()
        while isName("and") {
            let l = line
            p += 1
            e = JinjaExpr(kind: .and(e, try not()), line: l)
        }
        return e
    }

    private mutating func not() throws -> JinjaExpr {
        if isName("not") {
            let l = line
            p += 1
            return try nested { parser in JinjaExpr(kind: .not(try parser.not()), line: l) }
        }
        return try compare()
    }

    private mutating func compare() throws -> JinjaExpr {
        let l = line
        let first = try math1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                p += 1
                ops.append((o, try math1()))
            } else if isName("in") {
                p += 1
                ops.append(("in", try math1()))
            } else if isName("not"), tokens[min(p + 1, tokens.count - 1)].kind == .name("in") {
                p += 2
                ops.append(("notin", try math1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : JinjaExpr(kind: .compare(first, ops), line: l)
    }

    private mutating func math1() throws -> JinjaExpr {
        var e = try concat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let l = line
            p += 1
            e = JinjaExpr(kind: .binary(o, e, try concat()), line: l)
        }
        return e
    }

    private mutating func concat() throws -> JinjaExpr {
        var e = try math2()
        while isOp("~") {
            let l = line
            p += 1
            e = JinjaExpr(kind: .binary("~", e, try math2()), line: l)
        }
        return e
    }

    private mutating func math2() throws -> JinjaExpr {
        var e = try pow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let l = line
            p += 1
            e = JinjaExpr(kind: .binary(o, e, try pow()), line: l)
        }
        return e
    }

    private mutating func pow() throws -> JinjaExpr {
        var e = try unary()
        while isOp("**") {
            let l = line
            p += 1
            e = JinjaExpr(kind: .binary("**", e, try unary()), line: l)
        }
        return e
    }

    private mutating func unary(withFilter: Bool = true) throws -> JinjaExpr {
        let l = line
        var e: JinjaExpr
        if skipOp("-") {
            e = try nested { parser in JinjaExpr(kind: .negate(try parser.unary(withFilter: false)), line: l) }
        } else if skipOp("+") {
            e = try nested { parser in JinjaExpr(kind: .plus(try parser.unary(withFilter: false)), line: l) }
        } else {
            e = try postfix(try primary())
        }
        return withFilter ? try filterExpression(e) : e
    }

    private mutating func primary() throws -> JinjaExpr {
        let t = next()
        switch t.kind {
        case .name(let n):
            switch n {
            case "true", "True": return JinjaExpr(kind: .literal(.bool(true)), line: t.line)
            case "false", "False": return JinjaExpr(kind: .literal(.bool(false)), line: t.line)
            case "none", "None": return JinjaExpr(kind: .literal(.none), line: t.line)
            default: return JinjaExpr(kind: .name(n), line: t.line)
            }
        case .string(var s):
            while case .string(let more) = current.kind { s += more; p += 1 }
            return JinjaExpr(kind: .literal(.string(s)), line: t.line)
        case .int(let i): return JinjaExpr(kind: .literal(.int(i)), line: t.line)
        case .double(let d): return JinjaExpr(kind: .literal(.double(d)), line: t.line)
        case .op("("):
            if skipOp(")") { return JinjaExpr(kind: .list([]), line: t.line) }
            let e = try expression()
            if isOp(",") {
                var items = [e]
                while skipOp(",") {
                    if isOp(")") { break }
                    items.append(try expression())
                }
                try expectOp(")")
                return JinjaExpr(kind: .list(items), line: t.line)
            }
            try expectOp(")")
            return e
        case .op("["):
            var items: [JinjaExpr] = []
            while !skipOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if skipOp("]") { break }
                items.append(try expression())
            }
            return JinjaExpr(kind: .list(items), line: t.line)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !skipOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if skipOp("}") { break }
                let k = try expression()
                try expectOp(":")
                pairs.append((k, try expression()))
            }
            return JinjaExpr(kind: .dict(pairs), line: t.line)
        default:
            throw JinjaError(.syntax, "unexpected \(describe(t.kind))", line: t.line)
        }
    }

    private mutating func postfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var e = start
        while true {
            let l = line
            if skipOp(".") {
                switch next().kind {
                case .name(let n): e = JinjaExpr(kind: .attribute(e, n), line: l)
                case .int(let i): e = JinjaExpr(kind: .item(e, JinjaExpr(kind: .literal(.int(i)), line: l)), line: l)
                default: throw JinjaError(.syntax, "expected an attribute name after '.'", line: l)
                }
            } else if skipOp("[") {
                e = try subscriptExpression(e, line: l)
            } else if isOp("(") {
                let (args, kwargs) = try callArguments()
                e = JinjaExpr(kind: .call(e, args, kwargs), line: l)
            } else {
                return e
            }
        }
    }

    private mutating func subscriptExpression(_ target: JinjaExpr, line l: Int) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var isSlice = false
        while !skipOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(nil)
                guard parts.count <= 3 else { throw error("too many ':' in a slice") }
                continue
            }
            guard parts[parts.count - 1] == nil else { throw error("expected ']' or ':', got \(describe(current.kind))") }
            parts[parts.count - 1] = try expression()
        }
        if !isSlice {
            guard let index = parts[0] else { throw JinjaError(.syntax, "expected an index in '[]'", line: l) }
            return JinjaExpr(kind: .item(target, index), line: l)
        }
        while parts.count < 3 { parts.append(nil) }
        return JinjaExpr(kind: .slice(target, parts[0], parts[1], parts[2]), line: l)
    }

    private mutating func callArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        try expectOp("(")
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        while !skipOp(")") {
            if !args.isEmpty || !kwargs.isEmpty { try expectOp(",") }
            if skipOp(")") { break }
            if case .name(let n) = current.kind, tokens[min(p + 1, tokens.count - 1)].kind == .op("=") {
                p += 2
                kwargs.append((n, try expression()))
            } else {
                guard kwargs.isEmpty else { throw error("a positional argument follows a keyword argument") }
                args.append(try expression())
            }
        }
        return (args, kwargs)
    }

    /// Filters are checked when the template is read, as jinja2 does: an unknown one is an error
    /// even in a branch that never runs.
    private mutating func filterName() throws -> String {
        let l = line
        let name = try dottedName()
        guard JinjaBuiltins.filterNames.contains(name) else { throw JinjaError(.syntax, "unknown filter '\(name)'", line: l) }
        return name
    }

    private mutating func dottedName() throws -> String {
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        return name
    }

    private mutating func filterExpression(_ start: JinjaExpr) throws -> JinjaExpr {
        var e = start
        while true {
            let l = line
            if skipOp("|") {
                let name = try filterName()
                let (args, kwargs) = isOp("(") ? try callArguments() : ([], [])
                e = JinjaExpr(kind: .filter(e, name, args, kwargs), line: l)
            } else if skipName("is") {
                let negated = skipName("not")
                let name = try dottedName()
                guard JinjaBuiltins.testNames.contains(name) else { throw JinjaError(.syntax, "unknown test '\(name)'", line: l) }
                var args: [JinjaExpr] = []
                if isOp("(") {
                    let (a, kw) = try callArguments()
                    args = a + kw.map(\.1)
                } else {
                    switch current.kind {
                    case .string, .int, .double, .op("["), .op("{"):
                        args = [try postfix(try primary())]
                    case .name(let n) where !["else", "or", "and", "if", "in", "not", "is"].contains(n):
                        args = [try postfix(try primary())]
                    default: break
                    }
                }
                e = JinjaExpr(kind: .test(e, name, args, negated: negated), line: l)
            } else if isOp("(") {
                let (args, kwargs) = try callArguments()
                e = JinjaExpr(kind: .call(e, args, kwargs), line: l)
            } else {
                return e
            }
        }
    }
}
