import ArgumentParser
import Engine
import Foundation

/// `yanyi logits`: the model's logits for a prompt, to check it against a reference.
struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the logits (or the top K) after the last position, or after every position.")

    @OptionGroup var options: ModelOptions

    @Option(help: "Text to encode with the model's tokenizer (special tokens added as encode() does).")
    var prompt: String?

    @Option(help: "Token ids instead of a prompt, e.g. 1,2,3.")
    var ids: String?

    @Flag(help: "Logits after every position, not only the last.")
    var allPositions = false

    @Option(help: "Only the K largest logits per position (0 = all).")
    var top = 10

    @Flag(help: "JSON: {\"ids\": [...], \"positions\": [{\"index\", \"top\": [[id, logit], ...]} or \"logits\"]}.")
    var json = false

    func validate() throws {
        if (prompt == nil) == (ids == nil) { throw ValidationError("give exactly one of --prompt and --ids") }
        if top < 0 { throw ValidationError("--top must be ≥ 0") }
    }

    func run() throws {
        let (folder, lm, _) = try options.load()
        let tokens = try ids.map(parseIDs) ?? folder.tokenizer.encode(prompt ?? "", addSpecialTokens: true)
        guard !tokens.isEmpty else { fail("the prompt encodes to no tokens") }
        let out: [Float]
        do {
            out = try lm.forward(tokens, session: lm.makeSession(capacity: tokens.count), logits: allPositions ? .all : .last)
        } catch {
            fail(error.description)
        }
        let v = lm.vocabSize
        let rows = out.count / v
        var positions: [[String: Any]] = []
        for r in 0..<rows {
            let row = out[(r * v)..<((r + 1) * v)]
            let index = tokens.count - rows + r
            var entry: [String: Any] = ["index": index]
            if top == 0 {
                entry["logits"] = row.map { Double($0) }
            } else {
                let best = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(top)
                entry["top"] = best.map { [$0 - row.startIndex, Double(row[$0])] as [Any] }
            }
            positions.append(entry)
        }
        if json {
            let obj: [String: Any] = ["ids": tokens.map { Int($0) }, "precision": lm.precision.rawValue, "positions": positions]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("ids: " + tokens.map(String.init).joined(separator: " "))
        for p in positions {
            let i = p["index"] as! Int
            let piece = folder.tokenizer.piece(tokens[i]) ?? "?"
            if let t = p["top"] as? [[Any]] {
                let items = t.map { e -> String in
                    let id = e[0] as! Int
                    return "\(id) \(folder.tokenizer.piece(Int32(id)) ?? "?") \(String(format: "%.4f", e[1] as! Double))"
                }
                print("after \(i) (\(piece)): " + items.joined(separator: " | "))
            } else if let l = p["logits"] as? [Double] {
                print("after \(i) (\(piece)): " + l.map { String(format: "%.6f", $0) }.joined(separator: " "))
            }
        }
    }
}
