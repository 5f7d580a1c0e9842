import Chat
import Foundation

/// A request body read field by field: every field the server uses is checked for its type and
/// named in the 400 when it is wrong; every other field is ignored (SillyTavern sends dozens of
/// keys for other backends). `null` counts as absent, as OpenAI's API treats it.
struct RequestFields {
    let object: [String: JSON]

    init(_ data: Data) throws(APIError) {
        guard !data.isEmpty else { throw APIError.invalid("The request body is empty; send a JSON object.") }
        let value: JSON
        do {
            value = try JSON.parse(data)
        } catch {
            throw APIError.invalid("The request body is not valid JSON (\(Self.short(error))).", code: "invalid_json")
        }
        guard let o = value.object else { throw APIError.invalid("The request body must be a JSON object.", code: "invalid_json") }
        object = o
    }

    init(object: [String: JSON]) { self.object = object }

    static func short(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error { return c.debugDescription }
        return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
    }

    func value(_ key: String) -> JSON? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    private func wrong(_ key: String, _ what: String) -> APIError {
        APIError.invalid("'\(key)' must be \(what).", param: key)
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw wrong(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw wrong(key, "true or false") }
        return b
    }

    func double(_ key: String) throws(APIError) -> Double? {
        guard let v = value(key) else { return nil }
        switch v {
        case .int(let i): return Double(i)
        case .double(let d) where d.isFinite: return d
        default: throw wrong(key, "a number")
        }
    }

    /// A whole number (`3.0` counts as 3).
    func int(_ key: String) throws(APIError) -> Int? {
        guard let v = value(key) else { return nil }
        switch v {
        case .int(let i): return i
        case .double(let d) where d.isFinite && d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: throw wrong(key, "a whole number")
        }
    }

    /// A string or an array of strings (`stop`).
    func strings(_ key: String) throws(APIError) -> [String]? {
        guard let v = value(key) else { return nil }
        switch v {
        case .string(let s): return [s]
        case .array(let a):
            var out: [String] = []
            for (i, e) in a.enumerated() {
                guard case .string(let s) = e else { throw APIError.invalid("'\(key)[\(i)]' must be a string.", param: "\(key)[\(i)]") }
                out.append(s)
            }
            return out
        default: throw wrong(key, "a string or an array of strings")
        }
    }

    /// `key` as a number within `range`, with a message naming the range.
    func double(_ key: String, in range: ClosedRange<Double>, _ what: String) throws(APIError) -> Double? {
        guard let d = try double(key) else { return nil }
        guard range.contains(d) else { throw APIError.invalid("'\(key)' must be \(what) (got \(d)).", param: key) }
        return d
    }

    func int(_ key: String, in range: ClosedRange<Int>, _ what: String) throws(APIError) -> Int? {
        guard let i = try int(key) else { return nil }
        guard range.contains(i) else { throw APIError.invalid("'\(key)' must be \(what) (got \(i)).", param: key) }
        return i
    }

    /// The first of `keys` present (aliases: `max_tokens` / `max_new_tokens`), with its name.
    func first(_ keys: [String]) -> String? { keys.first(where: has) }
}
