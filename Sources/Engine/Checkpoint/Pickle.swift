// A restricted unpickler for PyTorch state dicts. It never executes anything: it understands the
// opcodes a state dict uses and a fixed list of globals, each interpreted here by hand
// (an OrderedDict is a dict, _rebuild_tensor_v2 records a view of a storage, ...). Every other
// global is refused by name the moment it appears, before anything could call it.

/// The globals a torch state dict needs, and nothing else.
enum PickleGlobal: Equatable {
    case orderedDict                 // collections.OrderedDict
    case rebuildTensorV2             // torch._utils._rebuild_tensor_v2
    case rebuildParameter            // torch._utils._rebuild_parameter
    case rebuildParameterWithState   // torch._utils._rebuild_parameter_with_state
    case torchSize                   // torch.Size
    case storage(DType)              // torch.FloatStorage, torch.HalfStorage, ...

    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    static func resolve(module: String, name: String) -> PickleGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch", "Size"): return .torchSize
        case ("torch", _): return storageTypes[name].map { .storage($0) }
        default: return nil
        }
    }
}

/// One storage as the pickle names it: ('storage', <type>, key, location, numel).
struct PickleStorage {
    let dtype: DType
    let key: String      // the archive entry is <prefix>/data/<key>
    let numel: Int
}

/// A tensor as _rebuild_tensor_v2 describes it: a strided view of a storage.
struct PickleTensor {
    let storage: PickleStorage
    let offset: Int      // in elements
    let shape: [Int]
    let strides: [Int]   // in elements
}

/// Lists and dicts are boxes: the memo and the stack must see the same object while
/// APPENDS/SETITEMS fill it. Once nested inside another container a box is frozen (no real
/// state dict modifies a container after nesting it), which rules out cycles and lets nesting
/// depth be capped exactly, so nothing built here can overflow the stack when freed.
final class PickleBox {
    var items: [PickleValue] = []                        // a list
    var entries: [(key: PickleValue, value: PickleValue)] = []   // a dict, in insertion order
    var stringKeys: [String: Int] = [:]                  // dict entries by string key
    var depth = 1
    var frozen = false
}

enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes(Int)                                 // only the length; nothing here needs content
    case tuple([PickleValue], depth: Int)
    case list(PickleBox)
    case dict(PickleBox)
    case global(PickleGlobal)
    case storage(PickleStorage)
    case tensor(PickleTensor)

    var kind: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .float: "a float"
        case .string: "a string"
        case .bytes: "bytes"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        case .global: "a class or function"
        case .storage: "a storage"
        case .tensor: "a tensor"
        }
    }
}

