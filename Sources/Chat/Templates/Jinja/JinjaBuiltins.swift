import Foundation

// Globals, operators, attribute access, filters, tests and the Python methods chat templates call,
// as jinja2 (3.1, ImmutableSandboxedEnvironment) and transformers define them. Mutating methods
// (list.append, dict.update, …) are refused as the immutable sandbox refuses them.

enum JinjaBuiltins {
    static let maxRange = 100_000

    static var globals: [String: JinjaValue] {
        [
            "range": fn("range") { a, _ in
                let ints = try a.map { v -> Int in
                    guard let i = v.intValue else { throw JinjaError(.runtime, "'\(v.typeName)' object cannot be interpreted as an integer") }
                    return i
                }
                let (start, stop, step): (Int, Int, Int)
                switch ints.count {
                case 1: (start, stop, step) = (0, ints[0], 1)
                case 2: (start, stop, step) = (ints[0], ints[1], 1)
                case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
                default: throw JinjaError(.runtime, "range expected 1 to 3 arguments, got \(ints.count)")
                }
                guard step != 0 else { throw JinjaError(.runtime, "range() arg 3 must not be zero") }
                let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
                let size = max(0, (span / Swift.abs(Double(step))).rounded(.up))
                guard size <= Double(maxRange) else { throw JinjaError(.runtime, "range too big, maximum size for range is \(maxRange)") }
                let count = Int(size)
                return .list((0..<count).map { .int(start + $0 * step) })
            },
            "namespace": fn("namespace") { a, kw in
                var d = JinjaDict()
                for v in a {
                    guard case .dict(let x) = v else { throw JinjaError(.runtime, "namespace() takes keyword arguments or a dict") }
                    for (k, y) in x.pairs { d[k] = y }
                }
                for (k, v) in kw { d[k] = v }
                return .namespace(JinjaNamespace(d))
            },
            "dict": fn("dict") { a, kw in
                var d = JinjaDict()
                if let first = a.first, case .dict(let x) = first { d = x }
                for (k, v) in kw { d[k] = v }
                return .dict(d)
            },
            "raise_exception": fn("raise_exception") { a, _ in
                throw JinjaError(.raised, a.first?.str ?? "")
            },
            "strftime_now": fn("strftime_now") { a, _ in
                guard case .string(let f) = a.first ?? .none else { throw JinjaError(.runtime, "strftime_now() expects a format string") }
                return .string(strftime(f, Date()))
            },
        ]
    }

    static func fn(_ name: String, _ body: @escaping ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) -> JinjaValue {
        .function(JinjaFunction(name: name, call: body))
    }

