import Foundation
@testable import Chat

// A character card as JSON (V1, V2 or V3), then the same round trip as a PNG card's.
enum FuzzCardJSON {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let card = try? CharacterCard.decode(json: Data(input), file: "fuzz.json") else { return }
        FuzzCards.roundTrip(card, image: nil)
    }
}
