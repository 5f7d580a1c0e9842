import Foundation

/// Reads and decodes one JSON file; every failure becomes a one-line LoadError naming the file.
enum JSONFile {
    static func data(_ path: String) throws(LoadError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw LoadError(path, "file not found") }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LoadError(path, "cannot read: \(error.localizedDescription)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from path: String) throws(LoadError) -> T {
        let bytes = try data(path)
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch let error as DecodingError {
            throw LoadError(path, describe(error))
        } catch {
            throw LoadError(path, "invalid JSON: \(error.localizedDescription)")
        }
    }

    /// Decodes if the file exists; nil when it does not.
    static func decodeIfPresent<T: Decodable>(_ type: T.Type, from path: String) throws(LoadError) -> T? {
        FileManager.default.fileExists(atPath: path) ? try decode(type, from: path) : nil
    }

    static func describe(_ error: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "top level" : "key '" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".") + "'"
        }
        switch error {
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty { return "invalid JSON (\(Self.underlying(c)))" }
            return "bad value at \(at(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c):
            return "missing key '\(key.stringValue)' at \(at(c.codingPath))"
        case .typeMismatch(let type, let c):
            return "\(at(c.codingPath)) should be \(Self.name(type))"
        case .valueNotFound(let type, let c):
            return "\(at(c.codingPath)) is null, expected \(Self.name(type))"
        @unknown default:
            return "cannot decode: \(error)"
        }
    }

    private static func underlying(_ c: DecodingError.Context) -> String {
        if let e = c.underlyingError as NSError? {
            return (e.userInfo[NSDebugDescriptionErrorKey] as? String) ?? e.localizedDescription
        }
        return c.debugDescription
    }

    private static func name(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int32.Type, is Int64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default: return "\(type)".replacingOccurrences(of: "Swift.", with: "")
        }
    }
}

/// A field that some configs write as a number or a list of numbers (`eos_token_id: [1, 2]`).
public struct OneOrMany<T: Decodable & Sendable & Equatable>: Decodable, Sendable, Equatable {
    public var values: [T]
    public init(_ values: [T]) { self.values = values }
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let one = try? c.decode(T.self) {
            values = [one]
        } else {
            values = try c.decode([T].self)
        }
    }
}

/// A special token as tokenizer_config.json writes it: a plain string or an AddedToken dictionary
/// (`{"__type": "AddedToken", "content": "<s>", "lstrip": false, ...}`).
public struct TokenSpec: Decodable, Sendable, Equatable {
    public var content: String
    public var lstrip: Bool
    public var rstrip: Bool
    /// True when written as an AddedToken dictionary (its strip flags then apply), false for a plain string.
    public var isAddedToken: Bool

    public init(_ content: String, lstrip: Bool = false, rstrip: Bool = false, isAddedToken: Bool = false) {
        self.content = content
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.isAddedToken = isAddedToken
    }

    enum CodingKeys: String, CodingKey { case content, lstrip, rstrip }

    public init(from decoder: Decoder) throws {
        if let s = try? decoder.singleValueContainer().decode(String.self) {
            self.init(s)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(try c.decode(String.self, forKey: .content),
                  lstrip: try c.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false,
                  rstrip: try c.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false,
                  isAddedToken: true)
    }
}