    static func strftime(_ format: String, _ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [Int8](repeating: 0, count: 256)
        let n = format.withCString { Foundation.strftime(&buf, buf.count, $0, &tmv) }
        return String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: attributes, items, slices

    /// `x.name`: a method of x, else (dicts, namespaces) its item; Undefined when there is none.
    static func attribute(_ v: JinjaValue, _ name: String) throws -> JinjaValue {
        switch v {
        case .undefined: throw JinjaError(.runtime, undefinedMessage(v))
        case .dict(let d):
            if let m = method(v, name) { return m }
            return d[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let n):
            return n.dict[name] ?? .undefined("'Namespace object' has no attribute '\(name)'")
        default:
            if let m = method(v, name) { return m }
            return .undefined("'\(v.typeName) object' has no attribute '\(name)'")
        }
    }

    /// `x[key]`: the item, else (a string key) a method; Undefined when there is none.
    static func item(_ v: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch (v, key) {
        case (.undefined, _): throw JinjaError(.runtime, undefinedMessage(v))
        case (.dict(let d), .string(let k)): return d[k] ?? method(v, k) ?? .undefined("'dict object' has no attribute '\(k)'")
        case (.dict(let d), _): return d[key.str] ?? .undefined("'dict object' has no attribute \(key.repr)")
        case (.namespace(let n), .string(let k)): return n.dict[k] ?? .undefined("'Namespace object' has no attribute '\(k)'")
        case (.list(let l), _):
            if let i = key.intValue {
                let j = i < 0 ? l.count + i : i
                return j >= 0 && j < l.count ? l[j] : .undefined("list object has no element \(i)")
            }
            if case .string(let k) = key, let m = method(v, k) { return m }
            return .undefined("list object has no element \(key.repr)")
        case (.string(let s), _):
            if let i = key.intValue {
                let chars = Array(s)
                let j = i < 0 ? chars.count + i : i
                return j >= 0 && j < chars.count ? .string(String(chars[j])) : .undefined("string index out of range")
            }
            if case .string(let k) = key, let m = method(v, k) { return m }
            return .undefined("'str object' has no attribute \(key.repr)")
        default:
            if case .string(let k) = key, let m = method(v, k) { return m }
            return .undefined("'\(v.typeName) object' has no attribute \(key.repr)")
        }
    }

    static func slice(_ v: JinjaValue, _ a: JinjaValue?, _ b: JinjaValue?, _ c: JinjaValue?) throws -> JinjaValue {
        func int(_ x: JinjaValue?) throws -> Int? {
            guard let x, !(x.isUndefined), !x.isNone else { return nil }
            guard let i = x.intValue else { throw JinjaError(.runtime, "slice indices must be integers or None") }
            return i
        }
        let step = try int(c) ?? 1
        guard step != 0 else { throw JinjaError(.runtime, "slice step cannot be zero") }
        func pick<T>(_ items: [T]) throws -> [T] {
            let n = items.count
            func clamp(_ i: Int?, _ dflt: Int, lo: Int, hi: Int) -> Int {
                guard var i else { return dflt }
                if i < 0 { i += n }
                return min(max(i, lo), hi)
            }
            var out: [T] = []
            if step > 0 {
                var i = clamp(try int(a), 0, lo: 0, hi: n)
                let end = clamp(try int(b), n, lo: 0, hi: n)
                while i < end {
                    out.append(items[i])
                    let (next, o) = i.addingReportingOverflow(step)
                    if o { break }
                    i = next
                }
            } else {
                var i = clamp(try int(a), n - 1, lo: -1, hi: n - 1)
                let end = clamp(try int(b), -1, lo: -1, hi: n - 1)
                while i > end {
                    out.append(items[i])
                    let (next, o) = i.addingReportingOverflow(step)
                    if o { break }
                    i = next
                }
            }
            return out
        }
        switch v {
        case .list(let l): return .list(try pick(l))
        case .string(let s): return .string(String(try pick(Array(s))))
        case .undefined: throw JinjaError(.runtime, undefinedMessage(v))
        default: throw JinjaError(.runtime, "'\(v.typeName)' object is not subscriptable")
        }
    }

    // MARK: operators

    /// Strings and lists an operator or filter makes are bounded (a template doubling a string in
    /// a loop must fail, not fill the memory).
    static let maxSize = 16 << 20

    static func bounded(_ s: String) throws -> JinjaValue {
        guard s.utf8.count <= maxSize else { throw JinjaError(.runtime, "a string grew past \(maxSize) bytes") }
        return .string(s)
    }

    static func bounded(_ l: [JinjaValue]) throws -> JinjaValue {
        guard l.count <= maxSize / 16 else { throw JinjaError(.runtime, "a list grew past \(maxSize / 16) items") }
        return .list(l)
    }

    static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if op == "~" { return try bounded(a.str + b.str) }
        if a.isUndefined { throw JinjaError(.runtime, undefinedMessage(a)) }
        if b.isUndefined { throw JinjaError(.runtime, undefinedMessage(b)) }
        func typeError() -> JinjaError {
            JinjaError(.runtime, "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        func repeated(_ size: Int, _ n: Int) throws -> Int {
            let n = max(0, n)
            guard size == 0 || n <= maxSize / size else { throw JinjaError(.runtime, "a repetition would pass \(maxSize) bytes") }
            return n
        }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return try bounded(x + y)
        case ("+", .list(let x), .list(let y)): return try bounded(x + y)
        case ("*", .string(let s), _) where b.intValue != nil:
            return .string(String(repeating: s, count: try repeated(s.utf8.count, b.intValue!)))
        case ("*", _, .string(let s)) where a.intValue != nil:
            return .string(String(repeating: s, count: try repeated(s.utf8.count, a.intValue!)))
        case ("*", .list(let l), _) where b.intValue != nil:
            return .list(Array(repeatElement(l, count: try repeated(l.count * 16, b.intValue!)).joined()))
        default: break
        }
        if let x = a.intValue, let y = b.intValue {
            func checked(_ r: (Int, Bool)) throws -> JinjaValue {
                if r.1 { throw JinjaError(.runtime, "integer overflow in \(op)") }
                return .int(r.0)
            }
            switch op {
            case "+": return try checked(x.addingReportingOverflow(y))
            case "-": return try checked(x.subtractingReportingOverflow(y))
            case "*": return try checked(x.multipliedReportingOverflow(by: y))
            case "/":
                guard y != 0 else { throw JinjaError(.runtime, "division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw JinjaError(.runtime, "integer division or modulo by zero") }
                guard x != .min || y != -1 else { throw JinjaError(.runtime, "integer overflow in //") }
                let q = x / y
                return .int((x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw JinjaError(.runtime, "integer division or modulo by zero") }
                guard y != -1 else { return .int(0) }
                let r = x % y
                return .int(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
            case "**":
                if y < 0 { return .double(Foundation.pow(Double(x), Double(y))) }
                var (r, base, e) = (1, x, y)   // by squaring: log2(y) steps
                while e > 0 {
                    if e & 1 == 1 {
                        let (m, o) = r.multipliedReportingOverflow(by: base)
                        if o { throw JinjaError(.runtime, "integer overflow in **") }
                        r = m
                    }
                    e >>= 1
                    if e > 0 {
                        let (b2, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw JinjaError(.runtime, "integer overflow in **") }
                        base = b2
                    }
                }
                return .int(r)
            default: throw typeError()
            }
        }
        if let x = a.number, let y = b.number {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw JinjaError(.runtime, "float division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw JinjaError(.runtime, "float floor division by zero") }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw JinjaError(.runtime, "float modulo") }
                let r = x.truncatingRemainder(dividingBy: y)
                return .double(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
            case "**": return .double(Foundation.pow(x, y))
            default: throw typeError()
            }
        }
        if op == "%", case .string = a { throw JinjaError(.runtime, "string formatting with % is not supported") }
        throw typeError()
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in": return try contains(b, a)
        case "notin": return !(try contains(b, a))
        default:
            guard let lt = a.less(b), let gt = b.less(a) else {
                if a.isUndefined { throw JinjaError(.runtime, undefinedMessage(a)) }
                if b.isUndefined { throw JinjaError(.runtime, undefinedMessage(b)) }
                throw JinjaError(.runtime, "'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
            }
            switch op {
            case "<": return lt
            case ">": return gt
            case "<=": return !gt
            default: return !lt
            }
        }
    }

    /// Python's `x in container`.
    static func contains(_ container: JinjaValue, _ x: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = x else {
                throw JinjaError(.runtime, "'in <string>' requires string as left operand, not \(x.typeName)")
            }
            return sub.isEmpty || s.contains(sub)
        case .list(let l): return l.contains { $0.equals(x) }
        case .dict(let d): return d[x.str] != nil && (x.isStringValue || d.keys.contains(x.str))
        case .namespace(let n): return n.dict[x.str] != nil
        case .undefined: throw JinjaError(.runtime, undefinedMessage(container))
        default: throw JinjaError(.runtime, "argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: tests

    static func test(_ name: String, _ v: JinjaValue, _ a: [JinjaValue], renderer: JinjaRenderer) throws -> Bool {
        func arg(_ k: Int) throws -> JinjaValue {
            guard k < a.count else { throw JinjaError(.runtime, "test '\(name)' needs an argument") }
            return a[k]
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "string": return v.isStringValue
        case "number": if case .int = v { return true } else if case .double = v { return true } else if case .bool = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "mapping": if case .dict = v { return true } else { return false }
        case "sequence":
            switch v { case .list, .string, .dict: return true; default: return false }
        case "iterable":
            switch v { case .list, .string, .dict, .namespace: return true; default: return false }
        case "callable": if case .function = v { return true } else { return false }
        case "equalto", "eq", "==", "sameas": return v.equals(try arg(0)) && (name != "sameas" || v.typeName == a[0].typeName)
        case "ne", "!=": return !v.equals(try arg(0))
        case "lt", "lessthan", "<": return try compare("<", v, try arg(0))
        case "le", "<=": return try compare("<=", v, try arg(0))
        case "gt", "greaterthan", ">": return try compare(">", v, try arg(0))
        case "ge", ">=": return try compare(">=", v, try arg(0))
        case "in": return try contains(try arg(0), v)
        case "odd", "even", "divisibleby":
            guard let i = v.intValue else { throw JinjaError(.runtime, "test '\(name)' needs an integer") }
            if name == "odd" { return i % 2 != 0 }
            if name == "even" { return i % 2 == 0 }
            guard let d = try arg(0).intValue, d != 0 else { throw JinjaError(.runtime, "divisibleby needs a non-zero integer") }
            return i % d == 0
        case "lower": if case .string(let s) = v { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = v { return s == s.uppercased() } else { return false }
        case "escaped": return false
        case "filter": if case .string(let s) = v { return filterNames.contains(s) } else { return false }
        case "test": if case .string(let s) = v { return testNames.contains(s) } else { return false }
        default: throw JinjaError(.runtime, "unknown test '\(name)'")
        }
    }

    static let testNames: Set<String> = ["defined", "undefined", "none", "boolean", "true", "false", "string", "number",
                                         "integer", "float", "mapping", "sequence", "iterable", "callable", "equalto", "eq",
                                         "==", "sameas", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan",
                                         ">", "ge", ">=", "in", "odd", "even", "divisibleby", "lower", "upper", "escaped",
                                         "filter", "test"]

    static let filterNames: Set<String> = ["abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort",
                                           "e", "escape", "first", "float", "forceescape", "indent", "int", "items", "join",
                                           "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
                                           "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string",
                                           "sum", "title", "tojson", "trim", "unique", "upper", "wordcount", "batch",
                                           "striptags", "truncate"]

    // MARK: filters

    static func filter(_ name: String, _ v: JinjaValue, _ a: [JinjaValue], _ kw: [(String, JinjaValue)],
                       renderer: JinjaRenderer) throws -> JinjaValue {
        func arg(_ k: Int, _ key: String) -> JinjaValue? {
            if k < a.count { return a[k] }
            return kw.first { $0.0 == key }?.1
        }
        func defined(_ x: JinjaValue) throws -> JinjaValue {
            if x.isUndefined { throw JinjaError(.runtime, undefinedMessage(x)) }
            return x
        }
        func list(_ x: JinjaValue) throws -> [JinjaValue] { try renderer.iterate(try defined(x), line: 0) }
        switch name {
        case "default", "d":
            let dflt = arg(0, "default_value") ?? .string("")
            let boolean = arg(1, "boolean")?.truthy ?? false
            return v.isUndefined || (boolean && !v.truthy) ? dflt : v
        case "length", "count":
            switch v {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .namespace(let n): return .int(n.dict.count)
            default: throw JinjaError(.runtime, "object of type '\(v.typeName)' has no len()")
            }
        case "string": return .string(v.str)
        case "trim":
            let s = v.str
            if let chars = arg(0, "chars"), case .string(let c) = chars { return .string(strip(s, c, left: true, right: true)) }
            return .string(pyStrip(s, left: true, right: true))
        case "upper": return .string(v.str.uppercased())
        case "lower": return .string(v.str.lowercased())
        case "capitalize": return .string(capitalize(v.str))
        case "title": return .string(title(v.str))
        case "replace":
            guard let old = arg(0, "old"), let new = arg(1, "new") else { throw JinjaError(.runtime, "replace needs old and new") }
            let count = arg(2, "count")?.intValue ?? -1
            return try bounded(replace(v.str, old.str, new.str, count: count))
        case "tojson":
            // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
            let indent = arg(1, "indent")
            let ensureASCII = arg(0, "ensure_ascii")?.truthy ?? false
            var separators: (String, String)?
            if case .list(let l)? = arg(2, "separators"), l.count == 2 { separators = (l[0].str, l[1].str) }
            let sortKeys = arg(3, "sort_keys")?.truthy ?? false
            return try bounded(try defined(v).json(indent: indent?.intValue, sortKeys: sortKeys, ensureASCII: ensureASCII,
                                                   separators: separators))
        case "int":
            let dflt = arg(0, "default") ?? .int(0)
            switch v {
            case .int: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return wholeNumber(d).map { .int($0) } ?? dflt
            case .string(let s):
                let t = pyStrip(s, left: true, right: true).replacingOccurrences(of: "_", with: "")
                if let i = Int(t) { return .int(i) }
                return Double(t).flatMap(wholeNumber).map { .int($0) } ?? dflt
            default: return dflt
            }
        case "float":
            let dflt = arg(0, "default") ?? .double(0)
            if let n = v.number { return .double(n) }
            if case .string(let s) = v, let d = Double(pyStrip(s, left: true, right: true)) { return .double(d) }
            return dflt
        case "abs":
            switch v {
            case .int(let i): return i == .min ? .double(-Double(i)) : .int(Swift.abs(i))
            case .double(let d): return .double(Swift.abs(d))
            default: throw JinjaError(.runtime, "bad operand type for abs(): '\(v.typeName)'")
            }
        case "round":
            guard let x = v.number else { throw JinjaError(.runtime, "round needs a number") }
            let precision = arg(0, "precision")?.intValue ?? 0
            let method = arg(1, "method")?.str ?? "common"
            let f = Foundation.pow(10.0, Double(precision))
            let r: Double
            switch method {
            case "ceil": r = (x * f).rounded(.up) / f
            case "floor": r = (x * f).rounded(.down) / f
            default: r = (x * f).rounded(.toNearestOrEven) / f   // Python's round()
            }
            return .double(r)
        case "join":
            let sep = arg(0, "d")?.str ?? ""
            var items = try list(v)
            if let attr = arg(1, "attribute") { items = try items.map { try attributePath($0, attr) } }
            return try bounded(items.map(\.str).joined(separator: sep))
        case "first":
            return try list(v).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            return try list(v).last ?? .undefined("No last item, sequence was empty.")
        case "list":
            return .list(try list(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .list(try list(v).reversed())
        case "items":
            switch v {
            case .undefined: return .list([])
            case .dict(let d): return .list(d.pairs.map { .list([.string($0.0), $0.1]) })
            case .namespace(let n): return .list(n.dict.pairs.map { .list([.string($0.0), $0.1]) })
            default: throw JinjaError(.runtime, "items filter needs a mapping, got \(v.typeName)")
            }
        case "dictsort":
            guard case .dict(let d) = v else { throw JinjaError(.runtime, "dictsort needs a mapping") }
            let caseSensitive = arg(0, "case_sensitive")?.truthy ?? false
            let byValue = arg(1, "by")?.str == "value"
            let reverse = arg(2, "reverse")?.truthy ?? false
            var pairs = d.pairs.map { JinjaValue.list([.string($0.0), $0.1]) }
            try sortValues(&pairs, key: { p in
                guard case .list(let kv) = p else { return p }
                let x = byValue ? kv[1] : kv[0]
                if !caseSensitive, case .string(let s) = x { return .string(s.lowercased()) }
                return x
            }, reverse: reverse)
            return .list(pairs)
        case "sort":
            var items = try list(v)
            let reverse = arg(0, "reverse")?.truthy ?? false
            let caseSensitive = arg(1, "case_sensitive")?.truthy ?? false
            let attr = arg(2, "attribute")
            try sortValues(&items, key: { x in
                var k = x
                if let attr { k = (try? attributePath(x, attr)) ?? .undefined("") }
                if !caseSensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }, reverse: reverse)
            return .list(items)
        case "unique":
            var out: [JinjaValue] = []
            for x in try list(v) where !out.contains(where: { $0.equals(x) }) { out.append(x) }
            return .list(out)
        case "min", "max":
            var items = try list(v)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            try sortValues(&items, key: { x in
                if case .string(let s) = x { return .string(s.lowercased()) }
                return x
            }, reverse: false)
            return name == "min" ? items.first! : items.last!
        case "sum":
            var total = arg(1, "start") ?? .int(0)
            for x in try list(v) {
                let y = try arg(0, "attribute").map { try attributePath(x, $0) } ?? x
                total = try binary("+", total, y)
            }
            return total
        case "map":
            let items = try list(v)
            if let attr = kw.first(where: { $0.0 == "attribute" })?.1 {
                let dflt = kw.first { $0.0 == "default" }?.1
                return .list(try items.map { x in
                    let r = try attributePath(x, attr)
                    return r.isUndefined ? (dflt ?? r) : r
                })
            }
            guard let f = a.first else { throw JinjaError(.runtime, "map needs a filter name or attribute=") }
            return .list(try items.map { try filter(f.str, $0, Array(a.dropFirst()), kw, renderer: renderer) })
        case "select", "reject":
            let items = try list(v)
            let want = name == "select"
            return .list(try items.filter { x in
                guard let t = a.first else { return x.truthy == want }
                return try test(t.str, x, Array(a.dropFirst()), renderer: renderer) == want
            })
        case "selectattr", "rejectattr":
            guard let attr = a.first else { throw JinjaError(.runtime, "\(name) needs an attribute name") }
            let want = name == "selectattr"
            return .list(try list(v).filter { x in
                let y = try attributePath(x, attr)
                guard a.count > 1 else { return y.truthy == want }
                return try test(a[1].str, y, Array(a.dropFirst(2)), renderer: renderer) == want
            })
        case "attr":
            guard let n = a.first else { throw JinjaError(.runtime, "attr needs a name") }
            return try attribute(v, n.str)
        case "safe", "e", "escape", "forceescape":
            if name == "safe" { return v }
            return .string(escapeHTML(v.str))
        case "indent":
            let width = arg(0, "width")
            let widthText = width.map { w -> String in if case .string(let s) = w { return s }; return String(repeating: " ", count: min(max(w.intValue ?? 4, 0), 4096)) }
                ?? "    "
            let first = arg(1, "first")?.truthy ?? false
            let blank = arg(2, "blank")?.truthy ?? false
            var lines = v.str.components(separatedBy: "\n")
            for k in lines.indices where (k > 0 || first) && (blank || !lines[k].allSatisfy(\.isPythonWhitespace)) {
                lines[k] = widthText + lines[k]
            }
            return try bounded(lines.joined(separator: "\n"))
        case "center":
            let width = min(arg(0, "width")?.intValue ?? 80, maxSize)
            let s = v.str
            let total = width - s.count
            guard total > 0 else { return .string(s) }
            let left = total / 2 + (total & width & 1)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: total - left))
        case "wordcount":
            return .int(v.str.split { $0.isPythonWhitespace }.count)
        case "striptags":
            let noTags = v.str.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
            return .string(noTags.split { $0.isPythonWhitespace }.joined(separator: " "))
        case "batch":
            guard let size = arg(0, "linecount")?.intValue, size > 0 else { throw JinjaError(.runtime, "batch needs a positive size") }
            let items = try list(v)
            return .list(stride(from: 0, to: items.count, by: size).map { .list(Array(items[$0..<min($0 + size, items.count)])) })
        case "truncate":
            let length = arg(0, "length")?.intValue ?? 255
            let s = v.str
            guard s.count > length else { return .string(s) }
            let end = arg(2, "end")?.str ?? "..."
            return .string(String(s.prefix(max(0, length - end.count))) + end)
        default:
            throw JinjaError(.runtime, "unknown filter '\(name)'")
        }
    }

    /// A double truncated to an Int, nil where it does not fit.
    static func wholeNumber(_ d: Double) -> Int? {
        d.isFinite && Swift.abs(d) < 9.2e18 ? Int(d) : nil
    }

    /// `attribute="a.b"` or an integer index, as map/selectattr/join resolve it.
    static func attributePath(_ v: JinjaValue, _ path: JinjaValue) throws -> JinjaValue {
        if let i = path.intValue { return try item(v, .int(i)) }
        var x = v
        for part in path.str.split(separator: ".", omittingEmptySubsequences: false) {
            if x.isUndefined { return x }
            if let i = Int(part) { x = try item(x, .int(i)) } else { x = try item(x, .string(String(part))) }
        }
        return x
    }

    static func sortValues(_ items: inout [JinjaValue], key: (JinjaValue) throws -> JinjaValue, reverse: Bool) throws {
        let keyed = try items.map { (try key($0), $0) }
        var failure: JinjaError?
        let sorted = keyed.enumerated().sorted { l, r in
            if let lt = l.element.0.less(r.element.0), let gt = r.element.0.less(l.element.0) {
                if lt != gt { return reverse ? gt : lt }
                return l.offset < r.offset
            }
            failure = JinjaError(.runtime, "'<' not supported between instances of '\(l.element.0.typeName)' and '\(r.element.0.typeName)'")
            return l.offset < r.offset
        }
        if let failure { throw failure }
        items = sorted.map { $0.element.1 }
    }

    // MARK: methods

    /// A Python method of `v` bound to it, or nil when `v` has none by that name.
    static func method(_ v: JinjaValue, _ name: String) -> JinjaValue? {
        switch v {
        case .string(let s): return stringMethod(s, name)
        case .dict(let d):
            switch name {
            case "items": return fn("items") { _, _ in .list(d.pairs.map { .list([.string($0.0), $0.1]) }) }
            case "keys": return fn("keys") { _, _ in .list(d.keys.map { .string($0) }) }
            case "values": return fn("values") { _, _ in .list(d.pairs.map(\.1)) }
            case "get":
                return fn("get") { a, _ in
                    guard let k = a.first else { throw JinjaError(.runtime, "get expected at least 1 argument") }
                    return d[k.str] ?? (a.count > 1 ? a[1] : .none)
                }
            case "copy": return fn("copy") { _, _ in .dict(d) }
            case "update", "pop", "popitem", "setdefault", "clear":
                return fn(name) { _, _ in throw JinjaError(.runtime, "access to attribute '\(name)' of 'dict' object is unsafe.") }
            default: return nil
            }
        case .list(let l):
            switch name {
            case "index":
                return fn("index") { a, _ in
                    guard let x = a.first, let i = l.firstIndex(where: { $0.equals(x) }) else { throw JinjaError(.runtime, "value is not in list") }
                    return .int(i)
                }
            case "count": return fn("count") { a, _ in .int(l.filter { $0.equals(a.first ?? .none) }.count) }
            case "copy": return fn("copy") { _, _ in .list(l) }
            case "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear":
                return fn(name) { _, _ in throw JinjaError(.runtime, "access to attribute '\(name)' of 'list' object is unsafe.") }
            default: return nil
            }
        default:
            return nil
        }
    }

    static func stringMethod(_ s: String, _ name: String) -> JinjaValue? {
        func chars(_ a: [JinjaValue]) -> String? {
            guard let c = a.first, case .string(let t) = c else { return nil }
            return t
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return fn(name) { a, _ in
                let l = name != "rstrip", r = name != "lstrip"
                if let c = chars(a) { return .string(strip(s, c, left: l, right: r)) }
                return .string(pyStrip(s, left: l, right: r))
            }
        case "upper": return fn(name) { _, _ in .string(s.uppercased()) }
        case "lower": return fn(name) { _, _ in .string(s.lowercased()) }
        case "title": return fn(name) { _, _ in .string(pythonTitle(s)) }
        case "capitalize": return fn(name) { _, _ in .string(capitalize(s)) }
        case "startswith", "endswith":
            return fn(name) { a, _ in
                guard let p = a.first else { throw JinjaError(.runtime, "\(name) takes at least 1 argument") }
                let options: [String]
                switch p {
                case .string(let t): options = [t]
                case .list(let l): options = l.map(\.str)
                default: throw JinjaError(.runtime, "\(name) first arg must be str or a tuple of str, not \(p.typeName)")
                }
                let u = Array(s.unicodeScalars)
                return .bool(options.contains { o in
                    let ou = Array(o.unicodeScalars)
                    return name == "startswith" ? u.starts(with: ou) : u.reversed().starts(with: ou.reversed())
                })
            }
        case "split", "rsplit":
            return fn(name) { a, kw in
                let sep = a.first ?? kw.first { $0.0 == "sep" }?.1 ?? .none
                let maxsplit = (a.count > 1 ? a[1] : kw.first { $0.0 == "maxsplit" }?.1)?.intValue ?? -1
                if case .string(let t) = sep {
                    guard !t.isEmpty else { throw JinjaError(.runtime, "empty separator") }
                    var parts = s.components(separatedBy: t)
                    if maxsplit >= 0, parts.count > maxsplit + 1 {
                        if name == "split" {
                            parts = Array(parts[..<maxsplit]) + [parts[maxsplit...].joined(separator: t)]
                        } else {
                            let keep = parts.count - maxsplit
                            parts = [parts[..<keep].joined(separator: t)] + Array(parts[keep...])
                        }
                    }
                    return .list(parts.map { .string($0) })
                }
                var words = s.split(whereSeparator: { $0.isPythonWhitespace }).map(String.init)
                if maxsplit >= 0, words.count > maxsplit + 1, name == "split" {
                    // the rest keeps its inner whitespace, leading whitespace stripped
                    var rest = Substring(s)
                    for _ in 0..<maxsplit {
                        rest = rest.drop { $0.isPythonWhitespace }
                        rest = rest.drop { !$0.isPythonWhitespace }
                    }
                    words = Array(words[..<maxsplit]) + [String(rest.drop { $0.isPythonWhitespace })]
                }
                return .list(words.map { .string($0) })
            }
        case "splitlines":
            return fn(name) { _, _ in
                var lines = s.components(separatedBy: "\n")
                if lines.last == "" { lines.removeLast() }
                return .list(lines.map { .string($0) })
            }
        case "replace":
            return fn(name) { a, _ in
                guard a.count >= 2 else { throw JinjaError(.runtime, "replace expected at least 2 arguments") }
                return try bounded(replace(s, a[0].str, a[1].str, count: a.count > 2 ? a[2].intValue ?? -1 : -1))
            }
        case "find", "index", "rfind":
            return fn(name) { a, _ in
                guard let sub = chars(a) else { throw JinjaError(.runtime, "\(name) needs a string") }
                let u = Array(s.unicodeScalars), su = Array(sub.unicodeScalars)
                var found: Int?
                if su.isEmpty { found = name == "rfind" ? s.count : 0 } else if su.count <= u.count {
                    let range = Array(0...(u.count - su.count))
                    for k in (name == "rfind" ? range.reversed() : range) where Array(u[k..<k + su.count]) == su {
                        found = String(String.UnicodeScalarView(u[..<k])).count
                        break
                    }
                }
                if found == nil, name == "index" { throw JinjaError(.runtime, "substring not found") }
                return .int(found ?? -1)
            }
        case "count":
            return fn(name) { a, _ in
                guard let sub = chars(a) else { throw JinjaError(.runtime, "count needs a string") }
                return .int(sub.isEmpty ? s.count + 1 : s.components(separatedBy: sub).count - 1)
            }
        case "join":
            return fn(name) { a, _ in
                guard case .list(let l) = a.first ?? .none else { throw JinjaError(.runtime, "join needs a list") }
                return try bounded(l.map(\.str).joined(separator: s))
            }
        case "isdigit": return fn(name) { _, _ in .bool(!s.isEmpty && s.allSatisfy(\.isNumber)) }
        case "isspace": return fn(name) { _, _ in .bool(!s.isEmpty && s.allSatisfy(\.isPythonWhitespace)) }
        case "isalpha": return fn(name) { _, _ in .bool(!s.isEmpty && s.allSatisfy(\.isLetter)) }
        case "isupper": return fn(name) { _, _ in .bool(s.contains(where: \.isCased) && s == s.uppercased()) }
        case "islower": return fn(name) { _, _ in .bool(s.contains(where: \.isCased) && s == s.lowercased()) }
        default: return nil
        }
    }

    // MARK: string helpers (Python's str methods)

    static func pyStrip(_ s: String, left: Bool, right: Bool) -> String {
        var u = Substring(s).unicodeScalars
        if left { while let f = u.first, f.isPythonWhitespace { u.removeFirst() } }
        if right { while let l = u.last, l.isPythonWhitespace { u.removeLast() } }
        return String(u)
    }

    static func strip(_ s: String, _ chars: String, left: Bool, right: Bool) -> String {
        let set = Set(chars.unicodeScalars)
        var u = Array(s.unicodeScalars)[...]
        if left { while let f = u.first, set.contains(f) { u.removeFirst() } }
        if right { while let l = u.last, set.contains(l) { u.removeLast() } }
        return String(String.UnicodeScalarView(u))
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        if count < 0 {
            if old.isEmpty {
                return new + s.map { String($0) + new }.joined()
            }
            return s.replacingOccurrences(of: old, with: new, options: .literal)
        }
        var out = ""
        var rest = Substring(s)
        var n = 0
        while n < count, !old.isEmpty, let r = rest.range(of: old, options: .literal) {
            out += rest[..<r.lowerBound] + new
            rest = rest[r.upperBound...]
            n += 1
        }
        return out + rest
    }

    static func capitalize(_ s: String) -> String {
        guard let f = s.first else { return s }
        return String(f).uppercased() + s.dropFirst().lowercased()
    }

    /// jinja2's title filter: a word starts after whitespace, `-`, `(`, `{`, `[` … (its regex `([-\s(\[{<]+)`).
    static func title(_ s: String) -> String {
        var out = ""
        var start = true
        for c in s {
            if c.isPythonWhitespace || "-([{<".contains(c) {
                out.append(c)
                start = true
            } else {
                out += start ? String(c).uppercased() : String(c).lowercased()
                start = false
            }
        }
        return out
    }

    /// Python's str.title: a cased character after an uncased one starts a word.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s {
            if c.isCased {
                out += previousCased ? String(c).lowercased() : String(c).uppercased()
                previousCased = true
            } else {
                out.append(c)
                previousCased = false
            }
        }
        return out
    }

    static func escapeHTML(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension JinjaValue {
    var isNone: Bool { if case .none = self { true } else { false } }
    var isStringValue: Bool { if case .string = self { true } else { false } }
}