struct Unpickler {
    private let bytes: UnsafeRawBufferPointer
    private let file: String
    private let entry: String
    private var i = 0
    private var stack: [PickleValue] = []
    private var metastack: [[PickleValue]] = []   // MARK saves the stack here, as CPython does
    private var memo: [Int: PickleValue] = [:]
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer, file: String, entry: String) {
        self.bytes = bytes
        self.file = file
        self.entry = entry
    }

    private func fail(_ reason: String, at: Int? = nil) -> LoadError {
        LoadError(file, "pickle \(entry.printable) byte \(at ?? i): \(reason)")
    }

    // ---- reading the opcode stream (every read bounds-checked) ----
    private mutating func take(_ n: Int) throws(LoadError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - i else { throw fail("truncated (wants \(n) bytes, \(bytes.count - i) left)") }
        let r = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)])
        i += n
        return r
    }

    private mutating func u8() throws(LoadError) -> Int { Int(try take(1)[0]) }

    private mutating func le<T: FixedWidthInteger>(_: T.Type) throws(LoadError) -> T {
        let b = try take(MemoryLayout<T>.size)
        guard let p = b.baseAddress else { throw fail("truncated") }
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    private mutating func length(_ v: UInt64) throws(LoadError) -> Int {
        guard v <= UInt64(bytes.count - i) else { throw fail("length \(v) runs past the end of the pickle") }
        return Int(v)
    }

    private mutating func line() throws(LoadError) -> String {
        let start = i
        while i < bytes.count, bytes[i] != 0x0A {
            i += 1
            if i - start > 1024 { throw fail("GLOBAL name longer than 1024 bytes", at: start) }
        }
        guard i < bytes.count else { throw fail("truncated GLOBAL", at: start) }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        i += 1
        return s
    }

    // ---- the stack ----
    private mutating func pop() throws(LoadError) -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }

    private mutating func popMark() throws(LoadError) -> [PickleValue] {
        guard let saved = metastack.popLast() else { throw fail("no MARK to pop to") }
        let items = stack
        stack = saved
        return items
    }

    /// Depth of a value about to be nested (in `into`, if a box); freezes boxes (see PickleBox).
    private func nest(_ v: PickleValue, into container: PickleBox? = nil) throws(LoadError) -> Int {
        let d: Int
        switch v {
        case .tuple(_, let depth): d = depth
        case .list(let b), .dict(let b):
            // The one cycle freezing cannot prevent: a box put inside itself.
            guard b !== container else { throw fail("puts a container inside itself") }
            b.frozen = true
            d = b.depth
        default: d = 0
        }
        guard d < Unpickler.maxDepth else { throw fail("nesting deeper than \(Unpickler.maxDepth) levels") }
        return d
    }

    private func makeTuple(_ items: [PickleValue]) throws(LoadError) -> PickleValue {
        var depth = 0
        for v in items { depth = max(depth, try nest(v)) }
        return .tuple(items, depth: depth + 1)
    }

    private func box(_ v: PickleValue, _ what: String) throws(LoadError) -> PickleBox {
        switch v {
        case .list(let b) where what == "list", .dict(let b) where what == "dict":
            guard !b.frozen else { throw fail("modifies a \(what) after nesting it, which a state dict never does") }
            return b
        default:
            throw fail("expected a \(what) to fill, found \(v.kind)")
        }
    }

    private func setItem(_ b: PickleBox, _ k: PickleValue, _ v: PickleValue) throws(LoadError) {
        b.depth = max(b.depth, max(try nest(k, into: b), try nest(v, into: b)) + 1)
        if case .string(let s) = k {
            if let at = b.stringKeys[s] { b.entries[at].value = v; return }   // Python: last value wins, first position kept
            b.stringKeys[s] = b.entries.count
        }
        b.entries.append((k, v))
    }

    private func append(_ b: PickleBox, _ v: PickleValue) throws(LoadError) {
        b.depth = max(b.depth, try nest(v, into: b) + 1)
        b.items.append(v)
    }

    private mutating func memoPut(_ key: Int) throws(LoadError) {
        guard let top = stack.last else { throw fail("memo put with an empty stack") }
        memo[key] = top
    }

    private mutating func memoGet(_ key: Int) throws(LoadError) {
        guard let v = memo[key] else { throw fail("memo key \(key) was never stored") }
        stack.append(v)
    }

    private func global(module: String, name: String) throws(LoadError) -> PickleValue {
        if let g = PickleGlobal.resolve(module: module, name: name) { return .global(g) }
        if module == "torch", name.hasSuffix("Storage") {
            throw LoadError(file, "pickle uses storage type \("torch.\(name)".quoted), which Yanyi cannot read (float, half, bfloat16, double and integer storages only)")
        }
        throw LoadError(file, "pickle references global \("\(module).\(name)".quoted), which a weights file never needs; refusing to load it")
    }

    // ---- interpreting the few callables a state dict uses ----
    private func int(_ v: PickleValue, _ what: String) throws(LoadError) -> Int {
        guard case .int(let n) = v else { throw fail("\(what) is \(v.kind), not an int") }
        return n
    }

    private func ints(_ v: PickleValue, _ what: String) throws(LoadError) -> [Int] {
        guard case .tuple(let items, _) = v else { throw fail("\(what) is \(v.kind), not a tuple") }
        var out: [Int] = []
        for x in items { out.append(try int(x, what)) }
        return out
    }

    private func call(_ callable: PickleValue, _ args: PickleValue) throws(LoadError) -> PickleValue {
        guard case .global(let g) = callable else { throw fail("REDUCE calls \(callable.kind)") }
        guard case .tuple(let a, _) = args else { throw fail("REDUCE arguments are \(args.kind), not a tuple") }
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail("OrderedDict called with arguments") }
            return .dict(PickleBox())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else { throw fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got \(a.count)") }
            guard case .storage(let s) = a[0] else { throw fail("_rebuild_tensor_v2's storage is \(a[0].kind)") }
            let shape = try ints(a[2], "tensor size")
            let strides = try ints(a[3], "tensor stride")
            return .tensor(PickleTensor(storage: s, offset: try int(a[1], "storage offset"), shape: shape, strides: strides))
        case .rebuildParameter, .rebuildParameterWithState:
            // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor.
            guard a.count == (g == .rebuildParameter ? 3 : 4), case .tensor = a[0] else {
                throw fail("\(g == .rebuildParameter ? "_rebuild_parameter" : "_rebuild_parameter_with_state") expects a tensor and \(g == .rebuildParameter ? 2 : 3) more arguments")
            }
            return a[0]
        case .torchSize:
            guard a.count == 1, case .tuple = a[0] else { throw fail("torch.Size expects one tuple") }
            _ = try ints(a[0], "torch.Size")
            return a[0]
        case .storage:
            throw fail("a storage class is called, which a state dict never does")
        }
    }

    /// ('storage', <StorageType>, key, location, numel) -> a storage reference.
    private func persistent(_ pid: PickleValue) throws(LoadError) -> PickleValue {
        guard case .tuple(let t, _) = pid, t.count == 5, case .string("storage") = t[0] else {
            throw fail("persistent id is not ('storage', type, key, location, numel)")
        }
        guard case .global(.storage(let dtype)) = t[1] else { throw fail("persistent id names \(t[1].kind), not a storage type") }
        guard case .string(let key) = t[2] else { throw fail("storage key is \(t[2].kind), not a string") }
        let numel = try int(t[4], "storage size")
        guard numel >= 0 else { throw fail("storage \(key.quoted) has negative size \(numel)") }
        return .storage(PickleStorage(dtype: dtype, key: key, numel: numel))
    }

    // ---- the machine ----
    mutating func run() throws(LoadError) -> PickleValue {
        while i < bytes.count {
            let at = i
            let op = bytes[i]
            i += 1
            switch op {
            case 0x80:  // PROTO
                let v = try u8()
                guard v <= 5 else { throw fail("unsupported pickle protocol \(v)", at: at) }
            case 0x95:  // FRAME: a length hint for buffered readers; nothing to do
                _ = try le(UInt64.self)
            case 0x2E:  // STOP
                return try pop()

            case 0x63:  // GLOBAL module\nname\n
                let module = try line()
                let name = try line()
                stack.append(try global(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let m) = module, case .string(let n) = name else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                stack.append(try global(module: m, name: n))

            case 0x71: try memoPut(try u8())                                   // BINPUT
            case 0x72: try memoPut(Int(try le(UInt32.self)))                  // LONG_BINPUT
            case 0x94: try memoPut(memo.count)                                // MEMOIZE
            case 0x68: try memoGet(try u8())                                   // BINGET
            case 0x6A: try memoGet(Int(try le(UInt32.self)))                  // LONG_BINGET

            case 0x28:  // MARK
                metastack.append(stack)
                stack = []
            case 0x30: _ = try pop()                                           // POP
            case 0x31: _ = try popMark()                                       // POP_MARK
            case 0x32:  // DUP
                guard let top = stack.last else { throw fail("DUP with an empty stack", at: at) }
                stack.append(top)

            case 0x7D: stack.append(.dict(PickleBox()))                         // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items", at: at) }
                let b = PickleBox()
                for k in stride(from: 0, to: items.count, by: 2) { try setItem(b, items[k], items[k + 1]) }
                stack.append(.dict(b))
            case 0x5D: stack.append(.list(PickleBox()))                         // EMPTY_LIST
            case 0x6C:  // LIST
                let items = try popMark()
                let b = PickleBox()
                for v in items { try append(b, v) }
                stack.append(.list(b))
            case 0x29: stack.append(.tuple([], depth: 1))                      // EMPTY_TUPLE
            case 0x74: stack.append(try makeTuple(try popMark()))              // TUPLE
            case 0x85: stack.append(try makeTuple([try pop()]))                // TUPLE1
            case 0x86:                                                          // TUPLE2
                let b = try pop(), a = try pop()
                stack.append(try makeTuple([a, b]))
            case 0x87:                                                          // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(try makeTuple([a, b, c]))

            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                guard let top = stack.last else { throw fail("SETITEM without a dict", at: at) }
                try setItem(try box(top, "dict"), k, v)
            case 0x75:  // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items", at: at) }
                guard let top = stack.last else { throw fail("SETITEMS without a dict", at: at) }
                let b = try box(top, "dict")
                for k in stride(from: 0, to: items.count, by: 2) { try setItem(b, items[k], items[k + 1]) }
            case 0x61:  // APPEND
                let v = try pop()
                guard let top = stack.last else { throw fail("APPEND without a list", at: at) }
                try append(try box(top, "list"), v)
            case 0x65:  // APPENDS
                let items = try popMark()
                guard let top = stack.last else { throw fail("APPENDS without a list", at: at) }
                let b = try box(top, "list")
                for v in items { try append(b, v) }

            case 0x4A: stack.append(.int(Int(try le(Int32.self))))             // BININT
            case 0x4B: stack.append(.int(try u8()))                            // BININT1
            case 0x4D: stack.append(.int(Int(try le(UInt16.self))))            // BININT2
            case 0x8A, 0x8B:  // LONG1, LONG4: little-endian two's complement
                let n = op == 0x8A ? try u8() : try length(UInt64(try le(UInt32.self)))
                let b = try take(n)
                guard n <= 8 else { throw fail("integer of \(n) bytes is too large", at: at) }
                var v: UInt64 = 0
                for k in 0..<n { v |= UInt64(b[k]) << (8 * UInt64(k)) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }  // sign-extend
                stack.append(.int(Int(Int64(bitPattern: v))))

            case 0x58: stack.append(.string(try text(try length(UInt64(try le(UInt32.self))))))  // BINUNICODE
            case 0x8C: stack.append(.string(try text(try u8())))                                  // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try text(try length(try le(UInt64.self)))))          // BINUNICODE8
            case 0x54:  // BINSTRING (Python 2 str; text here)
                let n = Int(try le(Int32.self))
                guard n >= 0 else { throw fail("negative BINSTRING length", at: at) }
                stack.append(.string(try text(n)))
            case 0x55: stack.append(.string(try text(try u8())))                                  // SHORT_BINSTRING
            case 0x42: stack.append(.bytes(try take(try length(UInt64(try le(UInt32.self)))).count))  // BINBYTES
            case 0x43: stack.append(.bytes(try take(try u8()).count))                             // SHORT_BINBYTES
            case 0x8E: stack.append(.bytes(try take(try length(try le(UInt64.self))).count))      // BINBYTES8

            case 0x4E: stack.append(.none)                                     // NONE
            case 0x88: stack.append(.bool(true))                               // NEWTRUE
            case 0x89: stack.append(.bool(false))                              // NEWFALSE
            case 0x47:  // BINFLOAT: big-endian double
                stack.append(.float(Double(bitPattern: UInt64(bigEndian: try le(UInt64.self)))))

            case 0x52:  // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try call(callable, args))
            case 0x81:  // NEWOBJ: only OrderedDict may be built this way
                let args = try pop(), cls = try pop()
                guard case .global(.orderedDict) = cls, case .tuple(let a, _) = args, a.isEmpty else {
                    throw fail("NEWOBJ on \(cls.kind) is not something a state dict does", at: at)
                }
                stack.append(.dict(PickleBox()))
            case 0x62:  // BUILD: state on an OrderedDict (e.g. _metadata) or a tensor is ignored
                let state = try pop()
                guard let top = stack.last else { throw fail("BUILD with an empty stack", at: at) }
                switch top {
                case .dict, .tensor: _ = try nest(state)
                default: throw fail("BUILD on \(top.kind) is not something a state dict does", at: at)
                }
            case 0x51:  // BINPERSID
                stack.append(try persistent(try pop()))

            default:
                let printable = (0x21..<0x7F).contains(op) ? " ('\(Unicode.Scalar(op))')" : ""
                throw fail("opcode 0x\(String(op, radix: 16))\(printable) is not one a state dict uses", at: at)
            }
        }
        throw fail("ends without STOP (truncated?)")
    }

    private mutating func text(_ n: Int) throws(LoadError) -> String {
        String(decoding: try take(n), as: UTF8.self)
    }
}
