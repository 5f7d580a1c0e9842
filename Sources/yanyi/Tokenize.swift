import ArgumentParser
import Engine

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show token ids for a text.")
    @Argument(help: "Model folder") var folder: String
    func run() throws { print(folder) }
}
