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

    func run() throws {
        let tokenizer: any Tokenizer
        do {
            tokenizer = try TokenizerLoader.load(folder: folder)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecial)
        print("ids     " + ids.map(String.init).joined(separator: " "))
        print("pieces  " + ids.map { tokenizer.piece($0) ?? "?" }.joined(separator: " | "))
        print("count   \(ids.count)")
        print("decoded " + tokenizer.decode(ids, skipSpecialTokens: true))
    }
}
