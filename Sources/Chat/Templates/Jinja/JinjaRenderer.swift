import Foundation

// The evaluator: walks the tree with a stack of scopes (the context at the bottom; each loop
// iteration and each macro call on top of it). `set` writes to the innermost scope, as in jinja2,
// so a variable set inside a loop is gone after it; `namespace()` is how templates carry state
// out of a loop. Limits keep a hostile or broken template from running away.

final class JinjaRenderer {
    struct Limits {
        /// Loop iterations and macro calls, all together.
        var steps = 200_000
        /// Nested macro calls (each also nests expression evaluation: this bounds the stack).
        var depth = 24
        /// Output, in UTF-8 bytes.
        var outputBytes = 16 << 20
    }

    private enum Flow { case normal, breakLoop, continueLoop }

    let limits: Limits
    private var scopes: [[String: JinjaValue]]
    private var steps = 0
    private var depth = 0
    private var evalDepth = 0
    private var loopDepth = 0
    private var out = ""

    init(context: [String: JinjaValue], limits: Limits = Limits()) {
        self.limits = limits
        var root = JinjaBuiltins.globals
        for (k, v) in context { root[k] = v }
        scopes = [root]
    }

    func render(_ nodes: [JinjaNode]) throws -> String {
        _ = try run(nodes)
        return out
    }

    // MARK: statements

    private func emit(_ s: String, line: Int) throws {
        out += s
        if out.utf8.count > limits.outputBytes {
            throw JinjaError(.runtime, "output is longer than \(limits.outputBytes) bytes", line: line)
        }
    }

    private func step(_ line: Int) throws {
        steps += 1
        if steps > limits.steps { throw JinjaError(.runtime, "template ran more than \(limits.steps) loop steps", line: line) }
    }

