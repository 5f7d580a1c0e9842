import ArgumentParser
import Engine
import Foundation

/// `yanyi tokenize DIR TEXT`: ids and pieces as the model's own tokenizer gives them.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids and pieces of a text, and the text decoded back.")

    @Argument(help: "A model folder (its tokenizer files are used).")
    var folder: String

    @Argument(help: "The text; \\n in it stays literal — use $'…' in the shell for a newline.")
    var text: String

    @Flag(help: "Leave out the special tokens encode() adds (BOS/EOS, ChatGLM's [gMASK] <sop>).")
    var noSpecial = false

    @Flag(help: "Read special-token text in TEXT (<s>, </s>, <sop>, …) as plain characters, as chat does with what people write. Default: the Hugging Face rule — the tokens the tokenizer registers as special or added are parsed wherever they occur (ChatGLM-6B: <sop> <eop> [MASK] <unk> <pad>, not [gMASK]).")
    var specialAsText = false

    func run() throws {
        let tokenizer: any Tokenizer
        do {
            tokenizer = try TokenizerLoader.load(folder: folder)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecial, parseSpecialTokens: !specialAsText)
        print("ids     " + ids.map(String.init).joined(separator: " "))
        print("pieces  " + ids.map { tokenizer.piece($0) ?? "?" }.joined(separator: " | "))
        print("count   \(ids.count)")
        print("decoded " + tokenizer.decode(ids, skipSpecialTokens: true))
    }
}
