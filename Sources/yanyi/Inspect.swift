import ArgumentParser
import Engine

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a model folder.")
    @Argument(help: "Model folder") var folder: String
    func run() throws { print(folder) }
}