    private func assign(_ name: String, _ value: JinjaValue) { scopes[scopes.count - 1][name] = value }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined("'\(name)' is undefined")
    }

    private func run(_ nodes: [JinjaNode]) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let s):
                try emit(s, line: 0)
            case .output(let e):
                let v = try eval(e)
                try emit(v.str, line: e.line)
            case .ifElse(let branches, let otherwise):
                var taken = false
                for (cond, body) in branches where try eval(cond).truthy {
                    taken = true
                    let f = try run(body)
                    if f != .normal { return f }
                    break
                }
                if !taken {
                    let f = try run(otherwise)
                    if f != .normal { return f }
                }
            case .forLoop(let targets, let iterable, let condition, let body, let otherwise, let line):
                try forLoop(targets, iterable, condition, body, otherwise, line)
            case .set(let targets, let e, let line):
                try bind(targets, try eval(e), line: line, names: "names")
            case .setAttribute(let name, let attr, let e, let line):
                guard case .namespace(let ns) = lookup(name) else {
                    throw JinjaError(.runtime, "cannot assign attribute on non-namespace object '\(name)'", line: line)
                }
                ns.dict[attr] = try eval(e)
            case .setBlock(let name, let body, let filters):
                var v = JinjaValue.string(try capture(body))
                for (f, args, kwargs, line) in filters { v = try applyFilter(f, v, args, kwargs, line: line) }
                assign(name, v)
            case .filterBlock(let filters, let body):
                var v = JinjaValue.string(try capture(body))
                for (f, args, kwargs, line) in filters { v = try applyFilter(f, v, args, kwargs, line: line) }
                try emit(v.str, line: 0)
            case .macro(let name, let params, let body):
                assign(name, makeMacro(name, params, body))
            case .breakLoop(let line):
                guard loopDepth > 0 else { throw JinjaError(.runtime, "'break' outside a loop", line: line) }
                return .breakLoop
            case .continueLoop(let line):
                guard loopDepth > 0 else { throw JinjaError(.runtime, "'continue' outside a loop", line: line) }
                return .continueLoop
            case .block(let body):
                let f = try run(body)
                if f != .normal { return f }
            }
        }
        return .normal
    }

    private func capture(_ body: [JinjaNode]) throws -> String {
        let saved = out
        out = ""
        defer { out = saved }
        _ = try run(body)
        return out
    }

    /// `{% set a, b = … %}` and `{% for a, b in … %}`: one name takes the value, several take its
    /// items one each (`names` words the error as jinja2 does for each).
    private func bind(_ targets: [String], _ v: JinjaValue, line: Int, names: String) throws {
        if targets.count == 1 {
            assign(targets[0], v)
            return
        }
        let items = try iterate(v, line: line)
        guard items.count == targets.count else {
            throw JinjaError(.runtime, "cannot unpack \(items.count) values into \(targets.count) \(names)", line: line)
        }
        for (t, x) in zip(targets, items) { assign(t, x) }
    }

    private func forLoop(_ targets: [String], _ iterable: JinjaExpr, _ condition: JinjaExpr?, _ body: [JinjaNode],
                         _ otherwise: [JinjaNode], _ line: Int) throws {
        var items = try iterate(try eval(iterable), line: iterable.line)
        func bind(_ item: JinjaValue) throws { try self.bind(targets, item, line: line, names: "loop variables") }
        if let condition {
            var kept: [JinjaValue] = []
            for item in items {
                try step(line)
                scopes.append([:])
                defer { scopes.removeLast() }
                try bind(item)
                if try eval(condition).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try run(otherwise)
            return
        }
        loopDepth += 1
        defer { loopDepth -= 1 }
        let n = items.count
        for (k, item) in items.enumerated() {
            try step(line)
            var loop = JinjaDict()
            loop["index"] = .int(k + 1)
            loop["index0"] = .int(k)
            loop["revindex"] = .int(n - k)
            loop["revindex0"] = .int(n - k - 1)
            loop["first"] = .bool(k == 0)
            loop["last"] = .bool(k == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = k > 0 ? items[k - 1] : .undefined("there is no previous item")
            loop["nextitem"] = k + 1 < n ? items[k + 1] : .undefined("there is no next item")
            loop["cycle"] = .function(JinjaFunction(name: "loop.cycle") { args, _ in
                guard !args.isEmpty else { throw JinjaError(.runtime, "no items for cycling given") }
                return args[k % args.count]
            })
            scopes.append(["loop": .dict(loop)])
            defer { scopes.removeLast() }
            try bind(item)
            if try run(body) == .breakLoop { break }
        }
    }

    private func makeMacro(_ name: String, _ params: [(String, JinjaExpr?)], _ body: [JinjaNode]) -> JinjaValue {
        .function(JinjaFunction(name: name) { [unowned self] args, kwargs in
            try self.step(0)
            self.depth += 1
            defer { self.depth -= 1 }
            if self.depth > self.limits.depth { throw JinjaError(.runtime, "macro calls nest more than \(self.limits.depth) deep") }
            guard args.count <= params.count else {
                throw JinjaError(.runtime, "macro '\(name)' takes not more than \(params.count) argument(s)")
            }
            var frame: [String: JinjaValue] = [:]
            let saved = self.scopes
            self.scopes = [self.scopes[0]]
            defer { self.scopes = saved }
            for (k, (p, def)) in params.enumerated() {
                if k < args.count {
                    frame[p] = args[k]
                } else if let v = kwargs.first(where: { $0.0 == p })?.1 {
                    frame[p] = v
                } else if let def {
                    self.scopes.append(frame)
                    frame[p] = try self.eval(def)
                    self.scopes.removeLast()
                } else {
                    frame[p] = .undefined("parameter '\(p)' was not provided")
                }
            }
            for (k, _) in kwargs where !params.contains(where: { $0.0 == k }) {
                throw JinjaError(.runtime, "macro '\(name)' takes no keyword argument '\(k)'")
            }
            self.scopes.append(frame)
            let savedOut = self.out
            self.out = ""
            defer { self.out = savedOut }
            _ = try self.run(body)
            return .string(self.out)
        })
    }

    // MARK: expressions

    func iterate(_ v: JinjaValue, line: Int) throws -> [JinjaValue] {
        switch v {
        case .undefined: return []
        case .list(let l): return l
        case .string(let s): return s.map { .string(String($0)) }
        case .dict(let d): return d.keys.map { .string($0) }
        case .namespace(let n): return n.dict.keys.map { .string($0) }
        default: throw JinjaError(.runtime, "'\(v.typeName)' object is not iterable", line: line)
        }
    }

    func eval(_ e: JinjaExpr) throws -> JinjaValue {
        evalDepth += 1
        defer { evalDepth -= 1 }
        if evalDepth > 400 { throw JinjaError(.runtime, "expression nests too deeply", line: e.line) }
        do {
            return try evalKind(e)
        } catch var err as JinjaError {
            if err.line == nil { err.line = e.line }
            throw err
        }
    }

    private func evalKind(_ e: JinjaExpr) throws -> JinjaValue {
        switch e.kind {
        case .literal(let l):
            switch l {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let n):
            return lookup(n)
        case .list(let items):
            return .list(try items.map(eval))
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                let key = try eval(k)
                guard case .string(let s) = key else {
                    if key.isUndefined { throw JinjaError(.runtime, undefinedMessage(key)) }
                    d[key.str] = try eval(v)
                    continue
                }
                d[s] = try eval(v)
            }
            return .dict(d)
        case .attribute(let target, let name):
            return try JinjaBuiltins.attribute(try eval(target), name)
        case .item(let target, let index):
            return try JinjaBuiltins.item(try eval(target), try eval(index))
        case .slice(let target, let a, let b, let c):
            return try JinjaBuiltins.slice(try eval(target), try a.map(eval), try b.map(eval), try c.map(eval))
        case .call(let callee, let args, let kwargs):
            let f = try eval(callee)
            let a = try args.map(eval)
            let kw = try kwargs.map { ($0.0, try eval($0.1)) }
            guard case .function(let fn) = f else {
                if f.isUndefined { throw JinjaError(.runtime, undefinedMessage(f)) }
                throw JinjaError(.runtime, "'\(f.typeName)' object is not callable")
            }
            return try fn.call(a, kw)
        case .filter(let target, let name, let args, let kwargs):
            return try applyFilter(name, try eval(target), args, kwargs, line: e.line)
        case .test(let target, let name, let args, let negated):
            let v = try eval(target)
            let r = try JinjaBuiltins.test(name, v, try args.map(eval), renderer: self)
            return .bool(r != negated)
        case .not(let x):
            return .bool(!(try eval(x).truthy))
        case .negate(let x):
            let v = try eval(x)
            switch v {
            case .int(let i): return i == .min ? .double(-Double(i)) : .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            default: throw JinjaError(.runtime, v.isUndefined ? undefinedMessage(v) : "bad operand type for unary -: '\(v.typeName)'")
            }
        case .plus(let x):
            let v = try eval(x)
            guard v.number != nil else { throw JinjaError(.runtime, "bad operand type for unary +: '\(v.typeName)'") }
            return v
        case .and(let a, let b):
            let x = try eval(a)
            return x.truthy ? try eval(b) : x
        case .or(let a, let b):
            let x = try eval(a)
            return x.truthy ? x : try eval(b)
        case .binary(let op, let a, let b):
            return try JinjaBuiltins.binary(op, try eval(a), try eval(b))
        case .compare(let first, let ops):
            var left = try eval(first)
            for (op, rhs) in ops {
                let right = try eval(rhs)
                if !(try JinjaBuiltins.compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let cond, let then, let otherwise):
            if try eval(cond).truthy { return try eval(then) }
            return try otherwise.map(eval) ?? .undefined("the inline if expression on line \(e.line) evaluated to false and no else section was defined")
        }
    }

    func applyFilter(_ name: String, _ v: JinjaValue, _ args: [JinjaExpr], _ kwargs: [(String, JinjaExpr)], line: Int) throws -> JinjaValue {
        let a = try args.map(eval)
        let kw = try kwargs.map { ($0.0, try eval($0.1)) }
        do {
            return try JinjaBuiltins.filter(name, v, a, kw, renderer: self)
        } catch var err as JinjaError {
            if err.line == nil { err.line = line }
            throw err
        }
    }
}

func undefinedMessage(_ v: JinjaValue) -> String {
    if case .undefined(let hint) = v { return hint }
    return "undefined value"
}
